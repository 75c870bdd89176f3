// args.h — argument checks shared by every native entry point.
//
// Nothing a caller passes may crash the process: each helper validates type and range and, on
// failure, throws WALNUT_INVALID_ARGUMENT and returns false. Callers return immediately.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>

#include "errors.h"

namespace walnut {

struct ByteSpan {
  uint8_t* data = nullptr;
  size_t length = 0;
};

// Uint8Array (Buffer included) at info[index] -> its bytes.
inline bool GetBytes(const Napi::CallbackInfo& info, size_t index, const char* name,
                     ByteSpan* out) {
  if (index >= info.Length() || !info[index].IsTypedArray() ||
      info[index].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    ThrowInvalid(info.Env(), std::string(name) + " must be a Buffer or Uint8Array");
    return false;
  }
  Napi::Uint8Array array = info[index].As<Napi::Uint8Array>();
  out->data = array.Data();
  out->length = array.ByteLength();
  return true;
}

// A non-negative safe integer at info[index]; `fallback` when absent/undefined (if allowed).
inline bool GetUint(const Napi::CallbackInfo& info, size_t index, const char* name,
                    uint64_t* out, bool optional = false, uint64_t fallback = 0) {
  if (index >= info.Length() || info[index].IsUndefined()) {
    if (optional) {
      *out = fallback;
      return true;
    }
    ThrowInvalid(info.Env(), std::string(name) + " is required");
    return false;
  }
  if (!info[index].IsNumber()) {
    ThrowInvalid(info.Env(), std::string(name) + " must be a number");
    return false;
  }
  double v = info[index].As<Napi::Number>().DoubleValue();
  if (!(v >= 0) || v > 9007199254740991.0 || v != static_cast<double>(static_cast<uint64_t>(v))) {
    ThrowInvalid(info.Env(), std::string(name) + " must be a non-negative integer");
    return false;
  }
  *out = static_cast<uint64_t>(v);
  return true;
}

// Optional (offset, length) at info[index], info[index+1] narrowing `span` in place.
inline bool NarrowSpan(const Napi::CallbackInfo& info, size_t index, ByteSpan* span) {
  uint64_t offset, length;
  if (!GetUint(info, index, "offset", &offset, true, 0)) return false;
  if (offset > span->length) {
    ThrowInvalid(info.Env(), "offset is beyond the end of the buffer");
    return false;
  }
  if (!GetUint(info, index + 1, "length", &length, true, span->length - offset)) return false;
  if (length > span->length - offset) {
    ThrowInvalid(info.Env(), "offset + length is beyond the end of the buffer");
    return false;
  }
  span->data += offset;
  span->length = static_cast<size_t>(length);
  return true;
}

}  // namespace walnut
