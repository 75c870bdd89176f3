// export_io.cc — see export_io.h.
#include "export_io.h"

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "args.h"
#include "base_image.h"
#include "base_restore.h"
#include "commit_records.h"
#include "errors.h"
#include "file.h"
#include "frame_scan.h"
#include "instance.h"
#include "io_thread.h"
#include "js_value.h"
#include "posix_io.h"

namespace walnut::exportio {
namespace {

bool GetU32(const Napi::CallbackInfo& info, size_t index, const char* name, uint32_t* out) {
  uint64_t v;
  if (!GetUint(info, index, name, &v)) return false;
  if (v > 0xFFFFFFFFULL) {
    ThrowInvalid(info.Env(), std::string(name) + " must fit in 32 bits");
    return false;
  }
  *out = static_cast<uint32_t>(v);
  return true;
}

// One base image's running hash and the ops that advance it. JS thread only.
struct ReaderState {
  int inFlight = 0;
  bool failed = false;  // an op failed: the hash took part of its pages

  // Throws (and returns false) while an op is in flight or after one failed.
  bool CheckIdle(Napi::Env env) const {
    if (failed) {
      ThrowInvalid(env, "an operation on this base image failed; start a new base image");
      return false;
    }
    if (inFlight == 0) return true;
    ThrowInvalid(env, "an operation on this base image is still running");
    return false;
  }
};

// The canonical xxh3-128 (high u64 then low u64, big-endian), as BASE_END carries it.
Napi::Value DigestBytes(Napi::Env env, const checksum::Xxh3State& hash) {
  checksum::Hash128 h = hash.Digest128();
  Napi::Uint8Array out = Napi::Uint8Array::New(env, 16);
  for (int k = 0; k < 8; k++) {
    out[k] = static_cast<uint8_t>(h.high >> (56 - 8 * k));
    out[8 + k] = static_cast<uint8_t>(h.low >> (56 - 8 * k));
  }
  return out;
}

struct ChunkJob {
  BaseChunk chunk;
  std::vector<uint32_t> frames;  // a copy: the caller's array may change while the chunk runs
  uint8_t* out = nullptr;        // readChunk: the whole chunk goes here
  uint64_t position = 0;         // writeChunk: where in the sink its first record goes
  BaseChunkResult result;
  const std::string* failedPath = nullptr;
};

// writeChunk: each record of the chunk filled into `buffer` (one record long, so it is still in
// the CPU cache when it is written) and written to the sink at once; writeback of the chunk's
// bytes started after them. `r->bytes` = bytes written.
void WriteChunkRecords(ChunkJob& j, const ReadvAt& readDb, const ReadvAt& readWal, FileState& sink,
                       checksum::Xxh3State* hash, std::vector<uint8_t>* buffer) {
  const BaseChunk& c = j.chunk;
  uint64_t at = j.position;
  for (uint32_t i = 0; i < c.pageCount; i += c.pagesPerRecord) {
    BaseChunk one = c;
    one.firstPgno = c.firstPgno + i;
    one.pageCount = std::min(c.pagesPerRecord, c.pageCount - i);
    one.frames = c.frames == nullptr ? nullptr : c.frames + i;
    const uint64_t bytes = BaseChunkBytes(one.pageSize, one.pagesPerRecord, one.pageCount);
    if (buffer->size() < bytes) buffer->resize(bytes);
    BaseChunkResult r;
    FillBaseChunk(one, readDb, readWal, buffer->data(), hash, &r);
    if (!r.ok()) {
      j.result = r;
      return;
    }
    j.result.failure = posix::WriteFull(sink.fd, buffer->data(), bytes, at);
    if (j.result.failure.IsError()) {
      j.failedPath = &sink.path;
      return;
    }
    at += bytes;
  }
  j.result.bytes = at - j.position;
  (void)posix::StartWriteback(sink.fd, j.position, j.result.bytes);  // a hint: its failure changes nothing
}

class ChunkOp : public IoOp {
 public:
  // `sink` null: readChunk (into job->out); else writeChunk, through `buffer`.
  ChunkOp(Napi::Env env, std::shared_ptr<FileState> db, std::shared_ptr<FileState> wal, std::shared_ptr<FileState> sink,
          std::shared_ptr<checksum::Xxh3State> hash, std::shared_ptr<std::vector<uint8_t>> buffer,
          std::unique_ptr<ChunkJob> job, ReaderState* reader)
      : IoOp(env), db_(std::move(db)), wal_(std::move(wal)), sink_(std::move(sink)), hash_(std::move(hash)),
        buffer_(std::move(buffer)), job_(std::move(job)), reader_(reader) {
    db_->BeginOp();
    wal_->BeginOp();
    if (sink_ != nullptr) sink_->BeginOp();
  }
  void Execute() override {
    ChunkJob& j = *job_;
    auto reader = [&j](const std::shared_ptr<FileState>& file) {
      return [&j, file](struct iovec* iov, size_t count, uint64_t pos, size_t* got) {
        OsFailure f = posix::ReadvFull(file->fd, iov, count, pos, got);
        if (f.IsError()) j.failedPath = &file->path;
        return f;
      };
    };
    if (sink_ == nullptr) {
      FillBaseChunk(j.chunk, reader(db_), reader(wal_), j.out, hash_.get(), &j.result);
    } else {
      WriteChunkRecords(j, reader(db_), reader(wal_), *sink_, hash_.get(), buffer_.get());
      sink_->EndOp();
    }
    wal_->EndOp();
    db_->EndOp();
  }
  bool Complete(napi_env env, napi_value* value, bool* rejected) override {
    reader_->inFlight--;
    const BaseChunkResult& r = job_->result;
    reader_->failed = !r.ok();
    if (r.failure.IsError()) return OsRejection(env, r.failure, job_->failedPath ? *job_->failedPath : db_->path, value, rejected);
    return js::ObjectBuilder(env)
        .Number("bytes", static_cast<double>(r.bytes))
        .Number("missingFrame", r.missingFrame)
        .Number("badTrailerPgno", r.badTrailerPgno)
        .Done(value);
  }

 private:
  std::shared_ptr<FileState> db_;
  std::shared_ptr<FileState> wal_;
  std::shared_ptr<FileState> sink_;
  std::shared_ptr<checksum::Xxh3State> hash_;
  std::shared_ptr<std::vector<uint8_t>> buffer_;
  std::unique_ptr<ChunkJob> job_;
  ReaderState* reader_;  // the reader outlives its ops (KeepAlive of its JS object)
};

class BaseImageReader : public Napi::ObjectWrap<BaseImageReader> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "BaseImageReader",
                       {InstanceMethod<&BaseImageReader::ReadChunk>("readChunk"),
                        InstanceMethod<&BaseImageReader::WriteChunk>("writeChunk"),
                        InstanceMethod<&BaseImageReader::Digest>("digest")});
  }
  explicit BaseImageReader(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<BaseImageReader>(info), hash_(std::make_shared<checksum::Xxh3State>(0)),
        buffer_(std::make_shared<std::vector<uint8_t>>()) {}

 private:
  // readChunk(db, wal, out, pageSize, pagesPerRecord, firstPgno, pageCount, dbFilePages, frames, checkTrailers)
  Napi::Value ReadChunk(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto job = std::make_unique<ChunkJob>();
    std::shared_ptr<FileState> db, wal;
    ByteSpan out;
    if (!ChunkArgs(info, job.get(), &db, &wal) || !GetBytes(info, 2, "out", &out)) return Napi::Value();
    if (const char* why = CheckBaseChunk(job->chunk, out.length)) return ThrowInvalid(env, why);
    job->out = out.data;
    return Submit(info, db, wal, nullptr, std::move(job));
  }

  // writeChunk(db, wal, sink, pageSize, pagesPerRecord, firstPgno, pageCount, dbFilePages, frames,
  //            checkTrailers, position): the records written to the sink file at `position`
  Napi::Value WriteChunk(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto job = std::make_unique<ChunkJob>();
    std::shared_ptr<FileState> db, wal;
    if (!ChunkArgs(info, job.get(), &db, &wal)) return Napi::Value();
    std::shared_ptr<FileState> sink = NativeFile::StateOf(env, info[2]);
    if (sink == nullptr || !GetUint(info, 10, "position", &job->position)) return Napi::Value();
    const uint64_t bytes = BaseChunkBytes(job->chunk.pageSize, job->chunk.pagesPerRecord, job->chunk.pageCount);
    if (const char* why = CheckBaseChunk(job->chunk, bytes)) return ThrowInvalid(env, why);
    if (job->position > (1ULL << 52)) return ThrowInvalid(env, "position must be below 2^52");
    return Submit(info, db, wal, sink, std::move(job));
  }

  // The arguments readChunk and writeChunk share (all but index 2), checked.
  bool ChunkArgs(const Napi::CallbackInfo& info, ChunkJob* job, std::shared_ptr<FileState>* db, std::shared_ptr<FileState>* wal) {
    Napi::Env env = info.Env();
    if (!state_.CheckIdle(env)) return false;
    *db = NativeFile::StateOf(env, info[0]);
    if (*db == nullptr) return false;
    *wal = NativeFile::StateOf(env, info[1]);
    if (*wal == nullptr) return false;
    if ((*db)->lane != (*wal)->lane) {
      ThrowInvalid(env, "the database and the WAL must be on the same I/O lane");
      return false;
    }
    BaseChunk& c = job->chunk;
    if (!GetU32(info, 3, "pageSize", &c.pageSize) || !GetU32(info, 4, "pagesPerRecord", &c.pagesPerRecord) ||
        !GetU32(info, 5, "firstPgno", &c.firstPgno) || !GetU32(info, 6, "pageCount", &c.pageCount) ||
        !GetU32(info, 7, "dbFilePages", &c.dbFilePages)) {
      return false;
    }
    if (info.Length() > 8 && !info[8].IsNull() && !info[8].IsUndefined()) {
      ByteSpan frames;
      if (!GetTypedBytes(info, 8, napi_uint32_array, "frames", "a Uint32Array or null", &frames)) return false;
      if (frames.length != static_cast<uint64_t>(c.pageCount) * 4) {
        ThrowInvalid(env, "frames must hold one entry per page");
        return false;
      }
      job->frames.assign(reinterpret_cast<const uint32_t*>(frames.data), reinterpret_cast<const uint32_t*>(frames.data) + c.pageCount);
      c.frames = job->frames.data();
    }
    c.checkTrailers = info.Length() > 9 && info[9].ToBoolean();
    return true;
  }

  Napi::Value Submit(const Napi::CallbackInfo& info, std::shared_ptr<FileState> db, std::shared_ptr<FileState> wal,
                     std::shared_ptr<FileState> sink, std::unique_ptr<ChunkJob> job) {
    Napi::Env env = info.Env();
    state_.inFlight++;
    const LaneId lane = db->lane;
    auto op = std::make_unique<ChunkOp>(env, std::move(db), std::move(wal), std::move(sink), hash_, buffer_, std::move(job), &state_);
    op->KeepAlive(info[2]);
    op->KeepAlive(info.This());
    return Instance::Get(env)->Lane(lane)->Submit(env, std::move(op));
  }

  Napi::Value Digest(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!state_.CheckIdle(env)) return Napi::Value();
    return DigestBytes(env, *hash_);
  }

  std::shared_ptr<checksum::Xxh3State> hash_;
  std::shared_ptr<std::vector<uint8_t>> buffer_;  // writeChunk's record buffer
  ReaderState state_;
};

// ---- restore: BaseImageWriter (base_restore.h does the work) --------------------------------

struct RunJob {
  BaseRun run;
  BaseRunResult result;
};

class RunOp : public IoOp {
 public:
  RunOp(Napi::Env env, std::shared_ptr<FileState> stream, std::shared_ptr<FileState> db,
        std::shared_ptr<checksum::Xxh3State> hash, std::shared_ptr<std::vector<uint8_t>> buffer, RunJob job,
        ReaderState* writer)
      : IoOp(env), stream_(std::move(stream)), db_(std::move(db)), hash_(std::move(hash)), buffer_(std::move(buffer)),
        job_(job), writer_(writer) {
    stream_->BeginOp();
    db_->BeginOp();
  }
  void Execute() override {
    const int in = stream_->fd, out = db_->fd;
    ApplyBaseRun(
        job_.run,
        [in](uint8_t* buf, size_t len, uint64_t pos, size_t* got) { return posix::ReadFull(in, buf, len, pos, got); },
        [out](const uint8_t* buf, size_t len, uint64_t pos) { return posix::WriteFull(out, buf, len, pos); },
        [out](uint64_t pos, uint64_t len) { (void)posix::StartWriteback(out, pos, len); }, hash_.get(), buffer_.get(),
        &job_.result);
    db_->EndOp();
    stream_->EndOp();
  }
  bool Complete(napi_env env, napi_value* value, bool* rejected) override {
    writer_->inFlight--;
    const BaseRunResult& r = job_.result;
    if (r.failure.IsError()) {
      writer_->failed = true;
      return OsRejection(env, r.failure, r.failedOnWrite ? db_->path : stream_->path, value, rejected);
    }
    return js::ObjectBuilder(env)
        .Number("end", static_cast<double>(r.end))
        .Number("pages", r.pages)
        .Number("pageSize", r.pageSize)
        .Bool("more", r.more)
        .Done(value);
  }

 private:
  std::shared_ptr<FileState> stream_;
  std::shared_ptr<FileState> db_;
  std::shared_ptr<checksum::Xxh3State> hash_;
  std::shared_ptr<std::vector<uint8_t>> buffer_;
  RunJob job_;
  ReaderState* writer_;  // the writer outlives its ops (KeepAlive of its JS object)
};

class BaseImageWriter : public Napi::ObjectWrap<BaseImageWriter> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "BaseImageWriter",
                       {InstanceMethod<&BaseImageWriter::ApplyRun>("applyRun"),
                        InstanceMethod<&BaseImageWriter::Update>("update"),
                        InstanceMethod<&BaseImageWriter::Digest>("digest")});
  }
  explicit BaseImageWriter(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<BaseImageWriter>(info), hash_(std::make_shared<checksum::Xxh3State>(0)),
        buffer_(std::make_shared<std::vector<uint8_t>>()) {}

 private:
  // applyRun(stream, db, offset, nextPgno, pageSize, maxBytes)
  Napi::Value ApplyRun(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!state_.CheckIdle(env)) return Napi::Value();
    std::shared_ptr<FileState> stream = NativeFile::StateOf(env, info[0]);
    if (stream == nullptr) return Napi::Value();
    std::shared_ptr<FileState> db = NativeFile::StateOf(env, info[1]);
    if (db == nullptr) return Napi::Value();
    RunJob job;
    BaseRun& run = job.run;
    if (!GetUint(info, 2, "offset", &run.offset) || !GetU32(info, 3, "nextPgno", &run.nextPgno) ||
        !GetU32(info, 4, "pageSize", &run.pageSize) || !GetUint(info, 5, "maxBytes", &run.maxBytes)) {
      return Napi::Value();
    }
    if (run.offset > (1ULL << 52)) return ThrowInvalid(env, "offset must be below 2^52");
    if (run.nextPgno == 0) return ThrowInvalid(env, "nextPgno must be at least 1");
    if (run.pageSize != 0 && !ValidPageSize(run.pageSize)) {
      return ThrowInvalid(env, "pageSize must be 0 or a power of two between 512 and 65536");
    }
    state_.inFlight++;
    auto op = std::make_unique<RunOp>(env, stream, db, hash_, buffer_, job, &state_);
    op->KeepAlive(info.This());
    return Instance::Get(env)->Lane(db->lane)->Submit(env, std::move(op));
  }

  // update(bytes): pages the caller applied itself, in order with the runs'.
  Napi::Value Update(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!state_.CheckIdle(env)) return Napi::Value();
    ByteSpan bytes;
    if (!GetBytes(info, 0, "bytes", &bytes)) return Napi::Value();
    hash_->Update(bytes.data, static_cast<size_t>(bytes.length));
    return env.Undefined();
  }

  Napi::Value Digest(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!state_.CheckIdle(env)) return Napi::Value();
    return DigestBytes(env, *hash_);
  }

  std::shared_ptr<checksum::Xxh3State> hash_;
  std::shared_ptr<std::vector<uint8_t>> buffer_;
  ReaderState state_;
};

// ---- countCommits: the export's base generation, header by header (frame_scan.h) -------------

class CountOp : public IoOp {
 public:
  CountOp(Napi::Env env, std::shared_ptr<FileState> wal, uint32_t pageSize, uint32_t lastFrame)
      : IoOp(env), wal_(std::move(wal)), pageSize_(pageSize), lastFrame_(lastFrame) {
    wal_->BeginOp();
  }
  void Execute() override {
    const int fd = wal_->fd;
    frames::CountCommitFrames(pageSize_, lastFrame_, [fd](uint8_t* buf, size_t len, uint64_t pos, size_t* got) {
      return posix::ReadFull(fd, buf, len, pos, got);
    }, &result_);
    wal_->EndOp();
  }
  bool Complete(napi_env env, napi_value* value, bool* rejected) override {
    if (result_.failure.IsError()) return OsRejection(env, result_.failure, wal_->path, value, rejected);
    napi_value last = nullptr;
    if (!js::Uint8Copy(env, result_.last, sizeof(result_.last), &last)) return false;
    return js::ObjectBuilder(env)
        .Number("commits", result_.commits)
        .Number("missingFrame", result_.missingFrame)
        .Value("lastHeader", last)
        .Done(value);
  }

 private:
  std::shared_ptr<FileState> wal_;
  uint32_t pageSize_;
  uint32_t lastFrame_;
  frames::CommitCount result_;
};

// countCommits(wal, pageSize, lastFrame)
Napi::Value CountCommits(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<FileState> wal = NativeFile::StateOf(env, info[0]);
  if (wal == nullptr) return Napi::Value();
  uint32_t pageSize, lastFrame;
  if (!GetU32(info, 1, "pageSize", &pageSize) || !GetU32(info, 2, "lastFrame", &lastFrame)) return Napi::Value();
  if (!ValidPageSize(pageSize)) {
    return ThrowInvalid(env, "pageSize must be a power of two between 512 and 65536");
  }
  if (lastFrame == 0) return ThrowInvalid(env, "lastFrame must be at least 1");
  return Instance::Get(env)->Lane(wal->lane)->Submit(env, std::make_unique<CountOp>(env, wal, pageSize, lastFrame));
}

Napi::Value StartWriteback(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<FileState> file = NativeFile::StateOf(env, info[0]);
  if (file == nullptr) return Napi::Value();
  uint64_t offset, length;
  if (!GetUint(info, 1, "offset", &offset) || !GetUint(info, 2, "length", &length)) return Napi::Value();
  if (offset > (1ULL << 52) || length > (1ULL << 52)) return ThrowInvalid(env, "offset and length must be below 2^52");
  return SubmitFileWork(env, file, [offset, length](int fd) { return posix::StartWriteback(fd, offset, length); });
}


// ---- CommitFramer: the export's FRAMES + COMMIT_META records (commit_records.h) --------------

// One readFrames/frameBytes call's state: the framer as it will be once the records are kept.
struct FramerState {
  exportrec::CommitFramer framer;
  uint64_t writebackFrom = UINT64_MAX;  // the sink's bytes from here on have no writeback started
};

struct ReadFramesJob {
  exportrec::FrameRunInput run;  // run.frames/length set on the I/O thread, from `frames`
  uint32_t first = 0;
  uint32_t count = 0;
  const int32_t* epoch = nullptr;  // the follower's hand-over count (null: no hand-over can come)
  int32_t seenEpoch = 0;
  uint8_t* out = nullptr;  // the records go here (out path), else to the sink at `position`
  size_t outLength = 0;
  uint64_t position = 0;
  FramerState next;  // the framer after the run: kept by Complete unless dropped or failed
  exportrec::FramedRun result;
  uint32_t missingFrame = 0;
  bool dropped = false;
  OsFailure failure;
  const std::string* failedPath = nullptr;
};

// Bytes of sink writes between writeback hints (page-writer.ts WRITEBACK_BYTES).
constexpr uint64_t kWritebackBytes = 1u << 20;

class ReadFramesOp : public IoOp {
 public:
  ReadFramesOp(Napi::Env env, std::shared_ptr<FileState> wal, std::shared_ptr<FileState> sink,
               std::shared_ptr<std::vector<uint8_t>> frames, std::shared_ptr<std::vector<uint8_t>> records,
               std::unique_ptr<ReadFramesJob> job, FramerState* framer, ReaderState* state)
      : IoOp(env), wal_(std::move(wal)), sink_(std::move(sink)), frames_(std::move(frames)), records_(std::move(records)),
        job_(std::move(job)), framer_(framer), state_(state) {
    wal_->BeginOp();
    if (sink_ != nullptr) sink_->BeginOp();
  }
  void Execute() override {
    Run();
    if (sink_ != nullptr) sink_->EndOp();
    wal_->EndOp();
  }
  bool Complete(napi_env env, napi_value* value, bool* rejected) override {
    ReadFramesJob& j = *job_;
    state_->inFlight--;
    if (j.failure.IsError()) {
      state_->failed = true;  // the sink may hold part of the records
      return OsRejection(env, j.failure, j.failedPath ? *j.failedPath : wal_->path, value, rejected);
    }
    if (!j.dropped && j.missingFrame == 0) *framer_ = j.next;
    return js::ObjectBuilder(env)
        .Number("bytes", static_cast<double>(j.result.bytes))
        .Number("records", j.result.records)
        .Number("commits", j.result.commits)
        .Number("missingFrame", j.missingFrame)
        .Bool("dropped", j.dropped)
        .Done(value);
  }

 private:
  void Run() {
    ReadFramesJob& j = *job_;
    const uint64_t frameSize = exportrec::kFrameHeader + j.run.pageSize;
    const size_t bytes = static_cast<size_t>(frameSize * j.count);
    if (frames_->size() < bytes) frames_->resize(bytes);
    size_t got = 0;
    j.failure = posix::ReadFull(wal_->fd, frames_->data(), bytes, 32 + (static_cast<uint64_t>(j.first) - 1) * frameSize, &got);
    if (j.failure.IsError()) {
      j.failedPath = &wal_->path;
      return;
    }
    // Every byte was read before this load: a hand-over comes before the restart that could
    // overwrite them (WalIndex #handOverToFollowers), or a truncate checkpoint's cut of the
    // file, so an unchanged count means none did; a changed one drops the read, short or not
    // (a read the cut made short is not a frame missing: the hand-over holds those frames).
    if (j.epoch != nullptr && __atomic_load_n(j.epoch, __ATOMIC_ACQUIRE) != j.seenEpoch) {
      j.dropped = true;
      return;
    }
    if (got < bytes) {
      j.missingFrame = j.first + static_cast<uint32_t>(got / frameSize);
      return;
    }
    j.run.frames = frames_->data();
    j.run.length = bytes;
    uint8_t* out = j.out;
    size_t capacity = j.outLength;
    if (sink_ != nullptr) {
      capacity = static_cast<size_t>(exportrec::FramedBound(j.count, j.run.pageSize));
      if (records_->size() < capacity) records_->resize(capacity);
      out = records_->data();
    }
    if (j.next.framer.Frame(j.run, out, capacity, &j.result) != nullptr) {
      j.failure = OsFailure{EINVAL, "frame"};  // checked on the JS thread: not reached
      return;
    }
    if (sink_ == nullptr) return;
    j.failure = posix::WriteFull(sink_->fd, out, static_cast<size_t>(j.result.bytes), j.position);
    if (j.failure.IsError()) {
      j.failedPath = &sink_->path;
      return;
    }
    const uint64_t end = j.position + j.result.bytes;
    if (j.next.writebackFrom > j.position) j.next.writebackFrom = j.position;
    if (end - j.next.writebackFrom >= kWritebackBytes) {
      (void)posix::StartWriteback(sink_->fd, j.next.writebackFrom, end - j.next.writebackFrom);  // a hint
      j.next.writebackFrom = end;
    }
  }

  std::shared_ptr<FileState> wal_;
  std::shared_ptr<FileState> sink_;
  std::shared_ptr<std::vector<uint8_t>> frames_;
  std::shared_ptr<std::vector<uint8_t>> records_;
  std::unique_ptr<ReadFramesJob> job_;
  FramerState* framer_;  // the framer outlives its ops (KeepAlive of its JS object)
  ReaderState* state_;
};

class CommitFramer : public Napi::ObjectWrap<CommitFramer> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "CommitFramer",
                       {InstanceMethod<&CommitFramer::FrameBytes>("frameBytes"),
                        InstanceMethod<&CommitFramer::ReadFrames>("readFrames"),
                        InstanceMethod<&CommitFramer::InTransaction>("inTransaction"),
                        InstanceMethod<&CommitFramer::KeepPages>("keepPages"),
                        InstanceMethod<&CommitFramer::SetDbSize>("setDbSize")});
  }
  // new CommitFramer(versionBudget?): with a budget (bytes of page versions, 0 allowed), the
  // replication's records: pages sent again as PAGE_DELTA (commit_records.h)
  explicit CommitFramer(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<CommitFramer>(info), frames_(std::make_shared<std::vector<uint8_t>>()),
        records_(std::make_shared<std::vector<uint8_t>>()) {
    if (info.Length() < 1 || info[0].IsUndefined() || info[0].IsNull()) return;
    uint64_t budget;
    if (!GetUint(info, 0, "versionBudget", &budget)) return;
    framer_.framer.UseVersions(std::make_shared<pagedelta::PageVersions>(budget));
  }

 private:
  // The run arguments both calls share: pageSize, framesPerRecord, lastSeq, timeMs at `at`..at+3.
  bool RunArgs(const Napi::CallbackInfo& info, size_t at, exportrec::FrameRunInput* run) {
    uint64_t lastSeq, timeMs;
    if (!GetU32(info, at, "pageSize", &run->pageSize) || !GetU32(info, at + 1, "framesPerRecord", &run->framesPerRecord) ||
        !GetUint(info, at + 2, "lastSeq", &lastSeq) || !GetUint(info, at + 3, "timeMs", &timeMs)) {
      return false;
    }
    run->lastSeq = lastSeq;
    run->timeMs = timeMs;
    return true;
  }

  // frameBytes(frames, pageSize, framesPerRecord, lastSeq, timeMs, out) -> { bytes, records, commits }:
  // frames in memory (a follower's handed-over tail), framed into out at once.
  Napi::Value FrameBytes(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!state_.CheckIdle(env)) return Napi::Value();
    ByteSpan frames, out;
    exportrec::FrameRunInput run;
    if (!GetBytes(info, 0, "frames", &frames) || !RunArgs(info, 1, &run) || !GetBytes(info, 5, "out", &out)) return Napi::Value();
    run.frames = frames.data;
    run.length = frames.length;
    if (frames.data == out.data || (frames.data < out.data + out.length && out.data < frames.data + frames.length)) {
      return ThrowInvalid(env, "frames and out must not overlap");
    }
    exportrec::FramedRun r;
    if (const char* why = framer_.framer.Frame(run, out.data, out.length, &r)) return ThrowInvalid(env, why);
    Napi::Object o = Napi::Object::New(env);
    o.Set("bytes", static_cast<double>(r.bytes));
    o.Set("records", r.records);
    o.Set("commits", r.commits);
    return o;
  }

  // readFrames(wal, pageSize, framesPerRecord, lastSeq, timeMs, first, count, epoch, seenEpoch, out, sink, position)
  //   -> Promise<{ bytes, records, commits, missingFrame, dropped }>
  // Frames first..first+count-1 read from the WAL and framed, on the WAL's lane, into `out`
  // (a Uint8Array of FramedBound bytes) or, when `out` is null, written to the file `sink` at
  // `position`. Dropped (nothing framed or written) when epoch[0] is no longer seenEpoch once
  // the frames are read: the WAL may have restarted under the read.
  Napi::Value ReadFrames(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!state_.CheckIdle(env)) return Napi::Value();
    std::shared_ptr<FileState> wal = NativeFile::StateOf(env, info[0]);
    if (wal == nullptr) return Napi::Value();
    auto job = std::make_unique<ReadFramesJob>();
    if (!RunArgs(info, 1, &job->run) || !GetU32(info, 5, "first", &job->first) || !GetU32(info, 6, "count", &job->count)) {
      return Napi::Value();
    }
    if (!ValidPageSize(job->run.pageSize)) return ThrowInvalid(env, "pageSize must be a power of two between 512 and 65536");
    if (job->first == 0 || job->count == 0) return ThrowInvalid(env, "first and count must be at least 1");
    const uint64_t frameSize = exportrec::kFrameHeader + job->run.pageSize;
    if (static_cast<uint64_t>(job->first) - 1 + job->count > 0xFFFFFFFFULL || job->count * frameSize > (64u << 20)) {
      return ThrowInvalid(env, "count must be at most 64 MiB of frames, within frame numbers 1..2^32-1");
    }
    if (!info[7].IsNull() && !info[7].IsUndefined()) {
      ByteSpan epoch;
      if (!GetTypedBytes(info, 7, napi_int32_array, "epoch", "an Int32Array or null", &epoch)) return Napi::Value();
      if (epoch.length < 1) return ThrowInvalid(env, "epoch must hold one element");  // length: elements (args.h counts bytes for uint32/float64 only)
      job->epoch = reinterpret_cast<const int32_t*>(epoch.data);
      if (!info[8].IsNumber()) return ThrowInvalid(env, "seenEpoch must be a number");
      job->seenEpoch = info[8].As<Napi::Number>().Int32Value();
    }
    std::shared_ptr<FileState> sink;
    const uint64_t bound = exportrec::FramedBound(job->count, job->run.pageSize);
    if (!info[9].IsNull() && !info[9].IsUndefined()) {
      ByteSpan out;
      if (!GetBytes(info, 9, "out", &out)) return Napi::Value();
      job->out = out.data;
      job->outLength = out.length;
    } else {
      sink = NativeFile::StateOf(env, info[10]);
      if (sink == nullptr || !GetUint(info, 11, "position", &job->position)) return Napi::Value();
      if (job->position > (1ULL << 52)) return ThrowInvalid(env, "position must be below 2^52");
    }
    exportrec::FrameRunInput probe = job->run;
    probe.length = static_cast<size_t>(job->count * frameSize);
    probe.frames = reinterpret_cast<const uint8_t*>(&probe);  // only its presence is checked
    if (const char* why = exportrec::CommitFramer::Check(probe, sink != nullptr ? bound : job->outLength)) return ThrowInvalid(env, why);
    job->next = framer_;
    state_.inFlight++;
    const LaneId lane = wal->lane;
    auto op = std::make_unique<ReadFramesOp>(env, std::move(wal), std::move(sink), frames_, records_, std::move(job), &framer_, &state_);
    op->KeepAlive(info.This());
    if (!info[7].IsNull() && !info[7].IsUndefined()) op->KeepAlive(info[7]);
    if (!info[9].IsNull() && !info[9].IsUndefined()) op->KeepAlive(info[9]);
    return Instance::Get(env)->Lane(lane)->Submit(env, std::move(op));
  }

  Napi::Value InTransaction(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), framer_.framer.InTransaction());
  }

  // keepPages(firstPgno, pages, pageSize): the base image's pages as their versions (delta mode).
  Napi::Value KeepPages(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!state_.CheckIdle(env)) return Napi::Value();
    if (!framer_.framer.HasVersions()) return ThrowInvalid(env, "this framer keeps no page versions");
    uint32_t firstPgno, pageSize;
    ByteSpan pages;
    if (!GetU32(info, 0, "firstPgno", &firstPgno) || !GetBytes(info, 1, "pages", &pages) || !GetU32(info, 2, "pageSize", &pageSize)) {
      return Napi::Value();
    }
    if (!ValidPageSize(pageSize)) return ThrowInvalid(env, "pageSize must be a power of two between 512 and 65536");
    if (pages.length % pageSize != 0) return ThrowInvalid(env, "pages must be whole pages of pageSize");
    if (firstPgno == 0 || static_cast<uint64_t>(firstPgno) - 1 + pages.length / pageSize > 0xFFFFFFFFULL) {
      return ThrowInvalid(env, "the pages must be within page numbers 1..2^32-1");
    }
    framer_.framer.KeepPages(firstPgno, pages.data, static_cast<size_t>(pages.length), pageSize);
    return env.Undefined();
  }

  // setDbSize(pages): the database's size after the base image (delta mode).
  Napi::Value SetDbSize(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!state_.CheckIdle(env)) return Napi::Value();
    uint32_t dbSize;
    if (!GetU32(info, 0, "dbSize", &dbSize)) return Napi::Value();
    framer_.framer.SetDbSize(dbSize);
    return env.Undefined();
  }

  FramerState framer_;
  std::shared_ptr<std::vector<uint8_t>> frames_;   // readFrames' WAL reads
  std::shared_ptr<std::vector<uint8_t>> records_;  // readFrames' records for a sink file
  ReaderState state_;
};

}  // namespace

Napi::Object Register(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("CommitFramer", CommitFramer::Define(env));
  o.Set("BaseImageReader", BaseImageReader::Define(env));
  o.Set("BaseImageWriter", BaseImageWriter::Define(env));
  o.Set("countCommits", Napi::Function::New<CountCommits>(env, "countCommits"));
  o.Set("startWriteback", Napi::Function::New<StartWriteback>(env, "startWriteback"));
  return o;
}

}  // namespace walnut::exportio
