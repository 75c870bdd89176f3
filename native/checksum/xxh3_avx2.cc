// xxh3_avx2.cc — XXH3 long-input kernels with AVX2 (4 lanes of 64 bits, two registers per
// 64-byte stripe). Same arithmetic as Xxh3AccumulateScalar/Xxh3ScrambleScalar: for lane i,
// acc[i ^ 1] += data[i] and acc[i] += lo32(data ^ key) * hi32(data ^ key).
#include "xxh3.h"

#if defined(WALNUT_X86)
#include <immintrin.h>

namespace walnut::checksum {

__attribute__((target("avx2"))) void Xxh3AccumulateAvx2(uint64_t* acc, const uint8_t* input,
                                                        const uint8_t* secret, size_t count) {
  __m256i a0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc));
  __m256i a1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc + 4));
  for (size_t n = 0; n < count; n++) {
    const __m256i* in = reinterpret_cast<const __m256i*>(input + n * 64);
    const __m256i* key = reinterpret_cast<const __m256i*>(secret + n * 8);
    __m256i d0 = _mm256_loadu_si256(in), d1 = _mm256_loadu_si256(in + 1);
    __m256i k0 = _mm256_xor_si256(d0, _mm256_loadu_si256(key));
    __m256i k1 = _mm256_xor_si256(d1, _mm256_loadu_si256(key + 1));
    __m256i p0 = _mm256_mul_epu32(k0, _mm256_srli_epi64(k0, 32));
    __m256i p1 = _mm256_mul_epu32(k1, _mm256_srli_epi64(k1, 32));
    // swap the two 64-bit halves of each 128-bit pair: lane i receives data[i ^ 1]
    __m256i s0 = _mm256_shuffle_epi32(d0, _MM_SHUFFLE(1, 0, 3, 2));
    __m256i s1 = _mm256_shuffle_epi32(d1, _MM_SHUFFLE(1, 0, 3, 2));
    a0 = _mm256_add_epi64(a0, _mm256_add_epi64(p0, s0));
    a1 = _mm256_add_epi64(a1, _mm256_add_epi64(p1, s1));
  }
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc), a0);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + 4), a1);
}

__attribute__((target("avx2"))) void Xxh3ScrambleAvx2(uint64_t* acc, const uint8_t* secret) {
  const __m256i prime = _mm256_set1_epi32(static_cast<int>(0x9E3779B1U));
  for (int half = 0; half < 2; half++) {
    __m256i* p = reinterpret_cast<__m256i*>(acc + 4 * half);
    __m256i a = _mm256_loadu_si256(p);
    a = _mm256_xor_si256(a, _mm256_srli_epi64(a, 47));
    a = _mm256_xor_si256(a, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(secret + 32 * half)));
    // 64 x 32 -> 64 multiply: lo * P + ((hi * P) << 32)
    __m256i lo = _mm256_mul_epu32(a, prime);
    __m256i hi = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), prime);
    _mm256_storeu_si256(p, _mm256_add_epi64(lo, _mm256_slli_epi64(hi, 32)));
  }
}

}  // namespace walnut::checksum
#endif
