// rs.cc — the Cauchy Reed-Solomon code of rs.h.
#include "fec/rs.h"

#include <vector>

#include "fec/gf256.h"

namespace walnut::fec {

uint8_t CauchyCoefficient(size_t k, size_t j, size_t i) {
  return GfInv(static_cast<uint8_t>((k + j) ^ i));
}

void RsEncode(const uint8_t* data, size_t k, size_t r, size_t size, uint8_t* repair) {
  for (size_t j = 0; j < r; j++) {
    uint8_t* out = repair + j * size;
    GfMulRegion(out, data, CauchyCoefficient(k, j, 0), size);
    for (size_t i = 1; i < k; i++) GfMulAddRegion(out, data + i * size, CauchyCoefficient(k, j, i), size);
  }
}

namespace {

// Inverts the e x e matrix m in place (row-major); false if singular (never for Cauchy rows).
bool Invert(std::vector<uint8_t>& m, size_t e) {
  std::vector<uint8_t> inv(e * e, 0);
  for (size_t i = 0; i < e; i++) inv[i * e + i] = 1;
  for (size_t col = 0; col < e; col++) {
    size_t pivot = col;
    while (pivot < e && m[pivot * e + col] == 0) pivot++;
    if (pivot == e) return false;
    if (pivot != col) {
      for (size_t c = 0; c < e; c++) {
        std::swap(m[pivot * e + c], m[col * e + c]);
        std::swap(inv[pivot * e + c], inv[col * e + c]);
      }
    }
    uint8_t scale = GfInv(m[col * e + col]);
    for (size_t c = 0; c < e; c++) {
      m[col * e + c] = GfMul(m[col * e + c], scale);
      inv[col * e + c] = GfMul(inv[col * e + c], scale);
    }
    for (size_t row = 0; row < e; row++) {
      uint8_t f = m[row * e + col];
      if (row == col || f == 0) continue;
      for (size_t c = 0; c < e; c++) {
        m[row * e + c] ^= GfMul(f, m[col * e + c]);
        inv[row * e + c] ^= GfMul(f, inv[col * e + c]);
      }
    }
  }
  m.swap(inv);
  return true;
}

}  // namespace

bool RsDecode(uint8_t* data, const uint8_t* repair, const uint8_t* present, size_t k, size_t r, size_t size) {
  std::vector<size_t> missing, rows;
  for (size_t i = 0; i < k; i++) if (!present[i]) missing.push_back(i);
  if (missing.empty()) return true;
  for (size_t j = 0; j < r && rows.size() < missing.size(); j++) if (present[k + j]) rows.push_back(j);
  if (rows.size() < missing.size()) return false;
  const size_t e = missing.size();

  // r'_j: the repair symbol minus the intact sources' share
  std::vector<uint8_t> partial(e * size);
  for (size_t a = 0; a < e; a++) {
    uint8_t* out = partial.data() + a * size;
    const uint8_t* rep = repair + rows[a] * size;
    for (size_t b = 0; b < size; b++) out[b] = rep[b];
    for (size_t i = 0; i < k; i++) {
      if (present[i]) GfMulAddRegion(out, data + i * size, CauchyCoefficient(k, rows[a], i), size);
    }
  }
  std::vector<uint8_t> m(e * e);
  for (size_t a = 0; a < e; a++)
    for (size_t b = 0; b < e; b++) m[a * e + b] = CauchyCoefficient(k, rows[a], missing[b]);
  if (!Invert(m, e)) return false;
  for (size_t b = 0; b < e; b++) {
    uint8_t* out = data + missing[b] * size;
    GfMulRegion(out, partial.data(), m[b * e + 0], size);
    for (size_t a = 1; a < e; a++) GfMulAddRegion(out, partial.data() + a * size, m[b * e + a], size);
  }
  return true;
}

}  // namespace walnut::fec
