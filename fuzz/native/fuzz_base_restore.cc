// libFuzzer target: a restore's native base image run (native/base_restore.cc) over arbitrary
// stream bytes. Input: byte 0 picks the run's page size (0, or a power of two 512..65536), bytes
// 1..2 its first pgno, byte 3 maxBytes; the rest is the stream file, read from offset 0 (no
// magic: the run starts at a record). Checks: the run applies a prefix of whole records, each
// one re-parsed here by the JavaScript path's rules (BASE_PAGES, count >= 1 dividing its pages,
// one valid page size, pgnos consecutive from the first), `end` is where that prefix ends, every
// write lands at its page's offset, and the hash is the hash of exactly the pages applied.
#include <cstdlib>
#include <cstring>
#include <vector>

#include "base_image.h"
#include "base_restore.h"
#include "big_endian.h"

using namespace walnut;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  exportio::BaseRun run;
  run.pageSize = data[0] % 9 == 8 ? 0 : 512u << (data[0] % 9);
  run.nextPgno = 1 + ((data[1] << 8) | data[2]) % 4;
  run.maxBytes = data[3] == 0 ? ~0ULL : static_cast<uint64_t>(data[3]) * 64;
  const uint8_t* file = data + 4;
  const size_t fileSize = size - 4;
  std::vector<uint8_t> applied;  // the pages written, in order
  uint64_t expectAt = (static_cast<uint64_t>(run.nextPgno) - 1) * (run.pageSize ? run.pageSize : 0);
  bool first = true;
  auto read = [file, fileSize](uint8_t* buf, size_t len, uint64_t pos, size_t* got) {
    *got = pos >= fileSize ? 0 : std::min<uint64_t>(len, fileSize - pos);
    std::memcpy(buf, file + pos, *got);
    return OsFailure{};
  };
  auto write = [&](const uint8_t* buf, size_t len, uint64_t pos) {
    if (!first && pos != expectAt) abort();  // pages go where their pgno says, consecutively
    first = false;
    expectAt = pos + len;
    applied.insert(applied.end(), buf, buf + len);
    return OsFailure{};
  };
  checksum::Xxh3State hash(0);
  std::vector<uint8_t> buffer;
  exportio::BaseRunResult r;
  exportio::ApplyBaseRun(run, read, write, [](uint64_t, uint64_t) {}, &hash, &buffer, &r);
  if (r.failure.IsError() || r.end > fileSize) abort();
  // re-parse the prefix [0, end) by the JavaScript path's rules
  uint64_t at = 0, pages = 0, bytes = 0;
  uint32_t pgno = run.nextPgno, pageSize = run.pageSize;
  while (at < r.end) {
    if (r.end - at < 17) abort();
    const uint64_t len = (static_cast<uint64_t>(Be32(file + at)) << 32) | Be32(file + at + 4);
    if (len < 9 || len > exportio::kMaxRecord || file[at + 8] != exportio::kBasePagesKind) abort();
    const uint32_t count = Be32(file + at + 13);
    if (Be32(file + at + 9) != pgno || count == 0 || (len - 9) % count != 0) abort();
    const uint64_t size = (len - 9) / count;
    if (pageSize == 0 ? !walnut::ValidPageSize(size) : size != pageSize) abort();
    pageSize = static_cast<uint32_t>(size);
    pgno += count;
    pages += count;
    bytes += len - 9;
    at += 8 + len;
  }
  if (at != r.end || pages != r.pages || bytes != applied.size() || (r.pages != 0 && r.pageSize != pageSize)) abort();
  checksum::Xxh3State again(0);
  if (!applied.empty()) again.Update(applied.data(), applied.size());
  const checksum::Hash128 a = hash.Digest128(), b = again.Digest128();
  if (a.low != b.low || a.high != b.high) abort();
  return 0;
}
