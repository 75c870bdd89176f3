// errors.h — how native code reports failures to JavaScript.
//
// Every error that leaves the addon is constructed with the WalnutError class that lib/native.ts
// registers at load (setErrorClass), so `instanceof WalnutError` holds for errors thrown or
// rejected by native code. Codes are the stable strings of DESIGN.md section 4; errno values are
// mapped here and nowhere else (ENOSPC/EDQUOT -> WALNUT_FULL, EAGAIN/EACCES on a lock ->
// WALNUT_BUSY, ELOOP (a refused symbolic link, file.cc) -> WALNUT_CANTOPEN with reason
// 'Symlink', an open(2) refused for ENOENT/EACCES/EPERM/ENOTDIR/EISDIR/ENAMETOOLONG -> WALNUT_CANTOPEN
// (SQLite's SQLITE_CANTOPEN), anything else -> WALNUT_IO).
#pragma once

#include <napi.h>

#include <string>

#include "os_failure.h"

namespace walnut {

// Maps errno to a WalnutError code (lock calls pass isLock so EAGAIN/EACCES mean busy).
const char* CodeForErrno(int err, bool isLock);

// Builds a WalnutError (or a plain Error before the class is registered).
// The raw forms (New*) are for code running outside a call from JS (js_value.h): false when the
// error could not be made (the environment stopped running JS), nothing thrown. The Napi forms
// are built on them; one that could not be made is empty, its exception pending.
bool NewError(napi_env env, const char* code, const std::string& message, napi_value* out);
bool NewOsError(napi_env env, const OsFailure& failure, const std::string& path, bool isLock, napi_value* out);
Napi::Error MakeError(Napi::Env env, const char* code, const std::string& message);
Napi::Error MakeOsError(Napi::Env env, const OsFailure& failure, const std::string& path,
                        bool isLock = false);

// Throws WALNUT_INVALID_ARGUMENT; returns an empty value for convenient early return.
Napi::Value ThrowInvalid(Napi::Env env, const std::string& message);

// Registers the JS error class for this environment (called once by lib/native.ts).
Napi::Value SetErrorClass(const Napi::CallbackInfo& info);

}  // namespace walnut
