// frame_scan.cc — see frame_scan.h.
#include "frame_scan.h"

#include "big_endian.h"

#include <algorithm>
#include <cstring>
#include <memory>

namespace walnut::frames {
namespace {

constexpr size_t kWalHeaderSize = 32;
constexpr size_t kFrameHeaderSize = 24;


}  // namespace

void ScanFrames(uint64_t fileSize, const ScanChain& chain, const ReadAt& read, ScanResult* r) {
  r->fileSize = fileSize;
  const size_t frameSize = kFrameHeaderSize + chain.pageSize;
  if (fileSize < kWalHeaderSize) return;
  const uint64_t lastFrame = (fileSize - kWalHeaderSize) / frameSize;
  if (lastFrame == 0) return;
  const size_t framesPerChunk = kScanChunk >= frameSize ? kScanChunk / frameSize : 1;
  const uint64_t bufferFrames = std::min<uint64_t>(framesPerChunk, lastFrame);
  std::unique_ptr<uint8_t[]> buffer(new uint8_t[bufferFrames * frameSize]);
  checksum::WalChecksum running = chain.running;
  r->atMxFrame = running;
  r->atLastValid = running;
  uint64_t frame = 1;
  while (frame <= lastFrame && frame <= 0xFFFFFFFFULL) {
    uint64_t count = std::min<uint64_t>(bufferFrames, lastFrame - frame + 1);
    size_t got = 0;
    uint64_t pos = kWalHeaderSize + (frame - 1) * frameSize;
    r->failure = read(buffer.get(), count * frameSize, pos, &got);
    if (r->failure.IsError()) return;
    count = got / frameSize;  // the file may have shrunk since its size was taken
    if (count == 0) return;
    for (uint64_t i = 0; i < count; i++, frame++) {
      const uint8_t* header = buffer.get() + i * frameSize;
      uint32_t pgno = Be32(header);
      if (pgno == 0 || std::memcmp(header + 8, chain.salts, 8) != 0) return;
      running = checksum::SqliteWalFrameChecksum(header, header + kFrameHeaderSize, chain.pageSize, running, chain.bigEndian);
      if (running.s0 != Be32(header + 16) || running.s1 != Be32(header + 20)) return;
      r->lastValidFrame = static_cast<uint32_t>(frame);
      r->atLastValid = running;
      r->pgnos.push_back(pgno);
      uint32_t commitSize = Be32(header + 4);
      if (commitSize != 0) {
        r->mxFrame = static_cast<uint32_t>(frame);
        r->dbSize = commitSize;
        r->commits++;
        r->atMxFrame = running;
      }
    }
  }
}

void CountCommitFrames(uint32_t pageSize, uint32_t lastFrame, const ReadAt& read, CommitCount* r) {
  const uint64_t frameSize = kFrameHeaderSize + static_cast<uint64_t>(pageSize);
  for (uint64_t frame = 1; frame <= lastFrame; frame++) {
    size_t got = 0;
    r->failure = read(r->last, kFrameHeaderSize, kWalHeaderSize + (frame - 1) * frameSize, &got);
    if (r->failure.IsError()) return;
    if (got < kFrameHeaderSize) {
      r->missingFrame = static_cast<uint32_t>(frame);
      return;
    }
    if (Be32(r->last + 4) != 0) r->commits++;
  }
}

}  // namespace walnut::frames
