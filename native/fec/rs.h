// rs.h — systematic Reed-Solomon erasure code over GF(2^8) (gf256.h), from a Cauchy matrix.
//
// K source symbols s_0..s_{K-1} (the WAL frames' pages, all `size` bytes) and R repair symbols
// r_j = sum_i C[j][i] * s_i with C[j][i] = 1 / (x_j + y_i), y_i = i, x_j = K + j (K + R <= 256,
// so all x and y are distinct field elements). Every square submatrix of a Cauchy matrix is
// invertible, so [I; C] is MDS: any K of the K + R symbols give back every source symbol,
// i.e. up to R erasures at known positions are always repaired.
//
// Decoding e <= R missing sources E with available repairs J (|J| = e): r'_j = r_j + sum over
// intact i of C[j][i] * s_i, then s_E = C[J][E]^-1 * r'_J (Gauss-Jordan on an e x e matrix).
// N-API-free.
#pragma once

#include <cstddef>
#include <cstdint>

namespace walnut::fec {

constexpr size_t kMaxSymbols = 256;

// Cauchy coefficient of repair row j for source column i.
uint8_t CauchyCoefficient(size_t k, size_t j, size_t i);

// data: k symbols of `size` bytes back to back; repair: r symbols, overwritten.
void RsEncode(const uint8_t* data, size_t k, size_t r, size_t size, uint8_t* repair);

// present[0..k+r): 1 when symbol i (sources first, then repairs) is intact. Missing source
// symbols in `data` are overwritten with their decoded contents. False when fewer than k
// symbols are present (nothing is written then).
bool RsDecode(uint8_t* data, const uint8_t* repair, const uint8_t* present, size_t k, size_t r, size_t size);

}  // namespace walnut::fec
