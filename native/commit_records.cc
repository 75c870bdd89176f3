// commit_records.cc — see commit_records.h.
#include "commit_records.h"

#include <cstring>

#include "big_endian.h"

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

}  // namespace walnut::exportrec
