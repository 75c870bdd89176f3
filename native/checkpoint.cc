// checkpoint.cc — see checkpoint.h.
#include "checkpoint.h"

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "args.h"
#include "checkpoint_copy.h"
#include "errors.h"
#include "file.h"
#include "instance.h"
#include "io_thread.h"
#include "js_value.h"
#include "posix_io.h"

namespace walnut::checkpoint {
namespace {

// The scratch buffer lives as long as the I/O thread that runs the copies (one per lane), so
// consecutive checkpoints reuse its pages instead of faulting in fresh memory each time.
CopyScratch& LaneScratch() {
  thread_local CopyScratch scratch;
  return scratch;
}

class CopyOp : public IoOp {
 public:
  CopyOp(Napi::Env env, std::shared_ptr<FileState> wal, std::shared_ptr<FileState> db,
         std::vector<uint32_t> pgnos, CopyRequest req)
      : IoOp(env), wal_(std::move(wal)), db_(std::move(db)), pgnos_(std::move(pgnos)), req_(req) {
    wal_->BeginOp();
    db_->BeginOp();
  }
  void Execute() override {
    result_ = CopyFrames(wal_->fd, db_->fd, pgnos_.data(), pgnos_.size(), req_, &LaneScratch());
    wal_->EndOp();
    db_->EndOp();
  }
  bool Complete(napi_env env, napi_value* value, bool* rejected) override {
    switch (result_.status) {
      case CopyStatus::kOsError:
        return OsRejection(env, result_.failure, result_.walFailed ? wal_->path : db_->path, value, rejected);
      case CopyStatus::kWalTooShort:
      case CopyStatus::kFrameMismatch: {
        const char* what = result_.status == CopyStatus::kWalTooShort
                               ? " is beyond the end of the WAL (the wal-index names frames the WAL does not hold)"
                               : " does not hold the page the wal-index names (the WAL was changed under the index)";
        *rejected = true;
        return NewError(env, "WALNUT_CORRUPT", "WALNUT_CORRUPT: frame " + std::to_string(result_.badFrame) + what, value) &&
               js::SetString(env, *value, "path", wal_->path);
      }
      case CopyStatus::kInvalid:
        *rejected = true;
        return NewError(env, "WALNUT_INVALID_ARGUMENT", "WALNUT_INVALID_ARGUMENT: inconsistent checkpoint range", value);
      case CopyStatus::kOk:
        break;
    }
    return js::ObjectBuilder(env)
        .Number("pages", static_cast<double>(result_.stats.pages))
        .Number("writes", static_cast<double>(result_.stats.writes))
        .Number("reads", static_cast<double>(result_.stats.reads))
        .Number("bytesRead", static_cast<double>(result_.stats.bytesRead))
        .Done(value);
  }

 private:
  std::shared_ptr<FileState> wal_;
  std::shared_ptr<FileState> db_;
  std::vector<uint32_t> pgnos_;
  CopyRequest req_;
  CopyResult result_;
};

Napi::Value CheckpointCopy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<FileState> wal = NativeFile::StateOf(env, info[0]);
  if (wal == nullptr) return Napi::Value();
  std::shared_ptr<FileState> db = NativeFile::StateOf(env, info[1]);
  if (db == nullptr) return Napi::Value();
  if (wal->lane != db->lane) return ThrowInvalid(env, "the WAL and the database must be on the same I/O lane");
  ByteSpan pg;
  if (!GetTypedBytes(info, 2, napi_uint32_array, "pgnos", "a Uint32Array", &pg)) return Napi::Value();
  if (info.Length() < 4 || !info[3].IsObject()) return ThrowInvalid(env, "options must be { firstFrame, upTo, nPage, pageSize, syncWal }");
  Napi::Object o = info[3].As<Napi::Object>();
  CopyRequest req;
  if (!GetU32Prop(env, o, "firstFrame", &req.firstFrame) || !GetU32Prop(env, o, "upTo", &req.upTo) ||
      !GetU32Prop(env, o, "nPage", &req.nPage) || !GetU32Prop(env, o, "pageSize", &req.pageSize)) {
    return Napi::Value();
  }
  if (!GetBoolProp(env, o, "syncWal", &req.syncWal)) return Napi::Value();
  const size_t count = pg.length / 4;
  if (!ValidRequest(req, count)) {
    return ThrowInvalid(env, "checkpoint range: pageSize must be a power of two in 512..65536, pgnos non-empty, "
                             "and firstFrame <= upTo <= firstFrame + pgnos.length - 1 <= 2^32-1");
  }
  std::vector<uint32_t> pgnos(count);
  std::memcpy(pgnos.data(), pg.data, count * 4);
  auto op = std::make_unique<CopyOp>(env, wal, db, std::move(pgnos), req);
  return Instance::Get(env)->Lane(db->lane)->Submit(env, std::move(op));
}

Napi::Value CheckpointSyncDb(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<FileState> db = NativeFile::StateOf(env, info[0]);
  if (db == nullptr) return Napi::Value();
  if (info.Length() < 2 || !info[1].IsNumber()) return ThrowInvalid(env, "truncateTo must be a number (-1: no truncate)");
  double t = info[1].As<Napi::Number>().DoubleValue();
  if (!(t == -1 || (t >= 0 && t <= 281474976710656.0 && t == static_cast<double>(static_cast<int64_t>(t))))) {
    return ThrowInvalid(env, "truncateTo must be -1 or a byte length in 0..2^48");
  }
  bool sync = info.Length() > 2 && info[2].ToBoolean();
  const int64_t truncateTo = static_cast<int64_t>(t);
  return SubmitFileWork(env, db, [truncateTo, sync](int fd) {
    OsFailure f;
    if (truncateTo >= 0) f = posix::Truncate(fd, static_cast<uint64_t>(truncateTo));
    if (!f.IsError() && sync) f = posix::Sync(fd, true);
    return f;
  });
}

}  // namespace

void Register(Napi::Env env, Napi::Object exports) {
  exports.Set("checkpointCopy", Napi::Function::New<CheckpointCopy>(env, "checkpointCopy"));
  exports.Set("checkpointSyncDb", Napi::Function::New<CheckpointSyncDb>(env, "checkpointSyncDb"));
}

}  // namespace walnut::checkpoint
