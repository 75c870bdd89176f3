// fuzz_rs.cc — libFuzzer target for the Reed-Solomon code (native/fec/rs.h): the input picks K,
// R, the symbol size, the region path, the data and which symbols are lost. Whenever at least
// K symbols survive, decoding must give back every source byte; with fewer it must say so and
// write nothing. Runs the addon's own rs.cc and gf256.cc under ASan and UBSan.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "fec/gf256.h"
#include "fec/rs.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* in, size_t n) {
  if (n < 5) return 0;
  size_t k = 1 + in[0] % 40;
  size_t r = 1 + in[1] % 16;
  size_t size = 1 + (static_cast<size_t>(in[2]) | (static_cast<size_t>(in[3] & 1) << 8));
  walnut::fec::SetRegionPath(static_cast<walnut::fec::RegionPath>(in[4] % 3));  // false when the CPU lacks it: keeps the last
  in += 5;
  n -= 5;
  std::vector<uint8_t> data(k * size), repair(r * size), present(k + r, 1);
  for (size_t i = 0; i < data.size(); i++) data[i] = n ? in[i % n] ^ static_cast<uint8_t>(i * 131) : static_cast<uint8_t>(i);
  walnut::fec::RsEncode(data.data(), k, r, size, repair.data());
  size_t lost = 0;
  for (size_t i = 0; i < k + r && i < n; i++) {
    if (in[n - 1 - i] & 1) {
      present[i] = 0;
      lost++;
    }
  }
  std::vector<uint8_t> damaged = data;
  std::vector<uint8_t> rep = repair;
  for (size_t i = 0; i < k + r; i++) {
    if (present[i]) continue;
    if (i < k) std::memset(damaged.data() + i * size, 0xA5, size);
    else std::memset(rep.data() + (i - k) * size, 0xA5, size);
  }
  std::vector<uint8_t> before = damaged;
  bool ok = walnut::fec::RsDecode(damaged.data(), rep.data(), present.data(), k, r, size);
  if (lost <= r) {
    if (!ok || damaged != data) std::abort();
  } else {
    size_t missingSources = 0;
    for (size_t i = 0; i < k; i++) missingSources += present[i] ? 0 : 1;
    size_t repairsLeft = 0;
    for (size_t j = 0; j < r; j++) repairsLeft += present[k + j];
    if (missingSources > repairsLeft && (ok || damaged != before)) std::abort();
    if (missingSources <= repairsLeft && (!ok || damaged != data)) std::abort();
  }
  return 0;
}
