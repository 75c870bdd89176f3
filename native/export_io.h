// export_io.h — the JS entry points of the export's native paths (exported as addon.exportIo):
//
//   new BaseImageReader()                 one base image: its running xxh3-128 over the pages
//   reader.readChunk(db, wal, out, pageSize, pagesPerRecord, firstPgno, pageCount, dbFilePages,
//                    frames: Uint32Array | null, checkTrailers)
//       -> Promise<{ bytes, missingFrame, badTrailerPgno }>   (base_image.h does the work)
//   reader.digest() -> Uint8Array(16)     the canonical xxh3-128 (high u64 then low u64, BE)
//   startWriteback(file, offset, length) -> Promise<void>   (posix::StartWriteback)
//
// Both run on the I/O lane of the file they read or write (a base image's database and WAL
// must share one lane, so a close queued behind a chunk on that lane runs after it). A reader
// refuses a second chunk or a digest while a chunk is in flight (the hash advances in order),
// and everything after a chunk that failed (its hash took part of that chunk).
// Every argument is checked here before anything is queued (WALNUT_INVALID_ARGUMENT).
#pragma once

#include <napi.h>

namespace walnut::exportio {

Napi::Object Register(Napi::Env env);

}  // namespace walnut::exportio
