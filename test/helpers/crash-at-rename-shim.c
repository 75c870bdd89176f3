/*
 * crash-at-rename-shim.c — LD_PRELOAD library for the crash-point tests of a file replacement
 * (restore --force): kills the process (SIGKILL) just before its Nth change of a name inside one
 * directory, as a crash there would stop it. Counted: rename, renameat, renameat2, link, linkat,
 * unlink, unlinkat and remove whose (first) path starts with CRASH_DIR; the call numbered
 * CRASH_AT (1-based) is never made. With CRASH_AT past the last such call the process runs to its
 * end. Build: cc -shared -fPIC -o crash-at-rename-shim.so crash-at-rename-shim.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int seen = 0;

static void countCall(const char* path) {
  const char* dir = getenv("CRASH_DIR");
  const char* at = getenv("CRASH_AT");
  if (!dir || !at || !path || strncmp(path, dir, strlen(dir)) != 0) return;
  if (++seen == atoi(at)) kill(getpid(), SIGKILL);
}

/* the libc function `name` of type `name##_fn` (declared below), as real_<name> */
#define REAL(name) static name##_fn real_##name; if (!real_##name) real_##name = (name##_fn)dlsym(RTLD_NEXT, #name)

typedef int (*rename_fn)(const char*, const char*);
typedef int (*renameat_fn)(int, const char*, int, const char*);
typedef int (*renameat2_fn)(int, const char*, int, const char*, unsigned int);
typedef int (*link_fn)(const char*, const char*);
typedef int (*linkat_fn)(int, const char*, int, const char*, int);
typedef int (*unlink_fn)(const char*);
typedef int (*unlinkat_fn)(int, const char*, int);
typedef int (*remove_fn)(const char*);

int rename(const char* from, const char* to) {
  REAL(rename);
  countCall(from);
  return real_rename(from, to);
}

int renameat(int fd1, const char* from, int fd2, const char* to) {
  REAL(renameat);
  countCall(from);
  return real_renameat(fd1, from, fd2, to);
}

int renameat2(int fd1, const char* from, int fd2, const char* to, unsigned int flags) {
  REAL(renameat2);
  countCall(from);
  return real_renameat2(fd1, from, fd2, to, flags);
}

int link(const char* from, const char* to) {
  REAL(link);
  countCall(from);
  return real_link(from, to);
}

int linkat(int fd1, const char* from, int fd2, const char* to, int flags) {
  REAL(linkat);
  countCall(from);
  return real_linkat(fd1, from, fd2, to, flags);
}

int unlink(const char* path) {
  REAL(unlink);
  countCall(path);
  return real_unlink(path);
}

int unlinkat(int fd, const char* path, int flags) {
  REAL(unlinkat);
  countCall(path);
  return real_unlinkat(fd, path, flags);
}

int remove(const char* path) {
  REAL(remove);
  countCall(path);
  return real_remove(path);
}
