// LD_PRELOAD shim: claims SIGRTMIN+5 (the signal walnut's blocking lock waits use to end a wait,
// native/lock_wait.h) with a handler of its own that says on stderr when it runs, as a native
// addon of someone else's could. By default before anything else runs: walnut must leave such a
// handler alone and poll instead (test/hostile/lease-wait-blocking). With CLAIM_RT_SIGNAL_WHEN=PATH
// later, over walnut's own handler: as soon as PATH exists (a thread of the shim's looks every
// millisecond), saying "claim-rt-signal-shim: claimed" on stderr; walnut's waits must notice and
// poll from then on (test/hostile/lease-wait-signal-claimed-late). The handler has SA_RESTART
// (an interrupted fcntl(F_OFD_SETLKW) restarts instead of returning EINTR). With also
// CLAIM_RT_SIGNAL_AS=default the late claim sets the signal back to SIG_DFL instead, as a library
// resetting signal dispositions would (the signal then ends the process).
// Build: cc -shared -fPIC -o claim-rt-signal-shim.so claim-rt-signal-shim.c -lpthread
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void Say(const char* what) { (void)!write(2, what, strlen(what)); }

static void Claimed(int sig) {
  (void)sig;
  Say("claim-rt-signal-shim: handler ran\n");
}

static void ClaimNow(int asDefault) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = asDefault ? SIG_DFL : Claimed;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGRTMIN + 5, &sa, NULL);
}

static void* ClaimWhenThere(void* path) {
  while (access((const char*)path, F_OK) != 0) usleep(1000);
  const char* as = getenv("CLAIM_RT_SIGNAL_AS");
  ClaimNow(as != NULL && strcmp(as, "default") == 0);
  Say("claim-rt-signal-shim: claimed\n");
  return NULL;
}

__attribute__((constructor)) static void Claim(void) {
  const char* when = getenv("CLAIM_RT_SIGNAL_WHEN");
  if (when == NULL) {
    ClaimNow(0);
    return;
  }
  // the watching thread takes no signal of the process's (its mask: all blocked)
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  pthread_t watcher;
  if (pthread_create(&watcher, NULL, ClaimWhenThere, strdup(when)) == 0) pthread_detach(watcher);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
}
