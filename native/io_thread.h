// io_thread.h — the addon's own I/O threads: per JS environment, a main lane, a background
// lane (checkpoint work) and a read lane (a follow export's WAL reads), each one thread, and a
// lock lane (lockWithin's blocking lock waits, file.h), a small pool: one thread per wait.
//
// Async file operations must not run on libuv's thread pool: fs, dns and zlib share its four
// threads, and a slow fsync there stalls unrelated work. Each environment gets one thread that
// executes operations in submission order (FIFO), so a write submitted before an fsync on the
// same file is always on disk before that fsync runs, and a close runs after every earlier
// operation of its file.
//
// Wake-up latency: on virtual machines a sleeping thread takes tens of microseconds to wake,
// which is most of the cost of a small write. After each operation the worker therefore keeps
// polling for new work for kSpinMicros (yielding the CPU on every poll, so kernel threads such
// as ext4's journal commit still run) before it sleeps on the condition variable.
//
// A lane of several workers (the lock lane) runs its operations side by side, in no order: a
// worker is started when an operation is submitted and none is idle (up to the lane's maximum;
// beyond it operations queue), and one idle for kIdleExitMs ends. Its workers do not spin for
// new work: a lock wait is not a small write.
//
// Names: the main lane's thread is "walnut-io", the background lane's "walnut-bg", the read
// lane's "walnut-rd", the lock lane's "walnut-lk" (each of them; a thread's
// name is what /proc/<pid>/task/*/comm, top -H and perf show: per-thread CPU is how the lane
// cases are measured, bench/README.md #21).
//
// Completion: the worker pushes finished operations to a completion list and wakes the JS
// thread through the thread's own uv_async_t on the environment's loop, sent where the list's
// mutex is let go anyway (never under it); one wake-up drains every finished operation (in a
// callback scope, so the promises' reactions run as after any Node callback). Not a
// ThreadSafeFunction: its call sends the wake-up while holding the function's own mutex, and
// the JS thread, woken on the other CPU, blocked on that mutex in most batches (perf
// sched_switch of a lane leader, 4 workers x 16 committers: 31% of its context switches, ~1.8
// per batch, each one more sleep and wake-up paid in the paravirtualised guest's interrupt
// re-enabling; bench/README.md #21 session 12). A completion is not settled once the
// environment runs no JS (a terminated worker's loop runs once more while it cleans up).
// The handle is referenced only while operations are pending, so an idle addon never keeps the
// process alive. Teardown: an async environment cleanup hook stops the worker (no send after
// it), destroys the callback scope's async context and closes the handle; the hook is removed by the close callback, and Node keeps the
// loop (and the napi env, hence the Instance owning this object) alive until then.
#pragma once

#include <napi.h>
#include <node_api.h>
#include <uv.h>

#include <string>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "os_failure.h"

namespace walnut {

// One asynchronous operation. Execute() runs on the I/O thread and must not touch JS;
// Complete() runs on the JS thread and makes the value the promise settles with.
//
// Raw N-API on the JS-thread side (js_value.h says why): the promise is made with
// napi_create_promise, and Complete() makes its value with raw calls, every status checked. A
// worker can be terminated from another thread at any instant, between any two of those calls:
// a Complete() that could not make its value returns false, and the promise (and every later
// completion of that wake-up) is left unsettled, nothing reaching JS. An operation whose promise
// could not be made (its submitting call was cut by the termination) still runs, so the
// bookkeeping its Execute() ends (FileState's in-flight count) stays balanced; it settles nothing.
class IoOp {
 public:
  explicit IoOp(Napi::Env env) {
    if (napi_create_promise(env, &deferred_, &promise_) != napi_ok) {
      deferred_ = nullptr;
      promise_ = nullptr;
    }
  }
  virtual ~IoOp() = default;
  IoOp(const IoOp&) = delete;
  IoOp& operator=(const IoOp&) = delete;

  virtual void Execute() = 0;
  // Any thread, while Execute() runs: the lane is stopping (Stop() joins its workers): an
  // operation that may wait long (a lock wait, file.cc) ends soon. Nothing for the others.
  virtual void Interrupt() {}
  // JS thread, under the lane's mutex, while the operation is still queued: true when it is no
  // longer wanted (a lock wait whose file closed or whose waits were cancelled, file.cc); it is
  // then settled (Complete) without Execute() ever running (IoThread::WithdrawQueued).
  virtual bool Withdraw() { return false; }
  // The outcome: *value, a rejection when *rejected; false when it could not be made.
  virtual bool Complete(napi_env env, napi_value* value, bool* rejected) = 0;

  // The promise, in the handle scope of the constructor's call; null when it could not be made
  // (an exception is then pending in that call).
  napi_value Promise() const { return promise_; }
  // JS thread: settles the promise with Complete()'s outcome; false when the environment no
  // longer takes values (nothing more should be tried in this wake-up).
  bool Settle(napi_env env);

  // Keeps a JS value (e.g. a Buffer whose memory the op uses) alive until Complete().
  void KeepAlive(Napi::Value value) { keepAlive_.push_back(Napi::Persistent(value)); }
  // The value of the `index`th KeepAlive call (on the JS thread, in Complete()).
  napi_value Kept(napi_env env, size_t index) const {
    napi_value v = nullptr;
    return napi_get_reference_value(env, keepAlive_[index], &v) == napi_ok ? v : nullptr;
  }
  // Environment teardown: the references die with the env; do not delete them afterwards.
  void Abandon() {
    for (auto& ref : keepAlive_) ref.SuppressDestruct();
  }

 protected:
  // For operations whose promise resolves to nothing: a rejection with the OS error at `path`
  // (a WalnutError), else undefined.
  static bool VoidOutcome(napi_env env, const OsFailure& failure, const std::string& path, napi_value* value, bool* rejected);
  // A rejection with the OS error at `path`.
  static bool OsRejection(napi_env env, const OsFailure& failure, const std::string& path, napi_value* value, bool* rejected);

 private:
  napi_deferred deferred_ = nullptr;
  napi_value promise_ = nullptr;
  std::vector<Napi::Reference<Napi::Value>> keepAlive_;
};

class IoThread {
 public:
  // `name`: the worker thread's (header comment; at most 15 characters, Linux's limit).
  // `maxWorkers` > 1: operations run side by side on up to that many threads (header comment).
  IoThread(Napi::Env env, const char* name, size_t maxWorkers = 1);
  ~IoThread();
  // Stops the workers after the operations they are running (interrupted: IoOp::Interrupt);
  // pending ops are abandoned (JS thread: the environment's cleanup hooks, or the destructor).
  // Idempotent.
  void Stop();
  IoThread(const IoThread&) = delete;
  IoThread& operator=(const IoThread&) = delete;

  // JS thread only. Takes ownership and returns the op's promise (empty when it could not be
  // made: the op runs all the same, see IoOp).
  Napi::Value Submit(Napi::Env env, std::unique_ptr<IoOp> op);
  // JS thread only: the queued operations whose Withdraw() says true are settled now, not
  // when a worker reaches them (a lock wait queued behind a full pool: up to a second).
  void WithdrawQueued();
  // JS thread only: no operation submitted that has not completed (none queued, none running).
  bool Idle() const { return outstanding_ == 0; }
  // Any thread: Stop() was called. An operation that may run long (a lock wait, file.cc) ends
  // early on it: Stop() joins the workers after their current operations, and a worker's
  // terminate() waited for the rest of a lock burst (up to 1 s).
  bool StopRequested() const { return stopRequested_.load(std::memory_order_acquire); }

 private:
  static void OnAsync(uv_async_t* handle);
  static void OnEnvCleanup(napi_async_cleanup_hook_handle, void* arg);
  static void OnClosed(uv_handle_t* handle);

  void Run();
  void Drain(napi_env env);
  // Under mutex_ (a lane of several workers): starts one if an operation would otherwise wait
  // while the lane may grow; hands over those that ended for idleness to be joined.
  void GrowLocked(std::vector<std::thread>* ended);

  std::mutex mutex_;                              // guards queue_, done_, stopping_, workers
  std::condition_variable wake_;                  // signals the worker
  std::deque<std::unique_ptr<IoOp>> queue_;       // submitted, not yet executed
  std::vector<std::unique_ptr<IoOp>> done_;       // executed, not yet completed on JS
  static constexpr int kSpinMicros = 50;
  static constexpr int kIdleExitMs = 5000;        // a lane of several workers: an idle one ends
  const char* name_;                              // a string literal (Instance)
  const size_t maxWorkers_;
  std::atomic<int> queued_{0};
  std::atomic<bool> stopRequested_{false};       // Stop() was called (StopRequested)
  bool stopping_ = false;
  bool wakePending_ = false;                      // a wake-up is sent and not yet drained
  size_t outstanding_ = 0;                        // JS thread only: submitted - completed
  napi_env env_ = nullptr;
  napi_async_context context_ = nullptr;          // the callback scope's async context (destroyed
                                                  // at the environment's end, OnEnvCleanup)
  napi_async_cleanup_hook_handle hook_ = nullptr;
  uv_async_t async_;                              // the completion wake-up (header comment)
  bool closing_ = false;                          // JS thread only: the handle is closing
  std::vector<std::thread> workers_;              // started, not yet joined
  std::vector<std::thread::id> ended_;            // workers that ended for idleness (to join)
  std::vector<IoOp*> running_;                    // operations in Execute() (Stop interrupts them)
  size_t idle_ = 0;                               // workers waiting for an operation
  bool stopped_ = false;                          // JS thread: Stop() ran
};

}  // namespace walnut
