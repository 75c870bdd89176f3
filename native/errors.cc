// errors.cc — see errors.h.
#include "errors.h"

#include <cerrno>
#include <cstring>

#include "instance.h"
#include "js_value.h"

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

bool NewError(napi_env env, const char* code, const std::string& message, napi_value* out) {
  Instance* instance = Instance::Get(Napi::Env(env));
  napi_value text = nullptr;
  if (napi_create_string_utf8(env, message.data(), message.size(), &text) != napi_ok) return false;
  if (instance != nullptr && !instance->errorClass.IsEmpty()) {
    napi_value ctor = nullptr, details = nullptr;
    if (napi_get_reference_value(env, instance->errorClass, &ctor) != napi_ok || ctor == nullptr ||
        napi_create_object(env, &details) != napi_ok || !js::SetString(env, details, "code", code)) {
      return false;
    }
    napi_value argv[2] = {text, details};
    return napi_new_instance(env, ctor, 2, argv, out) == napi_ok;
  }
  napi_value error = nullptr;
  if (napi_create_error(env, nullptr, text, &error) != napi_ok || !js::SetString(env, error, "code", code)) return false;
  *out = error;
  return true;
}

Napi::Error MakeError(Napi::Env env, const char* code, const std::string& message) {
  napi_value error = nullptr;
  NewError(env, code, message, &error);
  return Napi::Error(env, error);
}

// An open(2) that cannot succeed as asked (no such file or directory, a path through a file, no
// permission, a directory, a name too long): SQLite's SQLITE_CANTOPEN, as walnut's open() says for
// a database it cannot create; a disk that failed under the open stays WALNUT_IO. EPERM is no
// permission too (an immutable directory or file, chattr +i): it was WALNUT_IO where EACCES, for
// the same -wal that could not be created, was WALNUT_CANTOPEN.
static bool IsOpenRefusal(const OsFailure& failure) {
  if (failure.syscall == nullptr || std::strcmp(failure.syscall, "open") != 0) return false;
  switch (failure.err) {
    case ENOENT:
    case EACCES:
    case EPERM:
    case ENOTDIR:
    case EISDIR:
    case ENAMETOOLONG:
      return true;
    default:
      return false;
  }
}

bool NewOsError(napi_env env, const OsFailure& failure, const std::string& path, bool isLock, napi_value* out) {
  const char* code = IsOpenRefusal(failure) ? "WALNUT_CANTOPEN" : CodeForErrno(failure.err, isLock);
  std::string message = std::string(code) + ": " + (failure.syscall ? failure.syscall : "io") +
                        " failed: " + std::strerror(failure.err);
  const bool symlink = failure.err == ELOOP;
  if (symlink) message += " (walnut does not follow a symbolic link at a file it opens)";
  if (!path.empty()) message += " (" + path + ")";
  napi_value error = nullptr;
  if (!NewError(env, code, message, &error) || (symlink && !js::SetString(env, error, "reason", "Symlink")) ||
      !js::SetNumber(env, error, "errno", failure.err) ||
      (failure.syscall != nullptr && !js::SetString(env, error, "syscall", failure.syscall)) ||
      (!path.empty() && !js::SetString(env, error, "path", path))) {
    return false;
  }
  *out = error;
  return true;
}

Napi::Error MakeOsError(Napi::Env env, const OsFailure& failure, const std::string& path,
                        bool isLock) {
  napi_value error = nullptr;
  NewOsError(env, failure, path, isLock, &error);
  return Napi::Error(env, error);
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
