// addon.cc — module initialisation: creates the per-environment Instance and registers the
// classes and functions of the other native files. Nothing else lives here.
#include <napi.h>

#include "checkpoint.h"
#include "checksum/bindings.h"
#include "commit_lane_binding.h"
#include "errors.h"
#include "export_io.h"
#include "faults.h"
#include "fec/bindings.h"
#include "file.h"
#include "frames.h"
#include "instance.h"
#include "page_delta_binding.h"
#include "shm.h"
#include "thread_class.h"

namespace walnut {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* instance = new Instance(env);
  env.SetInstanceData<Instance>(instance);

  Napi::Function file = NativeFile::Define(env);
  instance->fileClass = Napi::Persistent(file);
  exports.Set("NativeFile", file);
  exports.Set("setErrorClass", Napi::Function::New<SetErrorClass>(env, "setErrorClass"));
  exports.Set("faultInjectionArmed", Napi::Boolean::New(env, faults::Armed()));
  exports.Set("TEST_setFaults", Napi::Function::New<faults::TEST_SetFaults>(env, "TEST_setFaults"));
  exports.Set("checksum", checksum::Register(env));
  exports.Set("fec", fec::Register(env));
  exports.Set("exportIo", exportio::Register(env));
  frames::Register(env, exports);
  pagedelta::Register(env, exports);
  checkpoint::Register(env, exports);
  shm::Register(env, exports);
  lane::Register(env, exports);
  threadclass::Register(env, exports);
  return exports;
}

}  // namespace walnut

static Napi::Object InitWalnut(Napi::Env env, Napi::Object exports) {
  return walnut::Init(env, exports);
}

NODE_API_MODULE(walnut, InitWalnut)
