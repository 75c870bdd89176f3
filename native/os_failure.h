// os_failure.h — an OS failure captured on any thread (no N-API here, so pure code such as the
// frame scan can be built into fuzz targets without Node's headers).
#pragma once

namespace walnut {

struct OsFailure {
  int err = 0;                    // errno; 0 = success
  const char* syscall = nullptr;  // static string naming the failed call
  bool IsError() const { return err != 0; }
};

}  // namespace walnut
