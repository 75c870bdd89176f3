// thread_class.h — the JS entry point that moves the calling thread into the kernel's background
// scheduling class:
//   setThreadBackground() -> true when the calling thread now runs as SCHED_IDLE (Linux), false
//                            where the class does not exist or the kernel refused (nothing changed)
// Why: a thread doing deferred work beside a commit path (the replication worker, replicate/
// worker.ts) takes a CPU only when no thread of the normal class wants one, so the I/O thread and
// the store's event loop, woken by an fdatasync's completion, never wait behind it for one of a
// small machine's CPUs. The class is the thread's own (Linux schedules threads, pid 0 = the
// caller), and threads the caller creates afterwards inherit it: the caller starts whatever
// process-wide pools it uses first (see worker.ts). A SCHED_IDLE thread is not starved for ever:
// it still gets a share when every CPU is busy (weight 3 against nice 0's 1024).
#pragma once

#include <napi.h>

namespace walnut::threadclass {

void Register(Napi::Env env, Napi::Object exports);

}  // namespace walnut::threadclass
