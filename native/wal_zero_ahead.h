// wal_zero_ahead.h — zeros written and synced ahead of a WAL's last frame, off the commit path.
//
// Why: on ext4 an fdatasync after a write that extends the file (or fills blocks allocated
// but never written, posix_fallocate's) must also commit the new size and block mapping; an
// overwrite of written, already-synced blocks commits data only. A commit that appends past
// the end pays that metadata on every sync (measured: 0.67x the overwrite loop with the 1 MiB
// zero-fill in the append itself, 0.65x into fallocate'd space, 0.86x into space zeroed and
// synced beforehand: bench/README.md, "commit"). ZeroAhead extends the file with zeros and
// syncs them from a background thread, so the appends that follow are such overwrites.
//
// Invariants:
//  - It only ever writes at or past the file's current end, read under `extend` (FileState::
//    extend) for each chunk: it never writes over a byte someone in this process wrote (a WAL
//    append holds the same mutex from its window check to its write). It never writes below
//    `floor` (the end of the last frame the caller knows) nor below what it wrote itself: a
//    file found shorter than that was cut by someone who broke the locking protocol, and
//    zeros written there would become frames of zeros the index names (a checkpoint would copy
//    them into the database); it stops and leaves the file short, for readers to detect. Other processes write
//    the WAL only under SQLite's WRITE lock, which the caller holds until the call returns
//    (wal-index.ts: a deferred release of WRITE), so none appends or truncates meanwhile.
//  - Zeros past the last valid frame are invalid frames to every reader (page number 0, salts
//    and checksum that do not match: reference/sqlite-wal.md sections 4 and 9): the tail never
//    adds, hides or changes a frame.
//  - `fd` is a descriptor of its own (another open file description than the appends'): a
//    write-back error it meets (sync_file_range, fdatasync) is reported once per description,
//    so the appends' next fdatasync still fails with it and the commits it covers are not
//    acknowledged (the caller's fail-stop), whatever this call returns.
//  - Each chunk is written back (sync_file_range) before the next one is written, so a commit's
//    fdatasync running meanwhile finds at most one chunk of zeros to wait for; one fdatasync at
//    the end commits the size and the block mapping.
#pragma once

#include <cstdint>
#include <mutex>

#include "os_failure.h"

namespace walnut::wal {

// Extends the file at `fd` with zeros up to `target` bytes (nothing when it is already that
// long, or shorter than `floor`) and makes them durable; *size = the file's size afterwards.
// `extend` is the mutex of the appends' descriptor of the same file.
OsFailure ZeroAhead(int fd, std::mutex& extend, uint64_t floor, uint64_t target, uint64_t* size);

}  // namespace walnut::wal
