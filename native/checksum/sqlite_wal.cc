// sqlite_wal.cc — scalar SQLite WAL checksum, coefficient tables, path selection.
#include "sqlite_wal.h"

#include <cstring>

namespace walnut::checksum {
namespace {

using Fn = WalChecksum (*)(const uint8_t*, size_t, WalChecksum, bool);

struct Path {
  Fn fn;
  Tier tier;
};

Path PathFor(Tier tier) {
#if defined(WALNUT_X86)
  if (tier >= Tier::kAvx512 && Cpu().avx512) return {SqliteWalChecksumAvx512, Tier::kAvx512};
  if (tier >= Tier::kAvx2 && Cpu().avx2) return {SqliteWalChecksumAvx2, Tier::kAvx2};
#endif
  (void)tier;
  return {SqliteWalChecksumScalar, Tier::kScalar};
}

Path& Active() {
  static Path path = PathFor(Tier::kAvx512);
  return path;
}

}  // namespace

WalChecksumTables::WalChecksumTables() {
  // power[k] = M^k
  uint32_t m00 = 1, m01 = 0, m10 = 0, m11 = 1;
  for (size_t k = 0; k <= kChunkPairs; k++) {
    power[k][0] = m00;
    power[k][1] = m01;
    power[k][2] = m10;
    power[k][3] = m11;
    // M^(k+1) = M^k * [[1,1],[1,2]]
    uint32_t n00 = m00 + m01, n01 = m00 + 2 * m01, n10 = m10 + m11, n11 = m10 + 2 * m11;
    m00 = n00, m01 = n01, m10 = n10, m11 = n11;
  }
  // pair i of the chunk is at distance k = kChunkPairs - 1 - i from its end
  for (size_t i = 0; i < kChunkPairs; i++) {
    const uint32_t* p = power[kChunkPairs - 1 - i];
    coef0[2 * i] = p[0] + p[1];
    coef0[2 * i + 1] = p[1];
    coef1[2 * i] = p[2] + p[3];
    coef1[2 * i + 1] = p[3];
  }
}

const WalChecksumTables& WalTables() {
  static const WalChecksumTables tables;
  return tables;
}

WalChecksum SqliteWalChecksumScalar(const uint8_t* data, size_t length, WalChecksum start,
                                    bool bigEndianWords) {
  uint32_t s0 = start.s0, s1 = start.s1;
  for (size_t i = 0; i + 8 <= length; i += 8) {
    uint32_t a, b;
    std::memcpy(&a, data + i, 4);
    std::memcpy(&b, data + i + 4, 4);
    if (bigEndianWords) {
      a = __builtin_bswap32(a);
      b = __builtin_bswap32(b);
    }
    s0 += a + s1;
    s1 += b + s0;
  }
  return {s0, s1};
}

WalChecksum SqliteWalChecksum(const uint8_t* data, size_t length, WalChecksum start, bool bigEndianWords) {
  return Active().fn(data, length, start, bigEndianWords);
}

Tier SqliteWalTier() { return Active().tier; }
Tier SqliteWalMaxTier() { return PathFor(Tier::kAvx512).tier; }
void SqliteWalSetTier(Tier tier) { Active() = PathFor(tier); }

}  // namespace walnut::checksum
