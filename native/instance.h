// instance.h — per-environment state of the addon.
//
// The addon is context-aware: the main thread and every worker_thread that loads it get their
// own Instance (napi instance data), so no JS object, reference or thread is shared between
// environments. The Instance owns the environment's I/O thread; it is stopped and joined when
// the environment is torn down.
#pragma once

#include <napi.h>

#include <memory>

#include "file.h"

namespace walnut {

class IoThread;

struct Instance {
  explicit Instance(Napi::Env env);
  ~Instance();
  Instance(const Instance&) = delete;
  Instance& operator=(const Instance&) = delete;

  static Instance* Get(Napi::Env env) { return env.GetInstanceData<Instance>(); }

  Napi::FunctionReference errorClass;     // WalnutError, registered by lib/native.ts
  Napi::FunctionReference fileClass;      // NativeFile constructor
  Napi::FunctionReference shmClass;       // ShmRegion constructor
  std::unique_ptr<IoThread> io;           // runs the async file operations of this env, FIFO
  std::unique_ptr<IoThread> background;   // a second lane (checkpoint copies and syncs), so that
                                          // long background I/O never queues in front of commits
  std::unique_ptr<IoThread> read;         // a third lane (a follow export's WAL reads), so that they
                                          // queue behind neither a commit nor a checkpoint's sync
  std::unique_ptr<IoThread> lock;         // a fourth lane, lockWithin's waits only (file.h, LaneId):
                                          // a wait blocks, and nothing else waits behind it; a
                                          // pool of up to kLockWaiters threads, one per wait
  // More lock waits at once than any process has stores waiting for a lease; beyond it a wait
  // queues (its deadline runs from its submission: file.cc LockWaitOp).
  static constexpr size_t kLockWaiters = 64;

  // The lane of a file opened with { lane: 'background' | 'read' } or of any other file, or the
  // lock lane.
  IoThread* Lane(LaneId lane) {
    return lane == LaneId::kBackground ? background.get()
           : lane == LaneId::kRead     ? read.get()
           : lane == LaneId::kLock     ? lock.get()
                                       : io.get();
  }
};

}  // namespace walnut
