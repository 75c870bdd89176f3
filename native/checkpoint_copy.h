// checkpoint_copy.h — the checkpoint's copy of WAL frames into the database file
// (reference/sqlite-wal.md section 12.2 steps b and d), as pure code over two descriptors, free
// of N-API so that it can be linked alone (fuzzers, native lanes). The locks, the read-mark
// rules, nBackfill and the truncate decision stay with the caller (lib/checkpoint/execute.ts).
//
//   input: the page numbers of frames firstFrame .. firstFrame + count - 1 (= nBackfill + 1 ..
//          mxFrame of the checkpointer's header, read from the wal-index page arrays), upTo
//          (mxSafeFrame), nPage (the header's database size in pages)
//   plan:  for every page number, its newest frame <= mxFrame; the page is copied iff that frame
//          is <= upTo and the page number is <= nPage. (A page whose newest frame lies beyond
//          upTo is not written at all, even from an older frame: SQLite's rule.) The frames are
//          walked newest first through a hash set of the page numbers seen, so the plan comes
//          out in frame order without a sort over every frame.
//   copy:  the planned pages are taken in windows of consecutive page numbers, as many as fit
//          in one scratch buffer of at most kCopyBufferBytes (reused across checkpoints). Each
//          window is read in frame order in large preads (frames at most kMaxGapBytes apart
//          share one read, the unneeded frames between them read and ignored), then written in
//          page order, every run of adjacent page numbers in one pwritev (IOV_MAX iovecs per
//          call, posix_io.h) pointing into the buffer: no page is copied in memory and nothing is
//          allocated per page. A WAL written in page order is read and written in large calls;
//          one written in random page order still writes in large calls, and reads about as
//          SQLite does (a write costs more than a read: it dirties pages, and waits on writeback
//          under load). Every kWritebackChunk (256 KiB) of database pages written, their
//          writeback is started (sync_file_range WRITE, not waited for), and the rest at the
//          end: the caller's one fdatasync then finds most of the copy already on its way,
//          instead of queueing all of it in front of the commits' WAL syncs at once (quiet A/B
//          at 64 committers: p99 0.86-0.93x, commits/s 1.03-1.09x; waiting for each chunk
//          before starting the next, or 1 MiB chunks, did worse: bench/README "#19 session 10").
//          A writeback error it meets fails the copy (nothing is published).
//
// Invariants:
//  - Every offset is computed in 64 bits from validated inputs: pageSize a power of two in
//    512..65536, frame numbers and page numbers in 1..2^32-1; a read that comes back short
//    (the WAL is shorter than the frames the index names) stops the copy with kWalTooShort,
//    and a frame whose header names another page than the index does (zeros where a process
//    that broke the locking protocol cut the WAL and someone extended it again) with
//    kFrameMismatch, before anything of that buffer-full is written. Each frame's 24-byte
//    header is read with its page (the window starts at the first frame's header) for this.
//  - Nothing is synced here except the WAL before the first write when asked (`syncWal`): the
//    caller syncs the database once, after deciding whether to truncate it (writeback started
//    here is not a sync: only that fdatasync makes the copy durable).
//  - On any failure the database file may hold some of the new pages: harmless, because the
//    caller publishes nBackfill only after a complete copy and sync, and every copied page is
//    still in the WAL (recovery or the next checkpoint writes it again).
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "os_failure.h"

namespace walnut::checkpoint {

constexpr size_t kCopyBufferBytes = 8u << 20;  // the scratch buffer's cap
constexpr size_t kMaxGapBytes = 64u << 10;     // unneeded bytes worth reading to save a pread

struct CopyRequest {
  uint32_t pageSize = 0;
  uint32_t firstFrame = 0;  // frame of pgnos[0]
  uint32_t upTo = 0;        // last frame that may be copied (mxSafeFrame)
  uint32_t nPage = 0;       // pages beyond this are not copied (the database's size)
  bool syncWal = false;     // fdatasync the WAL before the first write
};

struct CopyStats {
  uint64_t pages = 0;     // pages written to the database file
  uint64_t writes = 0;    // pwritev calls (runs of adjacent pages)
  uint64_t reads = 0;     // preads of the WAL
  uint64_t bytesRead = 0;
};

enum class CopyStatus { kOk, kOsError, kWalTooShort, kFrameMismatch, kInvalid };

struct CopyResult {
  CopyStatus status = CopyStatus::kOk;
  OsFailure failure;        // kOsError: which call failed
  bool walFailed = false;   // kOsError: on the WAL (else on the database file)
  uint32_t badFrame = 0;    // kWalTooShort / kFrameMismatch: the first frame that was not in the WAL
  CopyStats stats;
};

// A planned copy placed in the scratch buffer: the page's bytes are at buffer[at].
struct Slot {
  uint32_t pgno;
  uint32_t frame;
  uint32_t at;
};

// The memory one background lane keeps between checkpoints (not thread-safe: one per lane):
// the buffer (at most kCopyBufferBytes) stays; the per-frame tables are let go after a
// checkpoint that made them larger than kKeepTableBytes.
constexpr size_t kKeepTableBytes = 1u << 20;
struct CopyScratch {
  std::vector<uint8_t> buffer;
  std::vector<uint32_t> seen;  // open-addressing set of page numbers (0 = empty)
  std::vector<Slot> slots;
  std::vector<struct iovec> iov;
};

// Validates the request against `count` page numbers; false when it is not a consistent range.
bool ValidRequest(const CopyRequest& req, size_t count);

// The plan (see above) into scratch->slots, in frame order, newest first.
void PlanCopies(const uint32_t* pgnos, size_t count, const CopyRequest& req, CopyScratch* scratch);

// Plans and copies. `walFd` and `dbFd` are open descriptors; nothing is closed here.
CopyResult CopyFrames(int walFd, int dbFd, const uint32_t* pgnos, size_t count, const CopyRequest& req,
                      CopyScratch* scratch);

}  // namespace walnut::checkpoint
