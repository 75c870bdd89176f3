// shm_index.h — the wal-index lookup (shm.h states the layout) as a pure function over mapped
// segments, free of N-API so that the fuzz target (fuzz/native/fuzz_shm_lookup.cc) runs the
// addon's own code over corrupt -shm contents.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace walnut::shm {

constexpr size_t kSegment = 32768;
constexpr size_t kHashOffset = 16384;
constexpr uint32_t kHashSlots = 8192;
constexpr uint32_t kFirstSegmentFrames = 4062;
constexpr uint32_t kSegmentFrames = 4096;
constexpr size_t kHeaderBytes = 136;  // two header copies + checkpoint info

// In 64 bits: for frames within 33 of 2^32 the 32-bit sum would wrap to segment 0, and a page
// array index computed from it would point past the mapping.
inline uint32_t SegmentOf(uint32_t frame) {
  return static_cast<uint32_t>((static_cast<uint64_t>(frame) + kSegmentFrames - kFirstSegmentFrames - 1) / kSegmentFrames);
}
inline uint32_t IZero(uint32_t seg) { return seg == 0 ? 0 : kFirstSegmentFrames + (seg - 1) * kSegmentFrames; }
inline uint32_t Hash(uint32_t pgno) { return (pgno * 383u) & (kHashSlots - 1); }
inline uint32_t Next(uint32_t slot) { return (slot + 1) & (kHashSlots - 1); }

inline const uint32_t* PageArrayOf(const uint8_t* segment, uint32_t seg) {
  return reinterpret_cast<const uint32_t*>(segment + (seg == 0 ? kHeaderBytes : 0));
}
inline const std::atomic<uint16_t>* HashTableOf(const uint8_t* segment) {
  return reinterpret_cast<const std::atomic<uint16_t>*>(segment + kHashOffset);
}

// The latest frame in [minFrame, mxFrame] holding pgno: walks the whole probe chain of each
// segment, newest segment first. 0 = none (read the database file); -1 = corrupt (a slot value
// past the segment, a chain longer than the table, or mxFrame beyond `segments`: the caller maps
// the segments mxFrame needs first, ShmRegion::NeedFrame in shm.cc).
inline int64_t FindFrame(const std::vector<uint8_t*>& segments, uint32_t pgno, uint32_t mxFrame, uint32_t minFrame) {
  if (mxFrame == 0 || pgno == 0) return 0;
  if (minFrame < 1) minFrame = 1;
  if (minFrame > mxFrame) return 0;
  uint32_t top = SegmentOf(mxFrame), bottom = SegmentOf(minFrame);
  if (top >= segments.size()) return -1;
  for (int64_t seg = top; seg >= bottom; seg--) {
    uint32_t s = static_cast<uint32_t>(seg);
    const uint32_t* pages = PageArrayOf(segments[s], s);
    const std::atomic<uint16_t>* hash = HashTableOf(segments[s]);
    uint32_t base = IZero(s);
    uint32_t capacity = s == 0 ? kFirstSegmentFrames : kSegmentFrames;
    uint32_t best = 0;
    uint32_t slot = Hash(pgno);
    for (uint32_t probes = 0;; probes++) {
      if (probes >= kHashSlots) return -1;
      uint32_t v = hash[slot].load(std::memory_order_relaxed);
      if (v == 0) break;
      if (v > capacity) return -1;
      uint32_t frame = base + v;
      if (frame <= mxFrame && frame >= minFrame && pages[v - 1] == pgno && frame > best) best = frame;
      slot = Next(slot);
    }
    if (best != 0) return best;
  }
  return 0;
}

}  // namespace walnut::shm
