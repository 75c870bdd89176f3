// checkpoint_copy.cc — see checkpoint_copy.h.
#include "checkpoint_copy.h"

#include <algorithm>

#include "posix_io.h"

namespace walnut::checkpoint {
namespace {

constexpr uint64_t kWalHeaderSize = 32;
constexpr uint64_t kFrameHeaderSize = 24;

bool ValidPageSize(uint32_t n) { return n >= 512 && n <= 65536 && (n & (n - 1)) == 0; }

// Byte offset of frame `frame`'s page image in the WAL.
uint64_t PageOffset(uint32_t frame, uint64_t frameSize) {
  return kWalHeaderSize + static_cast<uint64_t>(frame - 1) * frameSize + kFrameHeaderSize;
}

}  // namespace

bool ValidRequest(const CopyRequest& req, size_t count) {
  if (!ValidPageSize(req.pageSize) || req.firstFrame < 1 || count == 0) return false;
  const uint64_t last = static_cast<uint64_t>(req.firstFrame) + count - 1;  // mxFrame
  return last <= 0xFFFFFFFFULL && req.upTo >= req.firstFrame && req.upTo <= last;
}

void PlanCopies(const uint32_t* pgnos, size_t count, const CopyRequest& req, CopyScratch* s) {
  // (pgno, frame) pairs sorted: the last pair of each page number holds its newest frame.
  s->keys.clear();
  s->keys.reserve(count);
  for (size_t i = 0; i < count; i++) {
    const uint32_t pgno = pgnos[i];
    if (pgno == 0 || pgno > req.nPage) continue;  // beyond the database: the truncate drops it
    s->keys.push_back((static_cast<uint64_t>(pgno) << 32) | (req.firstFrame + static_cast<uint32_t>(i)));
  }
  std::sort(s->keys.begin(), s->keys.end());
  s->copies.clear();
  for (size_t i = 0; i < s->keys.size(); i++) {
    if (i + 1 < s->keys.size() && (s->keys[i + 1] >> 32) == (s->keys[i] >> 32)) continue;
    const uint32_t frame = static_cast<uint32_t>(s->keys[i]);
    if (frame <= req.upTo) s->copies.push_back({static_cast<uint32_t>(s->keys[i] >> 32), frame});
  }
}

CopyResult CopyFrames(int walFd, int dbFd, const uint32_t* pgnos, size_t count, const CopyRequest& req,
                      CopyScratch* s) {
  CopyResult r;
  if (!ValidRequest(req, count)) {
    r.status = CopyStatus::kInvalid;
    return r;
  }
  PlanCopies(pgnos, count, req, s);
  const size_t n = s->copies.size();
  if (n == 0) return r;
  if (req.syncWal) {
    r.failure = posix::Sync(walFd, true);
    if (r.failure.IsError()) {
      r.status = CopyStatus::kOsError;
      r.walFailed = true;
      return r;
    }
  }
  const uint64_t frameSize = kFrameHeaderSize + req.pageSize;
  const uint64_t pageSize = req.pageSize;

  // frame order for reading
  s->slots.resize(n);
  for (size_t i = 0; i < n; i++) s->slots[i] = {s->copies[i].pgno, s->copies[i].frame, 0};
  std::sort(s->slots.begin(), s->slots.end(), [](const Slot& a, const Slot& b) { return a.frame < b.frame; });
  const uint64_t span = static_cast<uint64_t>(s->slots[n - 1].frame - s->slots[0].frame) * frameSize + pageSize;
  const size_t want = static_cast<size_t>(std::max<uint64_t>(std::min<uint64_t>(span, kCopyBufferBytes), pageSize));
  if (s->buffer.size() < want) s->buffer.resize(want);
  const size_t capacity = std::min(s->buffer.size(), std::max<size_t>(kCopyBufferBytes, pageSize));
  uint8_t* const buffer = s->buffer.data();

  for (size_t i = 0; i < n;) {
    // fill the buffer with extents of frames, in frame order
    const size_t batchStart = i;
    size_t fill = 0;
    while (i < n && fill + pageSize <= capacity) {
      const uint32_t first = s->slots[i].frame;
      size_t j = i;
      while (j + 1 < n) {
        const uint32_t next = s->slots[j + 1].frame;
        const uint64_t gap = static_cast<uint64_t>(next - s->slots[j].frame - 1) * frameSize;
        const uint64_t length = static_cast<uint64_t>(next - first) * frameSize + pageSize;
        if (gap > kMaxGapBytes || fill + length > capacity) break;
        j++;
      }
      const size_t length = static_cast<size_t>(static_cast<uint64_t>(s->slots[j].frame - first) * frameSize + pageSize);
      size_t got = 0;
      r.failure = posix::ReadFull(walFd, buffer + fill, length, PageOffset(first, frameSize), &got);
      r.stats.reads++;
      r.stats.bytesRead += got;
      if (r.failure.IsError()) {
        r.status = CopyStatus::kOsError;
        r.walFailed = true;
        return r;
      }
      for (size_t k = i; k <= j; k++) {
        const uint64_t at = static_cast<uint64_t>(s->slots[k].frame - first) * frameSize;
        if (at + pageSize > got) {
          r.status = CopyStatus::kWalTooShort;
          r.badFrame = s->slots[k].frame;
          return r;
        }
        s->slots[k].at = static_cast<uint32_t>(fill + at);
      }
      fill += length;
      i = j + 1;
    }
    // write this buffer-full out in page order, adjacent pages in one pwritev
    std::sort(s->slots.begin() + batchStart, s->slots.begin() + i, [](const Slot& a, const Slot& b) { return a.pgno < b.pgno; });
    for (size_t k = batchStart; k < i;) {
      size_t end = k + 1;
      while (end < i && s->slots[end].pgno == s->slots[end - 1].pgno + 1) end++;
      s->iov.clear();
      for (size_t m = k; m < end; m++) s->iov.push_back({buffer + s->slots[m].at, static_cast<size_t>(pageSize)});
      r.failure = posix::WritevFull(dbFd, s->iov.data(), s->iov.size(), static_cast<uint64_t>(s->slots[k].pgno - 1) * pageSize);
      r.stats.writes++;
      if (r.failure.IsError()) {
        r.status = CopyStatus::kOsError;
        return r;
      }
      r.stats.pages += end - k;
      k = end;
    }
  }
  return r;
}

}  // namespace walnut::checkpoint
