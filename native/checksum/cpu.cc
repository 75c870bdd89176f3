// cpu.cc — see cpu.h.
#include "cpu.h"

#if defined(WALNUT_X86)
#include <cpuid.h>
#include <cstdint>
#endif

namespace walnut::checksum {
namespace {

CpuFeatures Detect() {
  CpuFeatures f;
#if defined(WALNUT_X86)
  unsigned eax, ebx, ecx, edx;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return f;
  f.sse42 = (ecx >> 20) & 1;
  bool osxsave = (ecx >> 27) & 1;
  uint64_t xcr0 = 0;
  if (osxsave) {
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    xcr0 = (static_cast<uint64_t>(hi) << 32) | lo;
  }
  bool ymmOk = (xcr0 & 0x6) == 0x6;
  bool zmmOk = (xcr0 & 0xe6) == 0xe6;
  if (__get_cpuid_max(0, nullptr) >= 7) {
    __cpuid_count(7, 0, eax, ebx, ecx, edx);
    f.avx2 = ymmOk && ((ebx >> 5) & 1);
    bool avx512f = (ebx >> 16) & 1, avx512bw = (ebx >> 30) & 1, avx512vl = (ebx >> 31) & 1;
    f.avx512 = zmmOk && avx512f && avx512bw && avx512vl;
  }
#endif
  return f;
}

}  // namespace

const CpuFeatures& Cpu() {
  static const CpuFeatures features = Detect();
  return features;
}

}  // namespace walnut::checksum
