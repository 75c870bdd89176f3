// page_delta.cc — EncodePageDelta (page_delta.h owns the format). Equal stretches are skipped
// eight bytes at a time (a page of a one-row commit is almost all equal bytes); the ranges are
// found in one pass into a small scratch list, sized, then written.
#include "page_delta.h"

#include <cstring>
#include <vector>

#include "big_endian.h"
#include "checksum/xxh3.h"

namespace walnut::pagedelta {
namespace {

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

}  // namespace

size_t EncodePageDelta(const uint8_t* frame, size_t frameLength, uint8_t* previous, size_t previousLength,
                       uint8_t* out, size_t outCapacity, bool updatePrevious) {
  static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "NextDifferent reads words little-endian");
  if (frameLength <= kFrameHeaderSize) return 0;
  const size_t pageSize = frameLength - kFrameHeaderSize;
  if (previousLength != pageSize) return 0;
  const uint8_t* page = frame + kFrameHeaderSize;
  // start, end pairs; a page of n bytes has at most n / 2 + 1 ranges (each but the last is
  // followed by an equal byte), and the search stops once the payload is past half the page
  thread_local std::vector<uint32_t> ranges;
  ranges.clear();
  size_t size = 45;
  bool small = true;
  for (size_t i = NextDifferent(page, previous, 0, pageSize); i < pageSize;) {
    size_t end = NextEqual(page, previous, i + 1, pageSize);
    if (!ranges.empty() && i - ranges.back() <= kMergeGap) {
      size += end - ranges.back();  // the gap and the new bytes join the last range
      ranges.back() = static_cast<uint32_t>(end);
    } else {
      size += 8 + end - i;
      ranges.push_back(static_cast<uint32_t>(i));
      ranges.push_back(static_cast<uint32_t>(end));
    }
    if (size * 2 > pageSize) {
      small = false;
      break;
    }
    i = NextDifferent(page, previous, end, pageSize);
  }
  if (!small || size * 2 > pageSize || size > outCapacity) {  // (no range at all on a page under 90 bytes)
    if (updatePrevious) std::memmove(previous, page, pageSize);
    return 0;
  }
  out[0] = kPageDeltaKind;
  std::memcpy(out + 1, frame, kFrameHeaderSize);
  checksum::Hash128 h = checksum::Xxh3_128(page, pageSize, 0);
  uint64_t hi = __builtin_bswap64(h.high), lo = __builtin_bswap64(h.low);
  std::memcpy(out + 25, &hi, 8);
  std::memcpy(out + 33, &lo, 8);
  PutBe32(out + 41, static_cast<uint32_t>(ranges.size() / 2));
  size_t at = 45;
  for (size_t r = 0; r < ranges.size(); r += 2) {
    const uint32_t start = ranges[r], end = ranges[r + 1];
    PutBe32(out + at, start);
    PutBe32(out + at + 4, end - start);
    std::memcpy(out + at + 8, page + start, end - start);
    at += 8 + end - start;
  }
  if (updatePrevious) std::memmove(previous, page, pageSize);
  return at;
}

}  // namespace walnut::pagedelta
