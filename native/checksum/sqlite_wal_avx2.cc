// sqlite_wal_avx2.cc — SQLite WAL checksum by chunked dot products (see sqlite_wal.h) with
// AVX2 (8 words per step) and AVX-512 (16 words per step). Pairs left over after the last
// whole vector go through the scalar loop.
#include "sqlite_wal.h"

#if defined(WALNUT_X86)
#include <immintrin.h>

// GCC 12's own avx512fintrin.h trips -W(maybe-)uninitialized inside _mm512_undefined_*
// (GCC bug 105593); the warning is about the compiler's header, not this file.
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace walnut::checksum {
namespace {

// Joins a chunk of `pairs` pairs whose weighted sums are (c0, c1) to the running state.
inline WalChecksum Join(const WalChecksumTables& t, WalChecksum v, size_t pairs, uint32_t c0, uint32_t c1) {
  const uint32_t* m = t.power[pairs];
  return {m[0] * v.s0 + m[1] * v.s1 + c0, m[2] * v.s0 + m[3] * v.s1 + c1};
}

__attribute__((target("avx2"))) inline uint32_t HorizontalSum(__m256i v) {
  __m128i x = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  x = _mm_add_epi32(x, _mm_shuffle_epi32(x, _MM_SHUFFLE(1, 0, 3, 2)));
  x = _mm_add_epi32(x, _mm_shuffle_epi32(x, _MM_SHUFFLE(2, 3, 0, 1)));
  return static_cast<uint32_t>(_mm_cvtsi128_si32(x));
}

// Not _mm512_reduce_add_epi32: GCC 12 implements its last steps with signed int additions,
// which overflow (undefined behaviour, flagged by UBSan) where we want arithmetic mod 2^32.
__attribute__((target("avx512f"))) inline uint32_t HorizontalSum512(__m512i v) {
  return HorizontalSum(_mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1)));
}

}  // namespace

__attribute__((target("avx2"))) WalChecksum SqliteWalChecksumAvx2(const uint8_t* data, size_t length,
                                                                  WalChecksum v, bool bigEndianWords) {
  const WalChecksumTables& t = WalTables();
  const __m256i swap = _mm256_setr_epi8(3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12,
                                        3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12);
  size_t pairs = length / 8;
  while (pairs >= 4) {
    size_t chunk = pairs < kChunkPairs ? pairs & ~size_t{3} : kChunkPairs;
    const uint32_t* k0 = t.coef0 + 2 * (kChunkPairs - chunk);
    const uint32_t* k1 = t.coef1 + 2 * (kChunkPairs - chunk);
    __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
    for (size_t w = 0; w < 2 * chunk; w += 8) {
      __m256i d = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(data + 4 * w));
      if (bigEndianWords) d = _mm256_shuffle_epi8(d, swap);
      acc0 = _mm256_add_epi32(acc0, _mm256_mullo_epi32(d, _mm256_load_si256(reinterpret_cast<const __m256i*>(k0 + w))));
      acc1 = _mm256_add_epi32(acc1, _mm256_mullo_epi32(d, _mm256_load_si256(reinterpret_cast<const __m256i*>(k1 + w))));
    }
    v = Join(t, v, chunk, HorizontalSum(acc0), HorizontalSum(acc1));
    data += 8 * chunk;
    pairs -= chunk;
  }
  return SqliteWalChecksumScalar(data, 8 * pairs, v, bigEndianWords);
}

__attribute__((target("avx512f,avx512bw"))) WalChecksum SqliteWalChecksumAvx512(
    const uint8_t* data, size_t length, WalChecksum v, bool bigEndianWords) {
  const WalChecksumTables& t = WalTables();
  const __m512i swap = _mm512_set4_epi32(0x0c0d0e0f, 0x08090a0b, 0x04050607, 0x00010203);
  size_t pairs = length / 8;
  while (pairs >= 8) {
    size_t chunk = pairs < kChunkPairs ? pairs & ~size_t{7} : kChunkPairs;
    const uint32_t* k0 = t.coef0 + 2 * (kChunkPairs - chunk);
    const uint32_t* k1 = t.coef1 + 2 * (kChunkPairs - chunk);
    __m512i acc0 = _mm512_setzero_si512(), acc1 = _mm512_setzero_si512();
    for (size_t w = 0; w < 2 * chunk; w += 16) {
      __m512i d = _mm512_loadu_si512(data + 4 * w);
      if (bigEndianWords) d = _mm512_shuffle_epi8(d, swap);
      acc0 = _mm512_add_epi32(acc0, _mm512_mullo_epi32(d, _mm512_load_si512(k0 + w)));
      acc1 = _mm512_add_epi32(acc1, _mm512_mullo_epi32(d, _mm512_load_si512(k1 + w)));
    }
    v = Join(t, v, chunk, HorizontalSum512(acc0), HorizontalSum512(acc1));
    data += 8 * chunk;
    pairs -= chunk;
  }
  return SqliteWalChecksumAvx2(data, 8 * pairs, v, bigEndianWords);
}

}  // namespace walnut::checksum
#endif
