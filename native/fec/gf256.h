// gf256.h — arithmetic in GF(2^8) with the polynomial x^8 + x^4 + x^3 + x^2 + 1 (0x11D), the
// field of most Reed-Solomon erasure codes; 2 generates its multiplicative group.
//
// Scalar multiply and inverse use log/exp tables. Region operations (dst ^= c * src over a
// buffer) are the whole cost of encoding and decoding; they have a scalar path (a 256-byte
// product row per coefficient) and SSSE3/AVX2 paths using the nibble-split table lookup: for a
// byte x = hi << 4 | lo, c * x = c * lo ^ c * (hi << 4), each a 16-entry table held in a vector
// register and indexed with PSHUFB. N-API-free, so tests and fuzzers can link it directly.
#pragma once

#include <cstddef>
#include <cstdint>

namespace walnut::fec {

uint8_t GfMul(uint8_t a, uint8_t b);
// Inverse of a != 0 (0 maps to 0).
uint8_t GfInv(uint8_t a);

enum class RegionPath { kScalar = 0, kSsse3 = 1, kAvx2 = 2 };

// dst[i] ^= c * src[i] for i < n, with the fastest path the CPU has (or the forced one).
void GfMulAddRegion(uint8_t* dst, const uint8_t* src, uint8_t c, size_t n);
// dst[i] = c * src[i].
void GfMulRegion(uint8_t* dst, const uint8_t* src, uint8_t c, size_t n);

RegionPath BestRegionPath();
RegionPath ActiveRegionPath();
// Forces a path (tests); false when the CPU lacks it.
bool SetRegionPath(RegionPath path);

}  // namespace walnut::fec
