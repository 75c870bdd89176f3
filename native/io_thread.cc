// io_thread.cc — see io_thread.h.
#include "io_thread.h"

#include "errors.h"

#include <pthread.h>

#include <algorithm>
#include <chrono>

namespace walnut {

bool IoOp::Settle(napi_env env) {
  if (deferred_ == nullptr) return true;  // its promise was never made: nothing to settle
  napi_value value = nullptr;
  bool rejected = false;
  if (!Complete(env, &value, &rejected)) return false;
  napi_deferred deferred = deferred_;
  deferred_ = nullptr;  // (a settle call frees it, whatever it returns)
  return (rejected ? napi_reject_deferred(env, deferred, value) : napi_resolve_deferred(env, deferred, value)) == napi_ok;
}

bool IoOp::OsRejection(napi_env env, const OsFailure& failure, const std::string& path, napi_value* value, bool* rejected) {
  *rejected = true;
  return NewOsError(env, failure, path, false, value);
}

bool IoOp::VoidOutcome(napi_env env, const OsFailure& failure, const std::string& path, napi_value* value, bool* rejected) {
  if (failure.IsError()) return OsRejection(env, failure, path, value, rejected);
  return napi_get_undefined(env, value) == napi_ok;
}

IoThread::IoThread(Napi::Env env, const char* name, size_t maxWorkers) : name_(name), maxWorkers_(maxWorkers < 1 ? 1 : maxWorkers), env_(env) {
  uv_loop_t* loop = nullptr;
  napi_value resourceName = nullptr;
  // None of these fails on a live environment (its loop already has Node's own async handles,
  // so uv_async_init opens nothing); without them no completion could ever reach JS.
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr ||
      napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resourceName) != napi_ok ||
      napi_async_init(env, nullptr, resourceName, &context_) != napi_ok ||
      napi_add_async_cleanup_hook(env, OnEnvCleanup, this, &hook_) != napi_ok ||
      uv_async_init(loop, &async_, OnAsync) != 0) {
    napi_fatal_error("walnut::IoThread", NAPI_AUTO_LENGTH, "cannot attach the I/O thread's wake-up to the event loop", NAPI_AUTO_LENGTH);
  }
  async_.data = this;
  uv_unref(reinterpret_cast<uv_handle_t*>(&async_));  // referenced only while operations are pending
  if (maxWorkers_ == 1) workers_.emplace_back([this] { Run(); });  // (a pool starts its workers as work comes)
}

IoThread::~IoThread() { Stop(); }

void IoThread::Stop() {
  if (stopped_) return;
  stopped_ = true;
  stopRequested_.store(true, std::memory_order_release);
  std::vector<std::thread> workers;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    for (IoOp* op : running_) op->Interrupt();  // (an op leaves running_ under the mutex only)
    workers.swap(workers_);
  }
  wake_.notify_all();
  for (std::thread& worker : workers) {
    if (worker.joinable()) worker.join();
  }
  for (auto& op : queue_) op->Abandon();
  for (auto& op : done_) op->Abandon();
  queue_.clear();
  done_.clear();
}

void IoThread::OnEnvCleanup(napi_async_cleanup_hook_handle, void* arg) {
  auto* self = static_cast<IoThread*>(arg);
  self->Stop();  // the worker is joined: nothing sends on the handle any more
  self->closing_ = true;
  // (the napi env, whose instance data owns this object, lives until the hook is removed.)
  // The async context goes here, not with the Instance: by the instance data's finaliser the
  // environment is gone, and a worker's env that never ends would keep it forever. Its destroy
  // hook is not emitted in an environment that runs no JS any more.
  if (self->context_ != nullptr) napi_async_destroy(self->env_, self->context_);
  self->context_ = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(&self->async_), OnClosed);
}

void IoThread::OnClosed(uv_handle_t* handle) {
  auto* self = static_cast<IoThread*>(handle->data);
  napi_async_cleanup_hook_handle hook = self->hook_;
  self->hook_ = nullptr;
  napi_remove_async_cleanup_hook(hook);  // last: it may let the env (and this object) go
}

Napi::Value IoThread::Submit(Napi::Env env, std::unique_ptr<IoOp> op) {
  Napi::Value promise(env, op->Promise());
  if (outstanding_++ == 0) uv_ref(reinterpret_cast<uv_handle_t*>(&async_));
  std::vector<std::thread> ended;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(std::move(op));
    queued_.fetch_add(1, std::memory_order_release);
    if (maxWorkers_ > 1) GrowLocked(&ended);
  }
  wake_.notify_one();
  for (std::thread& worker : ended) worker.join();  // (it has returned from Run, or is about to)
  return promise;
}

void IoThread::WithdrawQueued() {
  bool send = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return;  // (Stop abandons what is queued)
    for (auto it = queue_.begin(); it != queue_.end();) {
      if (!(*it)->Withdraw()) {
        ++it;
        continue;
      }
      done_.push_back(std::move(*it));
      it = queue_.erase(it);
      queued_.fetch_sub(1, std::memory_order_relaxed);
      if (!wakePending_) wakePending_ = send = true;
    }
  }
  if (send) uv_async_send(&async_);  // settled in OnAsync, as a worker's completions are
}

void IoThread::GrowLocked(std::vector<std::thread>* ended) {
  for (std::thread::id id : ended_) {
    auto it = std::find_if(workers_.begin(), workers_.end(), [id](const std::thread& t) { return t.get_id() == id; });
    if (it == workers_.end()) continue;
    ended->push_back(std::move(*it));
    workers_.erase(it);
  }
  ended_.clear();
  if (stopping_ || idle_ >= queue_.size() || workers_.size() >= maxWorkers_) return;
  workers_.emplace_back([this] { Run(); });
}

void IoThread::Run() {
  pthread_setname_np(pthread_self(), name_);  // /proc/<pid>/task/*/comm, top -H, perf
  std::unique_lock<std::mutex> lock(mutex_);
  // A completion's wake-up is sent where the mutex is let go anyway (before the spin, or before
  // the next operation runs): the JS thread it wakes takes that mutex at once (Drain), so a
  // wake-up sent under it, or a lock taken again right after it, makes one of the two threads
  // sleep on the mutex and be woken once more.
  bool send = false;
  const bool pool = maxWorkers_ > 1;
  for (;;) {
    if (pool) {
      if (queue_.empty() && !stopping_) {
        lock.unlock();
        if (send) uv_async_send(&async_);
        send = false;
        lock.lock();
      }
      idle_++;
      const bool woken = wake_.wait_for(lock, std::chrono::milliseconds(kIdleExitMs), [this] { return stopping_ || !queue_.empty(); });
      idle_--;
      if (!woken) {
        ended_.push_back(std::this_thread::get_id());  // joined by the next Submit, or Stop
        return;
      }
    } else if (queue_.empty() && !stopping_) {
      lock.unlock();
      if (send) uv_async_send(&async_);
      send = false;
      auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(kSpinMicros);
      while (queued_.load(std::memory_order_acquire) == 0 && std::chrono::steady_clock::now() < until) {
        std::this_thread::yield();  // let kernel threads (e.g. the journal commit of an fsync) run
      }
      lock.lock();
    }
    if (!pool) wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (stopping_) return;  // (a completion not sent is abandoned by Stop())
    std::unique_ptr<IoOp> op = std::move(queue_.front());
    queue_.pop_front();
    queued_.fetch_sub(1, std::memory_order_relaxed);
    running_.push_back(op.get());
    lock.unlock();
    if (send) uv_async_send(&async_);
    send = false;
    op->Execute();
    lock.lock();
    running_.erase(std::find(running_.begin(), running_.end(), op.get()));
    done_.push_back(std::move(op));
    if (!wakePending_) {
      wakePending_ = true;
      send = true;
    }
  }
}

void IoThread::OnAsync(uv_async_t* handle) {
  auto* self = static_cast<IoThread*>(handle->data);
  if (self->closing_) return;
  napi_env env = self->env_;
  napi_handle_scope handles = nullptr;
  if (napi_open_handle_scope(env, &handles) != napi_ok) return;
  napi_value resource = nullptr;
  napi_callback_scope scope = nullptr;
  bool same = false;
  // An environment being torn down (worker.terminate(), exit) runs its loop once more while it
  // cleans up, with JS stopped: a completion then must not be settled (node-addon-api makes a
  // refused call fatal there; Stop() abandons what is left). napi_strict_equals answers only
  // while JS can run (it is refused like any call that may run JS), which is what is checked.
  // The callback scope runs the settled promises' reactions (microtasks, nextTicks) as it closes.
  if (napi_create_object(env, &resource) == napi_ok && napi_strict_equals(env, resource, resource, &same) == napi_ok &&
      napi_open_callback_scope(env, resource, self->context_, &scope) == napi_ok) {
    self->Drain(env);
    // Complete() runs no JS: a pending exception is a value that could not be made (an
    // environment that stopped running JS): nothing may see it later
    bool pending = false;
    napi_value e = nullptr;
    if (napi_is_exception_pending(env, &pending) == napi_ok && pending) napi_get_and_clear_last_exception(env, &e);
    napi_close_callback_scope(env, scope);
  }
  napi_close_handle_scope(env, handles);
}

void IoThread::Drain(napi_env env) {
  std::vector<std::unique_ptr<IoOp>> finished;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    finished.swap(done_);
    wakePending_ = false;
  }
  // A completion whose value cannot be made means the environment stopped taking values (a
  // termination landed meanwhile): the rest are dropped unsettled (io_thread.h, IoOp).
  bool live = true;
  for (auto& op : finished) {
    if (!live) break;
    napi_handle_scope scope = nullptr;
    if (napi_open_handle_scope(env, &scope) != napi_ok) break;
    live = op->Settle(env);
    napi_close_handle_scope(env, scope);
  }
  outstanding_ -= finished.size();
  if (outstanding_ == 0 && !finished.empty()) uv_unref(reinterpret_cast<uv_handle_t*>(&async_));
}

}  // namespace walnut
