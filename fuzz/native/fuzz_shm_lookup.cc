// libFuzzer target: the wal-index lookup (native/shm_index.h) over a corrupt -shm: up to three
// 32 KiB segments filled from the input, then lookups; must terminate and never read outside
// the segments, and any frame it returns must satisfy the lookup's contract.
#include <cstdlib>
#include <cstring>
#include <vector>

#include "shm_index.h"

using namespace walnut::shm;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 16) return 0;
  uint32_t pgno, mx, mn;
  std::memcpy(&pgno, data, 4);
  std::memcpy(&mx, data + 4, 4);
  std::memcpy(&mn, data + 8, 4);
  size_t count = 1 + data[12] % 3;
  mx %= IZero(static_cast<uint32_t>(count)) + (count == 1 ? kFirstSegmentFrames : kSegmentFrames) + 1;
  std::vector<std::vector<uint8_t>> storage(count, std::vector<uint8_t>(kSegment));
  std::vector<uint8_t*> segments;
  const uint8_t* fill = data + 13;
  size_t fillSize = size - 13;
  for (auto& seg : storage) {
    for (size_t i = 0; i < kSegment; i++) seg[i] = fillSize ? fill[(i * 7 + i / 4096) % fillSize] : 0;
    segments.push_back(seg.data());
  }
  int64_t f = FindFrame(segments, pgno, mx, mn);
  if (f > 0) {
    uint32_t frame = static_cast<uint32_t>(f);
    if (frame > mx || frame < (mn < 1 ? 1 : mn)) abort();
    uint32_t seg = SegmentOf(frame);
    if (PageArrayOf(segments[seg], seg)[frame - IZero(seg) - 1] != pgno) abort();
  }
  return 0;
}
