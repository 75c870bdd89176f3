// xxh3.h — XXH3-64 and XXH3-128 (xxHash specification v0.2.0), one-shot and streaming.
//
// Written from the specification's algorithm description; output is bit-exact with the
// reference (checked in tests against @node-rs/xxhash). Length classes: 0, 1-3, 4-8, 9-16,
// 17-128, 129-240, and > 240 ("long": 64-byte stripes, 16 stripes per 1024-byte block with the
// default 192-byte secret, accumulators scrambled after each full block, the last 64 bytes
// always accumulated as a final stripe). With a seed, long inputs use the secret derived from
// the seed; short inputs use the seed directly.
//
// Only the long path is vectorised: the accumulate and scramble kernels come in scalar, AVX2
// and AVX-512 versions (xxh3_avx2.cc, xxh3_avx512.cc), chosen once at load.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cpu.h"

namespace walnut::checksum {

struct Hash128 {
  uint64_t low;
  uint64_t high;
};

constexpr size_t kXxh3SecretSize = 192;
constexpr size_t kXxh3StripeLen = 64;
constexpr size_t kXxh3StripesPerBlock = (kXxh3SecretSize - 64) / 8;  // 16

uint64_t Xxh3_64(const uint8_t* input, size_t length, uint64_t seed);
Hash128 Xxh3_128(const uint8_t* input, size_t length, uint64_t seed);

// Streaming: Update in pieces of any size, Digest at any time (does not change the state).
class Xxh3State {
 public:
  explicit Xxh3State(uint64_t seed);
  void Update(const uint8_t* input, size_t length);
  uint64_t Digest64() const;
  Hash128 Digest128() const;

 private:
  static constexpr size_t kBufferSize = 256;  // >= 240 so short inputs stay whole
  void ConsumeStripes(uint64_t* acc, size_t* stripesInBlock, const uint8_t* stripes,
                      size_t count) const;
  void FinishLong(uint64_t* acc) const;

  uint64_t seed_;
  alignas(64) uint64_t acc_[8];
  alignas(64) uint8_t secret_[kXxh3SecretSize];
  alignas(64) uint8_t buffer_[kBufferSize];  // unconsumed input, always < 1 + kBufferSize
  uint8_t lastConsumed_[kXxh3StripeLen];     // the last 64 consumed bytes (for the final stripe)
  size_t buffered_ = 0;
  size_t stripesInBlock_ = 0;
  uint64_t total_ = 0;
};

// Kernel selection (tests force each tier and compare with scalar).
Tier Xxh3Tier();
Tier Xxh3MaxTier();
void Xxh3SetTier(Tier tier);  // clamps to what the CPU supports

// Kernels: accumulate `count` consecutive stripes, stripe n using secret + 8n; scramble with
// the 64 secret bytes at `secret`.
void Xxh3AccumulateScalar(uint64_t* acc, const uint8_t* input, const uint8_t* secret, size_t count);
void Xxh3ScrambleScalar(uint64_t* acc, const uint8_t* secret);
void Xxh3AccumulateAvx2(uint64_t* acc, const uint8_t* input, const uint8_t* secret, size_t count);
void Xxh3ScrambleAvx2(uint64_t* acc, const uint8_t* secret);
void Xxh3AccumulateAvx512(uint64_t* acc, const uint8_t* input, const uint8_t* secret, size_t count);
void Xxh3ScrambleAvx512(uint64_t* acc, const uint8_t* secret);

}  // namespace walnut::checksum
