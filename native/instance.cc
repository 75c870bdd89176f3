// instance.cc — see instance.h.
#include "instance.h"

#include "io_thread.h"

namespace walnut {

Instance::Instance(Napi::Env env) : io(std::make_unique<IoThread>(env)) {
  // Registered after the I/O thread's ThreadSafeFunction: cleanup hooks run in reverse order,
  // so the worker is joined before Node closes that function.
  env.AddCleanupHook([this] { io->Stop(); });
}

Instance::~Instance() {
  io.reset();  // join the I/O thread before the references below go away
  errorClass.SuppressDestruct();
  fileClass.SuppressDestruct();
  shmClass.SuppressDestruct();
}

}  // namespace walnut
