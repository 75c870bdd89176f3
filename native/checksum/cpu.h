// cpu.h — CPU feature detection, done once at load, and the forced-path switch for tests.
//
// Each checksum has a portable scalar path and SIMD paths. The fastest path the CPU supports
// is chosen once; tests may force any supported path (setPath) to compare it with scalar.
#pragma once

namespace walnut::checksum {

struct CpuFeatures {
  bool sse42 = false;
  bool avx2 = false;
  bool avx512 = false;  // AVX-512F + BW + VL, usable by the OS (XCR0 bits set)
};

const CpuFeatures& Cpu();

// Implementation tiers; a lower tier is always available.
enum class Tier { kScalar = 0, kSse42 = 1, kAvx2 = 2, kAvx512 = 3 };

}  // namespace walnut::checksum
