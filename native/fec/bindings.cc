// bindings.cc — argument checking for the Reed-Solomon entry points. Every length is checked
// against k, r and the symbol size here, before the kernels (which trust their inputs) run.
#include "fec/bindings.h"

#include <string>

#include "args.h"
#include "errors.h"
#include "fec/gf256.h"
#include "fec/rs.h"

namespace walnut::fec {
namespace {

// k, r, size from info[i..i+2] with k >= 1, r >= 1, k + r <= 256, size >= 1.
bool GetShape(const Napi::CallbackInfo& info, size_t i, uint64_t* k, uint64_t* r, uint64_t* size) {
  if (!GetUint(info, i, "k", k) || !GetUint(info, i + 1, "r", r) || !GetUint(info, i + 2, "symbolSize", size)) return false;
  if (*k < 1 || *r < 1 || *k + *r > kMaxSymbols) {
    ThrowInvalid(info.Env(), "k and r must be at least 1 with k + r <= 256");
    return false;
  }
  if (*size < 1 || *size > (1u << 20)) {
    ThrowInvalid(info.Env(), "symbolSize must be in 1..1048576");
    return false;
  }
  return true;
}

bool Expect(const Napi::CallbackInfo& info, const ByteSpan& s, uint64_t want, const char* name) {
  if (s.length != want) {
    ThrowInvalid(info.Env(), std::string(name) + " must hold exactly " + std::to_string(want) + " bytes");
    return false;
  }
  return true;
}

// rsEncode(data, repairOut, k, r, symbolSize)
Napi::Value Encode(const Napi::CallbackInfo& info) {
  ByteSpan data, repair;
  uint64_t k, r, size;
  if (!GetBytes(info, 0, "data", &data) || !GetBytes(info, 1, "repair", &repair) || !GetShape(info, 2, &k, &r, &size)) return Napi::Value();
  if (!Expect(info, data, k * size, "data") || !Expect(info, repair, r * size, "repair")) return Napi::Value();
  RsEncode(data.data, k, r, size, repair.data);
  return info.Env().Undefined();
}

// rsDecode(data, repair, present, k, r, symbolSize) -> boolean
Napi::Value Decode(const Napi::CallbackInfo& info) {
  ByteSpan data, repair, present;
  uint64_t k, r, size;
  if (!GetBytes(info, 0, "data", &data) || !GetBytes(info, 1, "repair", &repair) || !GetBytes(info, 2, "present", &present) ||
      !GetShape(info, 3, &k, &r, &size)) {
    return Napi::Value();
  }
  if (!Expect(info, data, k * size, "data") || !Expect(info, repair, r * size, "repair") || !Expect(info, present, k + r, "present")) {
    return Napi::Value();
  }
  return Napi::Boolean::New(info.Env(), RsDecode(data.data, repair.data, present.data, k, r, size));
}

bool GetByte(const Napi::CallbackInfo& info, size_t i, const char* name, uint8_t* out) {
  uint64_t v;
  if (!GetUint(info, i, name, &v)) return false;
  if (v > 255) {
    ThrowInvalid(info.Env(), std::string(name) + " must be in 0..255");
    return false;
  }
  *out = static_cast<uint8_t>(v);
  return true;
}

Napi::Value Mul(const Napi::CallbackInfo& info) {
  uint8_t a, b;
  if (!GetByte(info, 0, "a", &a) || !GetByte(info, 1, "b", &b)) return Napi::Value();
  return Napi::Number::New(info.Env(), GfMul(a, b));
}

Napi::Value Inv(const Napi::CallbackInfo& info) {
  uint8_t a;
  if (!GetByte(info, 0, "a", &a)) return Napi::Value();
  return Napi::Number::New(info.Env(), GfInv(a));
}

// gfMulAddRegion(dst, src, c): dst ^= c * src over min(lengths) bytes
Napi::Value MulAddRegion(const Napi::CallbackInfo& info) {
  ByteSpan dst, src;
  uint8_t c;
  if (!GetBytes(info, 0, "dst", &dst) || !GetBytes(info, 1, "src", &src) || !GetByte(info, 2, "c", &c)) return Napi::Value();
  if (src.length != dst.length) return ThrowInvalid(info.Env(), "dst and src must have the same length");
  GfMulAddRegion(dst.data, src.data, c, dst.length);
  return info.Env().Undefined();
}

const char* PathName(RegionPath p) {
  return p == RegionPath::kAvx2 ? "avx2" : p == RegionPath::kSsse3 ? "ssse3" : "scalar";
}

// TEST_setRegionPath(name) -> boolean (false when the CPU lacks it)
Napi::Value SetPath(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsString()) return ThrowInvalid(info.Env(), "path must be 'scalar', 'ssse3' or 'avx2'");
  std::string name = info[0].As<Napi::String>();
  RegionPath p;
  if (name == "scalar") p = RegionPath::kScalar;
  else if (name == "ssse3") p = RegionPath::kSsse3;
  else if (name == "avx2") p = RegionPath::kAvx2;
  else return ThrowInvalid(info.Env(), "path must be 'scalar', 'ssse3' or 'avx2'");
  return Napi::Boolean::New(info.Env(), SetRegionPath(p));
}

Napi::Value Paths(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("active", PathName(ActiveRegionPath()));
  o.Set("best", PathName(BestRegionPath()));
  return o;
}

}  // namespace

Napi::Object Register(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("rsEncode", Napi::Function::New<Encode>(env, "rsEncode"));
  o.Set("rsDecode", Napi::Function::New<Decode>(env, "rsDecode"));
  o.Set("gfMul", Napi::Function::New<Mul>(env, "gfMul"));
  o.Set("gfInv", Napi::Function::New<Inv>(env, "gfInv"));
  o.Set("gfMulAddRegion", Napi::Function::New<MulAddRegion>(env, "gfMulAddRegion"));
  o.Set("TEST_setRegionPath", Napi::Function::New<SetPath>(env, "TEST_setRegionPath"));
  o.Set("regionPaths", Napi::Function::New<Paths>(env, "regionPaths"));
  return o;
}

}  // namespace walnut::fec
