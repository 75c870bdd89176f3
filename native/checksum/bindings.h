// bindings.h — JS entry points of the checksum module (exported as addon.checksum).
#pragma once

#include <napi.h>

namespace walnut::checksum {

Napi::Object Register(Napi::Env env);

}  // namespace walnut::checksum
