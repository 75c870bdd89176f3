// lock_wait.h — a blocking wait for an OFD byte-range lock on the calling thread (F_OFD_SETLKW),
// which ends at its deadline and which another thread can cut short within a millisecond.
//
// Why blocking: a write lease's wait for SQLite's WRITE lock (lib/wal-index/wal-index.ts) used to
// try the lock every few microseconds in bursts on one thread: about one CPU-second per second
// waited, and the waits of several stores in a process took turns on that thread. A thread asleep
// in the kernel's lock wait costs nothing while it waits, and the kernel wakes it as the holder
// lets go (every waiter on the range is woken and tries again; there is no queue), so it catches
// the gaps of a writer that takes WRITE again right after each commit as the spin did.
//
// How a wait ends early: F_OFD_SETLKW has no timeout; a signal interrupts it (EINTR) when its
// handler is installed without SA_RESTART. Each wait arms a POSIX timer of its own that sends
// a real-time signal (SIGRTMIN + 5) to the waiting thread (SIGEV_THREAD_ID) at the deadline or
// after kTickMs, whichever comes first; on each interruption the wait asks its `stop` predicate, re-arms, and waits again.
// Interrupt() (any thread) makes the timer fire now and then every millisecond until the waiter
// has looked: a signal sent between the waiter's look at `stop` and its fcntl is not lost, only
// repeated. The signal's handler does nothing; it is installed once per process, and only where
// nothing else has claimed the signal (else, and where a timer cannot be made, the wait polls:
// a non-blocking try per millisecond). A handler installed over ours later (a native addon can)
// is found before every block, and every wait polls from then on; a wait blocked in the kernel
// at that very moment finds it at its next interruption, which a handler with SA_RESTART never
// gives it: that one wait lasts until the lock is had (and a close of its file with it); and a
// disposition set back to SIG_DFL in that moment makes the timer's next signal end the process
// (SIG_IGN: the wait lasts as with SA_RESTART). Between waits either is found, and waits poll.
//
// Deadlocks: the kernel's deadlock detection skips OFD waiters, so a wait here is never refused
// with EDEADLK and a cycle of blocking waits would last until the deadlines. walnut waits here
// only for WRITE, and only where its connection holds no WRITE of its own (wal-index.ts
// #mayWaitForWrite); SQLite never blocks in the kernel for a -shm lock (it polls), so no
// holder of WRITE is ever blocked waiting for this connection: no cycle can form. The caller
// bounds every wait by its busy timeout anyway.
//
// No N-API here: engine code, usable from any thread.
#pragma once

#include <pthread.h>
#include <time.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>

#include "os_failure.h"
#include "posix_io.h"

namespace walnut::lock_wait {

enum class Outcome { kAcquired, kTimedOut, kStopped, kFailed };

// Longest a wait sleeps without looking at its `stop` predicate: a safety net only, since all
// that makes `stop` true (a close, a cancel, the lane stopping) also calls Interrupt(), whose
// own signals come every millisecond until the waiter looked. Each tick costs the waiting
// thread a wake-up (16 waits with a 10 ms tick: 0.15 CPU-s in 2 s; with 100 ms: 0.03).
constexpr int kTickMs = 100;

// Whether waits block in the kernel (the signal's handler is ours); false: they poll.
bool Blocking();

class Waiter {
 public:
  Waiter() = default;
  Waiter(const Waiter&) = delete;
  Waiter& operator=(const Waiter&) = delete;

  // On the waiting thread: waits for the lock on [start, start+len) of fd until it is had
  // (kAcquired), `deadline` passes (kTimedOut), or `stop()` says true when asked (kStopped: it is
  // asked before the first try and after every interruption); kFailed with *failure set when
  // the fcntl fails. Not reentrant: one Wait() at a time per Waiter.
  Outcome Wait(int fd, posix::LockType type, uint64_t start, uint64_t len,
               std::chrono::steady_clock::time_point deadline, const std::function<bool()>& stop,
               OsFailure* failure);

  // Any thread: a Wait() in progress asks `stop` again within about a millisecond; none in
  // progress: nothing (a Wait() begun later asks `stop` before it blocks).
  void Interrupt();

 private:
  Outcome Poll(int fd, posix::LockType type, uint64_t start, uint64_t len,
               std::chrono::steady_clock::time_point deadline, const std::function<bool()>& stop,
               OsFailure* failure);

  std::mutex mutex_;         // guards waiting_ and timer_ against Interrupt()
  bool waiting_ = false;     // a Wait() with a live timer is in progress
  timer_t timer_{};
};

}  // namespace walnut::lock_wait
