// thread_class.cc — setThreadBackground (see the header).
#include "thread_class.h"

#include <sched.h>

namespace walnut::threadclass {
namespace {

Napi::Value SetThreadBackground(const Napi::CallbackInfo& info) {
#ifdef SCHED_IDLE
  sched_param param{};
  param.sched_priority = 0;  // the only priority SCHED_IDLE takes
  const bool moved = sched_setscheduler(0, SCHED_IDLE, &param) == 0;
#else
  const bool moved = false;
#endif
  return Napi::Boolean::New(info.Env(), moved);
}

}  // namespace

void Register(Napi::Env env, Napi::Object exports) {
  exports.Set("setThreadBackground", Napi::Function::New<SetThreadBackground>(env, "setThreadBackground"));
}

}  // namespace walnut::threadclass
