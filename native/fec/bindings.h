// bindings.h — the `fec` object of the addon: Reed-Solomon encode/decode and GF(2^8) test hooks.
#pragma once

#include <napi.h>

namespace walnut::fec {

Napi::Object Register(Napi::Env env);

}  // namespace walnut::fec
