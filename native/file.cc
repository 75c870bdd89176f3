// file.cc — see file.h.
#include "file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <vector>

#include "args.h"
#include "errors.h"
#include "faults.h"
#include "fd_registry.h"
#include "instance.h"
#include "io_thread.h"
#include "js_value.h"
#include "lock_wait.h"
#include "posix_io.h"

namespace walnut {

FileState::~FileState() {
  fd_registry::Release(fd);  // a file never closed (collected, or its env torn down)
}

OsFailure FileState::Release() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    closing.store(true, std::memory_order_release);  // no wait starts from here on (BeginWait)
    for (lock_wait::Waiter* waiter : waiters_) waiter->Interrupt();  // one running stops now
  }
  WaitIdle();
  int old = fd;
  fd = -1;
  return fd_registry::Release(old);
}

void FileState::BeginOp() {
  std::lock_guard<std::mutex> lock(mutex_);
  inflight_++;
}

void FileState::EndOp() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (--inflight_ == 0) idle_.notify_all();
}

bool FileState::BeginWait(lock_wait::Waiter* waiter) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (closing.load(std::memory_order_acquire)) return false;
  inflight_++;
  waiters_.push_back(waiter);
  return true;
}

void FileState::EndWait(lock_wait::Waiter* waiter) {
  std::lock_guard<std::mutex> lock(mutex_);
  waiters_.erase(std::find(waiters_.begin(), waiters_.end(), waiter));
  if (--inflight_ == 0) idle_.notify_all();
}

void FileState::InterruptWaits() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (lock_wait::Waiter* waiter : waiters_) waiter->Interrupt();
}

void FileState::CancelWaits() {
  waitCancels.fetch_add(1, std::memory_order_acq_rel);  // before the interruption: the wait sees it then
  InterruptWaits();
}

void FileState::WaitIdle() {
  std::unique_lock<std::mutex> lock(mutex_);
  idle_.wait(lock, [this] { return inflight_ == 0; });
}

namespace {

enum class Result { kVoid, kNumber, kBool };

// One queued operation on a file: `work` runs on the I/O thread with the descriptor.
class FileOp : public IoOp {
 public:
  using Work = std::function<OsFailure(FileState&, int64_t*)>;
  FileOp(Napi::Env env, std::shared_ptr<FileState> state, Result kind, Work work)
      : IoOp(env), state_(std::move(state)), kind_(kind), work_(std::move(work)) {
    state_->BeginOp();
  }
  void Execute() override {
    failure_ = work_(*state_, &value_);
    state_->EndOp();
  }
  bool Complete(napi_env env, napi_value* value, bool* rejected) override {
    if (failure_.IsError()) return OsRejection(env, failure_, state_->path, value, rejected);
    if (kind_ == Result::kNumber) return js::Number(env, static_cast<double>(value_), value);
    if (kind_ == Result::kBool) return napi_get_boolean(env, value_ != 0, value) == napi_ok;
    return napi_get_undefined(env, value) == napi_ok;
  }

 private:
  std::shared_ptr<FileState> state_;
  Result kind_;
  FileOp::Work work_;
  OsFailure failure_;
  int64_t value_ = 0;
};

// Runs `work` now (sync) or on the I/O thread (async) and converts the outcome to JS.
Napi::Value Dispatch(Napi::Env env, bool sync, const std::shared_ptr<FileState>& state,
                     Result kind, FileOp::Work work,
                     const std::vector<Napi::Value>& keepAlive = {}) {
  if (sync) {
    int64_t value = 0;
    OsFailure f = work(*state, &value);
    if (f.IsError()) {
      MakeOsError(env, f, state->path).ThrowAsJavaScriptException();
      return Napi::Value();
    }
    if (kind == Result::kNumber) return Napi::Number::New(env, static_cast<double>(value));
    if (kind == Result::kBool) return Napi::Boolean::New(env, value != 0);
    return env.Undefined();
  }
  auto op = std::make_unique<FileOp>(env, state, kind, std::move(work));
  for (const Napi::Value& v : keepAlive) op->KeepAlive(v);
  return Instance::Get(env)->Lane(state->lane)->Submit(env, std::move(op));
}

// An asynchronous read into a buffer of the operation's own, copied into the caller's buffer
// on the JS thread once done (file.h: the I/O thread never touches memory it does not own).
// The caller's buffer is looked up again then: one detached (transferred) or shrunk meanwhile
// gets nothing, and the read fails with WALNUT_INVALID_ARGUMENT, reason Detached.
class BounceReadOp : public IoOp {
 public:
  BounceReadOp(Napi::Env env, std::shared_ptr<FileState> state, Napi::Value target, size_t offset, size_t length, uint64_t position)
      : IoOp(env), state_(std::move(state)), bytes_(new uint8_t[length > 0 ? length : 1]), offset_(offset), length_(length), position_(position) {
    KeepAlive(target);
    state_->BeginOp();
  }
  void Execute() override {
    failure_ = posix::ReadFull(state_->fd, bytes_.get(), length_, position_, &done_);
    state_->EndOp();
  }
  bool Complete(napi_env env, napi_value* value, bool* rejected) override {
    if (failure_.IsError()) return OsRejection(env, failure_, state_->path, value, rejected);
    ByteSpan now;
    if (!TypedBytesOf(env, Kept(env, 0), napi_uint8_array, &now) || now.length < offset_ + length_) {
      *rejected = true;
      return NewError(env, "WALNUT_INVALID_ARGUMENT",
                      "WALNUT_INVALID_ARGUMENT: the read's buffer was detached (transferred) or shrunk "
                      "before the read completed; nothing was copied into it", value) &&
             js::SetString(env, *value, "reason", "Detached");
    }
    if (done_ > 0) std::memcpy(now.data + offset_, bytes_.get(), done_);
    return js::Number(env, static_cast<double>(done_), value);
  }

 private:
  std::shared_ptr<FileState> state_;
  std::unique_ptr<uint8_t[]> bytes_;
  size_t offset_;
  size_t length_;
  uint64_t position_;
  size_t done_ = 0;
  OsFailure failure_;
};

// Every open refuses a symbolic link as the last path component (O_NOFOLLOW), as SQLite's unix
// VFS does for the database, -wal and -shm: a link planted at `<db>-wal` would otherwise make
// walnut write (and truncate) whatever it points to. The database path itself is resolved
// (realpath) by the callers that take one from the user, so only the files walnut derives or
// creates meet the refusal. `followSymlinks: true` opts out for a path the user chose.
//
// `sameFileAs: fd` opens another description (its own OFD locks) of the file that descriptor of
// this process has open, through /proc/self/fd/<fd>, which reaches the inode even when its name
// was removed or now names another file; `path` is then only the name errors and .path report
// (a connection's checkpointer must copy the WAL the connection wrote: lib/wal-index).
struct OpenRequest {
  std::string path;
  std::string openPath;  // what open(2) and Adopt get: `path`, or /proc/self/fd/<sameFileAs>
  int flags = O_RDWR | O_CLOEXEC | O_NOFOLLOW;
  mode_t mode = 0644;
  LaneId lane = LaneId::kMain;
};

bool ParseOpen(const Napi::CallbackInfo& info, OpenRequest* req) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    ThrowInvalid(env, "path must be a string");
    return false;
  }
  req->path = info[0].As<Napi::String>().Utf8Value();
  if (req->path.empty() || req->path.find('\0') != std::string::npos) {
    ThrowInvalid(env, "path must be a non-empty string without NUL bytes");
    return false;
  }
  if (info.Length() >= 2 && !info[1].IsUndefined()) {
    if (!info[1].IsObject()) {
      ThrowInvalid(env, "options must be an object");
      return false;
    }
    Napi::Object o = info[1].As<Napi::Object>();
    // (args.h GetProp: read with raw N-API, a worker.terminate() under way is no fatal error)
    bool readOnly, followSymlinks, nonBlocking, create, exclusive, truncate;
    if (!GetBoolProp(env, o, "readOnly", &readOnly) || !GetBoolProp(env, o, "followSymlinks", &followSymlinks) ||
        !GetBoolProp(env, o, "nonBlocking", &nonBlocking) || !GetBoolProp(env, o, "create", &create) ||
        !GetBoolProp(env, o, "exclusive", &exclusive) || !GetBoolProp(env, o, "truncate", &truncate)) {
      return false;
    }
    if (readOnly) req->flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW;
    if (followSymlinks) req->flags &= ~O_NOFOLLOW;
    if (nonBlocking) req->flags |= O_NONBLOCK;
    if (create) req->flags |= O_CREAT;
    if (exclusive) req->flags |= O_CREAT | O_EXCL;
    if (truncate) req->flags |= O_TRUNC;
    Napi::Value lane;
    if (!GetProp(env, o, "lane", &lane)) return false;
    if (!lane.IsUndefined()) {
      std::string l = lane.IsString() ? lane.As<Napi::String>().Utf8Value() : "";
      if (l != "main" && l != "background" && l != "read") {
        ThrowInvalid(env, "lane must be 'main', 'background' or 'read'");
        return false;
      }
      req->lane = l == "background" ? LaneId::kBackground : l == "read" ? LaneId::kRead : LaneId::kMain;
    }
    Napi::Value mode;
    if (!GetProp(env, o, "mode", &mode)) return false;
    if (!mode.IsUndefined()) {
      // an integer in 0..07777: Int64Value() of NaN or 0.5 is 0 (a file nobody may read), of 420.9 is 420
      const double m = mode.IsNumber() ? mode.As<Napi::Number>().DoubleValue() : -1;
      if (!(m >= 0 && m <= 07777 && m == static_cast<double>(static_cast<int>(m)))) {
        ThrowInvalid(env, "mode must be a permission number such as 0o644");
        return false;
      }
      req->mode = static_cast<mode_t>(m);
    }
    if ((req->flags & O_ACCMODE) == O_RDONLY && (req->flags & (O_CREAT | O_TRUNC))) {
      ThrowInvalid(env, "readOnly cannot be combined with create, exclusive or truncate");
      return false;
    }
    Napi::Value sameFileAs;
    if (!GetProp(env, o, "sameFileAs", &sameFileAs)) return false;
    if (!sameFileAs.IsUndefined()) {
      const double fd = sameFileAs.IsNumber() ? sameFileAs.As<Napi::Number>().DoubleValue() : -1;
      if (!(fd >= 0 && fd <= INT32_MAX && fd == static_cast<double>(static_cast<int32_t>(fd)))) {
        ThrowInvalid(env, "sameFileAs must be a descriptor number");
        return false;
      }
      if (req->flags & (O_CREAT | O_TRUNC)) {
        ThrowInvalid(env, "sameFileAs cannot be combined with create, exclusive or truncate");
        return false;
      }
      req->openPath = "/proc/self/fd/" + std::to_string(static_cast<int32_t>(fd));
      req->flags &= ~O_NOFOLLOW;  // the /proc entry is a link by design
    }
  }
  if (req->openPath.empty()) req->openPath = req->path;
  return true;
}

int OpenFd(const OpenRequest& req, OsFailure* failure) {
  int injected = 0;
  if (faults::OnOpen(&injected)) {
    *failure = OsFailure{injected, "open"};
    return -1;
  }
  int fd = fd_registry::Adopt(req.openPath.c_str(), req.flags);
  if (fd >= 0) return fd;  // a parked descriptor of this file, idle (fd_registry.h)
  do {
    fd = ::open(req.openPath.c_str(), req.flags, req.mode);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    *failure = OsFailure{errno, "open"};
    return -1;
  }
  struct stat st;
  if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    ::close(fd);
    *failure = OsFailure{EISDIR, "open"};
    return -1;
  }
  return fd;
}

class OpenOp : public IoOp {
 public:
  OpenOp(Napi::Env env, OpenRequest req) : IoOp(env), req_(std::move(req)) {}
  void Execute() override { fd_ = OpenFd(req_, &failure_); }
  bool Complete(napi_env env, napi_value* value, bool* rejected) override {
    fd_registry::Sweep();
    if (failure_.IsError()) return OsRejection(env, failure_, req_.path, value, rejected);
    // the NativeFile takes the descriptor (sets fd_ to -1); one that could not be made leaves
    // it to this op's destructor
    napi_value ctor = nullptr;
    napi_value argv[3] = {};
    return napi_get_reference_value(env, Instance::Get(Napi::Env(env))->fileClass, &ctor) == napi_ok && ctor != nullptr &&
           napi_create_string_utf8(env, req_.path.data(), req_.path.size(), &argv[0]) == napi_ok &&
           napi_create_external(env, &fd_, nullptr, nullptr, &argv[1]) == napi_ok &&
           napi_create_uint32(env, static_cast<uint32_t>(req_.lane), &argv[2]) == napi_ok &&
           napi_new_instance(env, ctor, 3, argv, value) == napi_ok;
  }
  ~OpenOp() override {
    fd_registry::Release(fd_);  // never adopted (env torn down before completion)
  }

 private:
  OpenRequest req_;
  OsFailure failure_;
  int fd_ = -1;
};

bool ParseLockType(Napi::Env env, Napi::Value v, posix::LockType* type) {
  if (v.IsString()) {
    std::string s = v.As<Napi::String>().Utf8Value();
    if (s == "shared") {
      *type = posix::LockType::kShared;
      return true;
    }
    if (s == "exclusive") {
      *type = posix::LockType::kExclusive;
      return true;
    }
  }
  ThrowInvalid(env, "lock type must be 'shared' or 'exclusive'");
  return false;
}

bool ParseRange(const Napi::CallbackInfo& info, uint64_t* start, uint64_t* len) {
  if (!GetUint(info, 0, "start", start) || !GetUint(info, 1, "length", len)) return false;
  if (*len == 0) {
    ThrowInvalid(info.Env(), "lock length must be at least 1");
    return false;
  }
  if (*start > INT64_MAX / 2 || *len > INT64_MAX / 2) {
    ThrowInvalid(info.Env(), "lock range is too large");
    return false;
  }
  return true;
}

}  // namespace

Napi::Function NativeFile::Define(Napi::Env env) {
  using F = NativeFile;
  return DefineClass(
      env, "NativeFile",
      {
          StaticMethod<&F::OpenAsync>("open"),
          StaticMethod<&F::SyncDirectory>("syncDirectorySync"),
          StaticMethod<&F::SyncDirectoryAsync>("syncDirectory"),
          StaticMethod<&F::PendingCloses>("pendingCloses"),
          StaticMethod<&F::SweepPendingCloses>("sweepPendingCloses"),
          InstanceMethod<&F::Variant<&F::ReadCopied, false>>("read"),
          InstanceMethod<&F::Variant<&F::ReadCopied, true>>("readSync"),
          InstanceMethod<&F::Variant<&F::ReadLent, false>>("readLent"),
          InstanceMethod<&F::Variant<&F::Write, false>>("write"),
          InstanceMethod<&F::Variant<&F::Write, true>>("writeSync"),
          InstanceMethod<&F::Variant<&F::WritevCopied, false>>("writev"),
          InstanceMethod<&F::Variant<&F::WritevCopied, true>>("writevSync"),
          InstanceMethod<&F::Variant<&F::WritevLent, false>>("writevLent"),
          InstanceMethod<&F::Variant<&F::Fsync, false>>("fsync"),
          InstanceMethod<&F::Variant<&F::Fsync, true>>("fsyncSync"),
          InstanceMethod<&F::Variant<&F::Fdatasync, false>>("fdatasync"),
          InstanceMethod<&F::Variant<&F::Fdatasync, true>>("fdatasyncSync"),
          InstanceMethod<&F::Variant<&F::Truncate, false>>("truncate"),
          InstanceMethod<&F::Variant<&F::Truncate, true>>("truncateSync"),
          InstanceMethod<&F::Variant<&F::Allocate, false>>("allocate"),
          InstanceMethod<&F::Variant<&F::Allocate, true>>("allocateSync"),
          InstanceMethod<&F::Variant<&F::Size, false>>("size"),
          InstanceMethod<&F::Variant<&F::Size, true>>("sizeSync"),
          InstanceMethod<&F::Variant<&F::Close, false>>("close"),
          InstanceMethod<&F::Variant<&F::Close, true>>("closeSync"),
          InstanceMethod<&F::TryLock>("tryLock"),
          InstanceMethod<&F::LockWithin>("lockWithin"),
          InstanceMethod<&F::CancelLockWithin>("cancelLockWithin"),
          InstanceMethod<&F::Unlock>("unlock"),
          InstanceMethod<&F::QueryLock>("queryLock"),
          InstanceAccessor<&F::GetFd>("fd"),
          InstanceAccessor<&F::GetPath>("path"),
          InstanceAccessor<&F::GetClosed>("closed"),
      });
}

// new NativeFile(path, options) opens synchronously; the async open passes an External fd
// that only native code can create, so JS cannot adopt an arbitrary descriptor.
NativeFile::NativeFile(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeFile>(info) {
  Napi::Env env = info.Env();
  if (info.Length() >= 2 && info[0].IsString() && info[1].IsExternal()) {
    int* fd = info[1].As<Napi::External<int>>().Data();
    state_ = std::make_shared<FileState>(*fd, info[0].As<Napi::String>().Utf8Value());
    const uint32_t lane = info.Length() > 2 && info[2].IsNumber() ? info[2].As<Napi::Number>().Uint32Value() : 0;
    state_->lane = lane <= static_cast<uint32_t>(LaneId::kRead) ? static_cast<LaneId>(lane) : LaneId::kMain;
    *fd = -1;
    return;
  }
  OpenRequest req;
  if (!ParseOpen(info, &req)) return;
  fd_registry::Sweep();
  OsFailure failure;
  int fd = OpenFd(req, &failure);
  if (fd < 0) {
    MakeOsError(env, failure, req.path).ThrowAsJavaScriptException();
    return;
  }
  state_ = std::make_shared<FileState>(fd, req.path);
  state_->lane = req.lane;
}

std::shared_ptr<FileState> NativeFile::StateOf(Napi::Env env, Napi::Value value) {
  Instance* instance = Instance::Get(env);
  if (!value.IsObject() || !value.As<Napi::Object>().InstanceOf(instance->fileClass.Value())) {
    ThrowInvalid(env, "expected a NativeFile");
    return nullptr;
  }
  NativeFile* file = Napi::ObjectWrap<NativeFile>::Unwrap(value.As<Napi::Object>());
  // Unwrap is null when napi_unwrap failed: a worker.terminate() landed between the instanceof
  // check and here (the environment can no longer call into JS, and N-API calls that may run
  // JS fail from then on). The caller stops at the nullptr; nothing reaches JS any more.
  if (file == nullptr) return nullptr;
  if (!file->CheckOpen(env)) return nullptr;
  return file->state_;
}

bool NativeFile::CheckOpen(Napi::Env env) {
  if (state_ == nullptr || state_->closed) {
    std::string path = state_ ? state_->path : std::string();
    Napi::Error e = MakeError(env, "WALNUT_CLOSED", "WALNUT_CLOSED: the file is closed" +
                                                        (path.empty() ? "" : " (" + path + ")"));
    if (!path.empty()) e.Set("path", path);
    e.ThrowAsJavaScriptException();
    return false;
  }
  return true;
}

Napi::Value NativeFile::OpenAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  OpenRequest req;
  if (!ParseOpen(info, &req)) return Napi::Value();
  return Instance::Get(env)->io->Submit(env, std::make_unique<OpenOp>(env, std::move(req)));
}

namespace {

class DirSyncOp : public IoOp {
 public:
  DirSyncOp(Napi::Env env, std::string path) : IoOp(env), path_(std::move(path)) {}
  void Execute() override { failure_ = posix::SyncDirectory(path_.c_str()); }
  bool Complete(napi_env env, napi_value* value, bool* rejected) override {
    return VoidOutcome(env, failure_, path_, value, rejected);
  }

 private:
  std::string path_;
  OsFailure failure_;
};

bool GetPathArg(const Napi::CallbackInfo& info, std::string* path) {
  if (info.Length() < 1 || !info[0].IsString()) {
    ThrowInvalid(info.Env(), "path must be a string");
    return false;
  }
  *path = info[0].As<Napi::String>().Utf8Value();
  if (path->empty() || path->find('\0') != std::string::npos) {
    ThrowInvalid(info.Env(), "path must be a non-empty string without NUL bytes");
    return false;
  }
  return true;
}

}  // namespace

Napi::Value NativeFile::SyncDirectory(const Napi::CallbackInfo& info) {
  std::string path;
  if (!GetPathArg(info, &path)) return Napi::Value();
  OsFailure f = posix::SyncDirectory(path.c_str());
  if (f.IsError()) {
    MakeOsError(info.Env(), f, path).ThrowAsJavaScriptException();
    return Napi::Value();
  }
  return info.Env().Undefined();
}

Napi::Value NativeFile::SyncDirectoryAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  if (!GetPathArg(info, &path)) return Napi::Value();
  return Instance::Get(env)->io->Submit(env, std::make_unique<DirSyncOp>(env, path));
}

// read(buffer, offset, length, position) -> bytes read (fewer only at end of file). Async: into
// a buffer of the operation's own, copied into `buffer` once done (BounceReadOp); readLent
// reads straight into `buffer` (file.h: walnut's own memory only).
Napi::Value NativeFile::Read(const Napi::CallbackInfo& info, bool sync, bool lent) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return Napi::Value();
  ByteSpan whole;
  uint64_t position;
  if (!GetBytes(info, 0, "buffer", &whole)) return Napi::Value();
  ByteSpan span = whole;
  if (!NarrowSpan(info, 1, &span) || !GetUint(info, 3, "position", &position)) return Napi::Value();
  if (!sync && !lent) {
    return Instance::Get(env)->Lane(state_->lane)->Submit(
        env, std::make_unique<BounceReadOp>(env, state_, info[0], static_cast<size_t>(span.data - whole.data), span.length, position));
  }
  return Dispatch(env, sync, state_, Result::kNumber,
                  [span, position](FileState& s, int64_t* out) {
                    size_t done = 0;
                    OsFailure f = posix::ReadFull(s.fd, span.data, span.length, position, &done);
                    *out = static_cast<int64_t>(done);
                    return f;
                  },
                  {info[0]});
}

// write(buffer, offset, length, position) -> bytes written (always all of them). Async: the
// bytes are copied when it is called (file.h), so `buffer` is the caller's again at once.
Napi::Value NativeFile::Write(const Napi::CallbackInfo& info, bool sync) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return Napi::Value();
  ByteSpan span;
  uint64_t position;
  if (!GetBytes(info, 0, "buffer", &span) || !NarrowSpan(info, 1, &span) ||
      !GetUint(info, 3, "position", &position)) {
    return Napi::Value();
  }
  if (!sync) {
    std::shared_ptr<std::vector<uint8_t>> copy = std::make_shared<std::vector<uint8_t>>(span.data, span.data + span.length);
    return Dispatch(env, false, state_, Result::kNumber, [copy, position](FileState& s, int64_t* out) {
      OsFailure f = posix::WriteFull(s.fd, copy->data(), copy->size(), position);
      *out = f.IsError() ? 0 : static_cast<int64_t>(copy->size());
      return f;
    });
  }
  return Dispatch(env, sync, state_, Result::kNumber,
                  [span, position](FileState& s, int64_t* out) {
                    OsFailure f = posix::WriteFull(s.fd, span.data, span.length, position);
                    *out = f.IsError() ? 0 : static_cast<int64_t>(span.length);
                    return f;
                  },
                  {info[0]});
}

// writev(buffers, position, durability?) -> total bytes written; the buffers land back to
// back. durability 'data' / 'full' adds fdatasync / fsync in the same operation: one trip to
// the I/O thread instead of two, which is the whole latency budget of a small commit. Async:
// the bytes are copied into one buffer of the operation's own when it is called (file.h), one
// pwrite; writevLent writes straight from the buffers (walnut's own memory only).
Napi::Value NativeFile::Writev(const Napi::CallbackInfo& info, bool sync, bool lent) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return Napi::Value();
  if (info.Length() < 1 || !info[0].IsArray()) return ThrowInvalid(env, "buffers must be an array");
  uint64_t position;
  if (!GetUint(info, 1, "position", &position)) return Napi::Value();
  int durability = 0;  // 0 none, 1 fdatasync, 2 fsync
  if (info.Length() > 2 && !info[2].IsUndefined()) {
    std::string d = info[2].IsString() ? info[2].As<Napi::String>().Utf8Value() : "";
    if (d == "data") durability = 1;
    else if (d == "full") durability = 2;
    else if (d != "none") return ThrowInvalid(env, "durability must be 'none', 'data' or 'full'");
  }
  Napi::Array array = info[0].As<Napi::Array>();
  uint32_t count = array.Length();
  // Two passes. Reading an element may run the caller's code (an accessor at an index), which
  // may transfer (free) or shrink the buffer of an element read before it: so every element is
  // read first, and only then, with no more JS to run, are the buffers' bytes looked up (the
  // copy or pwritev read freed memory, or SIGSEGV'd on a shrunk resizable buffer).
  std::vector<Napi::Value> keep;
  keep.reserve(count);
  for (uint32_t i = 0; i < count; i++) {
    Napi::Value v;
    // the accessor threw (its exception is pending) or a worker.terminate() is under way (args.h GetElement)
    if (!GetElement(env, array, i, &v)) return Napi::Value();
    keep.push_back(v);
  }
  auto iov = std::make_shared<std::vector<struct iovec>>(count);
  size_t total = 0;
  for (uint32_t i = 0; i < count; i++) {
    ByteSpan b;
    if (!TypedBytesOf(env, keep[i], napi_uint8_array, &b)) {
      return ThrowInvalid(env, "buffers[" + std::to_string(i) + "] must be a Buffer or Uint8Array");
    }
    (*iov)[i] = {b.data, b.length};
    total += b.length;
  }
  if (!sync && !lent) {
    // not a std::vector(total): it would zero the bytes the copy then overwrites (1 MiB writev to
    // tmpfs, same-process A/B, load 14-18: 173 -> 149 and 141 -> 121 µs CPU per call; a pool of
    // reused buffers saved nothing more, and write(), which never zeroed, nothing at all:
    // glibc's malloc reuses the freed 1 MiB chunk already)
    std::shared_ptr<uint8_t[]> copy(new uint8_t[total > 0 ? total : 1]);
    size_t at = 0;
    for (const struct iovec& part : *iov) {
      if (part.iov_len > 0) std::memcpy(copy.get() + at, part.iov_base, part.iov_len);
      at += part.iov_len;
    }
    return Dispatch(env, false, state_, Result::kNumber, [copy, total, position, durability](FileState& s, int64_t* out) {
      OsFailure f = posix::WriteFull(s.fd, copy.get(), total, position);
      if (!f.IsError() && durability != 0) f = posix::Sync(s.fd, durability == 1);
      *out = f.IsError() ? 0 : static_cast<int64_t>(total);
      return f;
    });
  }
  return Dispatch(env, sync, state_, Result::kNumber,
                  [iov, position, total, durability](FileState& s, int64_t* out) {
                    OsFailure f = posix::WritevFull(s.fd, iov->data(), iov->size(), position);
                    if (!f.IsError() && durability != 0) f = posix::Sync(s.fd, durability == 1);
                    *out = f.IsError() ? 0 : static_cast<int64_t>(total);
                    return f;
                  },
                  keep);
}

Napi::Value NativeFile::Fsync(const Napi::CallbackInfo& info, bool sync) {
  if (!CheckOpen(info.Env())) return Napi::Value();
  return Dispatch(info.Env(), sync, state_, Result::kVoid,
                  [](FileState& s, int64_t*) { return posix::Sync(s.fd, false); });
}

Napi::Value NativeFile::Fdatasync(const Napi::CallbackInfo& info, bool sync) {
  if (!CheckOpen(info.Env())) return Napi::Value();
  return Dispatch(info.Env(), sync, state_, Result::kVoid,
                  [](FileState& s, int64_t*) { return posix::Sync(s.fd, true); });
}

Napi::Value NativeFile::Truncate(const Napi::CallbackInfo& info, bool sync) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return Napi::Value();
  uint64_t length;
  if (!GetUint(info, 0, "length", &length)) return Napi::Value();
  return Dispatch(env, sync, state_, Result::kVoid,
                  [length](FileState& s, int64_t*) { return posix::Truncate(s.fd, length); });
}

Napi::Value NativeFile::Allocate(const Napi::CallbackInfo& info, bool sync) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return Napi::Value();
  uint64_t offset, length;
  if (!GetUint(info, 0, "offset", &offset) || !GetUint(info, 1, "length", &length)) {
    return Napi::Value();
  }
  return Dispatch(env, sync, state_, Result::kVoid, [offset, length](FileState& s, int64_t*) {
    return posix::Allocate(s.fd, offset, length);
  });
}

Napi::Value NativeFile::Size(const Napi::CallbackInfo& info, bool sync) {
  if (!CheckOpen(info.Env())) return Napi::Value();
  return Dispatch(info.Env(), sync, state_, Result::kNumber, [](FileState& s, int64_t* out) {
    uint64_t size = 0;
    OsFailure f = posix::Size(s.fd, &size);
    *out = static_cast<int64_t>(size);
    return f;
  });
}

namespace {

// An async close: the I/O lane only orders it after every operation queued before it; the
// descriptor is released on the JS thread, the thread SQLite libraries lock from
// (fd_registry.h), so none of their locks can appear between the registry's probe and close.
class CloseOp : public IoOp {
 public:
  CloseOp(Napi::Env env, std::shared_ptr<FileState> state) : IoOp(env), state_(std::move(state)) {}
  void Execute() override {}
  bool Complete(napi_env env, napi_value* value, bool* rejected) override {
    OsFailure f = state_->Release();
    return VoidOutcome(env, f, state_->path, value, rejected);
  }

 private:
  std::shared_ptr<FileState> state_;
};

}  // namespace

Napi::Value NativeFile::Close(const Napi::CallbackInfo& info, bool sync) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return Napi::Value();
  state_->closed = true;
  state_->closing.store(true, std::memory_order_release);  // a running lock wait stops (LockWaitOp)
  state_->InterruptWaits();
  Instance::Get(env)->Lane(LaneId::kLock)->WithdrawQueued();  // its waits not started yet
  if (!sync) {
    return Instance::Get(env)->Lane(state_->lane)->Submit(env, std::make_unique<CloseOp>(env, state_));
  }
  OsFailure f = state_->Release();
  if (f.IsError()) {
    MakeOsError(env, f, state_->path).ThrowAsJavaScriptException();
    return Napi::Value();
  }
  return env.Undefined();
}

// pendingCloses() -> descriptors kept open for a SQLite library's locks (fd_registry.h).
Napi::Value NativeFile::PendingCloses(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(fd_registry::Pending()));
}

// sweepPendingCloses() -> closes those no longer needed; returns how many remain.
Napi::Value NativeFile::SweepPendingCloses(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(fd_registry::Sweep()));
}

// tryLock(start, length, 'shared' | 'exclusive') -> true when acquired, false when busy.
Napi::Value NativeFile::TryLock(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return Napi::Value();
  uint64_t start, len;
  posix::LockType type;
  if (!ParseRange(info, &start, &len) || !ParseLockType(env, info[2], &type)) {
    return Napi::Value();
  }
  bool acquired = false;
  OsFailure f = posix::TryLock(state_->fd, type, start, len, &acquired);
  if (f.IsError()) {
    MakeOsError(env, f, state_->path, true).ThrowAsJavaScriptException();
    return Napi::Value();
  }
  return Napi::Boolean::New(env, acquired);
}

namespace {

// One lockWithin on the lock lane: a blocking wait on a thread of the lane's pool
// (lock_wait.h). It enters the file's in-flight count only when it starts, and not at all once
// the file is closing (FileState::BeginWait): then it rejects WALNUT_CLOSED without touching the
// descriptor. A close interrupts it (FileState::InterruptWaits) and it stops (WALNUT_CLOSED), so
// close()/closeSync() wait for about one interruption. A lock it took just before the close is
// dropped with the descriptor (fd_registry::Release unlocks first). It also stops, resolving
// false, on cancelLockWithin() (a cancel counted after it was submitted) and when its lane is
// stopped (the environment is torn down: IoThread::Stop interrupts it). One still queued behind
// a full pool when its file closes or its waits are cancelled settles then, without running
// (Withdraw), not once a thread of the pool is free.
class LockWaitOp : public IoOp {
 public:
  LockWaitOp(Napi::Env env, const IoThread* lane, std::shared_ptr<FileState> state, posix::LockType type, uint64_t start, uint64_t len, uint64_t micros)
      : IoOp(env), lane_(lane), state_(std::move(state)), type_(type), start_(start), len_(len),
        // from its submission: a wait queued behind a full pool does not get its whole time again
        deadline_(std::chrono::steady_clock::now() + std::chrono::microseconds(micros)),
        cancels_(state_->waitCancels.load(std::memory_order_acquire)) {}
  void Execute() override {
    if (!state_->BeginWait(&waiter_)) {
      closed_ = true;
      return;
    }
    auto stop = [this] {
      return state_->closing.load(std::memory_order_acquire) || state_->waitCancels.load(std::memory_order_acquire) != cancels_ ||
             lane_->StopRequested();
    };
    const lock_wait::Outcome outcome = waiter_.Wait(state_->fd, type_, start_, len_, deadline_, stop, &failure_);
    acquired_ = outcome == lock_wait::Outcome::kAcquired;
    closed_ = outcome == lock_wait::Outcome::kStopped && state_->closing.load(std::memory_order_acquire);
    state_->EndWait(&waiter_);
  }
  void Interrupt() override { waiter_.Interrupt(); }
  // Still queued (a full pool) when its file closed or its waits were cancelled: it settles now,
  // as it would once started (WALNUT_CLOSED, false), not once a thread of the pool is free.
  bool Withdraw() override {
    closed_ = state_->closing.load(std::memory_order_acquire);
    return closed_ || state_->waitCancels.load(std::memory_order_acquire) != cancels_;
  }
  bool Complete(napi_env env, napi_value* value, bool* rejected) override {
    if (closed_) {
      *rejected = true;
      return NewError(env, "WALNUT_CLOSED", "WALNUT_CLOSED: the file was closed before its lockWithin() got the lock (" + state_->path + ")", value) &&
             js::SetString(env, *value, "path", state_->path);
    }
    if (failure_.IsError()) return OsRejection(env, failure_, state_->path, value, rejected);
    return napi_get_boolean(env, acquired_, value) == napi_ok;
  }

 private:
  const IoThread* lane_;  // the lock lane running this op (it owns the op, so it outlives it)
  std::shared_ptr<FileState> state_;
  posix::LockType type_;
  uint64_t start_;
  uint64_t len_;
  std::chrono::steady_clock::time_point deadline_;
  uint64_t cancels_;  // FileState::waitCancels when submitted
  lock_wait::Waiter waiter_;
  bool acquired_ = false;
  bool closed_ = false;
  OsFailure failure_;
};

}  // namespace

// lockWithin(start, length, 'shared' | 'exclusive', micros) -> Promise<boolean>: waits for the
// lock for up to `micros` (<= 1,000,000) from now, blocked in the kernel (F_OFD_SETLKW) on a
// thread of the lock lane's pool; true once acquired, false when the time ran out first or
// cancelLockWithin() came, WALNUT_CLOSED when the file was closed first (LockWaitOp).
//
// Why: another process that takes a lock again right after releasing it (a sqlite3 writer
// committing back to back) leaves it free only for tens of microseconds; a wait that samples it
// from JS timers every millisecond mostly misses those gaps (test/hostile/lease-beside-busy-
// writer). A waiter blocked in the kernel is woken as the holder lets go. Its forerunner, bursts
// of tries every few microseconds, found the gaps too, but cost about a CPU-second per second
// waited and the bursts of several files took turns on one thread (16-286 ms per wait beside
// 15 others); a blocked wait costs nothing and each has a thread (test/hostile/lease-wait-
// blocking). Neither the main lane (a wait would hold up every commit of the environment behind
// it) nor the background lane (every checkpoint step and zero-ahead): the lock lane
// (instance.h), lock waits only. The caller bounds the total wait and keeps its own accounting
// of the lock (an OFD lock's owner is the descriptor: the caller must not take the same range
// through the same descriptor while this is in flight, nor wait here for a lock whose holder may
// be waiting for one of its own: lock_wait.h).
Napi::Value NativeFile::LockWithin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return Napi::Value();
  uint64_t start, len, micros;
  posix::LockType type;
  if (!ParseRange(info, &start, &len) || !ParseLockType(env, info[2], &type) ||
      !GetUint(info, 3, "micros", &micros)) {
    return Napi::Value();
  }
  if (micros > 1000000) {
    ThrowInvalid(env, "micros must be at most 1,000,000");
    return Napi::Value();
  }
  IoThread* lane = Instance::Get(env)->Lane(LaneId::kLock);
  return lane->Submit(env, std::make_unique<LockWaitOp>(env, lane, state_, type, start, len, micros));
}

// cancelLockWithin() -> undefined: every lockWithin() of this file submitted so far resolves
// false now (one queued does not wait at all), unless it had the lock first.
Napi::Value NativeFile::CancelLockWithin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return Napi::Value();
  if (info.Length() > 0) {
    ThrowInvalid(env, "cancelLockWithin() takes no arguments");
    return Napi::Value();
  }
  state_->CancelWaits();
  Instance::Get(env)->Lane(LaneId::kLock)->WithdrawQueued();  // those queued settle now too
  return env.Undefined();
}

Napi::Value NativeFile::Unlock(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return Napi::Value();
  uint64_t start, len;
  if (!ParseRange(info, &start, &len)) return Napi::Value();
  bool acquired = false;
  OsFailure f = posix::TryLock(state_->fd, posix::LockType::kUnlock, start, len, &acquired);
  if (f.IsError()) {
    MakeOsError(env, f, state_->path, true).ThrowAsJavaScriptException();
    return Napi::Value();
  }
  return env.Undefined();
}

// queryLock(start, length, type) -> null when a lock of `type` could be taken now, otherwise
// { type, start, length, pid } of a conflicting holder (pid -1 when the kernel cannot tell).
Napi::Value NativeFile::QueryLock(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return Napi::Value();
  uint64_t start, len;
  posix::LockType type;
  if (!ParseRange(info, &start, &len) || !ParseLockType(env, info[2], &type)) {
    return Napi::Value();
  }
  posix::LockType holder;
  int64_t hStart = 0, hLen = 0;
  int pid = 0;
  OsFailure f = posix::QueryLock(state_->fd, type, start, len, &holder, &hStart, &hLen, &pid);
  if (f.IsError()) {
    MakeOsError(env, f, state_->path, true).ThrowAsJavaScriptException();
    return Napi::Value();
  }
  if (holder == posix::LockType::kUnlock) return env.Null();
  Napi::Object result = Napi::Object::New(env);
  result.Set("type", holder == posix::LockType::kShared ? "shared" : "exclusive");
  result.Set("start", Napi::Number::New(env, static_cast<double>(hStart)));
  result.Set("length", Napi::Number::New(env, static_cast<double>(hLen)));
  result.Set("pid", Napi::Number::New(env, pid));
  return result;
}

Napi::Value NativeFile::GetFd(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), state_ && !state_->closed ? state_->fd : -1);
}

Napi::Value NativeFile::GetPath(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), state_ ? state_->path : "");
}

Napi::Value NativeFile::GetClosed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), state_ == nullptr || state_->closed);
}

Napi::Value SubmitFileWork(Napi::Env env, std::shared_ptr<FileState> state, std::function<OsFailure(int fd)> work) {
  IoThread* lane = Instance::Get(env)->Lane(state->lane);
  auto op = std::make_unique<FileOp>(env, std::move(state), Result::kVoid,
                                     [work = std::move(work)](FileState& s, int64_t*) { return work(s.fd); });
  return lane->Submit(env, std::move(op));
}

}  // namespace walnut
