// crc32c.cc — scalar CRC-32C and path selection; see crc32c.h.
#include "crc32c.h"

#include <cstring>

namespace walnut::checksum {
namespace {

constexpr uint32_t kPoly = 0x82F63B78U;

struct SliceTables {
  uint32_t t[8][256];
  SliceTables() {
    for (uint32_t b = 0; b < 256; b++) {
      uint32_t c = b;
      for (int k = 0; k < 8; k++) c = (c >> 1) ^ (kPoly & (0U - (c & 1)));
      t[0][b] = c;
    }
    for (uint32_t b = 0; b < 256; b++) {
      for (int k = 1; k < 8; k++) t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xff];
    }
  }
};

const SliceTables& Tables() {
  static const SliceTables tables;
  return tables;
}

using UpdateFn = uint32_t (*)(uint32_t, const uint8_t*, size_t);

struct Path {
  UpdateFn update;
  Tier tier;
};

Path PathFor(Tier tier) {
#if defined(WALNUT_X86)
  if (tier >= Tier::kSse42 && Cpu().sse42) return {Crc32cUpdateSse42, Tier::kSse42};
#endif
  (void)tier;
  return {Crc32cUpdateScalar, Tier::kScalar};
}

Path& Active() {
  static Path path = PathFor(Tier::kAvx512);
  return path;
}

}  // namespace

uint32_t Crc32cUpdateScalar(uint32_t crc, const uint8_t* p, size_t n) {
  const SliceTables& tb = Tables();
  while (n >= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);  // little-endian host
    uint32_t lo = static_cast<uint32_t>(word) ^ crc;
    uint32_t hi = static_cast<uint32_t>(word >> 32);
    crc = tb.t[7][lo & 0xff] ^ tb.t[6][(lo >> 8) & 0xff] ^ tb.t[5][(lo >> 16) & 0xff] ^
          tb.t[4][lo >> 24] ^ tb.t[3][hi & 0xff] ^ tb.t[2][(hi >> 8) & 0xff] ^
          tb.t[1][(hi >> 16) & 0xff] ^ tb.t[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) crc = (crc >> 8) ^ tb.t[0][(crc ^ *p++) & 0xff];
  return crc;
}

uint32_t Crc32c(const uint8_t* data, size_t length, uint32_t initial) {
  return ~Active().update(~initial, data, length);
}

Tier Crc32cTier() { return Active().tier; }
Tier Crc32cMaxTier() { return PathFor(Tier::kAvx512).tier; }
void Crc32cSetTier(Tier tier) { Active() = PathFor(tier); }

}  // namespace walnut::checksum
