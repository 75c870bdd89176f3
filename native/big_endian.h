// big_endian.h — the WAL's on-disk integers are big-endian (reference/sqlite-wal.md section 2).
#pragma once

#include <cstdint>
#include <cstring>

namespace walnut {

inline uint32_t Be32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return __builtin_bswap32(v);
}

inline void PutBe32(uint8_t* p, uint32_t v) {
  v = __builtin_bswap32(v);
  std::memcpy(p, &v, 4);
}

inline void PutBe64(uint8_t* p, uint64_t v) {
  v = __builtin_bswap64(v);
  std::memcpy(p, &v, 8);
}

}  // namespace walnut
