/*
 * pause-at-lock-shim.c — LD_PRELOAD library for race tests of restore's temporary files: makes
 * the process stop just before its first OFD lock (fcntl F_OFD_SETLK, not an unlock) on a file whose path
 * contains PAUSE_LOCK_NAME, as a slow or descheduled process would stop between opening a file
 * and locking it (a path that also contains PAUSE_LOCK_EXCLUDE, when set, is not paused at). There it creates the file PAUSE_LOCK_READY, then waits (polling, at most 60 s)
 * until the file PAUSE_LOCK_GO exists, and makes the call. Later locks are not paused.
 * Build: cc -shared -fPIC -o pause-at-lock-shim.so pause-at-lock-shim.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int paused = 0;

static void maybePause(int fd, int cmd, void* arg) {
  const char* name = getenv("PAUSE_LOCK_NAME");
  const char* ready = getenv("PAUSE_LOCK_READY");
  const char* go = getenv("PAUSE_LOCK_GO");
  if (paused || cmd != F_OFD_SETLK || !arg || ((struct flock*)arg)->l_type == F_UNLCK || !name || !ready || !go) return;
  char link[64], target[4096];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, target, sizeof target - 1);
  if (n <= 0) return;
  target[n] = 0;
  if (!strstr(target, name)) return;
  const char* exclude = getenv("PAUSE_LOCK_EXCLUDE");
  if (exclude && *exclude && strstr(target, exclude)) return;
  paused = 1;
  FILE* f = fopen(ready, "w");
  if (f) fclose(f);
  for (int i = 0; i < 6000 && access(go, F_OK) != 0; i++) usleep(10000);
}

typedef int (*fcntl_fn)(int, int, ...);

static int forward(const char* sym, int fd, int cmd, void* arg) {
  static fcntl_fn real64, real;
  fcntl_fn* slot = strcmp(sym, "fcntl64") == 0 ? &real64 : &real;
  if (!*slot) *slot = (fcntl_fn)dlsym(RTLD_NEXT, sym);
  maybePause(fd, cmd, arg);
  return (*slot)(fd, cmd, arg);
}

int fcntl64(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  return forward("fcntl64", fd, cmd, arg);
}

int fcntl(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  return forward("fcntl", fd, cmd, arg);
}
