// page_delta_binding.h — the JS entry point of PAGE_DELTA encoding (page_delta.h):
//   encodePageDelta(frame: Uint8Array, previous: Uint8Array, out: Uint8Array, updatePrevious: boolean)
//       -> the payload's size written at out[0..], or 0 (the frame goes whole)
// Arguments are checked here (WALNUT_INVALID_ARGUMENT); frame, previous and out may be views
// of any buffers, overlapping or not (previous is written with memmove, last).
#pragma once

#include <napi.h>

namespace walnut::pagedelta {

void Register(Napi::Env env, Napi::Object exports);

}  // namespace walnut::pagedelta
