// frames.h — WAL frames: the recovery scan and the batched append (reference/sqlite-wal.md
// sections 2-4 and 11.3).
//
//   WAL header (32 bytes, big-endian fields)
//   +--------+---------+----------+-----------+--------+--------+-------+-------+
//   | magic  | version | pageSize | ckpt seq  | salt-1 | salt-2 | cksum1| cksum2|
//   +--------+---------+----------+-----------+--------+--------+-------+-------+
//   frame N at 32 + (N-1) * (24 + pageSize):
//   +--------+------------+--------+--------+-------+-------+------------------+
//   | pgno   | commitSize | salt-1 | salt-2 | cksum1| cksum2| page (pageSize)  |
//   +--------+------------+--------+--------+-------+-------+------------------+
//
// Invariants this file keeps:
//  - A frame is valid iff its pgno is nonzero, its salts equal the header's, and its stored
//    checksum equals the running checksum over frame-header bytes 0..7 and the page, chained
//    from the previous frame (frame 1 from the header checksum). Word order follows the magic.
//  - The scan stops at the first invalid frame or at the first frame that does not fit in the
//    file; the valid end (mxFrame) is the last commit frame before that point. Valid frames
//    after it are reported (SQLite indexes them) but are not part of the database.
//  - The scan reads the WAL in large sequential chunks, never one syscall per frame.
//  - Append builds every frame header and the checksum chain here and hands the page buffers
//    straight to one pwritev (no copy of page bytes). They are walnut's own, never a caller's
//    that may change or be transferred meanwhile (a frame checksummed over other bytes than it
//    holds ends recovery there; a buffer freed mid-append is a use-after-free): the store copies
//    callers' pages at commit() (commit/page-arena.ts), walnut/sql lends its pool's buffers
//    until they are handed back (store.sequence's release), the lane's leader takes members'
//    pages into its take buffers. The operation keeps the `pages` array alive until it completes. It first re-reads the WAL header
//    and size and refuses to write (WALNUT_BUSY, reason StaleAppendWindow) when the header
//    differs from what the caller last saw, the file is shorter, or the slot it would fill holds
//    a frame of this generation the caller did not see, so no bytes are ever written from a
//    stale window. (The file may be longer: zeros written ahead, wal_zero_ahead.h.) A caller
//    that vouches for the slot (it holds WRITE and the wal-index header is the one it
//    published: wal-file.ts) has the header and size checked, not the slot: one pread, one
//    lseek. (The header read stays: a WAL rewritten in place without the lock, same size,
//    would otherwise take frames its header's salts disown, acknowledged and lost.)
//  - The same pwritev zeros the frame header right after the last new frame, as far as the
//    file holds it (the tail; never past the file's end), so that frames of this generation left
//    there unpublished (a killed writer's, a failed batch's) never continue the chain after the
//    append, even when it repeats their first frames byte for byte (wal-file.ts). An append that
//    runs out of space after all its frames (in the preallocation's zeros or the tail) stands
//    when the tail then reads as zeros (a hole), and fails otherwise. Its result includes the
//    file's size after it (chain words 6, 7), read back after such a fallback: under a file-size
//    limit (RLIMIT_FSIZE: EFBIG) the file cannot be extended over a hole either, and is shorter
//    than the caller asked.
//  - A fresh append (walAppend's `fresh` header: a WAL restart or the first commit into an
//    empty WAL) writes the new header at offset 0 and syncs it before it writes any frame (from
//    frame 1), all in one operation: a frame on disk under the old header would cut the old
//    generation's chain short, and recovery would read that stale prefix over the checkpointed
//    database (bench/probes/restart-fold-hazard.py). It checks no window (the header is replaced;
//    frames from frame 1 leave no hole); a failure at the header is reported with stage 'header'.
//  - Zero-ahead (walZeroAhead) runs on the background lane; it and the append's check + write
//    hold the file's `extend` mutex, so neither writes over the other's bytes. It writes and
//    syncs through another descriptor, so a write-back error it meets still fails the appends'
//    next fdatasync.
#pragma once

#include <napi.h>

#include <cstdint>
#include <memory>

#include "checksum/sqlite_wal.h"
#include "file.h"

namespace walnut::frames {

void Register(Napi::Env env, Napi::Object exports);

// The append walAppendSync makes, for ShmRegion.commitInline (shm.cc: append, index and publish
// in one call from JavaScript).
struct AppendJob;
struct AppendJobDelete {
  void operator()(AppendJob* job) const;
};
using AppendJobPtr = std::unique_ptr<AppendJob, AppendJobDelete>;

// walAppend's arguments chain .. growTo (frames.cc) at info[first] ..: null, with
// WALNUT_INVALID_ARGUMENT thrown, when any is refused (nothing is touched before that).
AppendJobPtr ParseAppend(const Napi::CallbackInfo& info, size_t first);
uint64_t AppendFirstFrame(const AppendJob& job);
size_t AppendFrames(const AppendJob& job);

enum class InlineAppend {
  kWritten,  // written and synced as asked: *running is the new running checksum (also in chain[4], [5]; the size in [6], [7])
  kStale,    // the window was stale: nothing was written
  kFailed,   // the write or sync failed (thrown, with stage 'write'): frames may be on disk
};
// Runs the append on the calling thread (as walAppendSync). `chain`: the caller's chain words.
InlineAppend RunAppendHere(Napi::Env env, FileState& file, AppendJob* job, napi_value chain,
                           checksum::WalChecksum* running);

}  // namespace walnut::frames
