// page_delta.cc — EncodePageDelta (page_delta.h owns the format). The ranges are found in one
// pass into a small scratch list, sized, then written.
//
// Three scans find the ranges, all giving the same list (test/unit/page-delta-native compares
// each with the JavaScript reference):
//  - scalar (the plain reference, and any CPU): equal stretches skipped eight bytes at a time,
//    then `previous` moved on with a second pass (memmove) when asked;
//  - AVX2 and AVX-512 (chosen once at load, as the checksums are: checksum/cpu.h): 64 bytes of
//    both pages compared at once into a bit mask (1 = the byte differs), the mask's runs of ones
//    taken as ranges, and, when `previous` is to move on, the block of the new page stored over
//    it right after its compare (one pass over both pages instead of two). A page of a one-row
//    commit is almost all equal bytes: a 4 KiB page is 64 compares and stores.
// The fused store needs `previous` apart from the frame (a block stored could be one still to
// be read); when they share bytes, the SIMD scans compare only and previous moves on after.
#include "page_delta.h"

#include <cstring>
#include <vector>

#include "big_endian.h"
#include "checksum/cpu.h"
#include "checksum/xxh3.h"

#if defined(WALNUT_X86)
#include <immintrin.h>
// GCC 12's avx512fintrin.h trips -W(maybe-)uninitialized inside _mm512_undefined_* (GCC bug
// 105593): a warning about the compiler's header (as in checksum/xxh3_avx512.cc).
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#endif

namespace walnut::pagedelta {
namespace {

using checksum::Tier;

// The ranges of one page as they are found: start, end pairs, and the payload's size so far.
// A run starting at most kMergeGap bytes past the last range's end joins it (page_delta.h).
struct Ranges {
  std::vector<uint32_t>& list;
  size_t pageSize;
  size_t size = 45;
  bool over = false;  // the payload passed half the page: the frame goes whole

  // [start, end) a maximal run of differing bytes, after every earlier one; false once over.
  bool Add(size_t start, size_t end) {
    if (!list.empty() && start - list.back() <= kMergeGap) {
      size += end - list.back();  // the gap and the new bytes join the last range
      list.back() = static_cast<uint32_t>(end);
    } else {
      size += 8 + end - start;
      list.push_back(static_cast<uint32_t>(start));
      list.push_back(static_cast<uint32_t>(end));
    }
    if (size * 2 > pageSize) over = true;
    return !over;
  }
};

constexpr size_t kNoRun = SIZE_MAX;

// The runs of ones of `differ` (bit j: byte base + j differs), a block after every earlier one:
// `runStart` is the start of a run still open at the block's start (kNoRun: none) and is left
// as the run still open at its end. False once the ranges are over.
inline bool TakeMask(uint64_t differ, size_t base, size_t* runStart, Ranges* ranges) {
  if (*runStart != kNoRun) {
    const uint64_t equal = ~differ;
    if (equal == 0) return true;  // the run goes on through the block
    const unsigned end = static_cast<unsigned>(__builtin_ctzll(equal));
    if (!ranges->Add(*runStart, base + end)) return false;
    *runStart = kNoRun;
    differ &= ~0ULL << end;  // end < 64: the run's bits are below it
  }
  while (differ != 0) {
    const unsigned start = static_cast<unsigned>(__builtin_ctzll(differ));
    const uint64_t equal = ~differ & (~0ULL << start);
    if (equal == 0) {
      *runStart = base + start;  // open past the block
      return true;
    }
    const unsigned end = static_cast<unsigned>(__builtin_ctzll(equal));
    if (!ranges->Add(base + start, base + end)) return false;
    differ &= ~0ULL << end;
  }
  return true;
}

inline uint64_t Load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// The first offset in [i, n) where a and b differ, or n.
inline size_t NextDifferent(const uint8_t* a, const uint8_t* b, size_t i, size_t n) {
  while (i + 8 <= n) {
    uint64_t x = Load64(a + i) ^ Load64(b + i);
    if (x != 0) return i + (__builtin_ctzll(x) >> 3);  // little-endian: the lowest set byte is the first
    i += 8;
  }
  while (i < n && a[i] == b[i]) i++;
  return i;
}

// The first offset in [i, n) where a and b are equal, or n.
inline size_t NextEqual(const uint8_t* a, const uint8_t* b, size_t i, size_t n) {
  while (i < n && a[i] != b[i]) i++;
  return i;
}

// A scan: the ranges of page against previous[0, n); with `store`, previous holds page after
// it (whatever the answer). Only for previous apart from page when `store` is true.
using ScanFn = void (*)(const uint8_t* page, uint8_t* previous, size_t n, bool store, Ranges* ranges);

void ScanScalar(const uint8_t* page, uint8_t* previous, size_t n, bool store, Ranges* ranges) {
  for (size_t i = NextDifferent(page, previous, 0, n); i < n;) {
    const size_t end = NextEqual(page, previous, i + 1, n);
    if (!ranges->Add(i, end)) break;
    i = NextDifferent(page, previous, end, n);
  }
  if (store) std::memmove(previous, page, n);
}

// The bytes [from, n) of a block scan that stopped early (ranges over) still go to previous.
inline void StoreRest(const uint8_t* page, uint8_t* previous, size_t from, size_t n, bool store) {
  if (store && from < n) std::memcpy(previous + from, page + from, n - from);
}

#if defined(WALNUT_X86)
__attribute__((target("avx2"))) void ScanAvx2(const uint8_t* page, uint8_t* previous, size_t n, bool store, Ranges* ranges) {
  size_t runStart = kNoRun, i = 0;
  for (; i + 64 <= n; i += 64) {
    const __m256i a0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(page + i));
    const __m256i a1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(page + i + 32));
    const __m256i b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(previous + i));
    const __m256i b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(previous + i + 32));
    const uint64_t equal = static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(a0, b0))) |
                           (static_cast<uint64_t>(static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(a1, b1)))) << 32);
    if (store) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(previous + i), a0);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(previous + i + 32), a1);
    }
    if ((~equal != 0 || runStart != kNoRun) && !TakeMask(~equal, i, &runStart, ranges)) {
      StoreRest(page, previous, i + 64, n, store);
      return;
    }
  }
  if (i < n) {  // the last bytes of a page not a multiple of 64 (never a WAL page)
    uint64_t differ = 0;
    for (size_t j = i; j < n; j++) differ |= static_cast<uint64_t>(page[j] != previous[j]) << (j - i);
    StoreRest(page, previous, i, n, store);
    if (!TakeMask(differ, i, &runStart, ranges)) return;  // a run open here ends at n (bits past n are equal)
  } else if (runStart != kNoRun) {
    ranges->Add(runStart, n);
  }
}

__attribute__((target("avx512f,avx512bw"))) void ScanAvx512(const uint8_t* page, uint8_t* previous, size_t n, bool store, Ranges* ranges) {
  size_t runStart = kNoRun, i = 0;
  for (; i + 64 <= n; i += 64) {
    const __m512i a = _mm512_loadu_si512(page + i);
    const uint64_t differ = _mm512_cmpneq_epi8_mask(a, _mm512_loadu_si512(previous + i));
    if (store) _mm512_storeu_si512(previous + i, a);
    if ((differ != 0 || runStart != kNoRun) && !TakeMask(differ, i, &runStart, ranges)) {
      StoreRest(page, previous, i + 64, n, store);
      return;
    }
  }
  if (i < n) {  // the last bytes of a page not a multiple of 64 (never a WAL page): masked, no byte past n touched
    const __mmask64 k = (1ULL << (n - i)) - 1;
    const __m512i a = _mm512_maskz_loadu_epi8(k, page + i);
    const uint64_t differ = _mm512_mask_cmpneq_epi8_mask(k, a, _mm512_maskz_loadu_epi8(k, previous + i));
    if (store) _mm512_mask_storeu_epi8(previous + i, k, a);
    TakeMask(differ, i, &runStart, ranges);  // a run open here ends at n (bits past n are equal)
  } else if (runStart != kNoRun) {
    ranges->Add(runStart, n);
  }
}
#endif

struct Scan {
  ScanFn fn;
  Tier tier;
};

Scan ScanFor(Tier tier) {
#if defined(WALNUT_X86)
  if (tier >= Tier::kAvx512 && checksum::Cpu().avx512) return {ScanAvx512, Tier::kAvx512};
  if (tier >= Tier::kAvx2 && checksum::Cpu().avx2) return {ScanAvx2, Tier::kAvx2};
#endif
  (void)tier;
  return {ScanScalar, Tier::kScalar};
}

Scan& Active() {
  static Scan scan = ScanFor(Tier::kAvx512);
  return scan;
}

}  // namespace

Tier EncodeTier() { return Active().tier; }
void EncodeSetTier(Tier tier) { Active() = ScanFor(tier); }

size_t EncodePageDelta(const uint8_t* frame, size_t frameLength, uint8_t* previous, size_t previousLength,
                       uint8_t* out, size_t outCapacity, bool updatePrevious) {
  static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "NextDifferent reads words little-endian");
  if (frameLength <= kFrameHeaderSize) return 0;
  const size_t pageSize = frameLength - kFrameHeaderSize;
  if (previousLength != pageSize) return 0;
  const uint8_t* page = frame + kFrameHeaderSize;
  // start, end pairs; a page of n bytes has at most n / 2 + 1 ranges (each but the last is
  // followed by an equal byte), and the search stops once the payload is past half the page
  thread_local std::vector<uint32_t> list;
  list.clear();
  Ranges ranges{list, pageSize};
  // stored as it is compared only when previous and the page share no byte (see the header)
  const bool apart = previous + pageSize <= page || page + pageSize <= previous;
  const bool storeInScan = updatePrevious && apart;
  Active().fn(page, previous, pageSize, storeInScan, &ranges);
  const auto moveOn = [&]() {
    if (updatePrevious && !storeInScan) std::memmove(previous, page, pageSize);
  };
  if (ranges.over || ranges.size * 2 > pageSize || ranges.size > outCapacity) {  // (no range at all on a page under 90 bytes)
    moveOn();
    return 0;
  }
  out[0] = kPageDeltaKind;
  std::memcpy(out + 1, frame, kFrameHeaderSize);
  checksum::Hash128 h = checksum::Xxh3_128(page, pageSize, 0);
  uint64_t hi = __builtin_bswap64(h.high), lo = __builtin_bswap64(h.low);
  std::memcpy(out + 25, &hi, 8);
  std::memcpy(out + 33, &lo, 8);
  PutBe32(out + 41, static_cast<uint32_t>(list.size() / 2));
  size_t at = 45;
  for (size_t r = 0; r < list.size(); r += 2) {
    const uint32_t start = list[r], end = list[r + 1];
    PutBe32(out + at, start);
    PutBe32(out + at + 4, end - start);
    std::memcpy(out + at + 8, page + start, end - start);
    at += 8 + end - start;
  }
  moveOn();
  return at;
}

}  // namespace walnut::pagedelta
