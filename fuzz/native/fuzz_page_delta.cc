// libFuzzer target: EncodePageDelta (native/page_delta.h) on arbitrary frames, previous versions
// and out capacities, each in memory of exactly its size (ASan catches a byte read or written
// past it). A delta's ranges are applied back to the previous version: the page must come out,
// every range inside it, in order, apart by more than kMergeGap, and the payload at most half a page.
#include <cstdlib>
#include <cstring>
#include <vector>

#include "big_endian.h"
#include "page_delta.h"

using namespace walnut;
using namespace walnut::pagedelta;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  const size_t split = data[0] | (size_t(data[1]) << 8);  // frame bytes vs previous bytes
  const size_t outCapacity = (size_t(data[2]) << 4) | (data[3] & 15);
  const bool update = data[3] & 16;
  const uint8_t* rest = data + 4;
  const size_t n = size - 4;
  const size_t frameLength = split < n ? split : n;
  std::vector<uint8_t> frame(rest, rest + frameLength), previous(rest + frameLength, rest + n), out(outCapacity);
  // previous equal to most of the page (a delta worth making) when the lengths fit
  if (frameLength > kFrameHeaderSize && previous.size() == 1 && previous[0] < 128) {
    previous.assign(frame.begin() + kFrameHeaderSize, frame.end());
    for (size_t i = 0; i < previous.size(); i += 37) previous[i] ^= 1;
  }
  const std::vector<uint8_t> before = previous;
  // the scalar scan's answer first, on copies
  std::vector<uint8_t> scalarPrevious = previous, scalarOut(outCapacity);
  EncodeSetTier(checksum::Tier::kScalar);
  const size_t scalarWritten = EncodePageDelta(frame.data(), frame.size(), scalarPrevious.data(), scalarPrevious.size(), scalarOut.data(), scalarOut.size(), update);
  EncodeSetTier(static_cast<checksum::Tier>((data[3] >> 5) & 3));  // clamped to what the CPU has
  const size_t written = EncodePageDelta(frame.data(), frame.size(), previous.data(), previous.size(), out.data(), out.size(), update);
  if (written != scalarWritten || previous != scalarPrevious || (written != 0 && std::memcmp(out.data(), scalarOut.data(), written) != 0)) abort();
  const bool sameSize = frame.size() > kFrameHeaderSize && before.size() == frame.size() - kFrameHeaderSize;
  if (update && sameSize && std::memcmp(previous.data(), frame.data() + kFrameHeaderSize, previous.size()) != 0) abort();
  if ((!update || !sameSize) && previous != before) abort();
  if (written == 0) return 0;
  if (!sameSize || written > out.size() || written * 2 > before.size() || out[0] != kPageDeltaKind) abort();
  if (std::memcmp(out.data() + 1, frame.data(), kFrameHeaderSize) != 0) abort();
  std::vector<uint8_t> page = before;
  const uint32_t count = Be32(out.data() + 41);
  size_t at = 45, lastEnd = 0;
  for (uint32_t r = 0; r < count; r++) {
    if (at + 8 > written) abort();
    const uint32_t offset = Be32(out.data() + at), length = Be32(out.data() + at + 4);
    if (length == 0 || offset > page.size() || length > page.size() - offset || at + 8 + length > written) abort();
    if (r > 0 && offset <= lastEnd + kMergeGap) abort();
    std::memcpy(page.data() + offset, out.data() + at + 8, length);
    lastEnd = offset + length;
    at += 8 + length;
  }
  if (at != written || std::memcmp(page.data(), frame.data() + kFrameHeaderSize, page.size()) != 0) abort();
  return 0;
}
