// errors.cc — see errors.h.
#include "errors.h"

#include <cerrno>
#include <cstring>

#include "instance.h"

namespace walnut {

const char* CodeForErrno(int err, bool isLock) {
  switch (err) {
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
      return "WALNUT_FULL";
    case EROFS:
      return "WALNUT_READONLY";
    case ELOOP:  // open with O_NOFOLLOW met a symbolic link (file.cc)
      return "WALNUT_CANTOPEN";
    case EAGAIN:
    case EACCES:
      return isLock ? "WALNUT_BUSY" : "WALNUT_IO";
    default:
      return "WALNUT_IO";
  }
}

Napi::Error MakeError(Napi::Env env, const char* code, const std::string& message) {
  Instance* instance = Instance::Get(env);
  if (instance != nullptr && !instance->errorClass.IsEmpty()) {
    Napi::Object props = Napi::Object::New(env);
    props.Set("code", code);
    Napi::Value value =
        instance->errorClass.New({Napi::String::New(env, message), props});
    return Napi::Error(env, value);
  }
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", code);
  return error;
}

// An open(2) that cannot succeed as asked (no such file or directory, a path through a file, no
// permission, a directory, a name too long): SQLite's SQLITE_CANTOPEN, as walnut's open() says for
// a database it cannot create; a disk that failed under the open stays WALNUT_IO.
static bool IsOpenRefusal(const OsFailure& failure) {
  if (failure.syscall == nullptr || std::strcmp(failure.syscall, "open") != 0) return false;
  switch (failure.err) {
    case ENOENT:
    case EACCES:
    case ENOTDIR:
    case EISDIR:
    case ENAMETOOLONG:
      return true;
    default:
      return false;
  }
}

Napi::Error MakeOsError(Napi::Env env, const OsFailure& failure, const std::string& path,
                        bool isLock) {
  const char* code = IsOpenRefusal(failure) ? "WALNUT_CANTOPEN" : CodeForErrno(failure.err, isLock);
  std::string message = std::string(code) + ": " + (failure.syscall ? failure.syscall : "io") +
                        " failed: " + std::strerror(failure.err);
  const bool symlink = failure.err == ELOOP;
  if (symlink) message += " (walnut does not follow a symbolic link at a file it opens)";
  if (!path.empty()) message += " (" + path + ")";
  Napi::Error error = MakeError(env, code, message);
  if (symlink) error.Set("reason", "Symlink");
  error.Set("errno", Napi::Number::New(env, failure.err));
  if (failure.syscall) error.Set("syscall", failure.syscall);
  if (!path.empty()) error.Set("path", path);
  return error;
}

Napi::Value ThrowInvalid(Napi::Env env, const std::string& message) {
  MakeError(env, "WALNUT_INVALID_ARGUMENT", "WALNUT_INVALID_ARGUMENT: " + message)
      .ThrowAsJavaScriptException();
  return Napi::Value();
}

Napi::Value SetErrorClass(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsFunction()) {
    return ThrowInvalid(env, "setErrorClass expects a constructor");
  }
  Instance::Get(env)->errorClass = Napi::Persistent(info[0].As<Napi::Function>());
  return env.Undefined();
}

}  // namespace walnut
