// instance.cc — see instance.h.
#include "instance.h"

#include "io_thread.h"

namespace walnut {

Instance::Instance(Napi::Env env)
    : io(std::make_unique<IoThread>(env, "walnut-io")), background(std::make_unique<IoThread>(env, "walnut-bg")),
      read(std::make_unique<IoThread>(env, "walnut-rd")), lock(std::make_unique<IoThread>(env, "walnut-lk", kLockWaiters)) {
  // Registered after the I/O threads' ThreadSafeFunctions: cleanup hooks run in reverse order,
  // so the workers are joined before Node closes those functions.
  env.AddCleanupHook([this] {
    io->Stop();
    background->Stop();
    read->Stop();
    lock->Stop();
  });
}

Instance::~Instance() {
  io.reset();  // join the I/O threads before the references below go away
  background.reset();
  read.reset();
  lock.reset();
  errorClass.SuppressDestruct();
  fileClass.SuppressDestruct();
  shmClass.SuppressDestruct();
}

}  // namespace walnut
