// export_io.cc — see export_io.h.
#include "export_io.h"

#include <memory>
#include <string>
#include <vector>

#include "args.h"
#include "base_image.h"
#include "errors.h"
#include "file.h"
#include "instance.h"
#include "io_thread.h"
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

// JS thread only.
struct ReaderState {
  int inFlight = 0;
  bool failed = false;  // a chunk failed: the hash took part of it
};

struct ChunkJob {
  BaseChunk chunk;
  std::vector<uint32_t> frames;  // a copy: the caller's array may change while the chunk runs
  uint8_t* out = nullptr;
  BaseChunkResult result;
  const std::string* failedPath = nullptr;
};

class ChunkOp : public IoOp {
 public:
  ChunkOp(Napi::Env env, std::shared_ptr<FileState> db, std::shared_ptr<FileState> wal,
          std::shared_ptr<checksum::Xxh3State> hash, std::unique_ptr<ChunkJob> job, ReaderState* reader)
      : IoOp(env), db_(std::move(db)), wal_(std::move(wal)), hash_(std::move(hash)), job_(std::move(job)),
        reader_(reader) {
    db_->BeginOp();
    wal_->BeginOp();
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
    FillBaseChunk(j.chunk, reader(db_), reader(wal_), j.out, hash_.get(), &j.result);
    wal_->EndOp();
    db_->EndOp();
  }
  void Complete(Napi::Env env) override {
    reader_->inFlight--;
    const BaseChunkResult& r = job_->result;
    reader_->failed = !r.ok();
    if (r.failure.IsError()) {
      deferred_.Reject(MakeOsError(env, r.failure, job_->failedPath ? *job_->failedPath : db_->path).Value());
      return;
    }
    Napi::Object o = Napi::Object::New(env);
    o.Set("bytes", Napi::Number::New(env, static_cast<double>(r.bytes)));
    o.Set("missingFrame", Napi::Number::New(env, r.missingFrame));
    o.Set("badTrailerPgno", Napi::Number::New(env, r.badTrailerPgno));
    deferred_.Resolve(o);
  }

 private:
  std::shared_ptr<FileState> db_;
  std::shared_ptr<FileState> wal_;
  std::shared_ptr<checksum::Xxh3State> hash_;
  std::unique_ptr<ChunkJob> job_;
  ReaderState* reader_;  // the reader outlives its ops (KeepAlive of its JS object)
};

class BaseImageReader : public Napi::ObjectWrap<BaseImageReader> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "BaseImageReader",
                       {InstanceMethod<&BaseImageReader::ReadChunk>("readChunk"),
                        InstanceMethod<&BaseImageReader::Digest>("digest")});
  }
  explicit BaseImageReader(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<BaseImageReader>(info), hash_(std::make_shared<checksum::Xxh3State>(0)) {}

 private:
  bool CheckIdle(Napi::Env env) {
    if (state_.failed) {
      ThrowInvalid(env, "a chunk of this base image failed; start a new base image");
      return false;
    }
    if (state_.inFlight == 0) return true;
    ThrowInvalid(env, "a chunk of this base image is still being read");
    return false;
  }

  Napi::Value ReadChunk(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckIdle(env)) return Napi::Value();
    std::shared_ptr<FileState> db = NativeFile::StateOf(env, info[0]);
    if (db == nullptr) return Napi::Value();
    std::shared_ptr<FileState> wal = NativeFile::StateOf(env, info[1]);
    if (wal == nullptr) return Napi::Value();
    if (db->background != wal->background) return ThrowInvalid(env, "the database and the WAL must be on the same I/O lane");
    auto job = std::make_unique<ChunkJob>();
    BaseChunk& c = job->chunk;
    ByteSpan out;
    if (!GetBytes(info, 2, "out", &out) || !GetU32(info, 3, "pageSize", &c.pageSize) ||
        !GetU32(info, 4, "pagesPerRecord", &c.pagesPerRecord) || !GetU32(info, 5, "firstPgno", &c.firstPgno) ||
        !GetU32(info, 6, "pageCount", &c.pageCount) || !GetU32(info, 7, "dbFilePages", &c.dbFilePages)) {
      return Napi::Value();
    }
    if (info.Length() > 8 && !info[8].IsNull() && !info[8].IsUndefined()) {
      ByteSpan frames;
      if (!GetTypedBytes(info, 8, napi_uint32_array, "frames", "a Uint32Array or null", &frames)) return Napi::Value();
      if (frames.length != static_cast<uint64_t>(c.pageCount) * 4) return ThrowInvalid(env, "frames must hold one entry per page");
      job->frames.assign(reinterpret_cast<const uint32_t*>(frames.data), reinterpret_cast<const uint32_t*>(frames.data) + c.pageCount);
      c.frames = job->frames.data();
    }
    c.checkTrailers = info.Length() > 9 && info[9].ToBoolean();
    if (const char* why = CheckBaseChunk(c, out.length)) return ThrowInvalid(env, why);
    job->out = out.data;
    state_.inFlight++;
    auto op = std::make_unique<ChunkOp>(env, db, wal, hash_, std::move(job), &state_);
    op->KeepAlive(info[2]);
    op->KeepAlive(info.This());
    return Instance::Get(env)->Lane(db->background)->Submit(env, std::move(op));
  }

  Napi::Value Digest(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckIdle(env)) return Napi::Value();
    checksum::Hash128 h = hash_->Digest128();
    Napi::Uint8Array out = Napi::Uint8Array::New(env, 16);
    for (int k = 0; k < 8; k++) {
      out[k] = static_cast<uint8_t>(h.high >> (56 - 8 * k));
      out[8 + k] = static_cast<uint8_t>(h.low >> (56 - 8 * k));
    }
    return out;
  }

  std::shared_ptr<checksum::Xxh3State> hash_;
  ReaderState state_;
};

Napi::Value StartWriteback(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<FileState> file = NativeFile::StateOf(env, info[0]);
  if (file == nullptr) return Napi::Value();
  uint64_t offset, length;
  if (!GetUint(info, 1, "offset", &offset) || !GetUint(info, 2, "length", &length)) return Napi::Value();
  if (offset > (1ULL << 52) || length > (1ULL << 52)) return ThrowInvalid(env, "offset and length must be below 2^52");
  return SubmitFileWork(env, file, [offset, length](int fd) { return posix::StartWriteback(fd, offset, length); });
}

}  // namespace

Napi::Object Register(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("BaseImageReader", BaseImageReader::Define(env));
  o.Set("startWriteback", Napi::Function::New<StartWriteback>(env, "startWriteback"));
  return o;
}

}  // namespace walnut::exportio
