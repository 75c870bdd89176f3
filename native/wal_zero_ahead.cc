// wal_zero_ahead.cc — see wal_zero_ahead.h.
#include "wal_zero_ahead.h"

#include <sys/uio.h>

#include <algorithm>

#include "posix_io.h"

namespace walnut::wal {
namespace {

constexpr size_t kZeroBlock = 64 * 1024;
constexpr size_t kChunk = 256 * 1024;  // one write + write-back (what a concurrent fdatasync may meet)

}  // namespace

OsFailure ZeroAhead(int fd, std::mutex& extend, uint64_t floor, uint64_t target, uint64_t* size) {
  static const uint8_t kZeros[kZeroBlock] = {};
  uint64_t end = 0;
  bool grew = false;
  for (;;) {
    uint64_t from = 0;
    size_t len = 0;
    {
      std::lock_guard<std::mutex> hold(extend);
      OsFailure f = posix::Size(fd, &end);
      if (f.IsError()) return f;
      if (end >= target || end < floor) break;  // long enough, or cut under us: never fill below floor
      from = end;
      len = static_cast<size_t>(std::min<uint64_t>(kChunk, target - end));
      struct iovec iov[kChunk / kZeroBlock];
      size_t n = 0;
      for (size_t at = 0; at < len; at += kZeroBlock) iov[n++] = {const_cast<uint8_t*>(kZeros), std::min(kZeroBlock, len - at)};
      f = posix::WritevFull(fd, iov, n, from);
      if (f.IsError()) return f;
    }
    grew = true;
    floor = from + len;  // what it wrote itself is never written again, nor filled if cut
    OsFailure f = posix::WriteBackRange(fd, from, len);
    if (f.IsError()) return f;
  }
  *size = end;
  return grew ? posix::Sync(fd, true) : OsFailure{};
}

}  // namespace walnut::wal
