// fd_registry.h — closing walnut's descriptors without dropping a SQLite library's locks.
//
// The hazard: SQLite's unix VFS (better-sqlite3, node:sqlite, any SQLite loaded into this
// process) locks with classic POSIX locks, which belong to the process and are ALL dropped,
// silently, when the process closes ANY descriptor of that file. A walnut close of its
// database, -wal or -shm descriptor would release the locks of every SQLite connection in the
// process: a read transaction's read mark, a writer's WRITE lock, the connection's SHARED and
// DMS locks. SQLite guards its own connections the same way (os_unix.c, unixInodeInfo: a close
// is deferred while the inode has locks).
//
// The rule kept here: a descriptor is closed only when this process holds no classic lock on
// its file (posix::ProcessHoldsClassicLocks: an F_OFD_GETLK probe, and /proc/locks when another
// owner's lock may hide one of ours). Otherwise its OFD locks are
// released at once (a close must drop walnut's own locks, callers rely on it) and the
// descriptor is parked in a process-wide pending-close list, keyed by (device, inode) and
// access mode. Parked descriptors are
//  - reused by the next open of the same file with the same access mode (Adopt), so that
//    opening and closing stores repeatedly keeps the list as short as the peak number of
//    descriptors open at once;
//  - closed by Sweep once the classic locks are gone: every open and close sweeps (file.cc), and
//    lib/io/file.ts sweeps from an unref'd timer while anything is parked; what is still parked
//    at exit is closed by the kernel with the process.
//
// Sharing: a descriptor (one open file description) is never handed to two owners at once.
// Two owners of one description are one lock owner to the kernel, so two stores sharing it
// would no longer exclude each other (both could hold WRITE); only idle, parked descriptors are
// reused, and every open otherwise gets its own description.
//
// Threads: Release and Sweep close descriptors and belong on the JS thread — the thread that
// runs better-sqlite3 or node:sqlite in the usual server — so no SQLite lock can be taken
// between the probe and the close. A SQLite connection on ANOTHER thread (a worker) that takes
// its first lock on the file in the microseconds between the two would still lose it; two
// copies of SQLite in one process (better-sqlite3 beside node:sqlite) have the same window
// between each other. Adopt never closes anything and may run on the I/O thread. All entry
// points are thread-safe (one mutex) and use no N-API.
#pragma once

#include <cstddef>

#include "os_failure.h"

namespace walnut::fd_registry {

// Closes fd, or (when this process holds classic locks on its file) drops fd's OFD locks and
// parks it. Either way the caller no longer owns fd. A failed close(2) is reported; a parked
// descriptor's eventual close is not (nobody is left to tell).
OsFailure Release(int fd);

// A parked descriptor of the file `path` names, opened with `flags`, or -1. Only for opens
// that would have opened an existing file unchanged: no O_EXCL, no O_TRUNC; O_NOFOLLOW is
// honoured (a symbolic link never matches).
int Adopt(const char* path, int flags);

// Closes every parked descriptor whose file no longer has classic locks of this process.
// Returns how many remain parked.
size_t Sweep();

// How many descriptors are parked.
size_t Pending();

}  // namespace walnut::fd_registry
