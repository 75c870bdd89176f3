// libFuzzer target: every SIMD checksum path against the scalar path on arbitrary input
// (SQLite WAL checksum both byte orders, CRC-32C, XXH3-64/128 one-shot and streamed in pieces).
#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "checksum/crc32c.h"
#include "checksum/sqlite_wal.h"
#include "checksum/xxh3.h"

using namespace walnut::checksum;

static const Tier kTiers[] = {Tier::kScalar, Tier::kSse42, Tier::kAvx2, Tier::kAvx512};

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 9) return 0;
  uint64_t seed;
  std::memcpy(&seed, data, 8);
  size_t split = data[8];
  const uint8_t* in = data + 9;
  size_t n = size - 9;
  size_t n8 = n & ~size_t{7};

  SqliteWalSetTier(Tier::kScalar);
  WalChecksum refLe = SqliteWalChecksum(in, n8, {uint32_t(seed), uint32_t(seed >> 32)}, false);
  WalChecksum refBe = SqliteWalChecksum(in, n8, {uint32_t(seed), uint32_t(seed >> 32)}, true);
  Crc32cSetTier(Tier::kScalar);
  uint32_t refCrc = Crc32c(in, n, uint32_t(seed));
  Xxh3SetTier(Tier::kScalar);
  uint64_t ref64 = Xxh3_64(in, n, seed);
  Hash128 ref128 = Xxh3_128(in, n, seed);

  for (Tier t : kTiers) {
    SqliteWalSetTier(t);
    WalChecksum le = SqliteWalChecksum(in, n8, {uint32_t(seed), uint32_t(seed >> 32)}, false);
    WalChecksum be = SqliteWalChecksum(in, n8, {uint32_t(seed), uint32_t(seed >> 32)}, true);
    if (le.s0 != refLe.s0 || le.s1 != refLe.s1 || be.s0 != refBe.s0 || be.s1 != refBe.s1) abort();
    Crc32cSetTier(t);
    if (Crc32c(in, n, uint32_t(seed)) != refCrc) abort();
    Xxh3SetTier(t);
    if (Xxh3_64(in, n, seed) != ref64) abort();
    Hash128 h = Xxh3_128(in, n, seed);
    if (h.low != ref128.low || h.high != ref128.high) abort();
    Xxh3State stream(seed);
    size_t at = 0;
    size_t step = split + 1;
    while (at < n) {
      size_t take = std::min(step, n - at);
      stream.Update(in + at, take);
      at += take;
      step = step * 3 % 1031 + 1;
    }
    if (stream.Digest64() != ref64) abort();
    Hash128 s = stream.Digest128();
    if (s.low != ref128.low || s.high != ref128.high) abort();
  }
  return 0;
}
