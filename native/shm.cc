// shm.cc — see shm.h.
#include "shm.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "args.h"
#include "checksum/sqlite_wal.h"
#include "errors.h"
#include "faults.h"
#include "file.h"
#include "frames.h"
#include "instance.h"
#include "io_thread.h"
#include "posix_io.h"
#include "shm_guard.h"
#include "shm_index.h"

namespace walnut::shm {
namespace {

class ShmRegion : public Napi::ObjectWrap<ShmRegion> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "ShmRegion",
                       {InstanceMethod<&ShmRegion::Map>("map"),
                        InstanceMethod<&ShmRegion::Grow>("grow"),
                        InstanceMethod<&ShmRegion::Segments>("segments"),
                        InstanceMethod<&ShmRegion::CoversMapping>("coversMapping"),
                        InstanceMethod<&ShmRegion::ReadHeader>("readHeader"),
                        InstanceMethod<&ShmRegion::WriteHeader>("writeHeader"),
                        InstanceMethod<&ShmRegion::Load32>("load32"),
                        InstanceMethod<&ShmRegion::Store32>("store32"),
                        InstanceMethod<&ShmRegion::Append>("append"),
                        InstanceMethod<&ShmRegion::Rebuild>("rebuild"),
                        InstanceMethod<&ShmRegion::CommitInline>("commitInline"),
                        InstanceMethod<&ShmRegion::Lookup>("lookup"),
                        InstanceMethod<&ShmRegion::LookupMany>("lookupMany"),
                        InstanceMethod<&ShmRegion::PageNumbers>("pageNumbers"),
                        InstanceMethod<&ShmRegion::Unmap>("unmap")});
  }

  // new ShmRegion(file) maps `file` (a NativeFile of the -shm); new ShmRegion() is heap memory.
  explicit ShmRegion(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ShmRegion>(info) {
    if (info.Length() > 0 && !info[0].IsUndefined()) {
      file_ = NativeFile::StateOf(info.Env(), info[0]);
      if (file_ == nullptr) return;
    }
  }
  ~ShmRegion() override { Release(); }

 private:
  bool Heap() const { return file_ == nullptr; }

  void Release() {
    for (uint8_t* seg : segments_) {
      if (Heap()) {
        delete[] seg;
      } else {
        ::munmap(seg, kSegment);
      }
    }
    segments_.clear();
  }

  bool CheckOpen(Napi::Env env) {
    if (closed_ || (file_ != nullptr && file_->closed)) {
      MakeError(env, "WALNUT_CLOSED", "WALNUT_CLOSED: the wal-index is closed").ThrowAsJavaScriptException();
      return false;
    }
    return true;
  }

  // The -shm's size (lseek: posix::Size); false with a WALNUT_IO thrown on an OS error.
  bool FileSize(Napi::Env env, uint64_t* size) {
    OsFailure f = posix::Size(file_->fd, size);
    if (!f.IsError()) return true;
    MakeOsError(env, f, file_->path).ThrowAsJavaScriptException();
    return false;
  }

  // Maps segments until `count` are mapped or the file ends (SQLite's walIndexPage: a reader
  // maps a segment only once the file covers it). `*fileSize` gets the file's size (0 for heap
  // memory). Returns false on an OS error.
  bool MapUpTo(Napi::Env env, uint32_t count, uint64_t* fileSize = nullptr) {
    if (fileSize != nullptr) *fileSize = 0;
    if (Heap()) {
      while (segments_.size() < count) {
        uint8_t* seg = new uint8_t[kSegment];
        std::memset(seg, 0, kSegment);
        segments_.push_back(seg);
      }
      return true;
    }
    uint64_t size = 0;
    if (!FileSize(env, &size)) return false;
    if (fileSize != nullptr) *fileSize = size;
    while (segments_.size() < count && (segments_.size() + 1) * kSegment <= size) {
      void* p = ::mmap(nullptr, kSegment, PROT_READ | PROT_WRITE, MAP_SHARED, file_->fd,
                       static_cast<off_t>(segments_.size() * kSegment));
      if (p == MAP_FAILED) {
        MakeOsError(env, OsFailure{errno, "mmap"}, file_->path).ThrowAsJavaScriptException();
        return false;
      }
      segments_.push_back(static_cast<uint8_t*>(p));
    }
    return true;
  }

  // The one place that maps segments for readers: makes sure the segment holding `frame` (and
  // every one before it) is mapped, mapping on demand as SQLite's walIndexPage does. The common
  // case, a segment already mapped, is one comparison and no system call. A frame whose segment
  // lies beyond the file's end is corruption (the header promised frames the index lacks); in
  // heap memory every indexed segment is already allocated, so a missing one is too.
  bool NeedFrame(Napi::Env env, uint32_t frame) {
    if (frame == 0) return true;
    uint32_t seg = SegmentOf(frame);
    if (seg < segments_.size()) return true;
    uint64_t size = 0;
    if (!Heap() && !MapUpTo(env, seg + 1, &size)) return false;
    if (seg < segments_.size()) return true;
    std::string what = "frame " + std::to_string(frame) + " lies in wal-index segment " + std::to_string(seg);
    if (Heap()) {
      what += ", which the in-memory index does not have";
    } else {
      what += ", beyond the end of the -shm (" + std::to_string(size) + " bytes)";
    }
    ThrowCorrupt(env, what);
    return false;
  }

  // coversMapping() -> false when the -shm has become shorter than the segments mapped from it
  // (another user of the file truncated it): touching those pages would raise SIGBUS. One
  // lseek; lib/wal-index/wal-index.ts calls it where transactions begin (see shm.h).
  Napi::Value CoversMapping(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return Napi::Value();
    if (Heap() || segments_.empty()) return Napi::Boolean::New(env, true);
    uint64_t size = 0;
    if (!FileSize(env, &size)) return Napi::Value();
    return Napi::Boolean::New(env, size >= static_cast<uint64_t>(segments_.size()) * kSegment);
  }

  // map(count) -> number of segments mapped (fewer when the file is shorter).
  Napi::Value Map(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint64_t count;
    if (!CheckOpen(env) || !GetUint(info, 0, "count", &count)) return Napi::Value();
    if (count > 65536) return ThrowInvalid(env, "segment count is too large");
    if (!MapUpTo(env, static_cast<uint32_t>(count))) return Napi::Value();
    return Napi::Number::New(env, static_cast<double>(segments_.size()));
  }

  // Extends the file to `count` segments the way SQLite does and maps them. At most 65,536
  // segments (a WAL of 268,435,456 frames, grow()'s bound): append() and commitInline() take
  // their frame numbers from a header, and a frame near 2^32 would otherwise grow a sparse
  // 32 GiB -shm by a million one-byte writes.
  bool GrowTo(Napi::Env env, uint32_t count) {
    if (segments_.size() >= count) return true;
    if (count > 65536) {
      ThrowInvalid(env, "segment count is too large (more than 65,536 -shm segments: a WAL past 268,435,456 frames)");
      return false;
    }
    if (!Heap()) {
      uint64_t size = 0;
      OsFailure f = posix::Size(file_->fd, &size);
      uint64_t want = static_cast<uint64_t>(count) * kSegment;
      // Every block of the segments about to be mapped allocated first, also of those the file
      // already covers (another process grew them): the one-byte writes below, SQLite's way,
      // allocate only the block they land in, and on a file system of blocks smaller than 4 KiB
      // (a small ext4's 1 KiB) a store into the mapping would then need a block a full disk
      // cannot give: SIGBUS, not ENOSPC. This way a full disk fails here (WALNUT_FULL), before
      // the commit writes anything. fallocate never changes bytes already there.
      bool supported = true;
      const uint64_t from = static_cast<uint64_t>(segments_.size()) * kSegment;
      if (!f.IsError()) f = posix::AllocateBlocks(file_->fd, from, want - from, &supported);
      for (uint64_t off = (size / 4096) * 4096 + 4095; !f.IsError() && off < want; off += 4096) {
        if (off < size) continue;
        static const uint8_t zero = 0;
        f = posix::WriteFull(file_->fd, &zero, 1, off);
      }
      if (f.IsError()) {
        MakeOsError(env, f, file_->path).ThrowAsJavaScriptException();
        return false;
      }
    }
    if (!MapUpTo(env, count)) return false;
    if (segments_.size() < count) {
      MakeError(env, "WALNUT_IO", "WALNUT_IO: the -shm did not grow").ThrowAsJavaScriptException();
      return false;
    }
    return true;
  }

  Napi::Value Grow(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint64_t count;
    if (!CheckOpen(env) || !GetUint(info, 0, "count", &count)) return Napi::Value();
    if (count > 65536) return ThrowInvalid(env, "segment count is too large");
    if (!GrowTo(env, static_cast<uint32_t>(count))) return Napi::Value();
    return env.Undefined();
  }

  Napi::Value Segments(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(segments_.size()));
  }

  bool NeedSegment0(Napi::Env env) {
    if (segments_.empty()) {
      MakeError(env, "WALNUT_CORRUPT", "WALNUT_CORRUPT: the wal-index is not mapped").ThrowAsJavaScriptException();
      return false;
    }
    return true;
  }

  // readHeader(out: Uint8Array(96)): copy 0, barrier, copy 1 (SQLite's reader order).
  Napi::Value ReadHeader(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ByteSpan out;
    if (!CheckOpen(env) || !GetBytes(info, 0, "out", &out)) return Napi::Value();
    if (out.length < 96) return ThrowInvalid(env, "out needs 96 bytes");
    if (!NeedSegment0(env)) return Napi::Value();
    const uint8_t* s = segments_[0];
    const bool whole = ShmTouch([&] {
      for (size_t i = 0; i < 48; i += 4) {
        uint32_t v = reinterpret_cast<const std::atomic<uint32_t>*>(s + i)->load(std::memory_order_relaxed);
        std::memcpy(out.data + i, &v, 4);
      }
      std::atomic_thread_fence(std::memory_order_seq_cst);
      for (size_t i = 48; i < 96; i += 4) {
        uint32_t v = reinterpret_cast<const std::atomic<uint32_t>*>(s + i)->load(std::memory_order_relaxed);
        std::memcpy(out.data + i, &v, 4);
      }
    });
    return whole ? env.Undefined() : ThrowTruncated(env);
  }

  // writeHeader(hdr: Uint8Array(48)): copy 1, barrier, copy 0 (SQLite's writer order).
  Napi::Value WriteHeader(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ByteSpan hdr;
    if (!CheckOpen(env) || !GetBytes(info, 0, "header", &hdr)) return Napi::Value();
    if (hdr.length != 48) return ThrowInvalid(env, "header must be 48 bytes");
    if (!NeedSegment0(env)) return Napi::Value();
    return ShmTouch([&] { PublishHeader(hdr.data); }) ? env.Undefined() : ThrowTruncated(env);
  }

  // Copy 1, barrier, copy 0 (SQLite's writer order), barrier. Inside a ShmTouch; segment 0 mapped.
  void PublishHeader(const uint8_t* hdr) {
    uint8_t* s = segments_[0];
    for (size_t i = 0; i < 48; i += 4) {
      uint32_t v;
      std::memcpy(&v, hdr + i, 4);
      reinterpret_cast<std::atomic<uint32_t>*>(s + 48 + i)->store(v, std::memory_order_relaxed);
    }
    std::atomic_thread_fence(std::memory_order_seq_cst);
    for (size_t i = 0; i < 48; i += 4) {
      uint32_t v;
      std::memcpy(&v, hdr + i, 4);
      reinterpret_cast<std::atomic<uint32_t>*>(s + i)->store(v, std::memory_order_relaxed);
    }
    std::atomic_thread_fence(std::memory_order_seq_cst);
  }

  bool WordOffset(const Napi::CallbackInfo& info, uint64_t* offset) {
    if (!GetUint(info, 0, "offset", offset)) return false;
    if (*offset % 4 != 0 || *offset + 4 > kHeaderBytes) {
      ThrowInvalid(info.Env(), "offset must be a 4-byte aligned offset within the first 136 bytes");
      return false;
    }
    return NeedSegment0(info.Env());
  }

  // load32(offset) / store32(offset, value): one aligned word of the first 136 bytes, with a
  // full barrier (read marks, nBackfill, nBackfillAttempted).
  Napi::Value Load32(const Napi::CallbackInfo& info) {
    uint64_t offset;
    if (!CheckOpen(info.Env()) || !WordOffset(info, &offset)) return Napi::Value();
    std::atomic_thread_fence(std::memory_order_seq_cst);
    uint32_t v = 0;
    auto* word = reinterpret_cast<std::atomic<uint32_t>*>(segments_[0] + offset);
    if (!ShmTouch([&] { v = word->load(std::memory_order_relaxed); })) return ThrowTruncated(info.Env());
    return Napi::Number::New(info.Env(), v);
  }

  Napi::Value Store32(const Napi::CallbackInfo& info) {
    uint64_t offset, value;
    if (!CheckOpen(info.Env()) || !WordOffset(info, &offset) || !GetUint(info, 1, "value", &value)) return Napi::Value();
    if (value > 0xFFFFFFFFULL) return ThrowInvalid(info.Env(), "value must fit in 32 bits");
    auto* word = reinterpret_cast<std::atomic<uint32_t>*>(segments_[0] + offset);
    if (!ShmTouch([&] { word->store(static_cast<uint32_t>(value), std::memory_order_relaxed); })) return ThrowTruncated(info.Env());
    std::atomic_thread_fence(std::memory_order_seq_cst);
    return info.Env().Undefined();
  }

  uint32_t* PageArray(uint32_t seg) {
    return reinterpret_cast<uint32_t*>(segments_[seg] + (seg == 0 ? kHeaderBytes : 0));
  }
  std::atomic<uint16_t>* HashTable(uint32_t seg) {
    return reinterpret_cast<std::atomic<uint16_t>*>(segments_[seg] + kHashOffset);
  }

  // walCleanupHash: remove entries of segment `seg` for frames above mxFrame.
  void CleanAbove(uint32_t mxFrame) {
    uint32_t seg = SegmentOf(mxFrame == 0 ? 1 : mxFrame);
    if (seg >= segments_.size()) return;
    uint32_t limit = mxFrame - IZero(seg);  // slot values above this are stale
    std::atomic<uint16_t>* hash = HashTable(seg);
    for (uint32_t i = 0; i < kHashSlots; i++) {
      if (hash[i].load(std::memory_order_relaxed) > limit) hash[i].store(0, std::memory_order_relaxed);
    }
    uint32_t capacity = seg == 0 ? kFirstSegmentFrames : kSegmentFrames;
    uint32_t* pages = PageArray(seg);
    if (limit < capacity) std::memset(pages + limit, 0, (capacity - limit) * 4);
  }

  // Indexes frames first.. (segments mapped: GrowTo) with their page numbers; mxFrame = the
  // writer's published last frame, for the cleanup. Inside a ShmTouch. False: a hash table is
  // full (corrupt).
  bool IndexFrames(uint32_t first, const uint32_t* pgnos, size_t n, uint32_t mxFrame) {
    bool cleaned = false;
    bool full = false;
    for (size_t i = 0; i < n && !full; i++) {
      uint32_t frame = static_cast<uint32_t>(first + i);
      uint32_t seg = SegmentOf(frame);
      uint32_t v = frame - IZero(seg);  // 1-based slot value
      uint32_t* pages = PageArray(seg);
      std::atomic<uint16_t>* hash = HashTable(seg);
      if (v == 1) {
        // first frame of the segment: zero its page array and hash table
        size_t start = seg == 0 ? kHeaderBytes : 0;
        std::memset(segments_[seg] + start, 0, kSegment - start);
      } else if (pages[v - 1] != 0 && !cleaned) {
        CleanAbove(mxFrame);
        cleaned = true;
      }
      pages[v - 1] = pgnos[i];
      uint32_t slot = Hash(pgnos[i]);
      uint32_t probes = 0;
      while (hash[slot].load(std::memory_order_relaxed) != 0 && !full) {
        slot = Next(slot);
        full = ++probes > kHashSlots;
      }
      if (!full) hash[slot].store(static_cast<uint16_t>(v), std::memory_order_relaxed);
    }
    std::atomic_thread_fence(std::memory_order_seq_cst);
    return !full;
  }

  // append(firstFrame, pgnos: Uint32Array, mxFrame): indexes frames firstFrame.. with the
  // given page numbers; mxFrame = the writer's current (published) last frame, for cleanup.
  Napi::Value Append(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint64_t first, mxFrame;
    ByteSpan pg;
    if (!CheckOpen(env) || !GetUint(info, 0, "firstFrame", &first) ||
        !GetTypedBytes(info, 1, napi_uint32_array, "pgnos", "a Uint32Array", &pg) ||
        !GetUint(info, 2, "mxFrame", &mxFrame)) {
      return Napi::Value();
    }
    size_t n = pg.length / 4;
    if (first < 1 || first + n - 1 > 0xFFFFFFFFULL || mxFrame >= first + (n ? 0 : 1) + 0xFFFFFFFFULL) {
      return ThrowInvalid(env, "frame numbers out of range");
    }
    if (n == 0) return env.Undefined();
    uint32_t lastSeg = SegmentOf(static_cast<uint32_t>(first + n - 1));
    if (!GrowTo(env, lastSeg + 1)) return Napi::Value();
    bool full = false;
    const bool whole = ShmTouch([&] { full = !IndexFrames(static_cast<uint32_t>(first), reinterpret_cast<const uint32_t*>(pg.data), n, static_cast<uint32_t>(mxFrame)); });
    if (!whole) return ThrowTruncated(env);
    if (full) return ThrowCorrupt(env, "wal-index hash table is full");
    return env.Undefined();
  }

  // rebuild(pgnos: Uint32Array): indexes frames 1..pgnos.length from scratch (recovery), as
  // SQLite's walIndexRecover does: each segment's page array and hash table are built in
  // private memory and then copied into the mapping whole. Other connections' readers may be
  // looking pages up meanwhile (`walnut recover` on a live database, a recovery after a
  // writer died mid-header): where the WAL is the one the index already described, the copy
  // writes every word with the value it held, so a lookup never finds an entry missing, as it
  // did while a segment was zeroed in place and indexed again. Segments past the last frame's
  // are left as they are (their entries are above mxFrame: ignored, and cleared by the writer
  // that reaches them).
  Napi::Value Rebuild(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ByteSpan pg;
    if (!CheckOpen(env) || !GetTypedBytes(info, 0, napi_uint32_array, "pgnos", "a Uint32Array", &pg)) return Napi::Value();
    size_t n = pg.length / 4;
    if (n > 0xFFFFFFFFULL) return ThrowInvalid(env, "frame numbers out of range");
    if (n == 0) return env.Undefined();
    const uint32_t* pgnos = reinterpret_cast<const uint32_t*>(pg.data);
    uint32_t lastSeg = SegmentOf(static_cast<uint32_t>(n));
    if (!GrowTo(env, lastSeg + 1)) return Napi::Value();
    std::vector<uint32_t> priv(kSegment / 4);
    bool full = false;
    bool whole = true;
    for (uint32_t seg = 0; seg <= lastSeg && whole && !full; seg++) {
      std::fill(priv.begin(), priv.end(), 0u);
      uint8_t* base = reinterpret_cast<uint8_t*>(priv.data());
      const size_t start = seg == 0 ? kHeaderBytes : 0;
      uint32_t* pages = reinterpret_cast<uint32_t*>(base + start);
      uint16_t* hash = reinterpret_cast<uint16_t*>(base + kHashOffset);
      const uint32_t capacity = seg == 0 ? kFirstSegmentFrames : kSegmentFrames;
      const uint64_t first = static_cast<uint64_t>(IZero(seg)) + 1;
      for (uint32_t v = 1; v <= capacity && first + v - 1 <= n && !full; v++) {
        uint32_t pgno = pgnos[first + v - 2];
        pages[v - 1] = pgno;
        uint32_t slot = Hash(pgno);
        uint32_t probes = 0;
        while (hash[slot] != 0 && !full) {
          slot = Next(slot);
          full = ++probes > kHashSlots;
        }
        if (!full) hash[slot] = static_cast<uint16_t>(v);
      }
      if (full) break;
      auto* dst = reinterpret_cast<std::atomic<uint32_t>*>(segments_[seg]);
      whole = ShmTouch([&] {
        for (size_t w = start / 4; w < kSegment / 4; w++) dst[w].store(priv[w], std::memory_order_relaxed);
      });
    }
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (!whole) return ThrowTruncated(env);
    if (full) return ThrowCorrupt(env, "wal-index hash table is full");
    return env.Undefined();
  }

  // commitInline(wal: NativeFile, chain, offset, pgnos, commitSizes, pages, durability, header,
  //              size, slot, growTo  (walAppendSync's arguments after its file: frames.cc),
  //              expect: Uint8Array(48), publish: Uint8Array(48)) -> 1 | 0 | 2
  // A lone commit in one call (the group committer's inline path, WRITE held): when the live
  // header is `expect` in both copies (the one this connection published last: nobody changed
  // the WAL or the index since), the WAL is not all backfilled (no restart due) and no I/O is
  // pending on either lane, it appends the frames on this thread (write + sync as walAppendSync),
  // indexes them, and publishes `publish` with its aFrameCksum (the new running checksum) and
  // aCksum filled in here (written back into `publish`): 1. The frames are indexed before the
  // header that names them is published (copy 1, barrier, copy 0), as in append() + writeHeader().
  // 0: the live header is not `expect`; 2: not inline (backfilled, a lane busy, a stale window);
  // either way nothing was written. Every argument is checked before anything is touched.
  // Errors: before the write, as walAppendSync's or append()'s; the write or sync failed: the OS
  // error with stage 'write' (frames may be on disk); the index append or the publish failed
  // (-shm truncated, hash table full): WALNUT_CORRUPT with stage 'publish' (frames written and
  // synced, never published: the caller invalidates them).
  Napi::Value CommitInline(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return Napi::Value();
    std::shared_ptr<FileState> wal = NativeFile::StateOf(env, info[0]);
    if (wal == nullptr) return Napi::Value();
    frames::AppendJobPtr job = frames::ParseAppend(info, 1);
    if (job == nullptr) return Napi::Value();
    ByteSpan pg, expect, publish;
    if (!GetTypedBytes(info, 3, napi_uint32_array, "pgnos", "a Uint32Array", &pg) ||
        !GetBytes(info, 11, "expect", &expect) || !GetBytes(info, 12, "publish", &publish)) {
      return Napi::Value();
    }
    if (expect.length != 48 || publish.length != 48) return ThrowInvalid(env, "expect and publish must be 48 bytes");
    const uint64_t first = frames::AppendFirstFrame(*job);
    const size_t n = frames::AppendFrames(*job);
    if (first + n - 1 > 0xFFFFFFFFULL) return ThrowInvalid(env, "frame numbers out of range");
    uint32_t expectMx, publishMx;
    std::memcpy(&expectMx, expect.data + 16, 4);
    std::memcpy(&publishMx, publish.data + 16, 4);
    if (expectMx != first - 1 || publishMx != first + n - 1) {
      return ThrowInvalid(env, "expect's mxFrame must be the frame before offset's and publish's the last appended");
    }
    if (!NeedSegment0(env)) return Napi::Value();
    // the preconditions: a snapshot of the live header and nBackfill, compared as bytes
    uint8_t live[96];
    uint32_t backfilled = 0;
    const uint8_t* s0 = segments_[0];
    if (!ShmTouch([&] {
          for (size_t i = 0; i < 96; i += 4) {
            if (i == 48) std::atomic_thread_fence(std::memory_order_seq_cst);  // copy 0, barrier, copy 1 (SQLite's reader order)
            uint32_t v = reinterpret_cast<const std::atomic<uint32_t>*>(s0 + i)->load(std::memory_order_relaxed);
            std::memcpy(live + i, &v, 4);
          }
          backfilled = reinterpret_cast<const std::atomic<uint32_t>*>(s0 + 96)->load(std::memory_order_relaxed);
        })) {
      return ThrowTruncated(env);
    }
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (std::memcmp(live, expect.data, 48) != 0 || std::memcmp(live + 48, expect.data, 48) != 0) {
      return Napi::Number::New(env, 0);
    }
    Instance* instance = Instance::Get(env);
    if (expectMx == 0 || backfilled == expectMx || !instance->io->Idle() || !instance->background->Idle()) {
      return Napi::Number::New(env, 2);
    }
    // the segments the new frames need, before anything is written (a -shm that cannot grow
    // fails the commit with nothing on disk)
    if (!GrowTo(env, SegmentOf(static_cast<uint32_t>(first + n - 1)) + 1)) return Napi::Value();
    checksum::WalChecksum running{0, 0};
    switch (frames::RunAppendHere(env, *wal, job.get(), info[1], &running)) {
      case frames::InlineAppend::kStale:
        return Napi::Number::New(env, 2);
      case frames::InlineAppend::kFailed:
        return Napi::Value();
      case frames::InlineAppend::kWritten:
        break;
    }
    if (!Heap() && faults::CutShmAfterInlineWrite() && ::ftruncate(file_->fd, 0) != 0) return ThrowTruncated(env, "publish");
    uint8_t hdr[48];
    std::memcpy(hdr, publish.data, 48);
    std::memcpy(hdr + 24, &running.s0, 4);
    std::memcpy(hdr + 28, &running.s1, 4);
    // SQLite's header checksum: the WAL checksum over bytes 0..39 as native-order words (no swap)
    const checksum::WalChecksum c = checksum::SqliteWalChecksumScalar(hdr, 40, {0, 0}, false);
    std::memcpy(hdr + 40, &c.s0, 4);
    std::memcpy(hdr + 44, &c.s1, 4);
    const uint32_t* pgnos = reinterpret_cast<const uint32_t*>(pg.data);
    bool full = false;
    const bool whole = ShmTouch([&] {
      full = !IndexFrames(static_cast<uint32_t>(first), pgnos, n, expectMx);
      if (!full) PublishHeader(hdr);
    });
    if (!whole) return ThrowTruncated(env, "publish");
    if (full) return ThrowCorrupt(env, "wal-index hash table is full", "publish");
    // written back only now: `publish` may share memory with `pgnos` (indexed above as written)
    std::memcpy(publish.data, hdr, 48);
    return Napi::Number::New(env, 1);
  }

  // `stage`: set on the error as its `stage` property (commitInline's 'publish': frames written, unpublished)
  Napi::Value ThrowCorrupt(Napi::Env env, const std::string& what, const char* stage = nullptr) {
    Napi::Error e = MakeError(env, "WALNUT_CORRUPT", std::string("WALNUT_CORRUPT: ") + what);
    if (stage != nullptr) e.Set("stage", stage);
    e.ThrowAsJavaScriptException();
    return Napi::Value();
  }

  // A touch of the mapping raised SIGBUS (shm_guard.h): what checkMapping() says, from inside,
  // when the file is now shorter than the mapping. When it still covers the mapping nobody cut
  // it: the file system refused a page of it (ext4 faults a store into an immutable file; an I/O
  // error; a hole on a full disk): reason ShmFault, said so (it said "truncated", sending the
  // reader after a truncation that never happened).
  Napi::Value ThrowTruncated(Napi::Env env, const char* stage = nullptr) {
    const uint64_t mapped = static_cast<uint64_t>(segments_.size()) * 32768;
    struct stat st;
    const bool covered = file_ != nullptr && ::fstat(file_->fd, &st) == 0 && static_cast<uint64_t>(st.st_size) >= mapped;
    Napi::Error e = MakeError(env, "WALNUT_CORRUPT",
                              covered ? "WALNUT_CORRUPT: a page of the -shm could not be accessed (SIGBUS) though the file covers the " +
                                            std::to_string(segments_.size() * 32) + " KiB this connection maps: the file system refused it (an immutable -shm, an I/O error); reopen the database once the -shm can be written"
                                      : "WALNUT_CORRUPT: the -shm was truncated under this connection (below the " +
                                            std::to_string(segments_.size() * 32) + " KiB it maps); reopen the database to rebuild it");
    e.Set("reason", covered ? "ShmFault" : "ShmTruncated");
    if (stage != nullptr) e.Set("stage", stage);
    if (file_ != nullptr) e.Set("path", file_->path);
    e.ThrowAsJavaScriptException();
    return Napi::Value();
  }

  int64_t Find(uint32_t pgno, uint32_t mxFrame, uint32_t minFrame) {
    return FindFrame(segments_, pgno, mxFrame, minFrame);
  }

  // lookup(pgno, mxFrame, minFrame) -> frame or 0
  Napi::Value Lookup(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint32_t args[3];
    for (int i = 0; i < 3; i++) {
      uint32_t v = 0;
      if (i >= static_cast<int>(info.Length()) || napi_get_value_uint32(env, info[i], &v) != napi_ok) {
        return ThrowInvalid(env, "lookup(pgno, mxFrame, minFrame) takes three unsigned integers");
      }
      args[i] = v;
    }
    if (!CheckOpen(env) || !NeedFrame(env, args[1])) return Napi::Value();
    int64_t f = 0;
    if (!ShmTouch([&] { f = Find(args[0], args[1], args[2]); })) return ThrowTruncated(env);
    if (f < 0) return ThrowCorrupt(env, "wal-index hash chain is corrupt");
    return Napi::Number::New(env, static_cast<double>(f));
  }

  // lookupMany(pgnos: Uint32Array, mxFrame, minFrame, out: Uint32Array)
  Napi::Value LookupMany(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ByteSpan pg, out;
    uint64_t mx, mn;
    if (!CheckOpen(env) || !GetTypedBytes(info, 0, napi_uint32_array, "pgnos", "a Uint32Array", &pg) ||
        !GetUint(info, 1, "mxFrame", &mx) || !GetUint(info, 2, "minFrame", &mn) ||
        !GetTypedBytes(info, 3, napi_uint32_array, "out", "a Uint32Array", &out)) {
      return Napi::Value();
    }
    if (out.length < pg.length) return ThrowInvalid(env, "out is shorter than pgnos");
    if (mx > 0xFFFFFFFFULL || mn > 0xFFFFFFFFULL) return ThrowInvalid(env, "frame numbers are 32-bit");
    if (!NeedFrame(env, static_cast<uint32_t>(mx))) return Napi::Value();
    const uint32_t* p = reinterpret_cast<const uint32_t*>(pg.data);
    uint32_t* o = reinterpret_cast<uint32_t*>(out.data);
    bool corrupt = false;
    const bool whole = ShmTouch([&] {
      for (size_t i = 0; i < pg.length / 4 && !corrupt; i++) {
        int64_t f = Find(p[i], static_cast<uint32_t>(mx), static_cast<uint32_t>(mn));
        corrupt = f < 0;
        o[i] = static_cast<uint32_t>(f);
      }
    });
    if (!whole) return ThrowTruncated(env);
    if (corrupt) return ThrowCorrupt(env, "wal-index hash chain is corrupt");
    return env.Undefined();
  }

  // pageNumbers(firstFrame, out: Uint32Array): the page numbers of frames firstFrame ..
  // firstFrame + out.length - 1 from the page arrays (the checkpoint's iterator input).
  Napi::Value PageNumbers(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint64_t first;
    ByteSpan out;
    if (!CheckOpen(env) || !GetUint(info, 0, "firstFrame", &first) ||
        !GetTypedBytes(info, 1, napi_uint32_array, "out", "a Uint32Array", &out)) {
      return Napi::Value();
    }
    size_t n = out.length / 4;
    if (first < 1 || first + n - 1 > 0xFFFFFFFFULL) return ThrowInvalid(env, "frame numbers out of range");
    if (n == 0) return env.Undefined();
    if (!NeedFrame(env, static_cast<uint32_t>(first + n - 1))) return Napi::Value();
    uint32_t* o = reinterpret_cast<uint32_t*>(out.data);
    const bool whole = ShmTouch([&] {
      for (size_t i = 0; i < n; i++) {
        uint32_t frame = static_cast<uint32_t>(first + i);
        uint32_t seg = SegmentOf(frame);
        o[i] = PageArray(seg)[frame - IZero(seg) - 1];
      }
    });
    return whole ? env.Undefined() : ThrowTruncated(env);
  }

  Napi::Value Unmap(const Napi::CallbackInfo& info) {
    Release();
    closed_ = true;
    return info.Env().Undefined();
  }

  std::shared_ptr<FileState> file_;
  std::vector<uint8_t*> segments_;
  bool closed_ = false;
};

}  // namespace

void Register(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = ShmRegion::Define(env);
  Instance::Get(env)->shmClass = Napi::Persistent(ctor);
  exports.Set("ShmRegion", ctor);
}

}  // namespace walnut::shm
