// gf256.cc — GF(2^8) tables and the region multiply paths (see gf256.h).
#include "fec/gf256.h"

#include <array>

#include "checksum/cpu.h"

#if defined(WALNUT_X86)
#include <immintrin.h>
#endif

namespace walnut::fec {
namespace {

struct Tables {
  std::array<uint8_t, 512> exp{};  // doubled so exp[log a + log b] needs no modulo
  std::array<uint8_t, 256> log{};
  // mul[c][x] = c * x, the scalar path's product rows (64 KiB, built once)
  std::array<std::array<uint8_t, 256>, 256> mul{};
  // nibble tables per coefficient: lo[c][i] = c * i, hi[c][i] = c * (i << 4)
  alignas(32) std::array<std::array<uint8_t, 16>, 256> lo{};
  alignas(32) std::array<std::array<uint8_t, 16>, 256> hi{};

  Tables() {
    unsigned x = 1;
    for (unsigned i = 0; i < 255; i++) {
      exp[i] = static_cast<uint8_t>(x);
      log[x] = static_cast<uint8_t>(i);
      x <<= 1;
      if (x & 0x100) x ^= 0x11D;
    }
    for (unsigned i = 255; i < 512; i++) exp[i] = exp[i - 255];
    for (unsigned c = 0; c < 256; c++) {
      for (unsigned v = 0; v < 256; v++) {
        mul[c][v] = (c == 0 || v == 0) ? 0 : exp[log[c] + log[v]];
      }
      for (unsigned i = 0; i < 16; i++) {
        lo[c][i] = mul[c][i];
        hi[c][i] = mul[c][i << 4];
      }
    }
  }
};

const Tables& T() {
  static const Tables tables;
  return tables;
}

void MulAddScalar(uint8_t* dst, const uint8_t* src, uint8_t c, size_t n) {
  const uint8_t* row = T().mul[c].data();
  for (size_t i = 0; i < n; i++) dst[i] ^= row[src[i]];
}

void MulScalar(uint8_t* dst, const uint8_t* src, uint8_t c, size_t n) {
  const uint8_t* row = T().mul[c].data();
  for (size_t i = 0; i < n; i++) dst[i] = row[src[i]];
}

#if defined(WALNUT_X86)
template <bool kAdd>
__attribute__((target("ssse3"))) void RegionSsse3(uint8_t* dst, const uint8_t* src, uint8_t c, size_t n) {
  const __m128i lo = _mm_load_si128(reinterpret_cast<const __m128i*>(T().lo[c].data()));
  const __m128i hi = _mm_load_si128(reinterpret_cast<const __m128i*>(T().hi[c].data()));
  const __m128i mask = _mm_set1_epi8(0x0f);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
    __m128i p = _mm_xor_si128(_mm_shuffle_epi8(lo, _mm_and_si128(x, mask)),
                              _mm_shuffle_epi8(hi, _mm_and_si128(_mm_srli_epi64(x, 4), mask)));
    if (kAdd) p = _mm_xor_si128(p, _mm_loadu_si128(reinterpret_cast<const __m128i*>(dst + i)));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), p);
  }
  if (kAdd) MulAddScalar(dst + i, src + i, c, n - i);
  else MulScalar(dst + i, src + i, c, n - i);
}

template <bool kAdd>
__attribute__((target("avx2"))) void RegionAvx2(uint8_t* dst, const uint8_t* src, uint8_t c, size_t n) {
  const __m256i lo = _mm256_broadcastsi128_si256(_mm_load_si128(reinterpret_cast<const __m128i*>(T().lo[c].data())));
  const __m256i hi = _mm256_broadcastsi128_si256(_mm_load_si128(reinterpret_cast<const __m128i*>(T().hi[c].data())));
  const __m256i mask = _mm256_set1_epi8(0x0f);
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {  // two vectors per step: the lookups of one hide the other's latency
    __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i));
    __m256i x1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i + 32));
    __m256i p0 = _mm256_xor_si256(_mm256_shuffle_epi8(lo, _mm256_and_si256(x0, mask)),
                                  _mm256_shuffle_epi8(hi, _mm256_and_si256(_mm256_srli_epi64(x0, 4), mask)));
    __m256i p1 = _mm256_xor_si256(_mm256_shuffle_epi8(lo, _mm256_and_si256(x1, mask)),
                                  _mm256_shuffle_epi8(hi, _mm256_and_si256(_mm256_srli_epi64(x1, 4), mask)));
    if (kAdd) {
      p0 = _mm256_xor_si256(p0, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(dst + i)));
      p1 = _mm256_xor_si256(p1, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(dst + i + 32)));
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), p0);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i + 32), p1);
  }
  RegionSsse3<kAdd>(dst + i, src + i, c, n - i);
}
#endif

RegionPath Detect() {
#if defined(WALNUT_X86)
  if (checksum::Cpu().avx2) return RegionPath::kAvx2;
  if (__builtin_cpu_supports("ssse3")) return RegionPath::kSsse3;
#endif
  return RegionPath::kScalar;
}

RegionPath g_path = Detect();

}  // namespace

uint8_t GfMul(uint8_t a, uint8_t b) { return T().mul[a][b]; }

uint8_t GfInv(uint8_t a) { return a == 0 ? 0 : T().exp[255 - T().log[a]]; }

void GfMulAddRegion(uint8_t* dst, const uint8_t* src, uint8_t c, size_t n) {
  if (c == 0) return;
#if defined(WALNUT_X86)
  if (g_path == RegionPath::kAvx2) return RegionAvx2<true>(dst, src, c, n);
  if (g_path == RegionPath::kSsse3) return RegionSsse3<true>(dst, src, c, n);
#endif
  MulAddScalar(dst, src, c, n);
}

void GfMulRegion(uint8_t* dst, const uint8_t* src, uint8_t c, size_t n) {
#if defined(WALNUT_X86)
  if (g_path == RegionPath::kAvx2) return RegionAvx2<false>(dst, src, c, n);
  if (g_path == RegionPath::kSsse3) return RegionSsse3<false>(dst, src, c, n);
#endif
  MulScalar(dst, src, c, n);
}

RegionPath BestRegionPath() { return Detect(); }
RegionPath ActiveRegionPath() { return g_path; }

bool SetRegionPath(RegionPath path) {
  if (static_cast<int>(path) > static_cast<int>(Detect())) return false;
  g_path = path;
  return true;
}

}  // namespace walnut::fec
