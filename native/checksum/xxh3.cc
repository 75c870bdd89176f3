// xxh3.cc — see xxh3.h. Function names follow the specification's section names.
#include "xxh3.h"

#include <cstring>

namespace walnut::checksum {
namespace {

constexpr uint64_t kPrime32_1 = 0x9E3779B1U;
constexpr uint64_t kPrime32_2 = 0x85EBCA77U;
constexpr uint64_t kPrime32_3 = 0xC2B2AE3DU;
constexpr uint64_t kPrime64_1 = 0x9E3779B185EBCA87ULL;
constexpr uint64_t kPrime64_2 = 0xC2B2AE3D27D4EB4FULL;
constexpr uint64_t kPrime64_3 = 0x165667B19E3779F9ULL;
constexpr uint64_t kPrime64_4 = 0x85EBCA77C2B2AE63ULL;
constexpr uint64_t kPrime64_5 = 0x27D4EB2F165667C5ULL;
constexpr uint64_t kPrimeMx1 = 0x165667919E3779F9ULL;
constexpr uint64_t kPrimeMx2 = 0x9FB21C651E98DF25ULL;

// The specification's default secret (192 bytes).
alignas(64) constexpr uint8_t kDefaultSecret[kXxh3SecretSize] = {
    0xb8, 0xfe, 0x6c, 0x39, 0x23, 0xa4, 0x4b, 0xbe, 0x7c, 0x01, 0x81, 0x2c, 0xf7, 0x21, 0xad, 0x1c,
    0xde, 0xd4, 0x6d, 0xe9, 0x83, 0x90, 0x97, 0xdb, 0x72, 0x40, 0xa4, 0xa4, 0xb7, 0xb3, 0x67, 0x1f,
    0xcb, 0x79, 0xe6, 0x4e, 0xcc, 0xc0, 0xe5, 0x78, 0x82, 0x5a, 0xd0, 0x7d, 0xcc, 0xff, 0x72, 0x21,
    0xb8, 0x08, 0x46, 0x74, 0xf7, 0x43, 0x24, 0x8e, 0xe0, 0x35, 0x90, 0xe6, 0x81, 0x3a, 0x26, 0x4c,
    0x3c, 0x28, 0x52, 0xbb, 0x91, 0xc3, 0x00, 0xcb, 0x88, 0xd0, 0x65, 0x8b, 0x1b, 0x53, 0x2e, 0xa3,
    0x71, 0x64, 0x48, 0x97, 0xa2, 0x0d, 0xf9, 0x4e, 0x38, 0x19, 0xef, 0x46, 0xa9, 0xde, 0xac, 0xd8,
    0xa8, 0xfa, 0x76, 0x3f, 0xe3, 0x9c, 0x34, 0x3f, 0xf9, 0xdc, 0xbb, 0xc7, 0xc7, 0x0b, 0x4f, 0x1d,
    0x8a, 0x51, 0xe0, 0x4b, 0xcd, 0xb4, 0x59, 0x31, 0xc8, 0x9f, 0x7e, 0xc9, 0xd9, 0x78, 0x73, 0x64,
    0xea, 0xc5, 0xac, 0x83, 0x34, 0xd3, 0xeb, 0xc3, 0xc5, 0x81, 0xa0, 0xff, 0xfa, 0x13, 0x63, 0xeb,
    0x17, 0x0d, 0xdd, 0x51, 0xb7, 0xf0, 0xda, 0x49, 0xd3, 0x16, 0x55, 0x26, 0x29, 0xd4, 0x68, 0x9e,
    0x2b, 0x16, 0xbe, 0x58, 0x7d, 0x47, 0xa1, 0xfc, 0x8f, 0xf8, 0xb8, 0xd1, 0x7a, 0xd0, 0x31, 0xce,
    0x45, 0xcb, 0x3a, 0x8f, 0x95, 0x16, 0x04, 0x28, 0xaf, 0xd7, 0xfb, 0xca, 0xbb, 0x4b, 0x40, 0x7e,
};

// Offsets into the secret named by the specification's formulas.
constexpr size_t kLastStripeSecretOffset = kXxh3SecretSize - 71;   // 121
constexpr size_t kMergeLowSecretOffset = 11;
constexpr size_t kMergeHighSecretOffset = kXxh3SecretSize - 75;    // 117
constexpr size_t kScrambleSecretOffset = kXxh3SecretSize - 64;     // 128

inline uint32_t Read32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;  // little-endian host (x86-64, aarch64)
}
inline uint64_t Read64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
inline void Write64(uint8_t* p, uint64_t v) { std::memcpy(p, &v, 8); }
inline uint32_t Rotl32(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }
inline uint64_t Rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

inline Hash128 Mul128(uint64_t a, uint64_t b) {
  unsigned __int128 product = static_cast<unsigned __int128>(a) * b;
  return {static_cast<uint64_t>(product), static_cast<uint64_t>(product >> 64)};
}
inline uint64_t MulFold64(uint64_t a, uint64_t b) {
  Hash128 p = Mul128(a, b);
  return p.low ^ p.high;
}

inline uint64_t Avalanche(uint64_t x) {
  x ^= x >> 37;
  x *= kPrimeMx1;
  return x ^ (x >> 32);
}

inline uint64_t AvalancheXxh64(uint64_t x) {
  x ^= x >> 33;
  x *= kPrime64_2;
  x ^= x >> 29;
  x *= kPrime64_3;
  return x ^ (x >> 32);
}

// ---- 0..16 bytes ------------------------------------------------------------------------

Hash128 Short128(const uint8_t* in, size_t len, uint64_t seed, bool want128) {
  const uint8_t* s = kDefaultSecret;
  if (len == 0) {
    return {AvalancheXxh64(seed ^ Read64(s + (want128 ? 64 : 56)) ^ Read64(s + (want128 ? 72 : 64))),
            AvalancheXxh64(seed ^ Read64(s + 80) ^ Read64(s + 88))};
  }
  if (len <= 3) {
    uint32_t combined = static_cast<uint32_t>(in[len - 1]) | (static_cast<uint32_t>(len) << 8) |
                        (static_cast<uint32_t>(in[0]) << 16) |
                        (static_cast<uint32_t>(in[len >> 1]) << 24);
    uint64_t low = (static_cast<uint64_t>(Read32(s) ^ Read32(s + 4)) + seed) ^ combined;
    uint64_t high = (static_cast<uint64_t>(Read32(s + 8) ^ Read32(s + 12)) - seed) ^
                    static_cast<uint64_t>(Rotl32(__builtin_bswap32(combined), 13));
    return {AvalancheXxh64(low), AvalancheXxh64(high)};
  }
  if (len <= 8) {
    uint32_t first = Read32(in), last = Read32(in + len - 4);
    uint64_t modifiedSeed =
        seed ^ (static_cast<uint64_t>(__builtin_bswap32(static_cast<uint32_t>(seed))) << 32);
    if (!want128) {
      uint64_t combined = static_cast<uint64_t>(last) | (static_cast<uint64_t>(first) << 32);
      uint64_t value = ((Read64(s + 8) ^ Read64(s + 16)) - modifiedSeed) ^ combined;
      value ^= Rotl64(value, 49) ^ Rotl64(value, 24);
      value *= kPrimeMx2;
      value ^= (value >> 35) + len;
      value *= kPrimeMx2;
      return {value ^ (value >> 28), 0};
    }
    uint64_t combined = static_cast<uint64_t>(first) | (static_cast<uint64_t>(last) << 32);
    uint64_t value = ((Read64(s + 16) ^ Read64(s + 24)) + modifiedSeed) ^ combined;
    Hash128 m = Mul128(value, kPrime64_1 + (static_cast<uint64_t>(len) << 2));
    uint64_t high = m.high + (m.low << 1);
    uint64_t low = m.low ^ (high >> 3);
    low ^= low >> 35;
    low *= kPrimeMx2;
    low ^= low >> 28;
    return {low, Avalanche(high)};
  }
  uint64_t first = Read64(in), last = Read64(in + len - 8);
  if (!want128) {
    uint64_t low = ((Read64(s + 24) ^ Read64(s + 32)) + seed) ^ first;
    uint64_t high = ((Read64(s + 40) ^ Read64(s + 48)) - seed) ^ last;
    uint64_t value = len + __builtin_bswap64(low) + high + MulFold64(low, high);
    return {Avalanche(value), 0};
  }
  uint64_t val1 = ((Read64(s + 32) ^ Read64(s + 40)) - seed) ^ first ^ last;
  uint64_t val2 = ((Read64(s + 48) ^ Read64(s + 56)) + seed) ^ last;
  Hash128 m = Mul128(val1, kPrime64_1);
  uint64_t low = m.low + (static_cast<uint64_t>(len - 1) << 54);
  uint64_t high = m.high + val2 + static_cast<uint64_t>(static_cast<uint32_t>(val2)) * (kPrime32_2 - 1);
  low ^= __builtin_bswap64(high);
  Hash128 m2 = Mul128(low, kPrime64_2);
  return {Avalanche(m2.low), Avalanche(m2.high + high * kPrime64_2)};
}

// ---- 17..240 bytes ----------------------------------------------------------------------

inline uint64_t MixStep(const uint8_t* data, const uint8_t* secret, uint64_t seed) {
  return MulFold64(Read64(data) ^ (Read64(secret) + seed), Read64(data + 8) ^ (Read64(secret + 8) - seed));
}

inline void MixTwoChunks(uint64_t acc[2], const uint8_t* d1, const uint8_t* d2,
                         const uint8_t* secret, uint64_t seed) {
  acc[0] += MixStep(d1, secret, seed);
  acc[1] += MixStep(d2, secret + 16, seed);
  acc[0] ^= Read64(d2) + Read64(d2 + 8);
  acc[1] ^= Read64(d1) + Read64(d1 + 8);
}

Hash128 Medium(const uint8_t* in, size_t len, uint64_t seed, bool want128) {
  const uint8_t* s = kDefaultSecret;
  if (!want128) {
    uint64_t acc = len * kPrime64_1;
    if (len <= 128) {
      for (long i = static_cast<long>((len - 1) >> 5); i >= 0; i--) {
        acc += MixStep(in + i * 16, s + i * 32, seed);
        acc += MixStep(in + len - i * 16 - 16, s + i * 32 + 16, seed);
      }
    } else {
      size_t chunks = len >> 4;
      for (size_t i = 0; i < 8; i++) acc += MixStep(in + i * 16, s + i * 16, seed);
      acc = Avalanche(acc);
      for (size_t i = 8; i < chunks; i++) acc += MixStep(in + i * 16, s + (i - 8) * 16 + 3, seed);
      acc += MixStep(in + len - 16, s + 119, seed);
    }
    return {Avalanche(acc), 0};
  }
  uint64_t acc[2] = {len * kPrime64_1, 0};
  if (len <= 128) {
    for (long i = static_cast<long>((len - 1) >> 5); i >= 0; i--) {
      MixTwoChunks(acc, in + i * 16, in + len - i * 16 - 16, s + i * 32, seed);
    }
  } else {
    size_t chunks = len >> 5;
    for (size_t i = 0; i < 4; i++) MixTwoChunks(acc, in + i * 32, in + i * 32 + 16, s + i * 32, seed);
    acc[0] = Avalanche(acc[0]);
    acc[1] = Avalanche(acc[1]);
    for (size_t i = 4; i < chunks; i++) {
      MixTwoChunks(acc, in + i * 32, in + i * 32 + 16, s + (i - 4) * 32 + 3, seed);
    }
    MixTwoChunks(acc, in + len - 16, in + len - 32, s + 103, 0 - seed);
  }
  uint64_t low = acc[0] + acc[1];
  uint64_t high = acc[0] * kPrime64_1 + acc[1] * kPrime64_4 + (static_cast<uint64_t>(len) - seed) * kPrime64_2;
  return {Avalanche(low), 0 - Avalanche(high)};
}

// ---- > 240 bytes ------------------------------------------------------------------------

using AccumulateFn = void (*)(uint64_t*, const uint8_t*, const uint8_t*, size_t);
using ScrambleFn = void (*)(uint64_t*, const uint8_t*);

struct Kernels {
  AccumulateFn accumulate;
  ScrambleFn scramble;
  Tier tier;
};

Kernels KernelsFor(Tier tier) {
#if defined(WALNUT_X86)
  if (tier >= Tier::kAvx512 && Cpu().avx512) return {Xxh3AccumulateAvx512, Xxh3ScrambleAvx512, Tier::kAvx512};
  if (tier >= Tier::kAvx2 && Cpu().avx2) return {Xxh3AccumulateAvx2, Xxh3ScrambleAvx2, Tier::kAvx2};
#endif
  (void)tier;
  return {Xxh3AccumulateScalar, Xxh3ScrambleScalar, Tier::kScalar};
}

Kernels& Active() {
  static Kernels kernels = KernelsFor(Tier::kAvx512);
  return kernels;
}

void InitAcc(uint64_t acc[8]) {
  const uint64_t init[8] = {kPrime32_3, kPrime64_1, kPrime64_2, kPrime64_3,
                            kPrime64_4, kPrime32_2, kPrime64_5, kPrime32_1};
  std::memcpy(acc, init, sizeof(init));
}

void DeriveSecret(uint64_t seed, uint8_t out[kXxh3SecretSize]) {
  for (size_t i = 0; i < kXxh3SecretSize / 16; i++) {
    Write64(out + 16 * i, Read64(kDefaultSecret + 16 * i) + seed);
    Write64(out + 16 * i + 8, Read64(kDefaultSecret + 16 * i + 8) - seed);
  }
}

uint64_t FinalMerge(const uint64_t acc[8], const uint8_t* secret, uint64_t init) {
  uint64_t result = init;
  for (int i = 0; i < 4; i++) {
    result += MulFold64(acc[2 * i] ^ Read64(secret + 16 * i), acc[2 * i + 1] ^ Read64(secret + 16 * i + 8));
  }
  return Avalanche(result);
}

Hash128 Merge(const uint64_t acc[8], const uint8_t* secret, uint64_t len, bool want128) {
  uint64_t low = FinalMerge(acc, secret + kMergeLowSecretOffset, len * kPrime64_1);
  if (!want128) return {low, 0};
  return {low, FinalMerge(acc, secret + kMergeHighSecretOffset, ~(len * kPrime64_2))};
}

Hash128 Long(const uint8_t* in, size_t len, uint64_t seed, bool want128) {
  alignas(64) uint8_t derived[kXxh3SecretSize];
  const uint8_t* secret = kDefaultSecret;
  if (seed != 0) {
    DeriveSecret(seed, derived);
    secret = derived;
  }
  const Kernels& k = Active();
  alignas(64) uint64_t acc[8];
  InitAcc(acc);
  const size_t blockLen = kXxh3StripeLen * kXxh3StripesPerBlock;
  size_t blocks = (len - 1) / blockLen;
  for (size_t b = 0; b < blocks; b++) {
    k.accumulate(acc, in + b * blockLen, secret, kXxh3StripesPerBlock);
    k.scramble(acc, secret + kScrambleSecretOffset);
  }
  size_t rest = len - blocks * blockLen;
  k.accumulate(acc, in + blocks * blockLen, secret, (rest - 1) / kXxh3StripeLen);
  k.accumulate(acc, in + len - kXxh3StripeLen, secret + kLastStripeSecretOffset, 1);
  return Merge(acc, secret, len, want128);
}

Hash128 Hash(const uint8_t* in, size_t len, uint64_t seed, bool want128) {
  if (len <= 16) return Short128(in, len, seed, want128);
  if (len <= 240) return Medium(in, len, seed, want128);
  return Long(in, len, seed, want128);
}

}  // namespace

void Xxh3AccumulateScalar(uint64_t* acc, const uint8_t* input, const uint8_t* secret, size_t count) {
  for (size_t n = 0; n < count; n++) {
    const uint8_t* stripe = input + n * kXxh3StripeLen;
    const uint8_t* key = secret + n * 8;
    for (int i = 0; i < 8; i++) {
      uint64_t data = Read64(stripe + 8 * i);
      uint64_t value = data ^ Read64(key + 8 * i);
      acc[i ^ 1] += data;
      acc[i] += (value & 0xFFFFFFFFULL) * (value >> 32);
    }
  }
}

void Xxh3ScrambleScalar(uint64_t* acc, const uint8_t* secret) {
  for (int i = 0; i < 8; i++) {
    uint64_t a = acc[i];
    a ^= a >> 47;
    a ^= Read64(secret + 8 * i);
    acc[i] = a * kPrime32_1;
  }
}

uint64_t Xxh3_64(const uint8_t* input, size_t length, uint64_t seed) {
  return Hash(input, length, seed, false).low;
}

Hash128 Xxh3_128(const uint8_t* input, size_t length, uint64_t seed) {
  return Hash(input, length, seed, true);
}

Tier Xxh3Tier() { return Active().tier; }
Tier Xxh3MaxTier() { return KernelsFor(Tier::kAvx512).tier; }
void Xxh3SetTier(Tier tier) { Active() = KernelsFor(tier); }

// ---- streaming ----------------------------------------------------------------------------
//
// Invariant: a stripe is consumed only once at least one byte follows it, so at digest time
// 1..kBufferSize bytes remain unconsumed and the one-shot "last block" rule (every stripe but
// the final one, then the last 64 bytes) applies to them; lastConsumed_ keeps the bytes the
// final, overlapping stripe may need from already consumed input.

Xxh3State::Xxh3State(uint64_t seed) : seed_(seed) {
  InitAcc(acc_);
  if (seed != 0) {
    DeriveSecret(seed, secret_);
  } else {
    std::memcpy(secret_, kDefaultSecret, kXxh3SecretSize);
  }
}

void Xxh3State::ConsumeStripes(uint64_t* acc, size_t* stripesInBlock, const uint8_t* stripes,
                               size_t count) const {
  const Kernels& k = Active();
  while (count > 0) {
    size_t take = kXxh3StripesPerBlock - *stripesInBlock;
    if (take > count) take = count;
    k.accumulate(acc, stripes, secret_ + *stripesInBlock * 8, take);
    stripes += take * kXxh3StripeLen;
    count -= take;
    *stripesInBlock += take;
    if (*stripesInBlock == kXxh3StripesPerBlock) {
      k.scramble(acc, secret_ + kScrambleSecretOffset);
      *stripesInBlock = 0;
    }
  }
}

void Xxh3State::Update(const uint8_t* input, size_t length) {
  if (length == 0) return;
  total_ += length;
  if (buffered_ + length <= kBufferSize) {
    std::memcpy(buffer_ + buffered_, input, length);
    buffered_ += length;
    return;
  }
  if (buffered_ > 0) {
    size_t fill = kBufferSize - buffered_;
    std::memcpy(buffer_ + buffered_, input, fill);
    input += fill;
    length -= fill;
    ConsumeStripes(acc_, &stripesInBlock_, buffer_, kBufferSize / kXxh3StripeLen);
    std::memcpy(lastConsumed_, buffer_ + kBufferSize - kXxh3StripeLen, kXxh3StripeLen);
    buffered_ = 0;
  }
  // length > 0 here. Consume straight from the input, leaving 1..kBufferSize bytes.
  if (length > kBufferSize) {
    size_t stripes = (length - 1) / kXxh3StripeLen;
    ConsumeStripes(acc_, &stripesInBlock_, input, stripes);
    std::memcpy(lastConsumed_, input + stripes * kXxh3StripeLen - kXxh3StripeLen, kXxh3StripeLen);
    input += stripes * kXxh3StripeLen;
    length -= stripes * kXxh3StripeLen;
  }
  std::memcpy(buffer_, input, length);
  buffered_ = length;
}

void Xxh3State::FinishLong(uint64_t* acc) const {
  std::memcpy(acc, acc_, sizeof(acc_));
  size_t stripesInBlock = stripesInBlock_;
  size_t stripes = (buffered_ - 1) / kXxh3StripeLen;
  ConsumeStripes(acc, &stripesInBlock, buffer_, stripes);
  uint8_t last[kXxh3StripeLen];
  if (buffered_ >= kXxh3StripeLen) {
    std::memcpy(last, buffer_ + buffered_ - kXxh3StripeLen, kXxh3StripeLen);
  } else {
    size_t fromOld = kXxh3StripeLen - buffered_;
    std::memcpy(last, lastConsumed_ + kXxh3StripeLen - fromOld, fromOld);
    std::memcpy(last + fromOld, buffer_, buffered_);
  }
  Active().accumulate(acc, last, secret_ + kLastStripeSecretOffset, 1);
}

uint64_t Xxh3State::Digest64() const {
  if (total_ <= 240) return Xxh3_64(buffer_, buffered_, seed_);
  alignas(64) uint64_t acc[8];
  FinishLong(acc);
  return Merge(acc, secret_, total_, false).low;
}

Hash128 Xxh3State::Digest128() const {
  if (total_ <= 240) return Xxh3_128(buffer_, buffered_, seed_);
  alignas(64) uint64_t acc[8];
  FinishLong(acc);
  return Merge(acc, secret_, total_, true);
}

}  // namespace walnut::checksum
