// commit_records.cc — see commit_records.h.
#include "commit_records.h"

#include <cstring>

#include "big_endian.h"
#include "page_delta.h"

namespace walnut::exportrec {
namespace {

inline bool IsCommitFrame(const uint8_t* frame) { return (frame[4] | frame[5] | frame[6] | frame[7]) != 0; }

}  // namespace

const char* CommitFramer::Check(const FrameRunInput& in, size_t capacity) {
  if (!ValidPageSize(in.pageSize)) return "pageSize must be a power of two between 512 and 65536";
  const uint64_t frameSize = kFrameHeader + in.pageSize;
  if (in.length % frameSize != 0) return "frames must be a whole number of frames of pageSize";
  if (in.length != 0 && in.frames == nullptr) return "frames is missing";
  if (in.framesPerRecord == 0 || in.framesPerRecord > MaxFramesPerRecord(in.pageSize)) {
    return "framesPerRecord must keep a FRAMES record within 16 MiB";
  }
  const uint64_t count = in.length / frameSize;
  if (in.lastSeq > UINT64_MAX - count) return "the commit sequence would wrap";
  if (capacity < FramedBound(count, in.pageSize)) return "out is too small for the run's records";
  return nullptr;
}

const char* CommitFramer::Frame(const FrameRunInput& in, uint8_t* out, size_t capacity, FramedRun* r) {
  *r = FramedRun{};
  if (const char* why = Check(in, capacity)) return why;
  if (versions_ != nullptr) {
    FrameWithVersions(in, out, capacity, r);
    return nullptr;
  }
  const size_t frameSize = kFrameHeader + in.pageSize;
  const size_t count = in.length / frameSize;
  uint64_t seq = in.lastSeq;
  uint8_t* at = out;
  for (size_t i = 0, start = 0; i < count; i++) {
    const bool commit = IsCommitFrame(in.frames + i * frameSize);
    if (!commit && i + 1 - start < in.framesPerRecord && i + 1 < count) continue;
    const uint8_t* piece = in.frames + start * frameSize;
    const size_t pieceBytes = (i + 1 - start) * frameSize;
    start = i + 1;
    PutBe64(at, 1 + static_cast<uint64_t>(pieceBytes));
    at[8] = kFramesKind;
    std::memcpy(at + 9, piece, pieceBytes);
    at += 9 + pieceBytes;
    r->records++;
    if (!commit) {
      if (!open_) hash_ = checksum::Xxh3State(0);
      hash_.Update(piece, pieceBytes);
      open_ = true;
      continue;
    }
    checksum::Hash128 h;
    if (open_) {
      hash_.Update(piece, pieceBytes);
      h = hash_.Digest128();
      open_ = false;
    } else {
      h = checksum::Xxh3_128(piece, pieceBytes, 0);
    }
    PutBe64(at, kCommitMetaPayload);
    at[8] = kCommitMetaKind;
    PutBe64(at + 9, ++seq);
    PutBe64(at + 17, in.timeMs);
    PutBe64(at + 25, h.high);
    PutBe64(at + 33, h.low);
    at += 8 + kCommitMetaPayload;
    r->records++;
    r->commits++;
  }
  r->bytes = static_cast<uint64_t>(at - out);
  return nullptr;
}

void CommitFramer::KeepPages(uint32_t firstPgno, const uint8_t* pages, size_t length, uint32_t pageSize) {
  if (versions_ == nullptr || pageSize == 0) return;
  for (size_t at = 0, i = 0; at + pageSize <= length; at += pageSize, i++) {
    versions_->Put(firstPgno + static_cast<uint32_t>(i), pages + at, pageSize);
  }
}

// Frame() with page versions (see the header). Each frame's records take at most what
// FramedBound() allows it: a FRAMES record of its own (9 + frame) and a COMMIT_META (41), or a
// PAGE_DELTA (8 + at most half a page) and a COMMIT_META.
void CommitFramer::FrameWithVersions(const FrameRunInput& in, uint8_t* out, size_t capacity, FramedRun* r) {
  pagedelta::PageVersions& versions = *versions_;
  const size_t frameSize = kFrameHeader + in.pageSize;
  const size_t count = in.length / frameSize;
  uint64_t seq = in.lastSeq;
  uint8_t* at = out;
  size_t runStart = 0, runFrames = 0;  // whole frames waiting to go as one FRAMES record
  const auto runBytes = [&]() -> size_t { return runFrames == 0 ? 0 : 9 + runFrames * frameSize; };
  const auto flushRun = [&]() {
    if (runFrames == 0) return;
    const size_t bytes = runFrames * frameSize;
    PutBe64(at, 1 + static_cast<uint64_t>(bytes));
    at[8] = kFramesKind;
    std::memcpy(at + 9, in.frames + runStart * frameSize, bytes);
    at += 9 + bytes;
    r->records++;
    runFrames = 0;
  };
  for (size_t i = 0; i < count; i++) {
    const uint8_t* frame = in.frames + i * frameSize;
    const uint32_t pgno = Be32(frame);
    const uint32_t commitSize = Be32(frame + 4);
    if (!open_) {
      hash_ = checksum::Xxh3State(0);
      txnMaxPgno_ = 0;
    }
    hash_.Update(frame, frameSize);
    open_ = true;
    if (pgno > txnMaxPgno_) txnMaxPgno_ = pgno;
    uint32_t previousSize = 0;
    uint8_t* previous = versions.Find(pgno, &previousSize);
    size_t delta = 0;
    if (previous != nullptr && previousSize == in.pageSize) {
      // written where it goes once the run ahead of it is out (the run's frames are whole)
      uint8_t* payload = at + runBytes() + 8;
      delta = pagedelta::EncodePageDelta(frame, frameSize, previous, previousSize, payload, capacity - static_cast<size_t>(payload - out), true);
      versions.Touch(pgno);
    } else {
      versions.Put(pgno, frame + kFrameHeader, in.pageSize);
    }
    if (delta != 0) {
      flushRun();
      PutBe64(at, delta);
      at += 8 + delta;
      r->records++;
    } else {
      if (runFrames == in.framesPerRecord) flushRun();
      if (runFrames == 0) runStart = i;
      runFrames++;
    }
    if (commitSize == 0) continue;
    flushRun();
    checksum::Hash128 h = hash_.Digest128();
    open_ = false;
    PutBe64(at, kCommitMetaPayload);
    at[8] = kCommitMetaKind;
    PutBe64(at + 9, ++seq);
    PutBe64(at + 17, in.timeMs);
    PutBe64(at + 25, h.high);
    PutBe64(at + 33, h.low);
    at += 8 + kCommitMetaPayload;
    r->records++;
    r->commits++;
    // Versions past the commit's size go: those of a shrink, and those of pages this very
    // transaction wrote past its end (SQLite spills pages to the WAL before the commit frame; a
    // transaction that grows the database and shrinks it back, e.g. with auto_vacuum=FULL and a
    // small cache_size, leaves frames past a commit size no smaller than the one before). Kept,
    // a later write of such a page went as a PAGE_DELTA against the spilled version, which no
    // reader has (to them the page is past the end: zeros): the replica re-based on it in a loop
    // (77 re-bases in 5 s, never past the commit) and restore stopped there (DeltaMismatch).
    if (commitSize < dbSize_ || txnMaxPgno_ > commitSize) versions.Truncate(commitSize);
    dbSize_ = commitSize;
  }
  flushRun();
  r->bytes = static_cast<uint64_t>(at - out);
}

}  // namespace walnut::exportrec
