// faults.h — test-only fault injection for the write and sync paths.
//
// Inert unless the process starts with WALNUT_FAULT_INJECTION=1 in its environment (read once
// at load). When armed, tests set rules with TEST_setFaults({...}): fail the Nth write (counting
// pwrite and pwritev calls from the moment the rule is set) with an errno, make the Nth write
// short (only half the bytes reach the file, then the errno), or fail the Nth sync (fsync or
// fdatasync), kill the process (SIGKILL) at the Nth sync, before it is made (a crash between a
// write and its sync: the written bytes stay in the file, nothing after runs), fail the Nth open of a WalnutFile (counting from the moment the rule is set, a
// parked descriptor's reuse included), fail the Nth commit-lane cleanup hook, or cut the -shm to 0
// bytes after the Nth ShmRegion.commitInline's frames are written and synced, before it indexes
// them (what another process can do in that window: shm.cc). Each rule fires once. Process-wide: the point is to reproduce disk faults, which
// do not care which thread or environment issued the write.
#pragma once

#include <napi.h>

#include <cstddef>

namespace walnut::faults {

enum class WriteFault { kNone, kFail, kShort };

// Called by every write: returns what to do with it. `*err` receives the errno to report.
WriteFault OnWrite(int* err);
// Called by every sync: returns true when it must fail with `*err`.
bool OnSync(int* err);

// Called by every WalnutFile open before it opens: true when it must fail with `*err`.
bool OnOpen(int* err);

// Called by a commit-lane member before it adds its environment cleanup hook: true when adding
// it must count as failed (rule failLaneCleanupHook).
bool FailLaneCleanupHook();

// Called by ShmRegion.commitInline once its frames are written and synced: true when it must
// cut the -shm to 0 bytes now (rule cutShmAfterInlineWrite).
bool CutShmAfterInlineWrite();

bool Armed();
Napi::Value TEST_SetFaults(const Napi::CallbackInfo& info);

}  // namespace walnut::faults
