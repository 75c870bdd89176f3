// page_size.h — SQLite's page sizes (reference/sqlite-wal.md section 1): a power of two from
// 512 to 65536. One rule for every native path that takes a page size from JavaScript, a WAL
// header or a stream (base images, commit records, appends, checkpoint copies). No N-API.
#pragma once

#include <cstdint>

namespace walnut {

inline bool ValidPageSize(uint64_t n) { return n >= 512 && n <= 65536 && (n & (n - 1)) == 0; }

}  // namespace walnut
