// js_value.cc — see js_value.h.
#include "js_value.h"

#include <cstring>

namespace walnut::js {

bool SetNamed(napi_env env, napi_value object, const char* name, napi_value value) {
  return napi_set_named_property(env, object, name, value) == napi_ok;
}

bool SetNumber(napi_env env, napi_value object, const char* name, double value) {
  napi_value v = nullptr;
  return Number(env, value, &v) && SetNamed(env, object, name, v);
}

bool SetBool(napi_env env, napi_value object, const char* name, bool value) {
  napi_value v = nullptr;
  return napi_get_boolean(env, value, &v) == napi_ok && SetNamed(env, object, name, v);
}

bool SetString(napi_env env, napi_value object, const char* name, const std::string& value) {
  napi_value v = nullptr;
  return napi_create_string_utf8(env, value.data(), value.size(), &v) == napi_ok && SetNamed(env, object, name, v);
}

bool Number(napi_env env, double value, napi_value* out) { return napi_create_double(env, value, out) == napi_ok; }

namespace {

bool TypedCopy(napi_env env, napi_typedarray_type type, const void* bytes, size_t count, size_t width, napi_value* out) {
  void* data = nullptr;
  napi_value buffer = nullptr;
  if (napi_create_arraybuffer(env, count * width, &data, &buffer) != napi_ok || (count > 0 && data == nullptr)) return false;
  if (count > 0) std::memcpy(data, bytes, count * width);
  return napi_create_typedarray(env, type, count, buffer, 0, out) == napi_ok;
}

}  // namespace

bool Uint8Copy(napi_env env, const uint8_t* bytes, size_t count, napi_value* out) {
  return TypedCopy(env, napi_uint8_array, bytes, count, 1, out);
}

bool Uint32Copy(napi_env env, const uint32_t* words, size_t count, napi_value* out) {
  return TypedCopy(env, napi_uint32_array, words, count, 4, out);
}

bool NumberPair(napi_env env, double a, double b, napi_value* out) {
  napi_value array = nullptr, x = nullptr, y = nullptr;
  if (napi_create_array_with_length(env, 2, &array) != napi_ok || !Number(env, a, &x) || !Number(env, b, &y) ||
      napi_set_element(env, array, 0, x) != napi_ok || napi_set_element(env, array, 1, y) != napi_ok) {
    return false;
  }
  *out = array;
  return true;
}

}  // namespace walnut::js
