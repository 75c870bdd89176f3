// shm.h — ShmRegion: the wal-index, mapped from `<db>-shm` (or kept in heap memory for
// lockingMode 'exclusive'). Layout, reference/sqlite-wal.md section 5 (host byte order):
//
//   segment k = 32768 bytes at file offset 32768*k
//   segment 0:  0..47 WalIndexHdr copy 0 | 48..95 copy 1 | 96..135 WalCkptInfo
//               (96 nBackfill, 100..119 aReadMark[0..4], 120..127 lock bytes,
//                128 nBackfillAttempted, 132 unused)
//               136..16383   page numbers of frames 1..4062 (u32)
//   segment k>0: 0..16383    page numbers of the segment's 4096 frames (u32)
//   every segment: 16384..32767 hash table, 8192 u16 slots; slot value v (1-based) means
//               frame iZero(k) + v; hash(P) = (P * 383) & 8191, linear probing.
//   iZero(0) = 0, iZero(k) = 4062 + (k-1)*4096; frame F lives in segment (F + 33) / 4096.
//
// Invariants kept here:
//  - Header publication: copy 1, full barrier, copy 0 (readers read 0, barrier, 1).
//  - Index entries are written before the header that makes them visible. commitInline (a
//    lone commit in one call: the WAL append of frames.h, written and synced, then its index
//    entries, then its header) keeps both, and appends only while the live header is, in both
//    copies, the one its caller published last.
//  - Inserting frame F: if F is the first of its segment, the whole segment's page array and
//    hash table are zeroed first; if the page-array slot is already in use (left by a crashed
//    or rolled-back writer), entries above the writer's mxFrame are removed first
//    (SQLite's walCleanupHash). Hash slots are stored with 16-bit atomic stores.
//  - Lookup walks the whole probe chain of each segment from newest to oldest and keeps the
//    largest frame in [minFrame, mxFrame] whose page-array entry matches (stale entries above
//    mxFrame are normal). More than 8192 probes in a segment is corruption.
//  - Segments are mapped on demand, as SQLite's walIndexPage does: the other connections grow
//    the file while this one has it mapped, so a lookup or page-number read whose frames lie past
//    the mapped segments first maps every segment up to the one it needs, once the file covers
//    it (a frame past the file's end is WALNUT_CORRUPT). A segment already mapped costs no
//    system call. Only mapped segments are touched; every offset is bounds-checked against them.
//  - The file is grown only by a writer or recovery (one zero byte at the end of every 4 KiB
//    block, as SQLite does, so its pages are allocated) and never shrunk while anyone is attached
//    (the first opener truncates it holding DMS exclusively). Mapped access raises SIGBUS only if
//    some other user of the file cuts it below the mapping anyway. coversMapping() (one lseek)
//    detects that; lib/wal-index/wal-index.ts asks it where a read transaction, checkpoint or
//    recovery begins, where a write transaction (a run of batches) begins after waiting for
//    WRITE, within a checkpoint (before each touch of the index that follows a copy or sync),
//    and before a snapshot's asynchronous reads (they pay for an I/O-thread trip anyway): those
//    refuse with WALNUT_CORRUPT, reason ShmTruncated; liveHeader() returns null. Not checked,
//    to keep syscalls off the hot path: a commit's batches (their index append and header
//    publish fail through the guard below, and the batch's frames are invalidated), a held
//    snapshot's synchronous reads and lookups (readSync, frameOf), and the microseconds between
//    a check and the index accesses that follow it (only another process can truncate there). Every touch of the
//    mapping runs under ShmTouch (shm_guard.h), so a truncation that lands there is the same
//    WALNUT_CORRUPT (reason ShmTruncated), not SIGBUS. SQLite has the same window, wider, and
//    no guard: it checks the size only when it maps a new segment, and a sqlite3 3.40.1
//    connection whose -shm was truncated dies with SIGBUS on its next query.
#pragma once

#include <napi.h>

namespace walnut::shm {

void Register(Napi::Env env, Napi::Object exports);

}  // namespace walnut::shm
