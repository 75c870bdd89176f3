// page_delta_binding.h — the JS entry point of PAGE_DELTA encoding (page_delta.h):
//   encodePageDelta(frame: Uint8Array, previous: Uint8Array, out: Uint8Array, updatePrevious: boolean)
//       -> the payload's size written at out[0..], or 0 (the frame goes whole)
//   TEST_setPageDeltaPath(tier: 'scalar' | 'avx2' | 'avx512' | 'best') -> the scan now used
//       (clamped to what the CPU has; tests compare every path's bytes)
// Arguments are checked here (WALNUT_INVALID_ARGUMENT); frame and previous may be views of any
// buffers, overlapping or not (previous is then written with memmove, after the scan), out may
// share bytes with neither but previous when previous is not written.
#pragma once

#include <napi.h>

namespace walnut::pagedelta {

void Register(Napi::Env env, Napi::Object exports);

}  // namespace walnut::pagedelta
