// io_thread.cc — see io_thread.h.
#include "io_thread.h"

#include "errors.h"

#include <pthread.h>

#include <chrono>

namespace walnut {

void IoOp::SettleVoid(Napi::Env env, const OsFailure& failure, const std::string& path) {
  if (failure.IsError()) {
    deferred_.Reject(MakeOsError(env, failure, path).Value());
  } else {
    deferred_.Resolve(env.Undefined());
  }
}

IoThread::IoThread(Napi::Env env, const char* name) : name_(name) {
  wakeup_ = Wakeup::New(env, "walnut-io", 0, 1, this);
  wakeup_.Unref(env);
  worker_ = std::thread([this] { Run(); });
}

IoThread::~IoThread() { Stop(); }

void IoThread::Stop() {
  if (!worker_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (worker_.joinable()) worker_.join();
  for (auto& op : queue_) op->Abandon();
  for (auto& op : done_) op->Abandon();
  queue_.clear();
  done_.clear();
}

Napi::Promise IoThread::Submit(Napi::Env env, std::unique_ptr<IoOp> op) {
  Napi::Promise promise = op->Promise();
  if (outstanding_++ == 0) wakeup_.Ref(env);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(std::move(op));
    queued_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_one();
  return promise;
}

void IoThread::Run() {
  pthread_setname_np(pthread_self(), name_);  // /proc/<pid>/task/*/comm, top -H, perf
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    if (queue_.empty() && !stopping_) {
      lock.unlock();
      auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(kSpinMicros);
      while (queued_.load(std::memory_order_acquire) == 0 && std::chrono::steady_clock::now() < until) {
        std::this_thread::yield();  // let kernel threads (e.g. the journal commit of an fsync) run
      }
      lock.lock();
    }
    wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (stopping_) return;
    std::unique_ptr<IoOp> op = std::move(queue_.front());
    queue_.pop_front();
    queued_.fetch_sub(1, std::memory_order_relaxed);
    lock.unlock();
    op->Execute();
    lock.lock();
    done_.push_back(std::move(op));
    if (!wakePending_) {
      wakePending_ = true;
      // NonBlockingCall on an unlimited queue only fails once the env is closing.
      wakeup_.NonBlockingCall(nullptr);
    }
  }
}

void IoThread::OnWake(Napi::Env env, Napi::Function, IoThread* self, void*) {
  if (env != nullptr) self->Drain(env);
}

void IoThread::Drain(Napi::Env env) {
  std::vector<std::unique_ptr<IoOp>> finished;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    finished.swap(done_);
    wakePending_ = false;
  }
  for (auto& op : finished) {
    Napi::HandleScope scope(env);
    op->Complete(env);
  }
  outstanding_ -= finished.size();
  if (outstanding_ == 0 && !finished.empty()) wakeup_.Unref(env);
}

}  // namespace walnut
