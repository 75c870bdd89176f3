// libFuzzer target: the export's commit framer (native/commit_records.cc) over arbitrary bytes.
// Input: byte 0 picks the page size, byte 1 framesPerRecord (0: the most a record holds), byte 2
// how many runs the frames are cut into, bytes 3..10 lastSeq, 11..18 the time, 19.. the frames
// (cut to whole frames; their headers' commit sizes decide the commits). `out` is exactly
// FramedBound() bytes between guard bytes. Checks: the guards and the frames stay untouched,
// the records parse back (u64 BE length within 16 MiB, kind, sizes), the FRAMES payloads are the
// frames in order, each commit frame's FRAMES record is followed by its COMMIT_META numbered in
// sequence, and a too-small `out` or a bad framesPerRecord is refused with nothing written.
// Byte 2's top bit turns on delta mode (page versions, a budget of 0-7 pages from bits 4..6):
// then a PAGE_DELTA stands for its frame (its header the frame's, its ranges applied to the
// page's last version in the stream giving the frame's page, within half a page), and a commit
// drops the versions past its size (a shrink, or pages its own frames wrote past it), as the
// reference map here does: a delta of a page the reference dropped aborts.
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <vector>

#include "commit_records.h"
#include "page_delta.h"

using namespace walnut;
using namespace walnut::exportrec;

namespace {

uint32_t GetU32(const uint8_t* p) { return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3]; }

uint64_t GetU64(const uint8_t* p) {
  uint64_t v = 0;
  for (int k = 0; k < 8; k++) v = (v << 8) | p[k];
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 19) return 0;
  const uint32_t pageSize = 512u << (data[0] % 8);
  const uint32_t frameSize = kFrameHeader + pageSize;
  const uint32_t most = MaxFramesPerRecord(pageSize);
  const uint32_t framesPerRecord = data[1] == 0 ? most : 1 + data[1] % 8;
  const uint32_t runs = 1 + data[2] % 4;
  const uint64_t lastSeq = GetU64(data + 3);
  const uint64_t timeMs = GetU64(data + 11);
  const size_t count = (size - 19) / frameSize;
  std::vector<uint8_t> frames(data + 19, data + 19 + count * frameSize);
  const std::vector<uint8_t> original = frames;
  CommitFramer framer;
  const bool deltas = (data[2] & 0x80) != 0;
  if (deltas) framer.UseVersions(std::make_shared<pagedelta::PageVersions>(((data[2] >> 4) & 7) * static_cast<uint64_t>(pageSize)));
  std::map<uint32_t, std::vector<uint8_t>> versions;  // every page's last version in the stream (no budget)
  uint32_t dbSize = 0;
  // a frame passed in the stream (whole or as a delta): the reference versions move on
  const auto passed = [&](size_t f) {
    const uint8_t* fr = frames.data() + f * frameSize;
    versions[GetU32(fr)].assign(fr + kFrameHeader, fr + frameSize);
    const uint32_t commitSize = GetU32(fr + 4);
    if (commitSize == 0) return;
    versions.erase(versions.upper_bound(commitSize), versions.end()); // past the commit's end (a shrink, or pages spilled past it)
    dbSize = commitSize;
  };

  // refusals write nothing and leave the framer as it was
  {
    std::vector<uint8_t> small(FramedBound(count, pageSize) + 2, 0xA5);
    FrameRunInput in{frames.data(), frames.size(), pageSize, framesPerRecord, lastSeq, timeMs};
    FramedRun r;
    if (count > 0 && framer.Frame(in, small.data() + 1, FramedBound(count, pageSize) - 1, &r) == nullptr) abort();
    in.framesPerRecord = most + 1;
    if (framer.Frame(in, small.data() + 1, FramedBound(count, pageSize), &r) == nullptr) abort();
    for (uint8_t b : small) if (b != 0xA5) abort();
    if (framer.InTransaction()) abort();
  }

  uint64_t seq = lastSeq;
  size_t done = 0;
  for (uint32_t k = 0; k < runs; k++) {
    const size_t take = k + 1 == runs ? count - done : (count - done) / 2;
    const uint64_t bound = FramedBound(take, pageSize);
    std::vector<uint8_t> out(bound + 16, 0x5A);
    FrameRunInput in{frames.data() + done * frameSize, take * frameSize, pageSize, framesPerRecord, seq, timeMs};
    FramedRun r;
    const char* why = framer.Frame(in, out.data() + 8, bound, &r);
    if (seq > UINT64_MAX - take) {
      if (why == nullptr) abort();  // a sequence that could wrap is refused
      return 0;
    }
    if (why != nullptr) abort();
    if (r.bytes > bound) abort();
    for (size_t i = 0; i < 8; i++) if (out[i] != 0x5A || out[8 + bound + i] != 0x5A) abort();
    for (size_t i = 8 + r.bytes; i < 8 + bound; i++) if (out[i] != 0x5A) abort();
    // parse the records back
    const uint8_t* at = out.data() + 8;
    const uint8_t* end = at + r.bytes;
    size_t frame = done;
    uint32_t records = 0, commits = 0;
    bool pendingCommit = false;
    while (at < end) {
      if (end - at < 9) abort();
      const uint64_t len = GetU64(at);
      if (len == 0 || len > kMaxRecord || len > static_cast<uint64_t>(end - at - 8)) abort();
      const uint8_t* p = at + 8;
      records++;
      if (p[0] == kFramesKind) {
        if (pendingCommit || (len - 1) % frameSize != 0) abort();
        const size_t n = (len - 1) / frameSize;
        if (n == 0 || n > framesPerRecord) abort();
        if (std::memcmp(p + 1, frames.data() + frame * frameSize, n * frameSize) != 0) abort();
        const uint8_t* lastHeader = frames.data() + (frame + n - 1) * frameSize;
        pendingCommit = (lastHeader[4] | lastHeader[5] | lastHeader[6] | lastHeader[7]) != 0;
        for (size_t f = frame; f < frame + n; f++) passed(f);
        frame += n;
      } else if (p[0] == pagedelta::kPageDeltaKind) {
        // its frame's header, then its ranges over the page's last version give the frame's page
        if (!deltas || pendingCommit || frame >= done + take || len < 45 || len * 2 > pageSize + 0u) abort();
        const uint8_t* fr = frames.data() + frame * frameSize;
        if (std::memcmp(p + 1, fr, kFrameHeader) != 0) abort();
        auto v = versions.find(GetU32(fr));
        if (v == versions.end()) abort();
        std::vector<uint8_t> page = v->second;
        size_t q = 45;
        for (uint32_t k = 0, ranges = GetU32(p + 41); k < ranges; k++) {
          if (q + 8 > len) abort();
          const uint32_t off = GetU32(p + q), n = GetU32(p + q + 4);
          if (off > pageSize || n > pageSize - off || q + 8 + n > len) abort();
          std::memcpy(page.data() + off, p + q + 8, n);
          q += 8 + n;
        }
        if (q != len || std::memcmp(page.data(), fr + kFrameHeader, pageSize) != 0) abort();
        pendingCommit = (fr[4] | fr[5] | fr[6] | fr[7]) != 0;
        passed(frame);
        frame++;
      } else if (p[0] == kCommitMetaKind) {
        if (!pendingCommit || len != kCommitMetaPayload) abort();
        if (GetU64(p + 1) != ++seq || GetU64(p + 9) != timeMs) abort();
        pendingCommit = false;
        commits++;
      } else {
        abort();
      }
      at = p + len;
    }
    if (pendingCommit || frame != done + take || records != r.records || commits != r.commits) abort();
    done += take;
  }
  if (frames != original) abort();
  return 0;
}
