// checkpoint_copy.cc — see checkpoint_copy.h.
#include "checkpoint_copy.h"

#include <algorithm>

#include "page_size.h"
#include "posix_io.h"

namespace walnut::checkpoint {
namespace {

constexpr uint64_t kWalHeaderSize = 32;
constexpr uint64_t kFrameHeaderSize = 24;

// Byte offset of frame `frame`'s page image in the WAL.
uint64_t PageOffset(uint32_t frame, uint64_t frameSize) {
  return kWalHeaderSize + static_cast<uint64_t>(frame - 1) * frameSize + kFrameHeaderSize;
}

// Bytes of database pages written before their writeback is started (sync_file_range WRITE,
// not waited for): the final fdatasync then finds most of the copy on its way to the disk
// instead of queueing all of it at once in front of the commits' WAL syncs (header comment).
constexpr uint64_t kWritebackChunk = 256 << 10;

}  // namespace

bool ValidRequest(const CopyRequest& req, size_t count) {
  if (!ValidPageSize(req.pageSize) || req.firstFrame < 1 || count == 0) return false;
  const uint64_t last = static_cast<uint64_t>(req.firstFrame) + count - 1;  // mxFrame
  return last <= 0xFFFFFFFFULL && req.upTo >= req.firstFrame && req.upTo <= last;
}

void PlanCopies(const uint32_t* pgnos, size_t count, const CopyRequest& req, CopyScratch* s) {
  // a set of at least twice as many slots as frames: probes stay short
  size_t slots = 16;
  while (slots < 2 * count) slots *= 2;
  s->seen.assign(slots, 0);
  const size_t mask = slots - 1;
  int shift = 32;
  for (size_t n = slots; n > 1; n >>= 1) shift--;
  s->slots.clear();
  for (size_t i = count; i-- > 0;) {  // newest frame first: the first sighting of a page is its newest
    const uint32_t pgno = pgnos[i];
    if (pgno == 0 || pgno > req.nPage) continue;  // beyond the database: the truncate drops it
    size_t h = shift >= 32 ? 0 : static_cast<size_t>((pgno * 0x9E3779B1u) >> shift);
    while (s->seen[h] != 0 && s->seen[h] != pgno) h = (h + 1) & mask;
    if (s->seen[h] == pgno) continue;
    s->seen[h] = pgno;
    const uint32_t frame = req.firstFrame + static_cast<uint32_t>(i);
    if (frame <= req.upTo) s->slots.push_back({pgno, frame, 0});
  }
}

namespace {

// Reads the pages of slots[a, b) (any order on entry; left in frame order) into the buffer,
// frames at most kMaxGapBytes apart in one pread, and sets each slot's `at`.
void ReadWindow(int walFd, const CopyRequest& req, Slot* a, Slot* b, uint8_t* buffer, size_t capacity, CopyResult* r) {
  const uint64_t frameSize = kFrameHeaderSize + req.pageSize;
  std::sort(a, b, [](const Slot& x, const Slot& y) { return x.frame < y.frame; });
  size_t fill = 0;
  for (Slot* i = a; i < b;) {
    const uint32_t first = i->frame;
    Slot* j = i;
    // the window holds at most capacity / frameSize pages, so without gaps everything fits
    size_t reserved = static_cast<size_t>((b - i) * frameSize);
    while (j + 1 < b) {
      const uint64_t gap = static_cast<uint64_t>((j + 1)->frame - j->frame - 1) * frameSize;
      if (gap > kMaxGapBytes || fill + reserved + gap > capacity) break;
      reserved += static_cast<size_t>(gap);
      j++;
    }
    // from the first frame's header: each frame's header is read with its page and checked
    const size_t length = static_cast<size_t>(static_cast<uint64_t>(j->frame - first) * frameSize + frameSize);
    size_t got = 0;
    r->failure = posix::ReadFull(walFd, buffer + fill, length, PageOffset(first, frameSize) - kFrameHeaderSize, &got);
    r->stats.reads++;
    r->stats.bytesRead += got;
    if (r->failure.IsError()) {
      r->status = CopyStatus::kOsError;
      r->walFailed = true;
      return;
    }
    for (Slot* k = i; k <= j; k++) {
      const uint64_t at = static_cast<uint64_t>(k->frame - first) * frameSize;
      if (at + frameSize > got) {
        r->status = CopyStatus::kWalTooShort;
        r->badFrame = k->frame;
        return;
      }
      const uint8_t* header = buffer + fill + at;
      const uint32_t named = (uint32_t{header[0]} << 24) | (uint32_t{header[1]} << 16) | (uint32_t{header[2]} << 8) | header[3];
      if (named != k->pgno) {  // zeros, or another frame: not the frame the index names
        r->status = CopyStatus::kFrameMismatch;
        r->badFrame = k->frame;
        return;
      }
      k->at = static_cast<uint32_t>(fill + at + kFrameHeaderSize);
    }
    fill += length;
    i = j + 1;
  }
}

// The database range written and not yet handed to writeback (kWritebackChunk). Pages are
// written in ascending order across the whole copy, so one range grows until it is started.
struct Writeback {
  uint64_t from = 0, to = 0;
};

// Starts writeback of the pending range once it spans kWritebackChunk (or, with `all`, whatever is left).
OsFailure StartPendingWriteback(int dbFd, Writeback* w, bool all) {
  if (w->to <= w->from || (!all && w->to - w->from < kWritebackChunk)) return {};
  OsFailure f = posix::StartWriteback(dbFd, w->from, w->to - w->from);
  w->from = w->to;
  return f;
}

// Writes slots[a, b) (read into the buffer) in page order, each run of adjacent pages in one pwritev.
void WriteWindow(int dbFd, const CopyRequest& req, Slot* a, Slot* b, uint8_t* buffer, CopyScratch* s, Writeback* wb, CopyResult* r) {
  const uint64_t pageSize = req.pageSize;
  std::sort(a, b, [](const Slot& x, const Slot& y) { return x.pgno < y.pgno; });
  for (Slot* k = a; k < b;) {
    Slot* end = k + 1;
    while (end < b && end->pgno == (end - 1)->pgno + 1) end++;
    s->iov.clear();
    for (Slot* m = k; m < end; m++) s->iov.push_back({buffer + m->at, static_cast<size_t>(pageSize)});
    r->failure = posix::WritevFull(dbFd, s->iov.data(), s->iov.size(), static_cast<uint64_t>(k->pgno - 1) * pageSize);
    r->stats.writes++;
    if (r->failure.IsError()) {
      r->status = CopyStatus::kOsError;
      return;
    }
    r->stats.pages += static_cast<uint64_t>(end - k);
    const uint64_t at = static_cast<uint64_t>(k->pgno - 1) * pageSize;
    const uint64_t stop = static_cast<uint64_t>((end - 1)->pgno) * pageSize;
    if (wb->to <= wb->from) wb->from = at;
    wb->to = stop;
    r->failure = StartPendingWriteback(dbFd, wb, false);
    if (r->failure.IsError()) {
      r->status = CopyStatus::kOsError;
      return;
    }
    k = end;
  }
}

// Releases per-frame tables a large checkpoint grew (the buffer is kept: it is capped).
void TrimTables(CopyScratch* s) {
  if (s->seen.capacity() * sizeof(uint32_t) > kKeepTableBytes) std::vector<uint32_t>().swap(s->seen);
  if (s->slots.capacity() * sizeof(Slot) > kKeepTableBytes) std::vector<Slot>().swap(s->slots);
  if (s->iov.capacity() * sizeof(struct iovec) > kKeepTableBytes) std::vector<struct iovec>().swap(s->iov);
}

CopyResult CopyPlanned(int walFd, int dbFd, const uint32_t* pgnos, size_t count, const CopyRequest& req,
                       CopyScratch* s) {
  CopyResult r;
  if (!ValidRequest(req, count)) {
    r.status = CopyStatus::kInvalid;
    return r;
  }
  PlanCopies(pgnos, count, req, s);
  const size_t n = s->slots.size();
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
  const size_t cap = std::max<size_t>(kCopyBufferBytes, frameSize);
  // Room for what the reads will take: every planned frame, and the superseded frames between
  // two of them at most kMaxGapBytes apart, which are read over (the plan's slots come in frame
  // order, newest first). Sized for the planned frames alone, the buffer ran out of room for those
  // gaps after the first few, and every later one cost a pread of its own.
  uint64_t span = frameSize;
  for (size_t k = 1; k < n; k++) {
    const uint32_t a = s->slots[k - 1].frame, b = s->slots[k].frame;
    const uint64_t gap = static_cast<uint64_t>(std::max(a, b) - std::min(a, b) - 1) * frameSize;
    span += frameSize + (gap <= kMaxGapBytes ? gap : 0);
  }
  const size_t want = static_cast<size_t>(std::min<uint64_t>(cap, span));
  if (s->buffer.size() < want) s->buffer.resize(want);
  const size_t capacity = std::min(s->buffer.size(), cap);
  // Windows of consecutive page numbers: each is read (frames in frame order, near ones in one
  // pread) and then written in runs of adjacent pages. A WAL whose pages were written in page
  // order reads and writes in large calls; one written in random order still writes in large
  // calls (a write costs more than a read: it dirties pages, and waits on writeback under load).
  const size_t perWindow = static_cast<size_t>(capacity / frameSize);
  std::sort(s->slots.begin(), s->slots.end(), [](const Slot& x, const Slot& y) { return x.pgno < y.pgno; });
  Writeback wb;
  for (size_t i = 0; i < n; i += perWindow) {
    Slot* a = s->slots.data() + i;
    Slot* b = s->slots.data() + std::min(n, i + perWindow);
    ReadWindow(walFd, req, a, b, s->buffer.data(), capacity, &r);
    if (r.status != CopyStatus::kOk) return r;
    WriteWindow(dbFd, req, a, b, s->buffer.data(), s, &wb, &r);
    if (r.status != CopyStatus::kOk) return r;
  }
  r.failure = StartPendingWriteback(dbFd, &wb, true);
  if (r.failure.IsError()) r.status = CopyStatus::kOsError;
  return r;
}

}  // namespace

CopyResult CopyFrames(int walFd, int dbFd, const uint32_t* pgnos, size_t count, const CopyRequest& req,
                      CopyScratch* s) {
  CopyResult r = CopyPlanned(walFd, dbFd, pgnos, count, req, s);
  TrimTables(s);
  return r;
}

}  // namespace walnut::checkpoint
