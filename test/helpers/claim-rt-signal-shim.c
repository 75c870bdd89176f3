// LD_PRELOAD shim: claims SIGRTMIN+5 (the signal walnut's blocking lock waits use to end a wait,
// native/lock_wait.h) before anything else runs, with a handler of its own that says on stderr
// when it runs. walnut must leave such a handler alone and poll instead (test/hostile/lease-wait-
// blocking). Build: cc -shared -fPIC -o claim-rt-signal-shim.so claim-rt-signal-shim.c
#include <signal.h>
#include <string.h>
#include <unistd.h>

static void Claimed(int sig) {
  (void)sig;
  static const char said[] = "claim-rt-signal-shim: handler ran\n";
  (void)!write(2, said, sizeof said - 1);
}

__attribute__((constructor)) static void Claim(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = Claimed;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGRTMIN + 5, &sa, NULL);
}
