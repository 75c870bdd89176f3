// base_image.cc — see base_image.h.
#include "base_image.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "big_endian.h"

namespace walnut::exportio {
namespace {

constexpr uint64_t kWalHeaderSize = 32;
constexpr uint64_t kFrameHeaderSize = 24;
constexpr uint32_t kTrailerBytes = 16;
constexpr uint64_t kRecordOverhead = kLengthPrefix + kBasePagesHeader;

// Where page i of the chunk goes in `out`.
class Layout {
 public:
  Layout(const BaseChunk& c, uint8_t* out)
      : out_(out), pageSize_(c.pageSize), perRecord_(c.pagesPerRecord),
        stride_(kRecordOverhead + static_cast<uint64_t>(c.pagesPerRecord) * c.pageSize) {}
  uint8_t* Record(uint32_t r) const { return out_ + r * stride_; }
  uint8_t* Page(uint32_t i) const {
    return Record(i / perRecord_) + kRecordOverhead + static_cast<uint64_t>(i % perRecord_) * pageSize_;
  }
  // The first page index of the record after the one holding page i.
  uint32_t RecordEnd(uint32_t i) const { return (i / perRecord_ + 1) * perRecord_; }

 private:
  uint8_t* out_;
  uint32_t pageSize_;
  uint32_t perRecord_;
  uint64_t stride_;
};

bool FromDbFile(const BaseChunk& c, uint32_t i) {
  return (c.frames == nullptr || c.frames[i] == 0) && static_cast<uint64_t>(c.firstPgno) + i <= c.dbFilePages;
}

bool FromWal(const BaseChunk& c, uint32_t i) { return c.frames != nullptr && c.frames[i] != 0; }

// Pages [a, b) from the database file: one preadv (across record headers, should the run span
// records). What the file no longer has reads as zeros (the iovecs left unfilled).
OsFailure ReadDbRun(const BaseChunk& c, const Layout& at, uint32_t a, uint32_t b, const ReadvAt& read,
                    std::vector<struct iovec>* iov) {
  iov->clear();
  for (uint32_t i = a; i < b;) {
    uint32_t end = std::min(b, at.RecordEnd(i));
    iov->push_back({at.Page(i), static_cast<size_t>(end - i) * c.pageSize});
    i = end;
  }
  size_t got = 0;
  OsFailure f = read(iov->data(), iov->size(), (static_cast<uint64_t>(c.firstPgno) + a - 1) * c.pageSize, &got);
  if (f.IsError()) return f;
  for (const struct iovec& v : *iov) std::memset(v.iov_base, 0, v.iov_len);  // advanced past what was read
  return {};
}

// Pages [a, b) from consecutive WAL frames frames[a], frames[a]+1, ...: one preadv, the frame
// headers between the pages going to `scratch`. Returns the first frame not read in full (0 = all).
OsFailure ReadWalRun(const BaseChunk& c, const Layout& at, uint32_t a, uint32_t b, const ReadvAt& read,
                     std::vector<struct iovec>* iov, uint32_t* missing) {
  static thread_local uint8_t scratch[kFrameHeaderSize];
  iov->clear();
  for (uint32_t i = a; i < b; i++) {
    if (i > a) iov->push_back({scratch, kFrameHeaderSize});
    iov->push_back({at.Page(i), c.pageSize});
  }
  const uint64_t frameSize = kFrameHeaderSize + c.pageSize;
  const uint64_t pos = kWalHeaderSize + (static_cast<uint64_t>(c.frames[a]) - 1) * frameSize + kFrameHeaderSize;
  size_t got = 0;
  OsFailure f = read(iov->data(), iov->size(), pos, &got);
  if (f.IsError()) return f;
  const uint64_t want = static_cast<uint64_t>(b - a) * frameSize - kFrameHeaderSize;
  if (got < want) {
    uint64_t whole = (got + kFrameHeaderSize) / frameSize;  // pages read in full
    *missing = c.frames[a + static_cast<uint32_t>(whole)];
  }
  return {};
}

// walnut's page trailer (lib/wal/page-trailer.ts): all zeros (not stamped), or the XXH3-128 of
// the rest of the page, low u64 then high u64, each little-endian.
bool TrailerMatches(const uint8_t* page, uint32_t pageSize) {
  const uint8_t* t = page + pageSize - kTrailerBytes;
  bool zero = true;
  for (uint32_t k = 0; k < kTrailerBytes; k++) zero = zero && t[k] == 0;
  if (zero) return true;
  checksum::Hash128 h = checksum::Xxh3_128(page, pageSize - kTrailerBytes, 0);
  for (uint32_t k = 0; k < 8; k++) {
    if (t[k] != static_cast<uint8_t>(h.low >> (8 * k)) || t[8 + k] != static_cast<uint8_t>(h.high >> (8 * k))) return false;
  }
  return true;
}

}  // namespace

uint64_t BaseChunkBytes(uint32_t pageSize, uint32_t pagesPerRecord, uint32_t pageCount) {
  if (!ValidPageSize(pageSize) || pagesPerRecord == 0 || pageCount == 0) return 0;
  const uint64_t full = pageCount / pagesPerRecord, rest = pageCount % pagesPerRecord;
  return full * (kRecordOverhead + static_cast<uint64_t>(pagesPerRecord) * pageSize) +
         (rest == 0 ? 0 : kRecordOverhead + rest * pageSize);
}

const char* CheckBaseChunk(const BaseChunk& c, uint64_t outLength) {
  if (!ValidPageSize(c.pageSize)) return "pageSize must be a power of two between 512 and 65536";
  if (c.pagesPerRecord == 0 || kBasePagesHeader + static_cast<uint64_t>(c.pagesPerRecord) * c.pageSize > kMaxRecord) {
    return "pagesPerRecord must be at least 1 and keep a record within 16 MiB";
  }
  if (c.pageCount == 0) return "pageCount must be at least 1";
  if (c.firstPgno == 0 || static_cast<uint64_t>(c.firstPgno) + c.pageCount - 1 > 0xFFFFFFFFULL) {
    return "the pages must lie in 1..2^32-1";
  }
  if (BaseChunkBytes(c.pageSize, c.pagesPerRecord, c.pageCount) > outLength) return "out is too small for the chunk";
  return nullptr;
}

void FillBaseChunk(const BaseChunk& c, const ReadvAt& readDb, const ReadvAt& readWal, uint8_t* out,
                   checksum::Xxh3State* hash, BaseChunkResult* r) {
  const Layout at(c, out);
  std::vector<struct iovec> iov;
  // Record by record: its pages are read, checked and hashed while they are still in the cache.
  for (uint32_t first = 0; first < c.pageCount; first += c.pagesPerRecord) {
    const uint32_t end = std::min(c.pageCount, first + c.pagesPerRecord);
    uint8_t* rec = at.Record(first / c.pagesPerRecord);
    PutBe64(rec, kBasePagesHeader + static_cast<uint64_t>(end - first) * c.pageSize);
    rec[kLengthPrefix] = kBasePagesKind;
    PutBe32(rec + kLengthPrefix + 1, c.firstPgno + first);
    PutBe32(rec + kLengthPrefix + 5, end - first);
    for (uint32_t i = first; i < end;) {
      uint32_t j = i + 1;
      if (FromWal(c, i)) {
        while (j < end && FromWal(c, j) && c.frames[j] == c.frames[j - 1] + 1) j++;
        r->failure = ReadWalRun(c, at, i, j, readWal, &iov, &r->missingFrame);
      } else if (FromDbFile(c, i)) {
        while (j < end && FromDbFile(c, j)) j++;
        r->failure = ReadDbRun(c, at, i, j, readDb, &iov);
      } else {
        while (j < end && !FromWal(c, j) && !FromDbFile(c, j)) j++;
        std::memset(at.Page(i), 0, static_cast<size_t>(j - i) * c.pageSize);  // beyond the file: zeros
      }
      if (!r->ok()) return;
      i = j;
    }
    for (uint32_t i = first; c.checkTrailers && i < end; i++) {
      if (!TrailerMatches(at.Page(i), c.pageSize)) {
        r->badTrailerPgno = c.firstPgno + i;
        return;
      }
    }
    hash->Update(at.Page(first), static_cast<size_t>(end - first) * c.pageSize);
  }
  r->bytes = BaseChunkBytes(c.pageSize, c.pagesPerRecord, c.pageCount);
}

}  // namespace walnut::exportio
