// bindings.cc — argument checking and conversion for the checksum functions. All arguments
// are validated here (args.h); the kernels themselves trust their inputs.
#include "bindings.h"

#include <cstring>
#include <string>

#include "args.h"
#include "checksum/crc32c.h"
#include "checksum/sqlite_wal.h"
#include "checksum/xxh3.h"
#include "errors.h"

namespace walnut::checksum {
namespace {

bool GetU32(const Napi::CallbackInfo& info, size_t i, const char* name, uint32_t* out) {
  uint64_t v;
  if (!GetUint(info, i, name, &v, true, 0)) return false;
  if (v > 0xFFFFFFFFULL) {
    ThrowInvalid(info.Env(), std::string(name) + " must fit in 32 bits");
    return false;
  }
  *out = static_cast<uint32_t>(v);
  return true;
}

bool GetSeed(const Napi::CallbackInfo& info, size_t i, uint64_t* seed) {
  *seed = 0;
  if (i >= info.Length() || info[i].IsUndefined()) return true;
  if (info[i].IsBigInt()) {
    bool lossless = false;
    *seed = info[i].As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) {
      ThrowInvalid(info.Env(), "seed must be a BigInt in 0..2^64-1");
      return false;
    }
    return true;
  }
  if (info[i].IsNumber()) return GetUint(info, i, "seed", seed);
  ThrowInvalid(info.Env(), "seed must be a BigInt or a non-negative integer");
  return false;
}

// Results go into a caller-provided Uint32Array(2) at info[index]: building a JS array
// through N-API costs more than checksumming a 4 KiB page, so lib/checksum.ts keeps one
// scratch Uint32Array and builds the [s0, s1] pair in JavaScript.
Napi::Value Pair(const Napi::CallbackInfo& info, size_t index, WalChecksum c) {
  ByteSpan out;
  if (!GetTypedBytes(info, index, napi_uint32_array, "out", "a Uint32Array of length 2", &out)) {
    return Napi::Value();
  }
  if (out.length < 8) return ThrowInvalid(info.Env(), "out must be a Uint32Array of length 2");
  uint32_t* words = reinterpret_cast<uint32_t*>(out.data);
  words[0] = c.s0;
  words[1] = c.s1;
  return info.Env().Undefined();
}

bool GetFlag(const Napi::CallbackInfo& info, size_t index) {
  bool value = false;
  if (index < info.Length()) napi_get_value_bool(info.Env(), info[index], &value);
  return value;  // anything but `true` is false
}

Napi::Value BigInt128(Napi::Env env, Hash128 h) {
  uint64_t words[2] = {h.low, h.high};
  return Napi::BigInt::New(env, 0, 2, words);
}

// sqliteWalChecksum(data, state): state is a Uint32Array [s0, s1, bigEndianWords] updated in
// place. Two arguments only: at one page per call, N-API argument handling costs more than
// the checksum itself, so lib/checksum.ts applies byte ranges (subarray) and packs the rest.
template <WalChecksum (*Sum)(const uint8_t*, size_t, WalChecksum, bool)>
Napi::Value WalSumWith(const Napi::CallbackInfo& info) {
  ByteSpan span, state;
  if (!GetBytes(info, 0, "data", &span) ||
      !GetTypedBytes(info, 1, napi_uint32_array, "state", "a Uint32Array [s0, s1, bigEndian]", &state)) {
    return Napi::Value();
  }
  if (state.length < 12) return ThrowInvalid(info.Env(), "state must be a Uint32Array of length 3");
  if (span.length % 8 != 0) return ThrowInvalid(info.Env(), "length must be a multiple of 8");
  uint32_t* words = reinterpret_cast<uint32_t*>(state.data);
  WalChecksum c = Sum(span.data, span.length, {words[0], words[1]}, words[2] != 0);
  words[0] = c.s0;
  words[1] = c.s1;
  return info.Env().Undefined();
}

// sqliteWalFrameChecksums(frames, pageSize, s0, s1, salt1, salt2, bigEndianWords, out)
// `frames` holds N whole frames (24-byte header + page). For each frame, in order: salts go
// to header bytes 8..15, the running checksum over header bytes 0..7 and the page continues,
// and is stored big-endian at bytes 16..23.
Napi::Value WalFrameSums(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ByteSpan frames;
  uint64_t pageSize;
  uint32_t s0, s1, salt1, salt2;
  if (!GetBytes(info, 0, "frames", &frames) || !GetUint(info, 1, "pageSize", &pageSize) ||
      !GetU32(info, 2, "s0", &s0) || !GetU32(info, 3, "s1", &s1) ||
      !GetU32(info, 4, "salt1", &salt1) || !GetU32(info, 5, "salt2", &salt2)) {
    return Napi::Value();
  }
  if (pageSize < 512 || pageSize > 65536 || (pageSize & (pageSize - 1)) != 0) {
    return ThrowInvalid(env, "pageSize must be a power of two between 512 and 65536");
  }
  size_t frameSize = 24 + static_cast<size_t>(pageSize);
  if (frames.length % frameSize != 0) {
    return ThrowInvalid(env, "frames length must be a multiple of 24 + pageSize");
  }
  bool be = GetFlag(info, 6);
  WalChecksum running{s0, s1};
  uint8_t salts[8];
  uint32_t s1be = __builtin_bswap32(salt1), s2be = __builtin_bswap32(salt2);
  std::memcpy(salts, &s1be, 4);
  std::memcpy(salts + 4, &s2be, 4);
  for (size_t off = 0; off < frames.length; off += frameSize) {
    uint8_t* header = frames.data + off;
    std::memcpy(header + 8, salts, 8);
    running = SqliteWalFrameChecksum(header, header + 24, pageSize, running, be);
    uint32_t c0 = __builtin_bswap32(running.s0), c1 = __builtin_bswap32(running.s1);
    std::memcpy(header + 16, &c0, 4);
    std::memcpy(header + 20, &c1, 4);
  }
  return Pair(info, 7, running);
}

// crc32c(data, initial) -> number (ranges are applied in lib/checksum.ts, see WalSumWith)
Napi::Value Crc(const Napi::CallbackInfo& info) {
  ByteSpan span;
  uint32_t initial;
  if (!GetBytes(info, 0, "data", &span) || !GetU32(info, 1, "initial", &initial)) return Napi::Value();
  return Napi::Number::New(info.Env(), Crc32c(span.data, span.length, initial));
}

Napi::Value Xxh64(const Napi::CallbackInfo& info) {
  ByteSpan span;
  uint64_t seed;
  if (!GetBytes(info, 0, "data", &span) || !NarrowSpan(info, 1, &span) || !GetSeed(info, 3, &seed)) {
    return Napi::Value();
  }
  return Napi::BigInt::New(info.Env(), Xxh3_64(span.data, span.length, seed));
}

Napi::Value Xxh128(const Napi::CallbackInfo& info) {
  ByteSpan span;
  uint64_t seed;
  if (!GetBytes(info, 0, "data", &span) || !NarrowSpan(info, 1, &span) || !GetSeed(info, 3, &seed)) {
    return Napi::Value();
  }
  return BigInt128(info.Env(), Xxh3_128(span.data, span.length, seed));
}

// xxh3_128 into a caller's buffer as 16 bytes (high64 then low64, each big-endian: XXH128's
// canonical form), for hot paths that store digests (export stream, FEC, page trailers).
Napi::Value Xxh128Into(const Napi::CallbackInfo& info) {
  ByteSpan span, out;
  uint64_t outOffset;
  if (!GetBytes(info, 0, "data", &span) || !NarrowSpan(info, 1, &span) ||
      !GetBytes(info, 3, "out", &out) || !GetUint(info, 4, "outOffset", &outOffset)) {
    return Napi::Value();
  }
  if (outOffset > out.length || out.length - outOffset < 16) {
    return ThrowInvalid(info.Env(), "out needs 16 bytes at outOffset");
  }
  Hash128 h = Xxh3_128(span.data, span.length, 0);
  uint64_t hi = __builtin_bswap64(h.high), lo = __builtin_bswap64(h.low);
  std::memcpy(out.data + outOffset, &hi, 8);
  std::memcpy(out.data + outOffset + 8, &lo, 8);
  return info.Env().Undefined();
}

class Xxh3Stream : public Napi::ObjectWrap<Xxh3Stream> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Xxh3Stream",
                       {InstanceMethod<&Xxh3Stream::Update>("update"),
                        InstanceMethod<&Xxh3Stream::Digest64>("digest64"),
                        InstanceMethod<&Xxh3Stream::Digest128>("digest128")});
  }
  explicit Xxh3Stream(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Xxh3Stream>(info), state_(0) {
    uint64_t seed;
    if (!GetSeed(info, 0, &seed)) return;
    state_ = Xxh3State(seed);
  }

 private:
  Napi::Value Update(const Napi::CallbackInfo& info) {
    ByteSpan span;
    if (!GetBytes(info, 0, "data", &span) || !NarrowSpan(info, 1, &span)) return Napi::Value();
    state_.Update(span.data, span.length);
    return info.This();
  }
  Napi::Value Digest64(const Napi::CallbackInfo& info) {
    return Napi::BigInt::New(info.Env(), state_.Digest64());
  }
  Napi::Value Digest128(const Napi::CallbackInfo& info) { return BigInt128(info.Env(), state_.Digest128()); }

  Xxh3State state_;
};

const char* TierName(Tier t) {
  switch (t) {
    case Tier::kSse42: return "sse4.2";
    case Tier::kAvx2: return "avx2";
    case Tier::kAvx512: return "avx512";
    default: return "scalar";
  }
}

// paths() -> { xxh3: {active, best}, crc32c: {...}, sqliteWal: {...} }
Napi::Value Paths(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  auto entry = [&](const char* name, Tier active, Tier best) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("active", TierName(active));
    o.Set("best", TierName(best));
    out.Set(name, o);
  };
  entry("xxh3", Xxh3Tier(), Xxh3MaxTier());
  entry("crc32c", Crc32cTier(), Crc32cMaxTier());
  entry("sqliteWal", SqliteWalTier(), SqliteWalMaxTier());
  return out;
}

// TEST_setPath(kind, tier): force a path (clamped to what the CPU has); returns the active one.
Napi::Value SetPath(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsString()) {
    return ThrowInvalid(env, "TEST_setPath(kind, tier) expects two strings");
  }
  std::string kind = info[0].As<Napi::String>(), tierName = info[1].As<Napi::String>();
  Tier tier;
  if (tierName == "scalar") tier = Tier::kScalar;
  else if (tierName == "sse4.2") tier = Tier::kSse42;
  else if (tierName == "avx2") tier = Tier::kAvx2;
  else if (tierName == "avx512" || tierName == "best") tier = Tier::kAvx512;
  else return ThrowInvalid(env, "tier must be scalar, sse4.2, avx2, avx512 or best");
  if (kind == "xxh3") {
    Xxh3SetTier(tier);
    return Napi::String::New(env, TierName(Xxh3Tier()));
  }
  if (kind == "crc32c") {
    Crc32cSetTier(tier);
    return Napi::String::New(env, TierName(Crc32cTier()));
  }
  if (kind == "sqliteWal") {
    SqliteWalSetTier(tier);
    return Napi::String::New(env, TierName(SqliteWalTier()));
  }
  return ThrowInvalid(env, "kind must be xxh3, crc32c or sqliteWal");
}

}  // namespace

Napi::Object Register(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("sqliteWalChecksum", Napi::Function::New<WalSumWith<SqliteWalChecksum>>(env, "sqliteWalChecksum"));
  o.Set("sqliteWalChecksumReference",
        Napi::Function::New<WalSumWith<SqliteWalChecksumScalar>>(env, "sqliteWalChecksumReference"));
  o.Set("sqliteWalFrameChecksums", Napi::Function::New<WalFrameSums>(env, "sqliteWalFrameChecksums"));
  o.Set("crc32c", Napi::Function::New<Crc>(env, "crc32c"));
  o.Set("xxh3_64", Napi::Function::New<Xxh64>(env, "xxh3_64"));
  o.Set("xxh3_128", Napi::Function::New<Xxh128>(env, "xxh3_128"));
  o.Set("xxh3_128_into", Napi::Function::New<Xxh128Into>(env, "xxh3_128_into"));
  o.Set("Xxh3Stream", Xxh3Stream::Define(env));
  o.Set("paths", Napi::Function::New<Paths>(env, "paths"));
  o.Set("TEST_setPath", Napi::Function::New<SetPath>(env, "TEST_setPath"));
  return o;
}

}  // namespace walnut::checksum
