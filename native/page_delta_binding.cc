// page_delta_binding.cc — argument checks and conversion for EncodePageDelta (see the header).
#include "page_delta_binding.h"

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
  // a delta writes out while reading frame: refused when they share bytes (previous is written
  // only after the payload, with memmove)
  if (out.length > 0 && frame.length > 0 && out.data < frame.data + frame.length && frame.data < out.data + out.length) {
    return ThrowInvalid(info.Env(), "out must not overlap frame");
  }
  if (update && out.length > 0 && previous.length > 0 && out.data < previous.data + previous.length && previous.data < out.data + out.length) {
    return ThrowInvalid(info.Env(), "out must not overlap previous");
  }
  size_t n = EncodePageDelta(frame.data, frame.length, previous.data, previous.length, out.data, out.length, update);
  return Napi::Number::New(info.Env(), static_cast<double>(n));
}

}  // namespace

void Register(Napi::Env env, Napi::Object exports) {
  exports.Set("encodePageDelta", Napi::Function::New<Encode>(env, "encodePageDelta"));
}

}  // namespace walnut::pagedelta
