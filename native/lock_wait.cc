// lock_wait.cc — see lock_wait.h.
#include "lock_wait.h"

#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <thread>

namespace walnut::lock_wait {

namespace {

using Clock = std::chrono::steady_clock;

std::once_flag installed;
// The waits' signal while its handler is ours, else 0 (waits poll): set once by Install(), and
// back to 0 for good once another handler is found in its place (HandlerStillOurs).
std::atomic<int> waitSignal{0};

// Does nothing: its only effect is that the signal interrupts the F_OFD_SETLKW of the thread it
// is sent to (installed without SA_RESTART).
void Interrupted(int) {}

// Takes a real-time signal for the waits: SIGRTMIN + 5 (glibc keeps the two below SIGRTMIN for
// itself; Node and libuv use none of the real-time ones), if nothing in the process has a handler
// for it yet. A handler of someone else's is never replaced: the waits poll instead.
void Install() {
  const int sig = SIGRTMIN + 5;
  if (sig > SIGRTMAX) return;
  struct sigaction old = {};
  if (sigaction(sig, nullptr, &old) != 0) return;
  const bool free = (old.sa_flags & SA_SIGINFO) == 0 && (old.sa_handler == SIG_DFL || old.sa_handler == SIG_IGN);
  if (!free) return;
  struct sigaction sa = {};
  sa.sa_handler = Interrupted;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: the interrupted fcntl returns EINTR
  if (sigaction(sig, &sa, nullptr) != 0) return;
  waitSignal.store(sig, std::memory_order_release);
}

// Whether the handler of `sig` is still Interrupted. A native addon (or an LD_PRELOADed library)
// may install its own after ours: our timers' signals then run that handler instead, and one
// installed with SA_RESTART restarts the fcntl, so a wait blocked there would end neither at its
// deadline nor on a close (whose FileState::Release then waited on the JS thread for ever:
// test/hostile/lease-wait-signal-claimed-late). Once found so, every wait polls from then on.
bool HandlerStillOurs(int sig) {
  struct sigaction cur = {};
  if (sigaction(sig, nullptr, &cur) == 0 && (cur.sa_flags & SA_SIGINFO) == 0 && cur.sa_handler == Interrupted) return true;
  waitSignal.store(0, std::memory_order_release);
  return false;
}

timespec ToTimespec(Clock::duration d) {
  const auto ns = std::max<int64_t>(1, std::chrono::duration_cast<std::chrono::nanoseconds>(d).count());
  return timespec{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
}

}  // namespace

bool Blocking() {
  std::call_once(installed, Install);
  return waitSignal.load(std::memory_order_acquire) != 0;
}

Outcome Waiter::Wait(int fd, posix::LockType type, uint64_t start, uint64_t len, Clock::time_point deadline,
                     const std::function<bool()>& stop, OsFailure* failure) {
  // a wait cancelled (or its file closed) before it began takes nothing, even a free lock
  if (stop()) return Outcome::kStopped;
  // one try first: a free lock costs no timer, and a deadline already past still gets its try
  bool acquired = false;
  *failure = posix::TryLock(fd, type, start, len, &acquired);
  if (failure->IsError()) return Outcome::kFailed;
  if (acquired) return Outcome::kAcquired;
  if (!Blocking()) return Poll(fd, type, start, len, deadline, stop, failure);
  const int sig = waitSignal.load(std::memory_order_acquire);  // (0 only if lost meanwhile: a poll)
  if (sig == 0) return Poll(fd, type, start, len, deadline, stop, failure);

  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, sig);
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);  // (a thread inherits its creator's mask)
  struct sigevent event = {};
  event.sigev_notify = SIGEV_THREAD_ID;
  event.sigev_signo = sig;
  event._sigev_un._tid = static_cast<pid_t>(syscall(SYS_gettid));
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (timer_create(CLOCK_MONOTONIC, &event, &timer_) != 0) {
      // (out of timers: RLIMIT_SIGPENDING counts them)
      return Poll(fd, type, start, len, deadline, stop, failure);
    }
    waiting_ = true;
  }
  Outcome outcome = Outcome::kStopped;
  bool lost = false;  // the signal's handler is no longer ours: the rest of the wait polls
  for (;;) {
    const Clock::time_point now = Clock::now();
    if (now >= deadline) {
      outcome = Outcome::kTimedOut;
      break;
    }
    // Armed before `stop` is asked: an Interrupt() after this re-arms it to fire at once, and
    // one before it came after what makes `stop` true (lock_wait.h). The interval fires again
    // should a signal land just before the fcntl blocks.
    struct itimerspec when = {};
    when.it_value = ToTimespec(std::min<Clock::duration>(deadline - now, std::chrono::milliseconds(kTickMs)));
    when.it_interval = ToTimespec(std::chrono::milliseconds(kTickMs));
    {
      std::lock_guard<std::mutex> lock(mutex_);
      timer_settime(timer_, 0, &when, nullptr);
    }
    if (stop()) {
      outcome = Outcome::kStopped;
      break;
    }
    // (a handler installed over ours while the fcntl below blocks is found at its next return:
    // at once unless it has SA_RESTART; with it, not before the lock is granted)
    if (!HandlerStillOurs(sig)) {
      lost = true;
      break;
    }
    *failure = posix::WaitLock(fd, type, start, len, &acquired);
    if (failure->IsError()) {
      outcome = Outcome::kFailed;
      break;
    }
    if (acquired) {
      outcome = Outcome::kAcquired;
      break;
    }
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    timer_delete(timer_);  // (a signal it sent meanwhile is handled later, doing nothing)
    waiting_ = false;
  }
  if (lost) return Poll(fd, type, start, len, deadline, stop, failure);
  return outcome;
}

Outcome Waiter::Poll(int fd, posix::LockType type, uint64_t start, uint64_t len, Clock::time_point deadline,
                     const std::function<bool()>& stop, OsFailure* failure) {
  for (;;) {
    if (stop()) return Outcome::kStopped;
    const Clock::time_point now = Clock::now();
    if (now >= deadline) return Outcome::kTimedOut;
    std::this_thread::sleep_for(std::min<Clock::duration>(deadline - now, std::chrono::milliseconds(1)));
    bool acquired = false;
    *failure = posix::TryLock(fd, type, start, len, &acquired);
    if (failure->IsError()) return Outcome::kFailed;
    if (acquired) return Outcome::kAcquired;
  }
}

void Waiter::Interrupt() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!waiting_) return;
  // now, and every millisecond until the waiter re-arms it (lock_wait.h)
  struct itimerspec when = {};
  when.it_value = ToTimespec(std::chrono::microseconds(1));
  when.it_interval = ToTimespec(std::chrono::milliseconds(1));
  timer_settime(timer_, 0, &when, nullptr);
}

}  // namespace walnut::lock_wait
