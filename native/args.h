// args.h — argument checks shared by every native entry point.
//
// Nothing a caller passes may crash the process: each helper validates type and range and, on
// failure, throws WALNUT_INVALID_ARGUMENT and returns false. Callers return immediately. Nor may
// a worker.terminate() landing in the middle: options are read with raw N-API (GetProp), whose
// failure returns false with whatever is pending left as it is, never through node-addon-api's
// Error::New (fatal in an environment being torn down).
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

// The bytes of `value` when it is a typed array of `type` (Uint8Array, Uint32Array or
// Float64Array): out->length in bytes. False (nothing thrown) otherwise.
inline bool TypedBytesOf(napi_env env, napi_value value, napi_typedarray_type type, ByteSpan* out) {
  bool isTyped = false;
  napi_typedarray_type actual;
  size_t elements = 0;
  void* data = nullptr;
  if (value == nullptr || napi_is_typedarray(env, value, &isTyped) != napi_ok || !isTyped ||
      napi_get_typedarray_info(env, value, &actual, &elements, &data, nullptr, nullptr) != napi_ok ||
      actual != type) {
    return false;
  }
  out->data = static_cast<uint8_t*>(data);
  out->length = type == napi_uint32_array ? elements * 4 : type == napi_float64_array ? elements * 8 : elements;
  return true;
}

// A typed array of `type` at info[index] -> its bytes (one napi_get_typedarray_info call: the
// checksum entry points are called per page, where N-API overhead is most of the cost).
inline bool GetTypedBytes(const Napi::CallbackInfo& info, size_t index, napi_typedarray_type type,
                          const char* name, const char* what, ByteSpan* out) {
  if (index >= info.Length() || !TypedBytesOf(info.Env(), info[index], type, out)) {
    ThrowInvalid(info.Env(), std::string(name) + " must be " + what);
    return false;
  }
  return true;
}

// Uint8Array (Buffer included) at info[index] -> its bytes.
inline bool GetBytes(const Napi::CallbackInfo& info, size_t index, const char* name,
                     ByteSpan* out) {
  return GetTypedBytes(info, index, napi_uint8_array, name, "a Buffer or Uint8Array", out);
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

// A property of an options object, read with raw N-API: false (nothing more thrown) when it
// could not be read, a getter that threw (its exception stays pending) or a worker.terminate()
// under way (from then on N-API calls that may run JS fail). Not node-addon-api's Object::Get:
// it turns that failure into a Napi::Error, and making one in an environment being torn down is
// a fatal error of the process (abort: "FATAL ERROR: Error::New napi_get_last_error_info").
inline bool GetProp(napi_env env, napi_value o, const char* key, Napi::Value* out) {
  napi_value v = nullptr;
  if (napi_get_named_property(env, o, key, &v) != napi_ok || v == nullptr) return false;
  *out = Napi::Value(env, v);
  return true;
}

// A property's truthiness (JS ToBoolean: a missing one is false); false when it could not be read.
inline bool GetBoolProp(napi_env env, napi_value o, const char* key, bool* out) {
  Napi::Value v;
  napi_value b = nullptr;
  if (!GetProp(env, o, key, &v) || napi_coerce_to_bool(env, v, &b) != napi_ok) return false;
  return napi_get_value_bool(env, b, out) == napi_ok;
}

// An element of an array, read with raw N-API (GetProp says why): false when it could not be read.
inline bool GetElement(napi_env env, napi_value array, uint32_t index, Napi::Value* out) {
  napi_value v = nullptr;
  if (napi_get_element(env, array, index, &v) != napi_ok || v == nullptr) return false;
  *out = Napi::Value(env, v);
  return true;
}

// `v` as an integer in 0..2^32-1 (`name` for the message).
inline bool U32Of(Napi::Env env, Napi::Value v, const std::string& name, uint32_t* out) {
  double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
  if (!(d >= 0 && d <= 4294967295.0 && d == static_cast<double>(static_cast<uint32_t>(d)))) {
    ThrowInvalid(env, name + " must be an integer in 0..2^32-1");
    return false;
  }
  *out = static_cast<uint32_t>(d);
  return true;
}

// An integer property in 0..2^32-1 of an options object.
inline bool GetU32Prop(Napi::Env env, Napi::Object o, const char* key, uint32_t* out) {
  Napi::Value v;
  return GetProp(env, o, key, &v) && U32Of(env, v, key, out);
}

// An integer in 0..2^32-1 at array[index] (`name` for the message).
inline bool GetU32Element(Napi::Env env, napi_value array, uint32_t index, const char* name, uint32_t* out) {
  Napi::Value v;
  return GetElement(env, array, index, &v) && U32Of(env, v, name, out);
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
