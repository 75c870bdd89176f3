// libFuzzer target: the base image chunk reader (native/base_image.cc) over arbitrary numbers
// and files. Input: bytes 0..19 give pageSize (a power of two, or not), pagesPerRecord,
// firstPgno, pageCount and dbFilePages; byte 20 says whether pages come from a "WAL" and whether
// trailers are checked; the rest is split into the database file and the WAL file, and, when
// WAL pages are on, read as the frame numbers too. Checks: CheckBaseChunk refuses what does not
// fit; what it accepts fills exactly BaseChunkBytes, with valid record headers.
#include <cstdlib>
#include <cstring>
#include <vector>

#include "base_image.h"
#include "big_endian.h"

using namespace walnut;

namespace {

uint32_t U32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

exportio::ReadvAt Reader(const uint8_t* file, size_t size) {
  return [file, size](struct iovec* iov, size_t count, uint64_t pos, size_t* got) {
    *got = 0;
    for (size_t i = 0; i < count; i++) {
      size_t take = pos >= size ? 0 : std::min<uint64_t>(iov[i].iov_len, size - pos);
      std::memcpy(iov[i].iov_base, file + pos, take);
      iov[i].iov_base = static_cast<uint8_t*>(iov[i].iov_base) + take;
      iov[i].iov_len -= take;
      pos += take;
      *got += take;
      if (iov[i].iov_len != 0) break;  // end of file
    }
    return OsFailure{};
  };
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 21) return 0;
  exportio::BaseChunk c;
  c.pageSize = (data[0] & 0x80) ? U32(data) : 512u << (data[0] % 8);
  c.pagesPerRecord = U32(data + 4) % 300;
  c.firstPgno = (data[8] & 0x80) ? U32(data + 8) : 1 + data[9];
  c.pageCount = (data[12] & 0x80) ? U32(data + 12) : data[13] % 64;
  c.dbFilePages = U32(data + 16) % 128;
  c.checkTrailers = data[20] & 2;
  const uint8_t* rest = data + 21;
  const size_t restSize = size - 21;
  std::vector<uint32_t> frames;
  const uint64_t bytes = exportio::BaseChunkBytes(c.pageSize, c.pagesPerRecord, c.pageCount);
  if (bytes > (64u << 20)) return 0;  // within the fuzzer's memory
  if (exportio::CheckBaseChunk(c, bytes) != nullptr) return 0;
  if (exportio::CheckBaseChunk(c, bytes - 1) == nullptr) abort();  // one byte short must be refused
  if (data[20] & 1) {
    frames.resize(c.pageCount);
    for (uint32_t i = 0; i < c.pageCount; i++) frames[i] = i < restSize ? rest[i] % 8 : 0;  // consecutive runs too
    c.frames = frames.data();
  }
  const size_t half = restSize / 2;
  std::vector<uint8_t> out(bytes, 0xA5);
  checksum::Xxh3State hash(0);
  exportio::BaseChunkResult r;
  exportio::FillBaseChunk(c, Reader(rest, half), Reader(rest + half, restSize - half), out.data(), &hash, &r);
  if (!r.ok()) return 0;
  if (r.bytes != bytes) abort();
  for (uint64_t at = 0; at < bytes;) {  // the records tile `out` exactly
    const uint64_t len = (static_cast<uint64_t>(Be32(out.data() + at)) << 32) | Be32(out.data() + at + 4);
    if (len < 9 || out[at + 8] != exportio::kBasePagesKind || (len - 9) % c.pageSize != 0) abort();
    at += 8 + len;
    if (at > bytes) abort();
  }
  return 0;
}
