// commit_records.h — the export's records for a run of WAL frames (DESIGN.md section 5), framed
// as ARKHEXP1 records, byte for byte what lib/export/commit-records.ts (the reference encoder)
// makes and lib/export/framing.ts frames. Pure engine code: no N-API, so the fuzz target
// (fuzz/native/fuzz_commit_records.cc) runs exactly what the addon runs.
//
// Bytes written for a run, record after record, nothing between them:
//   record       = u64 big-endian payload length L (0 < L <= kMaxRecord), then L payload bytes
//   FRAMES       payload 0x02, then n whole WAL frames bit-exact (24-byte header + page each),
//                1 <= n <= framesPerRecord, consecutive frames of the run
//   COMMIT_META  payload 0x05, u64 BE commit sequence, u64 BE unix ms, then the 16-byte
//                xxh3-128 (seed 0) of the transaction's frame bytes (all its FRAMES pieces, in
//                order, kind bytes excluded), high u64 BE then low u64 BE (the canonical form)
//
// Splitting rule (the reference's): a FRAMES record ends after a commit frame (a frame whose
// header bytes 4..7, the commit size, are nonzero), after framesPerRecord frames, or at the
// run's last frame, whichever comes first. A commit frame's FRAMES record is followed at once
// by its COMMIT_META, numbered lastSeq + 1, lastSeq + 2, ... within the run. A transaction the
// run ends inside goes on in the next run: its hash so far stays in the CommitFramer.
//
// With page versions (UseVersions: the replication's records), a frame whose page has a previous
// version in the stream (page_versions.h) goes as a PAGE_DELTA record (page_delta.h) when that is
// at most half the page, and every frame moves its page's version on; FRAMES records then also
// end before a PAGE_DELTA, and framesPerRecord bounds a run of whole frames (the publisher's
// message size). COMMIT_META's hash is still of the whole frames. A commit frame whose database
// size is below the last one's drops the versions past it (a page grown back goes whole). These
// are the bytes lib/replicate/publisher.ts made from the plain records before (test/unit/
// replication-framing compares them with that reference).
//
// Invariants: Frame() checks every length before it writes a byte (the run is whole frames of
// a valid page size; framesPerRecord keeps a FRAMES payload within kMaxRecord; `out` holds
// FramedBound() bytes for the run; the sequence cannot wrap) and writes nothing when one fails.
// It never reads outside `frames` nor writes outside out[0..FramedBound).
#pragma once

#include <cstddef>
#include <cstdint>

#include <memory>

#include "checksum/xxh3.h"
#include "page_size.h"
#include "page_versions.h"

namespace walnut::exportrec {

constexpr uint32_t kMaxRecord = 16u << 20;  // framing.ts MAX_RECORD
constexpr uint8_t kFramesKind = 0x02;
constexpr uint8_t kCommitMetaKind = 0x05;
constexpr uint32_t kCommitMetaPayload = 33;
constexpr uint32_t kFrameHeader = 24;
// A frame's records beyond its bytes, at most: a FRAMES kind byte and a COMMIT_META, each framed.
constexpr uint32_t kBoundPerFrame = 8 + 1 + 8 + kCommitMetaPayload;

// The most frames one FRAMES record holds for `pageSize` (its payload within kMaxRecord).
inline uint32_t MaxFramesPerRecord(uint32_t pageSize) { return (kMaxRecord - 1) / (kFrameHeader + pageSize); }

// The bytes a run of `frameCount` frames may take, records and framing included.
inline uint64_t FramedBound(uint64_t frameCount, uint32_t pageSize) {
  return frameCount * (static_cast<uint64_t>(kFrameHeader) + pageSize + kBoundPerFrame);
}

struct FramedRun {
  uint64_t bytes = 0;    // written to out[0..bytes)
  uint32_t records = 0;  // FRAMES and COMMIT_META records among them
  uint32_t commits = 0;  // COMMIT_META records (the last one numbered lastSeq + commits)
};

struct FrameRunInput {
  const uint8_t* frames = nullptr;
  size_t length = 0;            // a whole number of frames of pageSize
  uint32_t pageSize = 0;
  uint32_t framesPerRecord = 0;  // 1..MaxFramesPerRecord(pageSize)
  uint64_t lastSeq = 0;          // the stream's last commit sequence so far
  uint64_t timeMs = 0;           // stamped on every COMMIT_META of the run
};

// One export's records, run after run: carries the hash of a transaction a run ended inside.
// Copyable, so a caller can frame on a copy and keep it only once the records are kept.
class CommitFramer {
 public:
  // Why `in` cannot be framed into `capacity` bytes, or nullptr.
  static const char* Check(const FrameRunInput& in, size_t capacity);
  // Frames the run into out (capacity bytes): nullptr, or why not (Check's answer; nothing
  // written and the framer unchanged then).
  const char* Frame(const FrameRunInput& in, uint8_t* out, size_t capacity, FramedRun* r);
  // A transaction has frames in the stream but not yet its commit frame.
  bool InTransaction() const { return open_; }
  // Delta mode from now on (see the header); copies of the framer share the versions, so a
  // caller keeps only one copy's runs (a run framed on a copy it then drops has moved them on).
  void UseVersions(std::shared_ptr<pagedelta::PageVersions> versions) { versions_ = std::move(versions); }
  bool HasVersions() const { return versions_ != nullptr; }
  // The base image's pages firstPgno.. (whole pages of pageSize in `pages`): their versions.
  void KeepPages(uint32_t firstPgno, const uint8_t* pages, size_t length, uint32_t pageSize);
  // The database's size in pages after the base image (a later commit below it truncates).
  void SetDbSize(uint32_t dbSize) { dbSize_ = dbSize; }

 private:
  void FrameWithVersions(const FrameRunInput& in, uint8_t* out, size_t capacity, FramedRun* r);

  checksum::Xxh3State hash_{0};
  bool open_ = false;
  std::shared_ptr<pagedelta::PageVersions> versions_;
  uint32_t dbSize_ = 0;
  // The highest page number the open transaction wrote (its frames may go past its commit's size).
  uint32_t txnMaxPgno_ = 0;
};

}  // namespace walnut::exportrec
