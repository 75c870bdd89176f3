// crc32c_sse42.cc — CRC-32C with the SSE4.2 crc32 instruction, three streams in flight.
//
// The instruction has a latency of 3 cycles and a throughput of 1 per cycle, so one
// dependency chain runs at a third of the possible speed. A block of 3 * L bytes is split in
// three lanes A, B, C computed independently (B and C from a zero register); since the CRC
// register update is linear over GF(2), crc(A || B) = shift_L(crc(A)) ^ crc0(B), where shift_L
// is "feed L zero bytes". shift_L is a 32x32 bit matrix, applied as four byte-indexed tables
// built once from the instruction itself.
#include "crc32c.h"

#if defined(WALNUT_X86)
#include <nmmintrin.h>

#include <cstring>

namespace walnut::checksum {
namespace {

constexpr size_t kLongLane = 8192;
constexpr size_t kShortLane = 256;

__attribute__((target("sse4.2"))) inline uint32_t Serial(uint32_t crc, const uint8_t* p, size_t n) {
  uint64_t c = crc;
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    c = _mm_crc32_u64(c, w);
    p += 8;
    n -= 8;
  }
  crc = static_cast<uint32_t>(c);
  while (n-- > 0) crc = _mm_crc32_u8(crc, *p++);
  return crc;
}

struct ShiftTable {
  uint32_t t[4][256];
  __attribute__((target("sse4.2"))) explicit ShiftTable(size_t zeros) {
    static const uint8_t kZeros[kLongLane] = {};
    uint32_t basis[32];
    for (int j = 0; j < 32; j++) basis[j] = Serial(1U << j, kZeros, zeros);
    for (int k = 0; k < 4; k++) {
      for (uint32_t b = 0; b < 256; b++) {
        uint32_t v = 0;
        for (int bit = 0; bit < 8; bit++) {
          if (b & (1U << bit)) v ^= basis[8 * k + bit];
        }
        t[k][b] = v;
      }
    }
  }
  uint32_t Apply(uint32_t c) const {
    return t[0][c & 0xff] ^ t[1][(c >> 8) & 0xff] ^ t[2][(c >> 16) & 0xff] ^ t[3][c >> 24];
  }
};

template <size_t Lane>
__attribute__((target("sse4.2"))) inline uint32_t ThreeWay(uint32_t crc, const uint8_t** pp,
                                                           size_t* np, const ShiftTable& shift) {
  const uint8_t* p = *pp;
  size_t n = *np;
  while (n >= 3 * Lane) {
    uint64_t a = crc, b = 0, c = 0;
    for (size_t i = 0; i < Lane; i += 8) {
      uint64_t wa, wb, wc;
      std::memcpy(&wa, p + i, 8);
      std::memcpy(&wb, p + Lane + i, 8);
      std::memcpy(&wc, p + 2 * Lane + i, 8);
      a = _mm_crc32_u64(a, wa);
      b = _mm_crc32_u64(b, wb);
      c = _mm_crc32_u64(c, wc);
    }
    crc = shift.Apply(shift.Apply(static_cast<uint32_t>(a)) ^ static_cast<uint32_t>(b)) ^
          static_cast<uint32_t>(c);
    p += 3 * Lane;
    n -= 3 * Lane;
  }
  *pp = p;
  *np = n;
  return crc;
}

}  // namespace

__attribute__((target("sse4.2"))) uint32_t Crc32cUpdateSse42(uint32_t crc, const uint8_t* p, size_t n) {
  static const ShiftTable longShift(kLongLane);
  static const ShiftTable shortShift(kShortLane);
  crc = ThreeWay<kLongLane>(crc, &p, &n, longShift);
  crc = ThreeWay<kShortLane>(crc, &p, &n, shortShift);
  return Serial(crc, p, n);
}

}  // namespace walnut::checksum
#endif
