// frame_scan.h — the WAL recovery scan as a pure function over a "read at offset" callback
// (frames.h states the format and the validity rules), and the export's count of the commit
// frames up to a frame it knows to be valid (header reads only). Kept free of N-API so that the
// fuzz target (fuzz/native/fuzz_wal_scan.cc) runs exactly the code the addon runs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "checksum/sqlite_wal.h"
#include "os_failure.h"

namespace walnut::frames {

struct ScanChain {
  uint32_t pageSize = 0;
  bool bigEndian = false;
  uint8_t salts[8] = {};  // as on disk (big-endian salt-1, salt-2)
  checksum::WalChecksum running{0, 0};
};

struct ScanResult {
  uint32_t lastValidFrame = 0;  // every frame 1..lastValidFrame passed the checks
  uint32_t mxFrame = 0;         // last commit frame among them (0 = none)
  uint32_t dbSize = 0;          // commit size of frame mxFrame
  uint32_t commits = 0;
  checksum::WalChecksum atMxFrame{0, 0};
  checksum::WalChecksum atLastValid{0, 0};
  uint64_t fileSize = 0;
  std::vector<uint32_t> pgnos;  // page number of frames 1..lastValidFrame
  OsFailure failure;
};

// Reads up to `len` bytes at `pos` into `buf`; `*got` < len only at end of file.
using ReadAt = std::function<OsFailure(uint8_t* buf, size_t len, uint64_t pos, size_t* got)>;

constexpr size_t kScanChunk = 8u << 20;  // bytes read per call during recovery

// `chain.pageSize` must be a valid page size (512..65536, a power of two).
void ScanFrames(uint64_t fileSize, const ScanChain& chain, const ReadAt& read, ScanResult* r);

struct CommitCount {
  uint32_t commits = 0;       // frames among 1..lastFrame whose commit size is nonzero
  uint32_t missingFrame = 0;  // the first frame whose header the file does not hold (0 = none)
  uint8_t last[24] = {};      // frame lastFrame's header
  OsFailure failure;
};

// Counts the commit frames among frames 1..lastFrame of a WAL of `pageSize` pages, reading only
// their 24-byte headers (one read each: a frame's page is not needed, and may be 64 KiB). The
// caller knows the frames valid (a wal-index's mxFrame): nothing is checked but their presence.
void CountCommitFrames(uint32_t pageSize, uint32_t lastFrame, const ReadAt& read, CommitCount* r);

}  // namespace walnut::frames
