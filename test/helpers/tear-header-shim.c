/*
 * tear-header-shim.c — LD_PRELOAD library for the torn wal-index header tests: kills the process
 * (SIGKILL) between the two copies of a wal-index header publish, as a power cut or kill -9 can.
 *
 * SQLite publishes a commit's header as copy 1, a memory barrier, copy 0 (walIndexWriteHdr); its
 * barrier (unixShmBarrier) takes and releases a mutex. Once the process has synced a -wal (the
 * commit's frames are durable), every pthread_mutex_lock reads the -shm named by TEAR_SHM and,
 * when its two header copies differ (copy 1 written, copy 0 not yet), the process kills itself.
 * What it leaves is what a writer killed at that instant leaves: the commit's frames whole in the
 * WAL, the header torn. Build: cc -shared -fPIC -o tear-header-shim.so tear-header-shim.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int armed = 0;
static int checking = 0;

static int isWal(int fd) {
  char link[64];
  char target[4096];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, target, sizeof target - 1);
  if (n < 4) return 0;
  target[n] = 0;
  return strcmp(target + n - 4, "-wal") == 0;
}

static int (*realFsync)(int);
static int (*realFdatasync)(int);
static int (*realMutexLock)(pthread_mutex_t*);

int fsync(int fd) {
  if (!realFsync) realFsync = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
  if (isWal(fd)) armed = 1;
  return realFsync(fd);
}

int fdatasync(int fd) {
  if (!realFdatasync) realFdatasync = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
  if (isWal(fd)) armed = 1;
  return realFdatasync(fd);
}

int pthread_mutex_lock(pthread_mutex_t* m) {
  if (!realMutexLock) realMutexLock = (int (*)(pthread_mutex_t*))dlsym(RTLD_NEXT, "pthread_mutex_lock");
  if (armed && !checking) {
    checking = 1;
    const char* shm = getenv("TEAR_SHM");
    int fd = shm ? open(shm, O_RDONLY | O_CLOEXEC) : -1;
    if (fd >= 0) {
      unsigned char h[96];
      if (pread(fd, h, sizeof h, 0) == (ssize_t)sizeof h && memcmp(h, h + 48, 48) != 0) kill(getpid(), SIGKILL);
      close(fd);
    }
    checking = 0;
  }
  return realMutexLock(m);
}
