// file.h — NativeFile: one open file descriptor exposed to JavaScript.
//
// Every operation exists twice: `op(...)` returns a promise and runs on the environment's I/O
// thread (io_thread.h), `opSync(...)` runs on the calling thread for start-up and tools.
// The I/O thread never touches memory it does not own: a caller's buffer may be changed, or its
// ArrayBuffer transferred and freed, before the operation runs. So async write/writev copy the
// bytes into the operation's own buffer when they are called, and async read reads into one and
// copies into the caller's buffer on the JS thread once done (a buffer detached meanwhile gets
// nothing: WALNUT_INVALID_ARGUMENT, reason Detached). readLent/writevLent use the buffers as
// they are, for walnut's own memory that nobody changes or detaches until the promise settles
// (export records, restore batches, FEC groups), where the copy would be pure cost.
// Ownership: the descriptor lives in a shared FileState that queued operations also hold, so a
// NativeFile collected by GC while operations are queued never pulls the fd from under them.
// Closing: close()/closeSync() mark the handle closed at once (later calls fail with
// WALNUT_CLOSED); the descriptor itself is released after every earlier operation has finished —
// async close is queued behind them (FIFO) and completes on the JS thread, closeSync waits for
// in-flight async operations; a lock wait (lockWithin, on the lock lane) is interrupted instead,
// one not started yet never runs (both reject WALNUT_CLOSED). Locks are OFD locks tied to this descriptor (posix_io.h); closing
// releases only them. Releasing goes through fd_registry.h: while this process holds classic
// POSIX locks on the file (a SQLite library in the same process), the descriptor is kept open,
// parked, and reused by the next open of that file; opens take a parked descriptor first.
// Opening never follows a symbolic link at the last path component unless asked to
// (followSymlinks): a refused link is WALNUT_CANTOPEN, reason 'Symlink' (file.cc, OpenRequest).
#pragma once

#include <napi.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "os_failure.h"

namespace walnut {

namespace lock_wait {
class Waiter;
}

// The I/O lanes of an environment (instance.h): the main lane (commits), the background lane
// (checkpoint copies and syncs, zero-ahead) and the read lane (a follow export's WAL reads,
// which must queue behind neither: export/follow.ts). The lock lane runs lockWithin's waits
// only (no file is opened on it), each on a thread of its own (a pool, io_thread.h): a wait
// blocks for up to its whole time, and on the background lane its forerunner (a burst of tries)
// held up every checkpoint step and zero-ahead of the environment behind it.
enum class LaneId : uint8_t { kMain = 0, kBackground = 1, kRead = 2, kLock = 3 };

struct FileState {
  FileState(int fd, std::string path) : fd(fd), path(std::move(path)) {}
  ~FileState();  // closes the fd if nobody did
  FileState(const FileState&) = delete;
  FileState& operator=(const FileState&) = delete;

  void BeginOp();  // an async op was queued
  void EndOp();    // an async op finished (I/O thread)
  void WaitIdle();  // blocks until no async op is in flight
  // A lock wait (lockWithin) starts on the lock lane: counted in flight from now, and only while
  // the file is not closing (false then: the wait must not touch fd); `waiter` is interrupted by
  // a close or CancelWaits() until EndWait(). Not counted while queued: the wait's lane is not
  // the file's, so a close is not ordered behind it, and a close that waited for a queued wait
  // blocked the JS thread until the wait had run (up to 1 s).
  bool BeginWait(lock_wait::Waiter* waiter);
  void EndWait(lock_wait::Waiter* waiter);
  // JS thread (lockWithin's cancelLockWithin()): every wait submitted so far ends now, false.
  void CancelWaits();
  // Bumped by CancelWaits(): a wait submitted before a bump stops (lock lane).
  std::atomic<uint64_t> waitCancels{0};
  // JS thread: marks the file closing, waits until idle, then hands the fd to
  // fd_registry::Release (fd becomes -1).
  OsFailure Release();

  int fd;
  const std::string path;
  bool closed = false;      // JS thread only: no new operations accepted
  // Set by close()/closeSync() with `closed` (Close then interrupts the waits: InterruptWaits),
  // read by a running lock wait (any thread): it stops, so the close waits for one
  // interruption, not for the rest of the wait.
  std::atomic<bool> closing{false};
  // Interrupts the lock waits in progress (they ask their stop condition again: lock_wait.h).
  void InterruptWaits();
  // The environment's I/O lane its async operations run on (Instance::Lane).
  LaneId lane = LaneId::kMain;
  // Serializes the writes of this process that may extend the file: a WAL append holds it from
  // its window check through its pwritev, the WAL's zero-ahead (wal_zero_ahead.h) around each
  // chunk it writes at the end of the file, so neither ever writes over bytes the other wrote.
  std::mutex extend;

 private:
  std::mutex mutex_;  // guards inflight_, waiters_, and `closing` against BeginWait
  std::condition_variable idle_;
  int inflight_ = 0;
  std::vector<lock_wait::Waiter*> waiters_;  // lock waits in progress (BeginWait .. EndWait)
};

class NativeFile : public Napi::ObjectWrap<NativeFile> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit NativeFile(const Napi::CallbackInfo& info);

  // For other native modules (frames, shm): the state of an open NativeFile, or throws; or
  // nullptr with nothing thrown when the environment is being torn down (worker.terminate():
  // napi_unwrap then fails and the wrapped object cannot be reached).
  static std::shared_ptr<FileState> StateOf(Napi::Env env, Napi::Value value);

 private:
  static Napi::Value OpenAsync(const Napi::CallbackInfo& info);
  static Napi::Value SyncDirectory(const Napi::CallbackInfo& info);
  static Napi::Value SyncDirectoryAsync(const Napi::CallbackInfo& info);
  static Napi::Value PendingCloses(const Napi::CallbackInfo& info);
  static Napi::Value SweepPendingCloses(const Napi::CallbackInfo& info);

  // `lent`: use the caller's buffer on the I/O thread, without the copy (header comment)
  Napi::Value Read(const Napi::CallbackInfo& info, bool sync, bool lent);
  Napi::Value ReadCopied(const Napi::CallbackInfo& info, bool sync) { return Read(info, sync, false); }
  Napi::Value ReadLent(const Napi::CallbackInfo& info, bool sync) { return Read(info, sync, true); }
  Napi::Value Write(const Napi::CallbackInfo& info, bool sync);
  Napi::Value Writev(const Napi::CallbackInfo& info, bool sync, bool lent);
  Napi::Value WritevCopied(const Napi::CallbackInfo& info, bool sync) { return Writev(info, sync, false); }
  Napi::Value WritevLent(const Napi::CallbackInfo& info, bool sync) { return Writev(info, sync, true); }
  Napi::Value Fsync(const Napi::CallbackInfo& info, bool sync);
  Napi::Value Fdatasync(const Napi::CallbackInfo& info, bool sync);
  Napi::Value Truncate(const Napi::CallbackInfo& info, bool sync);
  Napi::Value Allocate(const Napi::CallbackInfo& info, bool sync);
  Napi::Value Size(const Napi::CallbackInfo& info, bool sync);
  Napi::Value Close(const Napi::CallbackInfo& info, bool sync);
  Napi::Value TryLock(const Napi::CallbackInfo& info);
  Napi::Value LockWithin(const Napi::CallbackInfo& info);
  Napi::Value CancelLockWithin(const Napi::CallbackInfo& info);
  Napi::Value Unlock(const Napi::CallbackInfo& info);
  Napi::Value QueryLock(const Napi::CallbackInfo& info);
  Napi::Value GetFd(const Napi::CallbackInfo& info);
  Napi::Value GetPath(const Napi::CallbackInfo& info);
  Napi::Value GetClosed(const Napi::CallbackInfo& info);

  bool CheckOpen(Napi::Env env);

  // Binds one implementation to its async (Sync = false) and sync entry points.
  template <Napi::Value (NativeFile::*Method)(const Napi::CallbackInfo&, bool), bool Sync>
  Napi::Value Variant(const Napi::CallbackInfo& info) {
    return (this->*Method)(info, Sync);
  }

  std::shared_ptr<FileState> state_;
};

// Queues `work` (system calls on the file's descriptor) on the file's I/O lane, as one operation
// of that file (close waits for it); the promise resolves to undefined, or rejects with the OS
// error at the file's path. For engine operations outside NativeFile (checkpoint, export).
Napi::Value SubmitFileWork(Napi::Env env, std::shared_ptr<FileState> state, std::function<OsFailure(int fd)> work);

}  // namespace walnut
