// page_delta_binding.cc — argument checks and conversion for EncodePageDelta (see the header).
#include "page_delta_binding.h"

#include <string>

#include "args.h"
#include "page_delta.h"

namespace walnut::pagedelta {
namespace {

Napi::Value Encode(const Napi::CallbackInfo& info) {
  ByteSpan frame, previous, out;
  if (!GetBytes(info, 0, "frame", &frame) || !GetBytes(info, 1, "previous", &previous) || !GetBytes(info, 2, "out", &out)) {
    return Napi::Value();
  }
  if (info.Length() < 4 || !info[3].IsBoolean()) return ThrowInvalid(info.Env(), "updatePrevious must be true or false");
  const bool update = info[3].As<Napi::Boolean>().Value();
  // a delta writes out while reading frame: refused when they share bytes; and previous, when
  // it is written (as it is compared, or after the payload: page_delta.cc), must not share any with out
  if (out.length > 0 && frame.length > 0 && out.data < frame.data + frame.length && frame.data < out.data + out.length) {
    return ThrowInvalid(info.Env(), "out must not overlap frame");
  }
  if (update && out.length > 0 && previous.length > 0 && out.data < previous.data + previous.length && previous.data < out.data + out.length) {
    return ThrowInvalid(info.Env(), "out must not overlap previous");
  }
  size_t n = EncodePageDelta(frame.data, frame.length, previous.data, previous.length, out.data, out.length, update);
  return Napi::Number::New(info.Env(), static_cast<double>(n));
}

const char* TierName(checksum::Tier tier) {
  switch (tier) {
    case checksum::Tier::kAvx2: return "avx2";
    case checksum::Tier::kAvx512: return "avx512";
    default: return "scalar";
  }
}

// TEST_setPageDeltaPath(tier): force the encoder's scan (clamped to what the CPU has); returns
// the active one. 'best' is what a load chooses.
Napi::Value SetPath(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsString()) return ThrowInvalid(info.Env(), "TEST_setPageDeltaPath(tier) expects a string");
  const std::string name = info[0].As<Napi::String>();
  checksum::Tier tier;
  if (name == "scalar") tier = checksum::Tier::kScalar;
  else if (name == "avx2") tier = checksum::Tier::kAvx2;
  else if (name == "avx512" || name == "best") tier = checksum::Tier::kAvx512;
  else return ThrowInvalid(info.Env(), "tier must be scalar, avx2, avx512 or best");
  EncodeSetTier(tier);
  return Napi::String::New(info.Env(), TierName(EncodeTier()));
}

}  // namespace

void Register(Napi::Env env, Napi::Object exports) {
  exports.Set("encodePageDelta", Napi::Function::New<Encode>(env, "encodePageDelta"));
  exports.Set("TEST_setPageDeltaPath", Napi::Function::New<SetPath>(env, "TEST_setPageDeltaPath"));
}

}  // namespace walnut::pagedelta
