// libFuzzer target: the WAL recovery scan (native/frame_scan.cc) over arbitrary bytes.
// Input: byte 0 picks the page size, byte 1 the checksum byte order, bytes 2..9 the salts,
// 10..17 the starting checksum; the rest is the WAL file. Checks the scan's invariants.
#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "frame_scan.h"

using namespace walnut;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 18) return 0;
  frames::ScanChain chain;
  chain.pageSize = 512u << (data[0] % 8);
  chain.bigEndian = data[1] & 1;
  std::memcpy(chain.salts, data + 2, 8);
  std::memcpy(&chain.running.s0, data + 10, 4);
  std::memcpy(&chain.running.s1, data + 14, 4);
  const uint8_t* file = data + 18;
  const size_t fileSize = size - 18;
  frames::ScanResult r;
  frames::ScanFrames(fileSize, chain, [&](uint8_t* buf, size_t len, uint64_t pos, size_t* got) {
    *got = pos >= fileSize ? 0 : std::min<size_t>(len, fileSize - pos);
    std::memcpy(buf, file + pos, *got);
    return OsFailure{};
  }, &r);
  if (r.mxFrame > r.lastValidFrame || r.pgnos.size() != r.lastValidFrame || r.commits > r.lastValidFrame) abort();
  if (r.mxFrame > 0 && r.dbSize == 0) abort();
  for (uint32_t p : r.pgnos) if (p == 0) abort();
  return 0;
}
