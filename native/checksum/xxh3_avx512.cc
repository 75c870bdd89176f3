// xxh3_avx512.cc — XXH3 long-input kernels with AVX-512F (one 512-bit register holds the
// eight accumulators and one whole stripe). Arithmetic as in xxh3_avx2.cc.
#include "xxh3.h"

#if defined(WALNUT_X86)
#include <immintrin.h>

// GCC 12's own avx512fintrin.h trips -W(maybe-)uninitialized inside _mm512_undefined_*
// (GCC bug 105593); the warning is about the compiler's header, not this file.
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace walnut::checksum {

__attribute__((target("avx512f"))) void Xxh3AccumulateAvx512(uint64_t* acc, const uint8_t* input,
                                                             const uint8_t* secret, size_t count) {
  __m512i a = _mm512_loadu_si512(acc);
  for (size_t n = 0; n < count; n++) {
    __m512i d = _mm512_loadu_si512(input + n * 64);
    __m512i k = _mm512_xor_si512(d, _mm512_loadu_si512(secret + n * 8));
    __m512i p = _mm512_mul_epu32(k, _mm512_srli_epi64(k, 32));
    __m512i s = _mm512_shuffle_epi32(d, _MM_PERM_BADC);
    a = _mm512_add_epi64(a, _mm512_add_epi64(p, s));
  }
  _mm512_storeu_si512(acc, a);
}

__attribute__((target("avx512f"))) void Xxh3ScrambleAvx512(uint64_t* acc, const uint8_t* secret) {
  const __m512i prime = _mm512_set1_epi32(static_cast<int>(0x9E3779B1U));
  __m512i a = _mm512_loadu_si512(acc);
  a = _mm512_xor_si512(a, _mm512_srli_epi64(a, 47));
  a = _mm512_xor_si512(a, _mm512_loadu_si512(secret));
  __m512i lo = _mm512_mul_epu32(a, prime);
  __m512i hi = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), prime);
  _mm512_storeu_si512(acc, _mm512_add_epi64(lo, _mm512_slli_epi64(hi, 32)));
}

}  // namespace walnut::checksum
#endif
