// js_value.h — JS values made with raw N-API, every status checked, for the code that settles an
// I/O operation's promise (io_thread.h, IoOp::Complete).
//
// Why not node-addon-api there: a completion runs from the event loop, outside any call from JS,
// and a worker_thread can be terminated from another thread at any instant of it. From then on
// N-API calls that may run JS fail (napi_pending_exception), and a JS call already running (the
// WalnutError constructor) is cut, leaving the termination pending. node-addon-api turns a failed
// call into a thrown Napi::Error, and throwing, or wrapping the pending termination value, in an
// environment that runs no JS is a fatal error of the process (NAPI_FATAL_IF_FAILED); its
// Promise::Deferred leaves its handles uninitialised when the promise cannot be made. Here a
// failure is a `false` the caller stops at: nothing more is made and nothing reaches JS.
//
// Invariant: a function returning false has made nothing the caller may use (*out is unset);
// an exception it left pending is cleared by whoever opened the scope (IoThread::OnAsync).
#pragma once

#include <node_api.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace walnut::js {

bool SetNamed(napi_env env, napi_value object, const char* name, napi_value value);
bool SetNumber(napi_env env, napi_value object, const char* name, double value);
bool SetBool(napi_env env, napi_value object, const char* name, bool value);
bool SetString(napi_env env, napi_value object, const char* name, const std::string& value);

// A plain object filled property by property; ok() is false from the first property (or the
// object itself) that could not be made, and later calls then try nothing.
class ObjectBuilder {
 public:
  explicit ObjectBuilder(napi_env env) : env_(env) { ok_ = napi_create_object(env, &object_) == napi_ok; }
  ObjectBuilder& Number(const char* name, double value) {
    ok_ = ok_ && SetNumber(env_, object_, name, value);
    return *this;
  }
  ObjectBuilder& Bool(const char* name, bool value) {
    ok_ = ok_ && SetBool(env_, object_, name, value);
    return *this;
  }
  ObjectBuilder& Value(const char* name, napi_value value) {
    ok_ = ok_ && value != nullptr && SetNamed(env_, object_, name, value);
    return *this;
  }
  // The object, or false when any part of it could not be made.
  bool Done(napi_value* out) const {
    if (!ok_) return false;
    *out = object_;
    return true;
  }

 private:
  napi_env env_;
  napi_value object_ = nullptr;
  bool ok_ = false;
};

// A number; a Uint8Array / Uint32Array holding a copy of `bytes` (`count` elements).
bool Number(napi_env env, double value, napi_value* out);
bool Uint8Copy(napi_env env, const uint8_t* bytes, size_t count, napi_value* out);
bool Uint32Copy(napi_env env, const uint32_t* words, size_t count, napi_value* out);
// [a, b] of two numbers.
bool NumberPair(napi_env env, double a, double b, napi_value* out);

}  // namespace walnut::js
