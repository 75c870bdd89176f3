// checkpoint.h — the bindings of the checkpoint's native copy (the engine is checkpoint_copy.h,
// which states the plan and the copy's invariants). Two operations, both on the lane of the
// files given (the background lane for a store's checkpoint, so copies and syncs never queue in
// front of commits):
//   checkpointCopy(wal, db, pgnos: Uint32Array, { firstFrame, upTo, nPage, pageSize, syncWal })
//     -> Promise<{ pages, writes, reads, bytesRead }>
//        pgnos = page numbers of frames firstFrame .. firstFrame + pgnos.length - 1 (copied here
//        on the calling thread: the I/O thread never touches JS memory or the wal-index).
//   checkpointSyncDb(db, truncateTo: number | -1, sync: boolean) -> Promise<void>
//        ftruncate the database to truncateTo bytes (when >= 0), then one fdatasync (when sync).
// Errors: WALNUT_IO/WALNUT_FULL (errno, syscall, path of the file that failed), WALNUT_CORRUPT
// when the WAL is shorter than the frames the index names, WALNUT_INVALID_ARGUMENT, and
// WALNUT_CLOSED for a closed file.
#pragma once

#include <napi.h>

namespace walnut::checkpoint {

void Register(Napi::Env env, Napi::Object exports);

}  // namespace walnut::checkpoint
