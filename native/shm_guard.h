// shm_guard.h — touching the mapped -shm without dying when another process cut it short.
//
// A process that truncates the -shm below this connection's mapping (a buggy or hostile user
// of the file; SQLite never does while anyone is attached) makes every touch of the lost pages
// raise SIGBUS. coversMapping() (one lseek, shm.h) catches that where transactions begin, but
// not in the microseconds between that check and the touches that follow it, nor in a held
// snapshot's synchronous lookups. ShmTouch runs a block of such touches with a SIGBUS handler
// armed for this thread: a SIGBUS inside it jumps back and ShmTouch returns false (the caller
// throws WALNUT_CORRUPT, reason ShmTruncated), so the window ends the operation, not the process.
// Invariants:
//  - The block only reads and writes mapped memory and plain locals/out-buffers it was given: no
//    allocation, no N-API call, no object with a destructor (a jump skips destructors).
//  - A SIGBUS outside a block (not ours) gets the disposition that was installed before ours:
//    the handler puts it back and returns, so the faulting access runs again under it.
//  - Arming is a thread-local (volatile, signal-fenced) pointer store and sigsetjmp without the signal mask (no system
//    call); the handler is installed once per process (SA_NODEFER: SIGBUS stays unblocked after
//    the jump, so the next fault is caught as well).
#pragma once

#include <csetjmp>
#include <csignal>
#include <atomic>
#include <mutex>

namespace walnut::shm {

namespace guard_detail {

// volatile, and fenced below: the touch reads nothing of it, so without both the compiler may
// drop the arming store as dead (the block runs unarmed) or move the touch outside it.
inline thread_local sigjmp_buf* volatile armed = nullptr;
inline struct sigaction previous {};

inline void OnSigbus(int sig, siginfo_t* info, void* context) {
  if (armed != nullptr) siglongjmp(*armed, 1);
  // not a guarded touch: the previous disposition handles it when the access runs again
  ::sigaction(SIGBUS, &previous, nullptr);
  (void)sig;
  (void)info;
  (void)context;
}

inline void Install() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa {};
    sa.sa_sigaction = OnSigbus;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGBUS, &sa, &previous);
  });
}

}  // namespace guard_detail

// Runs touch(); false when it raised SIGBUS (the -shm was cut under the mapping).
template <typename Touch>
bool ShmTouch(Touch&& touch) {
  guard_detail::Install();
  sigjmp_buf here;
  sigjmp_buf* const outer = guard_detail::armed;
  if (sigsetjmp(here, 0) != 0) {
    guard_detail::armed = outer;
    return false;
  }
  guard_detail::armed = &here;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  touch();
  std::atomic_signal_fence(std::memory_order_seq_cst);
  guard_detail::armed = outer;
  return true;
}

}  // namespace walnut::shm
