// faults.cc — see faults.h.
#include "faults.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "errors.h"

namespace walnut::faults {
namespace {

const bool kArmed = [] {
  const char* value = std::getenv("WALNUT_FAULT_INJECTION");
  return value != nullptr && std::strcmp(value, "1") == 0;
}();

// A rule fires when its countdown reaches zero; -1 = off.
struct Rule {
  std::atomic<long> countdown{-1};
  std::atomic<int> err{EIO};
  bool Fire(int* out) {
    long before = countdown.load(std::memory_order_relaxed);
    while (before > 0) {
      if (countdown.compare_exchange_weak(before, before - 1)) {
        if (before == 1) {
          *out = err.load();
          return true;
        }
        return false;
      }
    }
    return false;
  }
};

Rule failWrite, shortWrite, failSync, killAtSync, failOpen, failLaneCleanupHook, cutShmAfterInlineWrite;

void SetRule(Napi::Object spec, const char* key, Rule& rule) {
  Napi::Value value = spec.Get(key);
  if (value.IsUndefined()) return;
  if (value.IsNull()) {
    rule.countdown = -1;
    return;
  }
  Napi::Object r = value.As<Napi::Object>();
  long nth = r.Get("nth").ToNumber().Int64Value();
  int err = r.Has("errno") ? r.Get("errno").ToNumber().Int32Value() : EIO;
  rule.err = err;
  rule.countdown = nth < 1 ? 1 : nth;
}

}  // namespace

bool Armed() { return kArmed; }

bool CutShmAfterInlineWrite() {
  int unused;
  return kArmed && cutShmAfterInlineWrite.Fire(&unused);
}

WriteFault OnWrite(int* err) {
  if (!kArmed) return WriteFault::kNone;
  if (failWrite.Fire(err)) return WriteFault::kFail;
  if (shortWrite.Fire(err)) return WriteFault::kShort;
  return WriteFault::kNone;
}

bool OnSync(int* err) {
  if (!kArmed) return false;
  int unused;
  // a crash after the write the sync would have covered: the bytes stay in the page cache (the
  // file holds them) and nothing after this point runs (no publish, no invalidation)
  if (killAtSync.Fire(&unused)) ::kill(::getpid(), SIGKILL);
  return failSync.Fire(err);
}

bool OnOpen(int* err) { return kArmed && failOpen.Fire(err); }

bool FailLaneCleanupHook() {
  int unused;
  return kArmed && failLaneCleanupHook.Fire(&unused);
}

Napi::Value TEST_SetFaults(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!kArmed) {
    MakeError(env, "WALNUT_INVALID_ARGUMENT",
              "WALNUT_INVALID_ARGUMENT: fault injection is off; start the process with "
              "WALNUT_FAULT_INJECTION=1")
        .ThrowAsJavaScriptException();
    return Napi::Value();
  }
  if (info.Length() < 1 || !info[0].IsObject()) return ThrowInvalid(env, "fault spec object");
  Napi::Object spec = info[0].As<Napi::Object>();
  for (const char* key : {"failWrite", "shortWrite", "failSync", "killAtSync", "failOpen", "failLaneCleanupHook", "cutShmAfterInlineWrite"}) {
    Napi::Value v = spec.Get(key);
    if (!v.IsUndefined() && !v.IsNull() &&
        (!v.IsObject() || !v.As<Napi::Object>().Get("nth").IsNumber())) {
      return ThrowInvalid(env, std::string(key) + " must be null or { nth, errno? }");
    }
  }
  SetRule(spec, "failWrite", failWrite);
  SetRule(spec, "shortWrite", shortWrite);
  SetRule(spec, "failSync", failSync);
  SetRule(spec, "killAtSync", killAtSync);
  SetRule(spec, "failOpen", failOpen);
  SetRule(spec, "failLaneCleanupHook", failLaneCleanupHook);
  SetRule(spec, "cutShmAfterInlineWrite", cutShmAfterInlineWrite);
  return env.Undefined();
}

}  // namespace walnut::faults
