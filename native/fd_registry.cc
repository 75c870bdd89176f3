// fd_registry.cc — see fd_registry.h.
#include "fd_registry.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>
#include <vector>

#include "posix_io.h"

namespace walnut::fd_registry {
namespace {

struct Parked {
  int fd;
  dev_t dev;
  ino_t ino;
  int accessMode;  // O_RDONLY / O_WRONLY / O_RDWR
};

// Process-wide: classic locks belong to the process, not to one JS environment.
std::mutex mutex;
std::vector<Parked>& List() {
  static auto* list = new std::vector<Parked>();  // never destroyed: the kernel closes at exit
  return *list;
}

OsFailure CloseNow(int fd) {
  // Linux closes the descriptor even when close() reports EINTR: never retry.
  if (::close(fd) != 0 && errno != EINTR) return OsFailure{errno, "close"};
  return {};
}

// True when fd must stay open: this process holds classic locks on its file. A probe that
// fails (a file system without OFD locks) cannot tell; such a file has no locks worth keeping.
bool MustDefer(int fd) {
  bool held = false;
  return !posix::ProcessHoldsClassicLocks(fd, &held).IsError() && held;
}

size_t SweepLocked() {
  std::vector<Parked>& list = List();
  for (size_t i = 0; i < list.size();) {
    if (MustDefer(list[i].fd)) {
      i++;
      continue;
    }
    CloseNow(list[i].fd);
    list[i] = list.back();
    list.pop_back();
  }
  return list.size();
}

}  // namespace

OsFailure Release(int fd) {
  if (fd < 0) return {};
  // Unlock first: walnut's own locks go with the close as they always did, parked or not.
  struct stat st;
  int flags = -1;
  if (!posix::UnlockAll(fd).IsError() && MustDefer(fd) && (flags = ::fcntl(fd, F_GETFL)) >= 0 &&
      ::fstat(fd, &st) == 0) {
    std::lock_guard<std::mutex> lock(mutex);
    List().push_back({fd, st.st_dev, st.st_ino, flags & O_ACCMODE});
    SweepLocked();
    return {};
  }
  OsFailure f = CloseNow(fd);
  Sweep();
  return f;
}

int Adopt(const char* path, int flags) {
  if ((flags & (O_EXCL | O_TRUNC)) != 0) return -1;
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (List().empty()) return -1;  // the common case: no stat
  }
  struct stat st;
  int rc = (flags & O_NOFOLLOW) != 0 ? ::lstat(path, &st) : ::stat(path, &st);
  if (rc != 0 || !S_ISREG(st.st_mode)) return -1;
  // A parked descriptor keeps its inode alive, so (dev, ino) cannot name a newer file.
  std::lock_guard<std::mutex> lock(mutex);
  std::vector<Parked>& list = List();
  for (size_t i = 0; i < list.size(); i++) {
    const Parked& p = list[i];
    if (p.dev == st.st_dev && p.ino == st.st_ino && p.accessMode == (flags & O_ACCMODE)) {
      int fd = p.fd;
      list[i] = list.back();
      list.pop_back();
      return fd;
    }
  }
  return -1;
}

size_t Sweep() {
  std::lock_guard<std::mutex> lock(mutex);
  return SweepLocked();
}

size_t Pending() {
  std::lock_guard<std::mutex> lock(mutex);
  return List().size();
}

}  // namespace walnut::fd_registry
