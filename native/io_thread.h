// io_thread.h — the addon's own I/O threads: per JS environment, a main lane and a background
// lane (checkpoint work), each one thread.
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
// Names: the main lane's thread is "walnut-io", the background lane's "walnut-bg" (a thread's
// name is what /proc/<pid>/task/*/comm, top -H and perf show: per-thread CPU is how the lane
// cases are measured, bench/README.md #21).
//
// Completion: the worker pushes finished operations to a completion list and wakes the JS
// thread through a ThreadSafeFunction; one wake-up drains every finished operation. The
// ThreadSafeFunction is referenced only while operations are pending, so an idle addon never
// keeps the process alive.
#pragma once

#include <napi.h>
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
// Complete() runs on the JS thread and settles the promise.
class IoOp {
 public:
  explicit IoOp(Napi::Env env) : deferred_(Napi::Promise::Deferred::New(env)) {}
  virtual ~IoOp() = default;
  IoOp(const IoOp&) = delete;
  IoOp& operator=(const IoOp&) = delete;

  virtual void Execute() = 0;
  virtual void Complete(Napi::Env env) = 0;

  Napi::Promise Promise() const { return deferred_.Promise(); }

  // Keeps a JS value (e.g. a Buffer whose memory the op uses) alive until Complete().
  void KeepAlive(Napi::Value value) { keepAlive_.push_back(Napi::Persistent(value)); }
  // The value of the `index`th KeepAlive call (on the JS thread, in Complete()).
  Napi::Value Kept(size_t index) const { return keepAlive_[index].Value(); }
  // Environment teardown: the references die with the env; do not delete them afterwards.
  void Abandon() {
    for (auto& ref : keepAlive_) ref.SuppressDestruct();
  }

 protected:
  // For operations whose promise resolves to nothing: rejects with the OS error at `path`
  // (a WalnutError), else resolves undefined.
  void SettleVoid(Napi::Env env, const OsFailure& failure, const std::string& path);

  Napi::Promise::Deferred deferred_;

 private:
  std::vector<Napi::Reference<Napi::Value>> keepAlive_;
};

class IoThread {
 public:
  // `name`: the worker thread's (header comment; at most 15 characters, Linux's limit).
  IoThread(Napi::Env env, const char* name);
  ~IoThread();
  // Stops the worker after the operation it is running; pending ops are abandoned. Called from
  // an env cleanup hook registered after the ThreadSafeFunction, so it runs before Node closes
  // the ThreadSafeFunction and the worker can never call into a closed one. Idempotent.
  void Stop();
  IoThread(const IoThread&) = delete;
  IoThread& operator=(const IoThread&) = delete;

  // JS thread only. Takes ownership and returns the op's promise.
  Napi::Promise Submit(Napi::Env env, std::unique_ptr<IoOp> op);
  // JS thread only: no operation submitted that has not completed (none queued, none running).
  bool Idle() const { return outstanding_ == 0; }

 private:
  static void OnWake(Napi::Env env, Napi::Function, IoThread* self, void*);
  using Wakeup = Napi::TypedThreadSafeFunction<IoThread, void, &IoThread::OnWake>;

  void Run();
  void Drain(Napi::Env env);

  std::mutex mutex_;                              // guards queue_, done_, stopping_
  std::condition_variable wake_;                  // signals the worker
  std::deque<std::unique_ptr<IoOp>> queue_;       // submitted, not yet executed
  std::vector<std::unique_ptr<IoOp>> done_;       // executed, not yet completed on JS
  static constexpr int kSpinMicros = 50;
  const char* name_;                              // a string literal (Instance)
  std::atomic<int> queued_{0};
  bool stopping_ = false;
  bool wakePending_ = false;                      // a wake-up call is already queued
  size_t outstanding_ = 0;                        // JS thread only: submitted - completed
  Wakeup wakeup_;
  std::thread worker_;
};

}  // namespace walnut
