// frames.cc — see frames.h.
#include "frames.h"

#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "args.h"
#include "big_endian.h"
#include "checksum/sqlite_wal.h"
#include "errors.h"
#include "file.h"
#include "frame_scan.h"
#include "instance.h"
#include "page_size.h"
#include "io_thread.h"
#include "js_value.h"
#include "posix_io.h"
#include "wal_zero_ahead.h"

namespace walnut::frames {
namespace {

using checksum::WalChecksum;

constexpr size_t kWalHeaderSize = 32;
constexpr size_t kFrameHeaderSize = 24;
// the append's chain: pageSize, bigEndian, salt1, salt2, s0, s1, then the file's size after the
// append (low, high 32 bits), written back with s0, s1
constexpr size_t kChainWords = 8;


// The chain parameters both operations share, parsed from a JS object.
using Chain = ScanChain;

bool ParseChain(Napi::Env env, Napi::Value value, Chain* c) {
  if (!value.IsObject()) {
    ThrowInvalid(env, "chain must be an object { pageSize, bigEndian, salt1, salt2, s0, s1 }");
    return false;
  }
  Napi::Object o = value.As<Napi::Object>();
  uint32_t salt1, salt2;
  if (!GetU32Prop(env, o, "pageSize", &c->pageSize) || !GetU32Prop(env, o, "salt1", &salt1) ||
      !GetU32Prop(env, o, "salt2", &salt2) || !GetU32Prop(env, o, "s0", &c->running.s0) ||
      !GetU32Prop(env, o, "s1", &c->running.s1)) {
    return false;
  }
  if (!ValidPageSize(c->pageSize)) {
    ThrowInvalid(env, "pageSize must be a power of two between 512 and 65536");
    return false;
  }
  if (!GetBoolProp(env, o, "bigEndian", &c->bigEndian)) return false;
  PutBe32(c->salts, salt1);
  PutBe32(c->salts + 4, salt2);
  return true;
}

// ---- recovery scan (the loop itself is frame_scan.cc) ---------------------------------------

void Scan(int fd, const Chain& chain, ScanResult* r) {
  uint64_t size = 0;
  r->failure = posix::Size(fd, &size);
  if (r->failure.IsError()) return;
  ScanFrames(size, chain, [fd](uint8_t* buf, size_t len, uint64_t pos, size_t* got) {
    return posix::ReadFull(fd, buf, len, pos, got);
  }, r);
}

// The scan's result as JS sees it (raw N-API: the async form makes it in a completion,
// js_value.h); false when it could not be made.
bool ScanValue(napi_env env, const ScanResult& r, napi_value* out) {
  napi_value mx = nullptr, last = nullptr, pgnos = nullptr;
  if (!js::NumberPair(env, r.atMxFrame.s0, r.atMxFrame.s1, &mx) ||
      !js::NumberPair(env, r.atLastValid.s0, r.atLastValid.s1, &last) ||
      !js::Uint32Copy(env, r.pgnos.data(), r.pgnos.size(), &pgnos)) {
    return false;
  }
  return js::ObjectBuilder(env)
      .Number("lastValidFrame", r.lastValidFrame)
      .Number("mxFrame", r.mxFrame)
      .Number("dbSize", r.dbSize)
      .Number("commits", r.commits)
      .Number("fileSize", static_cast<double>(r.fileSize))
      .Value("mxChecksum", mx)
      .Value("lastValidChecksum", last)
      .Value("pgnos", pgnos)
      .Done(out);
}

class ScanOp : public IoOp {
 public:
  ScanOp(Napi::Env env, std::shared_ptr<FileState> file, Chain chain)
      : IoOp(env), file_(std::move(file)), chain_(chain) {
    file_->BeginOp();
  }
  void Execute() override {
    Scan(file_->fd, chain_, &result_);
    file_->EndOp();
  }
  bool Complete(napi_env env, napi_value* value, bool* rejected) override {
    if (result_.failure.IsError()) return OsRejection(env, result_.failure, file_->path, value, rejected);
    return ScanValue(env, result_, value);
  }

 private:
  std::shared_ptr<FileState> file_;
  Chain chain_;
  ScanResult result_;
};

// walScan(file, chain) / walScanSync(file, chain): chain.s0/s1 = the WAL header checksum.
template <bool Sync>
Napi::Value WalScan(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<FileState> file = NativeFile::StateOf(env, info[0]);
  if (file == nullptr) return Napi::Value();
  Chain chain;
  if (!ParseChain(env, info[1], &chain)) return Napi::Value();
  if (Sync) {
    ScanResult r;
    Scan(file->fd, chain, &r);
    if (r.failure.IsError()) {
      MakeOsError(env, r.failure, file->path).ThrowAsJavaScriptException();
      return Napi::Value();
    }
    napi_value result = nullptr;
    ScanValue(env, r, &result);  // (one that could not be made left its exception pending)
    return Napi::Value(env, result);
  }
  return Instance::Get(env)->Lane(file->lane)->Submit(env, std::make_unique<ScanOp>(env, file, chain));
}

// ---- append ---------------------------------------------------------------------------------

}  // namespace

// One append (walAppend, walAppendSync, ShmRegion.commitInline: frames.h), built by ParseAppend.
struct AppendJob {
  Chain chain;
  uint64_t offset = 0;                // byte offset of the first new frame
  std::vector<uint8_t> headers;       // 24 bytes per frame, built here
  std::vector<const uint8_t*> pages;  // the caller's page buffers (kept alive by the op)
  int durability = 0;                 // 0 none, 1 fdatasync, 2 fsync
  bool checkWindow = false;
  // false: the next slot is not read (the caller vouches for it: the window named no slot)
  bool checkSlot = false;
  uint8_t expectHeader[kWalHeaderSize] = {};
  uint64_t expectSize = 0;
  // the frame header that was in the first slot when the window was read: a frame left there
  // by a recovery that dropped it (torn or damaged tail) may be overwritten
  bool hasExpectSlot = false;
  uint8_t expectSlot[kFrameHeaderSize] = {};
  uint64_t growTo = 0;                // zero-fill after the frames up to this file size
  // walAppend's fresh mode (a WAL restart or creation, WalFile.appendAfterHeader): this new
  // 32-byte WAL header is written at offset 0 and synced per freshDurability before the frames
  // (frame 1 on) are written; no window is checked (the header is replaced, and frames from
  // frame 1 on leave no hole whatever the file's size)
  bool fresh = false;
  uint8_t freshHeader[kWalHeaderSize] = {};
  int freshDurability = 0;            // 0 none, 1 fdatasync, 2 fsync
  // results
  WalChecksum running{0, 0};
  OsFailure failure;
  bool stale = false;
  bool failedAtHeader = false;        // the fresh header's write or sync failed: no frame was written
  size_t framesWritten = 0;           // bytes the frame writes put in the file (0 on a write refused outright)
  uint64_t sizeAfter = 0;             // the file's size once the append stood (chain words 6, 7)
};

void AppendJobDelete::operator()(AppendJob* job) const { delete job; }

namespace {

// ENOSPC, EDQUOT, EFBIG: no room for more bytes in this file system, quota or file.
bool OutOfSpace(int err) { return err == ENOSPC || err == EDQUOT || err == EFBIG; }

// Runs on the I/O thread (or the caller's for the sync variant). `extend` is held from the
// window check through the write (not the sync): the WAL's zero-ahead writes at the file's end
// from another thread (wal_zero_ahead.h).
void RunAppend(int fd, std::mutex& extend, AppendJob* job) {
  std::unique_lock<std::mutex> hold(extend);
  // the file's size before the write (read with the window, or below it in fresh mode): bounds
  // the tail's zeros and the out-of-space fallback's cut
  uint64_t sizeBefore = job->expectSize;
  if (job->fresh) {
    // The new header is durable before any frame of its generation is written (SQLite's
    // walFrames, ticket ff5be73dee): a frame that reached the disk under the old header would cut
    // the old generation's chain short, and recovery would read stale pages from its prefix over
    // the checkpointed database (bench/probes/restart-fold-hazard.py). One operation, two syncs.
    struct iovec head = {job->freshHeader, kWalHeaderSize};
    job->failure = posix::WritevFull(fd, &head, 1, 0);
    hold.unlock();
    if (!job->failure.IsError() && job->freshDurability != 0) job->failure = posix::Sync(fd, job->freshDurability == 1);
    if (job->failure.IsError()) {
      job->failedAtHeader = true;
      return;
    }
    hold.lock();
  } else if (job->checkWindow) {
    uint8_t now[kWalHeaderSize];
    size_t got = 0;
    uint64_t size = 0;
    job->failure = posix::ReadFull(fd, now, kWalHeaderSize, 0, &got);
    if (!job->failure.IsError()) job->failure = posix::Size(fd, &size);
    if (job->failure.IsError()) return;
    sizeBefore = size;
    // The file may have grown since (this process's zero-ahead, or another writer's append,
    // which the slot test below catches); a file shorter than the caller saw was cut under it.
    if (got != kWalHeaderSize || std::memcmp(now, job->expectHeader, kWalHeaderSize) != 0 || size < job->expectSize) {
      job->stale = true;
      return;
    }
    // Preallocated space means another writer's append need not change the size: the frame
    // slot we are about to fill must not already hold a frame of this generation.
    if (job->checkSlot && job->offset + kFrameHeaderSize <= size) {
      uint8_t next[kFrameHeaderSize];
      job->failure = posix::ReadFull(fd, next, kFrameHeaderSize, job->offset, &got);
      if (job->failure.IsError()) return;
      if (got == kFrameHeaderSize && Be32(next) != 0 && std::memcmp(next + 8, job->chain.salts, 8) == 0 &&
          !(job->hasExpectSlot && std::memcmp(next, job->expectSlot, kFrameHeaderSize) == 0)) {
        job->stale = true;
        return;
      }
    }
  }
  if (!job->checkWindow) {
    job->failure = posix::Size(fd, &sizeBefore);
    if (job->failure.IsError()) return;
  }
  const size_t n = job->pages.size();
  WalChecksum running = job->chain.running;
  for (size_t i = 0; i < n; i++) {
    uint8_t* h = job->headers.data() + i * kFrameHeaderSize;
    std::memcpy(h + 8, job->chain.salts, 8);
    running = checksum::SqliteWalFrameChecksum(h, job->pages[i], job->chain.pageSize, running,
                                               job->chain.bigEndian);
    PutBe32(h + 16, running.s0);
    PutBe32(h + 20, running.s1);
  }
  std::vector<struct iovec> iov;
  iov.reserve(2 * n + 1);
  for (size_t i = 0; i < n; i++) {
    iov.push_back({job->headers.data() + i * kFrameHeaderSize, kFrameHeaderSize});
    iov.push_back({const_cast<uint8_t*>(job->pages[i]), job->chain.pageSize});
  }
  const uint64_t end = job->offset + static_cast<uint64_t>(n) * (kFrameHeaderSize + job->chain.pageSize);
  static const uint8_t kZeros[65536] = {};
  // The tail: zeros over the next slot's frame header, as far as the file holds it, in the same
  // pwritev (so the same fdatasync covers them). Whatever lies there (frames a killed writer or
  // a failed batch left, unpublished, of this very generation) can then never continue the
  // chain after these frames: an append that repeats the first of them byte for byte (a retry)
  // would otherwise revive the rest at the next recovery (test/interop/dropped-tail-crash).
  // Past the file's end nothing is written: there is nothing there to continue into, and the
  // zeros would take space a nearly full disk may not have.
  const uint64_t tailTo = sizeBefore > end ? std::min<uint64_t>(end + kFrameHeaderSize, sizeBefore) : end;
  // Preallocation: zeros right after the new frames up to growTo (see wal-file.ts GROWTH_CHUNK),
  // so that later appends overwrite written, already-sized space; they cover the tail too.
  const uint64_t zeroTo = std::max(job->growTo, tailTo);
  for (uint64_t at = end; at < zeroTo;) {
    size_t len = static_cast<size_t>(std::min<uint64_t>(sizeof(kZeros), zeroTo - at));
    iov.push_back({const_cast<uint8_t*>(kZeros), len});
    at += len;
  }
  job->failure = posix::WritevFull(fd, iov.data(), iov.size(), job->offset, &job->framesWritten);
  job->sizeAfter = std::max(sizeBefore, zeroTo);  // (when it stands as written)
  if (job->failure.IsError() && OutOfSpace(job->failure.err) && zeroTo > end && job->framesWritten >= end - job->offset) {
    // Every frame is in the file; the disk (or a quota, or a file-size limit) had no room for
    // the zeros after them, as SQLite, which never preallocates, would not have needed. Whatever
    // the failed write put past the frames and the old end goes (never below either: what is
    // there was written under the WAL's locks; past both there are only zeros and stale frames,
    // never a frame of this generation), and the file is then extended to growTo without
    // allocating anything (a hole reads as zeros, invalid frames to every reader), so that its
    // size is the one the caller expects after the append. The append stands when the tail
    // reads as zeros then (a hole, or zeros the write put there before it failed: writing them
    // needed a block); otherwise what lies there could continue the chain: it fails.
    const uint64_t keep = std::max(end, sizeBefore);
    const int failedErr = job->failure.err;
    uint8_t tail[kFrameHeaderSize];
    size_t got = 0;
    if (!posix::Truncate(fd, keep).IsError() &&
        (tailTo == end || (!posix::ReadFull(fd, tail, static_cast<size_t>(tailTo - end), end, &got).IsError() &&
                           got == tailTo - end && std::all_of(tail, tail + got, [](uint8_t b) { return b == 0; })))) {
      job->failure = OsFailure{};
      // Extended to growTo over a hole, except under a file-size limit (RLIMIT_FSIZE: EFBIG, with
      // SIGXFSZ, which Node ignores), which refuses that as it refused the write. Either way the
      // size is read back for the caller's window: the size it asked for (growTo), taken as the
      // file's, failed every later append's window check (StaleAppendWindow: re-read and retry,
      // each time, every one writing zeros up to the limit again).
      if (job->growTo > keep && failedErr != EFBIG) (void)posix::Truncate(fd, job->growTo);
      if (posix::Size(fd, &job->sizeAfter).IsError()) job->sizeAfter = keep;  // the smaller: a window check passes
    }
  }
  hold.unlock();
  if (!job->failure.IsError() && job->durability != 0) {
    job->failure = posix::Sync(fd, job->durability == 1);
  }
  job->running = running;
}

// The caller's chain words (6 of them), or null when `value` is no longer such an array. Looked up
// again after the append, not kept from before it: nothing then depends on the array staying
// attached and unchanged in size meanwhile.
uint32_t* ChainWordsOf(napi_env env, napi_value value) {
  ByteSpan words;
  if (!TypedBytesOf(env, value, napi_uint32_array, &words) || words.length != kChainWords * 4) return nullptr;
  return reinterpret_cast<uint32_t*>(words.data);
}

// The append's outcome: *error set (stale window, OS failure), else null and the new running
// checksum stored into the caller's chain words [4], [5] (`chain`: 6 words; null when the
// caller's array was detached or shrunk meanwhile: then the append fails, so that the caller
// invalidates frames whose chain it cannot continue). Raw N-API (the async form runs in a
// completion, js_value.h): false when the error could not be made.
bool AppendOutcome(napi_env env, const AppendJob& job, const std::string& path, uint32_t* chain, napi_value* error) {
  *error = nullptr;
  if (job.stale) {
    return NewError(env, "WALNUT_BUSY",
                    "WALNUT_BUSY: the WAL changed since it was last read (another "
                    "writer appended or restarted it); nothing was written", error) &&
           js::SetString(env, *error, "reason", "StaleAppendWindow") && js::SetString(env, *error, "path", path);
  }
  if (job.failure.IsError()) {
    // stage 'header': a fresh append failed at its header, before any frame was written;
    // nothingWritten: the frames' write was refused before its first byte (EROFS, EPERM, ENOSPC:
    // the file holds nothing of them, so the caller has nothing to invalidate and the failure
    // is definite), not set for a write that failed part way or a sync that failed after it
    return NewOsError(env, job.failure, path, false, error) &&
           (!job.failedAtHeader || js::SetString(env, *error, "stage", "header")) &&
           (job.failedAtHeader || job.framesWritten != 0 || js::SetBool(env, *error, "nothingWritten", true));
  }
  if (chain == nullptr) {
    return NewError(env, "WALNUT_INVALID_ARGUMENT",
                    "WALNUT_INVALID_ARGUMENT: the chain array was detached during the append", error);
  }
  chain[4] = job.running.s0;
  chain[5] = job.running.s1;
  chain[6] = static_cast<uint32_t>(job.sizeAfter);
  chain[7] = static_cast<uint32_t>(job.sizeAfter >> 32);
  return true;
}

class AppendOp : public IoOp {
 public:
  // `chain` (the caller's words, where the result goes) and `pages` (whose buffers the job
  // points into) are kept alive until Complete().
  AppendOp(Napi::Env env, std::shared_ptr<FileState> file, AppendJobPtr job, Napi::Value chain,
           Napi::Value pages)
      : IoOp(env), file_(std::move(file)), job_(std::move(job)) {
    KeepAlive(chain);
    KeepAlive(pages);
    file_->BeginOp();
  }
  void Execute() override {
    RunAppend(file_->fd, file_->extend, job_.get());
    file_->EndOp();
  }
  bool Complete(napi_env env, napi_value* value, bool* rejected) override {
    if (!AppendOutcome(env, *job_, file_->path, ChainWordsOf(env, Kept(env, 0)), value)) return false;
    *rejected = *value != nullptr;
    return *rejected || napi_get_undefined(env, value) == napi_ok;
  }

 private:
  std::shared_ptr<FileState> file_;
  AppendJobPtr job_;
};

// walAppend(file, chain: Uint32Array(8) [pageSize, bigEndian (0|1), salt1, salt2, s0, s1, size low, size high], offset,
//           pgnos: Uint32Array, commitSizes: Uint32Array, pages: Uint8Array[], durability: 0 none | 1 data | 2 full,
//           header?: Uint8Array(32) (the window: undefined = not checked), size?: the file size seen with it,
//           slot?: Uint8Array(24) | null (undefined: the next slot is not read; null: it must hold no frame of
//           this generation), growTo?: zero-fill the file after the frames up to this size,
//           fresh?: Uint8Array(32) (a new WAL header: written at 0 and synced per freshDurability before the
//           frames, which must start at frame 1; no window with it), freshDurability?: 0 | 1 | 2)
//   -> Promise<undefined> (walAppendSync returns undefined); on success the new running checksum
//      is written into chain[4], chain[5], and the file's size after it into chain[6], chain[7]
//      (low, high 32 bits: read back where a full disk or a file-size limit refused the zeros after the frames).
// Positional and typed, not an options object and a result array: a lone commit makes one call,
// and reading six named properties and building a fresh [s0, s1] were ~7% of its CPU on tmpfs
// (bench/README #19 session 11).
}  // namespace

// walAppend's arguments chain .. growTo (see above) at info[first] ..; every length and offset
// is checked here, before anything is written.
AppendJobPtr ParseAppend(const Napi::CallbackInfo& info, size_t first) {
  Napi::Env env = info.Env();
  AppendJobPtr job(new AppendJob());
  ByteSpan chainBytes;
  if (!GetTypedBytes(info, first + 0, napi_uint32_array, "chain", "a Uint32Array [pageSize, bigEndian, salt1, salt2, s0, s1, size low, size high]", &chainBytes)) {
    return nullptr;
  }
  if (chainBytes.length != kChainWords * 4) return ThrowInvalid(env, "chain must hold 8 words [pageSize, bigEndian, salt1, salt2, s0, s1, size low, size high]"), nullptr;
  const uint32_t* chainWords = reinterpret_cast<const uint32_t*>(chainBytes.data);
  if (!ValidPageSize(chainWords[0])) return ThrowInvalid(env, "pageSize must be a power of two between 512 and 65536"), nullptr;
  job->chain.pageSize = chainWords[0];
  job->chain.bigEndian = chainWords[1] != 0;
  PutBe32(job->chain.salts, chainWords[2]);
  PutBe32(job->chain.salts + 4, chainWords[3]);
  job->chain.running = {chainWords[4], chainWords[5]};
  if (!GetUint(info, first + 1, "offset", &job->offset)) return nullptr;
  ByteSpan pgnoBytes, commitBytes;
  if (!GetTypedBytes(info, first + 2, napi_uint32_array, "pgnos", "a Uint32Array", &pgnoBytes) ||
      !GetTypedBytes(info, first + 3, napi_uint32_array, "commitSizes", "a Uint32Array", &commitBytes)) {
    return nullptr;
  }
  if (info.Length() < first + 5 || !info[first + 4].IsArray()) return ThrowInvalid(env, "pages must be an array"), nullptr;
  Napi::Array pages = info[first + 4].As<Napi::Array>();
  const size_t n = pages.Length();
  if (n == 0) return ThrowInvalid(env, "at least one frame is required"), nullptr;
  if (pgnoBytes.length != n * 4 || commitBytes.length != n * 4) {
    return ThrowInvalid(env, "pgnos, commitSizes and pages must have the same length"), nullptr;
  }
  uint64_t durability = 0;
  if (!GetUint(info, first + 5, "durability", &durability, true, 0)) return nullptr;
  if (durability > 2) return ThrowInvalid(env, "durability must be 0 (none), 1 (data) or 2 (full)"), nullptr;
  job->durability = static_cast<int>(durability);
  if (info.Length() > first + 6 && !info[first + 6].IsUndefined()) {
    ByteSpan header;
    if (!GetTypedBytes(info, first + 6, napi_uint8_array, "header", "a 32-byte Uint8Array", &header) || header.length != kWalHeaderSize) {
      if (env.IsExceptionPending()) return nullptr;
      return ThrowInvalid(env, "header must be a 32-byte Uint8Array"), nullptr;
    }
    std::memcpy(job->expectHeader, header.data, kWalHeaderSize);
    if (!GetUint(info, first + 7, "size", &job->expectSize)) return nullptr;
    job->checkWindow = true;
    job->checkSlot = info.Length() > first + 8 && !info[first + 8].IsUndefined();
    if (job->checkSlot && !info[first + 8].IsNull()) {
      ByteSpan slot;
      if (!GetTypedBytes(info, first + 8, napi_uint8_array, "slot", "a 24-byte Uint8Array", &slot) || slot.length != kFrameHeaderSize) {
        if (env.IsExceptionPending()) return nullptr;
        return ThrowInvalid(env, "slot must be a 24-byte Uint8Array"), nullptr;
      }
      std::memcpy(job->expectSlot, slot.data, kFrameHeaderSize);
      job->hasExpectSlot = true;
    }
  }
  if (!GetUint(info, first + 9, "growTo", &job->growTo, true, 0)) return nullptr;
  if (job->growTo > (1ULL << 40)) return ThrowInvalid(env, "growTo is too large"), nullptr;
  const size_t frameSize = kFrameHeaderSize + job->chain.pageSize;
  if (job->offset < kWalHeaderSize || (job->offset - kWalHeaderSize) % frameSize != 0) {
    return ThrowInvalid(env, "offset must be the start of a frame"), nullptr;
  }
  const uint32_t* pgnos = reinterpret_cast<const uint32_t*>(pgnoBytes.data);
  const uint32_t* commits = reinterpret_cast<const uint32_t*>(commitBytes.data);
  job->headers.assign(n * kFrameHeaderSize, 0);
  job->pages.resize(n);
  // Two engine calls per page (get the element, get its typed-array info, which refuses a value
  // that is not a typed array), and no reference of its own: the op keeps the `pages` array
  // alive, and the array keeps every page (walnut's own memory, which nobody changes or
  // detaches until the append completes: frames.h). The JS cost of a 64-page batch was mostly
  // these calls.
  for (size_t i = 0; i < n; i++) {
    if (pgnos[i] == 0) return ThrowInvalid(env, "page numbers start at 1"), nullptr;
    napi_value p;
    napi_typedarray_type type = napi_int8_array;
    size_t length = 0;
    void* data = nullptr;
    if (napi_get_element(env, pages, static_cast<uint32_t>(i), &p) != napi_ok ||
        napi_get_typedarray_info(env, p, &type, &length, &data, nullptr, nullptr) != napi_ok ||
        type != napi_uint8_array || length != job->chain.pageSize) {
      if (env.IsExceptionPending()) return nullptr;
      return ThrowInvalid(env, "pages[" + std::to_string(i) + "] must be a Uint8Array of exactly pageSize bytes"), nullptr;
    }
    job->pages[i] = static_cast<const uint8_t*>(data);
    PutBe32(job->headers.data() + i * kFrameHeaderSize, pgnos[i]);
    PutBe32(job->headers.data() + i * kFrameHeaderSize + 4, commits[i]);
  }
  return job;
}

uint64_t AppendFirstFrame(const AppendJob& job) {
  return (job.offset - kWalHeaderSize) / (kFrameHeaderSize + job.chain.pageSize) + 1;
}

size_t AppendFrames(const AppendJob& job) { return job.pages.size(); }

InlineAppend RunAppendHere(Napi::Env env, FileState& file, AppendJob* job, napi_value chain, WalChecksum* running) {
  RunAppend(file.fd, file.extend, job);
  if (job->stale) return InlineAppend::kStale;
  napi_value error = nullptr;
  // (an error that could not be made left its exception pending)
  if (!AppendOutcome(env, *job, file.path, ChainWordsOf(env, chain), &error)) return InlineAppend::kFailed;
  if (error != nullptr) {
    js::SetString(env, error, "stage", "write");  // frames may be (partly) on disk: the caller invalidates them
    napi_throw(env, error);
    return InlineAppend::kFailed;
  }
  *running = job->running;
  return InlineAppend::kWritten;
}

namespace {

template <bool Sync>
Napi::Value WalAppend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<FileState> file = NativeFile::StateOf(env, info[0]);
  if (file == nullptr) return Napi::Value();
  AppendJobPtr job = ParseAppend(info, 1);
  if (job == nullptr) return Napi::Value();
  if (info.Length() > 11 && !info[11].IsUndefined()) {
    ByteSpan fresh;
    if (!GetTypedBytes(info, 11, napi_uint8_array, "fresh", "a 32-byte Uint8Array", &fresh) || fresh.length != kWalHeaderSize) {
      if (env.IsExceptionPending()) return Napi::Value();
      return ThrowInvalid(env, "fresh must be a 32-byte Uint8Array"), Napi::Value();
    }
    if (job->checkWindow) return ThrowInvalid(env, "a fresh header replaces the window: pass no header with it"), Napi::Value();
    if (job->offset != kWalHeaderSize) return ThrowInvalid(env, "after a fresh header the frames start at frame 1"), Napi::Value();
    uint64_t durability = 0;
    if (!GetUint(info, 12, "freshDurability", &durability, true, 0)) return Napi::Value();
    if (durability > 2) return ThrowInvalid(env, "freshDurability must be 0 (none), 1 (data) or 2 (full)"), Napi::Value();
    std::memcpy(job->freshHeader, fresh.data, kWalHeaderSize);
    job->freshDurability = static_cast<int>(durability);
    job->fresh = true;
  }
  if (Sync) {
    RunAppend(file->fd, file->extend, job.get());
    napi_value error = nullptr;
    // (an error that could not be made left its exception pending)
    if (!AppendOutcome(env, *job, file->path, ChainWordsOf(env, info[1]), &error)) return Napi::Value();
    if (error != nullptr) {
      napi_throw(env, error);
      return Napi::Value();
    }
    return env.Undefined();
  }
  return Instance::Get(env)->Lane(file->lane)->Submit(env, std::make_unique<AppendOp>(env, file, std::move(job), info[1], info[5]));
}

// ---- zero-ahead ------------------------------------------------------------------------------

class ZeroAheadOp : public IoOp {
 public:
  ZeroAheadOp(Napi::Env env, std::shared_ptr<FileState> file, std::shared_ptr<FileState> through, uint64_t floor, uint64_t target)
      : IoOp(env), file_(std::move(file)), through_(std::move(through)), floor_(floor), target_(target) {
    file_->BeginOp();
    through_->BeginOp();
  }
  void Execute() override {
    failure_ = wal::ZeroAhead(through_->fd, file_->extend, floor_, target_, &size_);
    through_->EndOp();
    file_->EndOp();
  }
  bool Complete(napi_env env, napi_value* value, bool* rejected) override {
    if (failure_.IsError()) return OsRejection(env, failure_, file_->path, value, rejected);
    return js::Number(env, static_cast<double>(size_), value);
  }

 private:
  std::shared_ptr<FileState> file_;
  std::shared_ptr<FileState> through_;
  uint64_t floor_;
  uint64_t target_;
  uint64_t size_ = 0;
  OsFailure failure_;
};

// walZeroAhead(file, through, floor, target) -> Promise<size>: zeros and syncs `file` up to
// `target` bytes past its current end, never below `floor` (wal_zero_ahead.h), holding `file`'s extend mutex (the one its
// appends hold) but writing and syncing through `through`, another open file description of
// the same file: a write-back error the zeroing meets is then still reported to the appends'
// own next fdatasync (Linux reports it once per file description), never swallowed by the
// zeroing. Always on the environment's background lane, never in front of a commit's append.
Napi::Value WalZeroAhead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<FileState> file = NativeFile::StateOf(env, info[0]);
  if (file == nullptr) return Napi::Value();
  std::shared_ptr<FileState> through = NativeFile::StateOf(env, info[1]);
  if (through == nullptr) return Napi::Value();
  if (through == file) return ThrowInvalid(env, "through must be another descriptor of the file");
  uint64_t floor = 0;
  if (!GetUint(info, 2, "floor", &floor)) return Napi::Value();
  uint64_t target = 0;
  if (!GetUint(info, 3, "target", &target)) return Napi::Value();
  if (target > (1ULL << 40)) return ThrowInvalid(env, "target is too large");
  if (floor > target) return ThrowInvalid(env, "floor is past target");
  return Instance::Get(env)->background->Submit(env, std::make_unique<ZeroAheadOp>(env, file, through, floor, target));
}

// walLanesIdle() -> true when neither this environment's main nor its background I/O lane has
// an operation queued or running: a write on the calling thread then cannot overtake one queued
// before it (the lanes' FIFO order), nor contend with a checkpoint's copy or sync. (The read
// lane only reads frames already committed: a write overtakes nothing there.)
Napi::Value WalLanesIdle(const Napi::CallbackInfo& info) {
  Instance* instance = Instance::Get(info.Env());
  return Napi::Boolean::New(info.Env(), instance->io->Idle() && instance->background->Idle());
}

}  // namespace

void Register(Napi::Env env, Napi::Object exports) {
  exports.Set("walLanesIdle", Napi::Function::New<WalLanesIdle>(env, "walLanesIdle"));
  exports.Set("walScan", Napi::Function::New<WalScan<false>>(env, "walScan"));
  exports.Set("walScanSync", Napi::Function::New<WalScan<true>>(env, "walScanSync"));
  exports.Set("walAppend", Napi::Function::New<WalAppend<false>>(env, "walAppend"));
  exports.Set("walAppendSync", Napi::Function::New<WalAppend<true>>(env, "walAppendSync"));
  exports.Set("walZeroAhead", Napi::Function::New<WalZeroAhead>(env, "walZeroAhead"));
}

}  // namespace walnut::frames
