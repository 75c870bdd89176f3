// posix_io.h — positioned I/O, durability and OFD byte-range locks on a file descriptor.
//
// Plain functions with no JS in them, usable from any thread: NativeFile calls them from the
// JS thread (sync variants) or the I/O thread (async variants), and the frame writer uses the
// same WritevFull for its one-pwritev commit. Contracts:
//  - EINTR is retried everywhere; short transfers are continued until done.
//  - ReadFull stops early only at end of file (returns the count read).
//  - WriteFull/WritevFull either write every byte or fail; a write that makes no progress is
//    an error (EIO), never a silent short write.
//  - Locks are Linux open-file-description locks (F_OFD_*): they belong to the descriptor, so
//    closing some other descriptor of the same file never drops them (unlike classic POSIX
//    locks), and two descriptors in one process conflict with each other as SQLite expects.
//  - OFD locks also conflict with classic locks of this very process (those of a SQLite library
//    loaded beside walnut), which is what lets ProcessHoldsClassicLocks see them: a classic
//    F_GETLK never reports its own process's locks.
#pragma once

#include <sys/types.h>
#include <sys/uio.h>

#include <cstdint>

#include "os_failure.h"

namespace walnut::posix {

OsFailure ReadFull(int fd, uint8_t* buf, size_t len, uint64_t pos, size_t* done);
// Reads into the iovecs in order starting at pos (preadv, IOV_MAX at a time); stops early only
// at end of file. `iov` is modified (advanced) as bytes come in; *done = bytes read.
OsFailure ReadvFull(int fd, struct iovec* iov, size_t count, uint64_t pos, size_t* done);
// Starts writeback of the dirty pages in [offset, offset+len) and returns without waiting for
// it (sync_file_range SYNC_FILE_RANGE_WRITE): a later fsync then finds most of the range on
// its way to the disk. A hint only: it makes nothing durable.
OsFailure StartWriteback(int fd, uint64_t offset, uint64_t len);
// Writes back the dirty pages in [offset, offset+len) and waits for them (sync_file_range
// WAIT_BEFORE | WRITE | WAIT_AFTER): the data is on the device, but no metadata is (fdatasync).
// Where the call is not supported, nothing is done (a later fdatasync writes the range).
OsFailure WriteBackRange(int fd, uint64_t offset, uint64_t len);
OsFailure WriteFull(int fd, const uint8_t* buf, size_t len, uint64_t pos);
// Writes the iovecs in order starting at pos. `iov` is modified (advanced) as bytes go out.
// `written` (when given) is set to the bytes written, also when it fails: 0 then means the file
// was not touched at all (a write refused outright: EROFS, EPERM of an immutable file, ENOSPC
// before the first byte), which lets a failed commit say its frames are certainly not there.
OsFailure WritevFull(int fd, struct iovec* iov, size_t count, uint64_t pos, size_t* written = nullptr);
OsFailure Sync(int fd, bool dataOnly);
OsFailure Truncate(int fd, uint64_t length);
// Reserves [offset, offset+len); falls back to posix_fallocate where fallocate is unsupported.
OsFailure Allocate(int fd, uint64_t offset, uint64_t len);
// fallocate(2) of [offset, offset+len) (the file grows to cover it), never emulated by writes:
// *supported = false (and no error) where the file system does not implement it.
OsFailure AllocateBlocks(int fd, uint64_t offset, uint64_t len, bool* supported);
OsFailure Size(int fd, uint64_t* size);
OsFailure SyncDirectory(const char* path);

enum class LockType { kUnlock, kShared, kExclusive };

// Non-blocking: *acquired = false when someone else holds a conflicting lock.
OsFailure TryLock(int fd, LockType type, uint64_t start, uint64_t len, bool* acquired);
// Blocking (F_OFD_SETLKW): returns once the lock is had (*acquired = true) or a signal
// interrupted the wait (*acquired = false, no error: EINTR is the caller's way to end it,
// lock_wait.h). The kernel detects no deadlock for OFD waiters (fs/locks.c skips them), so a
// caller must never wait for a lock whose holder may be waiting for one of its own.
OsFailure WaitLock(int fd, LockType type, uint64_t start, uint64_t len, bool* acquired);
// Who blocks a lock of `type` on the range: *holder = kUnlock when nobody. pid is -1 for OFD
// locks (the kernel does not know a process for them) and the owner's pid for classic locks.
OsFailure QueryLock(int fd, LockType type, uint64_t start, uint64_t len, LockType* holder,
                    int64_t* holderStart, int64_t* holderLen, int* pid);

// Drops every OFD lock held through this descriptor (and no one else's).
OsFailure UnlockAll(int fd);

// *held = true when this process holds a classic POSIX lock anywhere on fd's file (SQLite's
// unix VFS in better-sqlite3 or node:sqlite): closing any descriptor of the file would drop it.
// One F_OFD_GETLK over the whole file (the descriptor's own OFD locks never conflict) settles
// the common cases: nothing conflicts (not held) or the conflict it names is this process's
// (held). It names only ONE conflicting lock, in no useful order; when that is someone else's
// (another process's, or an OFD lock of another descriptor, pid -1), a lock of this process over
// the same bytes may hide behind it (every SQLite connection takes the same SHARED range of the
// database, and the same DMS byte of the -shm), so /proc/locks, which lists every lock, decides
// (ProcLocksHasClassicLock). If it cannot be read, the answer is held: the safe one.
OsFailure ProcessHoldsClassicLocks(int fd, bool* held);

// Whether /proc/locks lists a POSIX lock of this process (its pid as /proc sees it) on inode
// `ino`; false with *readable = false when /proc/locks or /proc/self cannot be read.
bool ProcLocksHasClassicLock(uint64_t ino, bool* readable);

}  // namespace walnut::posix
