// page_delta.h — PAGE_DELTA encoding (records.ts kind 0x06; lib/export/page-delta.ts owns the
// format and its decoder): a WAL frame's page as the byte ranges that differ from the page's
// previous version. Engine code: no N-API here (page_delta_binding.cc checks the arguments).
//
// Payload, bit-exact with lib/export/page-delta.ts encodePageDeltaJs:
//   u8 0x06, the frame's 24-byte header, xxh3-128 of the new page (16 bytes: high u64 then
//   low u64, each big-endian), u32 BE range count, then per range u32 BE offset, u32 BE length
//   and the range's new bytes. Ranges are maximal runs of differing bytes, in order; a run
//   starting at most kMergeGap bytes after the previous range's end is merged into it (the
//   equal bytes between travel inside it).
//
// Invariants: every read stays inside frame[0, frameLength) and previous[0, previousLength);
// every write inside out[0, outCapacity). A delta is produced only when its payload is at most
// half the page (size * 2 <= pageSize) and fits outCapacity; otherwise nothing is written to
// `out` and the answer is 0 (the frame goes whole). A frame not longer than its header, or a
// previous version of another size, is 0 too.
#pragma once

#include <cstddef>
#include <cstdint>

#include "checksum/cpu.h"

namespace walnut::pagedelta {

constexpr size_t kFrameHeaderSize = 24;
constexpr size_t kMergeGap = 8;
constexpr uint8_t kPageDeltaKind = 0x06;

// The payload's size written to out, or 0 (see the header). With `updatePrevious`, previous
// then holds the new page (whatever the answer, when the sizes match): the caller's copy of
// "the page's previous version in the stream" moves on in the same pass.
size_t EncodePageDelta(const uint8_t* frame, size_t frameLength, uint8_t* previous, size_t previousLength,
                       uint8_t* out, size_t outCapacity, bool updatePrevious);

// The scan EncodePageDelta uses (page_delta.cc: scalar, AVX2 or AVX-512, the fastest the CPU
// has unless a test forced another; every one writes the same bytes).
checksum::Tier EncodeTier();
void EncodeSetTier(checksum::Tier tier);  // clamps to what the CPU supports (kSse42 is scalar)

}  // namespace walnut::pagedelta
