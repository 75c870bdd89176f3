// export_io.h — the JS entry points of the export's native paths (exported as addon.exportIo):
//
//   new BaseImageReader()                 one base image: its running xxh3-128 over the pages
//   reader.readChunk(db, wal, out, pageSize, pagesPerRecord, firstPgno, pageCount, dbFilePages,
//                    frames: Uint32Array | null, checkTrailers)
//       -> Promise<{ bytes, missingFrame, badTrailerPgno }>   (base_image.h does the work)
//   reader.writeChunk(db, wal, sink, pageSize, pagesPerRecord, firstPgno, pageCount, dbFilePages,
//                     frames, checkTrailers, position) -> Promise<{ bytes, ... }>
//       the same records, each filled into one record-sized buffer and written to the sink file
//       at position.. at once (still in the CPU cache), then the chunk's writeback started
//   reader.digest() -> Uint8Array(16)     the canonical xxh3-128 (high u64 then low u64, BE)
//   startWriteback(file, offset, length) -> Promise<void>   (posix::StartWriteback)
//   new BaseImageWriter()                 a restore's base image: its running xxh3-128
//   writer.applyRun(stream, db, offset, nextPgno, pageSize, maxBytes)
//       -> Promise<{ end, pages, pageSize, more }>   (base_restore.h does the work)
//   writer.update(bytes)                  pages the JavaScript path applied, into the same hash
//   writer.digest() -> Uint8Array(16)     as reader.digest()
//   new CommitFramer()                    one export's FRAMES + COMMIT_META records (commit_records.h):
//                                         the hash of a transaction a run ended inside
//   framer.frameBytes(frames, pageSize, framesPerRecord, lastSeq, timeMs, out) -> { bytes, records, commits }
//       frames in memory (a follower's handed-over tail), framed into out at once
//   framer.readFrames(wal, pageSize, framesPerRecord, lastSeq, timeMs, first, count, epoch, seenEpoch,
//                     out, sink, position) -> Promise<{ bytes, records, commits, missingFrame, dropped }>
//       frames first.. read from the WAL, framed, and (out null) written to the sink file at
//       position, writeback started per MiB, in one op on the WAL's lane; dropped (nothing
//       framed or written, the framer unchanged) when epoch[0] is no longer seenEpoch once the
//       frames are read (a follower's hand-over came: a WAL restart may have overwritten them)
//   countCommits(wal, pageSize, lastFrame) -> Promise<{ commits, missingFrame, lastHeader }>
//       (frame_scan.h CountCommitFrames: the export's base generation, header by header)
//
// Each runs on the I/O lane of the file it writes, or else reads (a base image's database and
// WAL must share one lane, so a close queued behind a chunk on that lane runs after it). A
// reader or writer refuses another op or a digest while one is in flight (the hash advances in
// order), and everything after an op that failed (its hash took part of that op's pages).
// Every argument is checked here before anything is queued (WALNUT_INVALID_ARGUMENT).
#pragma once

#include <napi.h>

namespace walnut::exportio {

Napi::Object Register(Napi::Env env);

}  // namespace walnut::exportio
