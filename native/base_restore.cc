// base_restore.cc — see base_restore.h.
#include "base_restore.h"

#include <algorithm>

#include "base_image.h"
#include "big_endian.h"

namespace walnut::exportio {
namespace {

constexpr size_t kRecordHead = kLengthPrefix + kBasePagesHeader;  // 17: prefix, kind, pgno, count

// A BASE_PAGES record head the run applies: its page bytes and count, else false.
struct Head {
  uint64_t pageBytes = 0;
  uint32_t pgno = 0;
  uint32_t count = 0;
  uint32_t pageSize = 0;
};

bool Accept(const uint8_t* h, uint32_t nextPgno, uint32_t runPageSize, Head* out) {
  const uint64_t length = (static_cast<uint64_t>(Be32(h)) << 32) | Be32(h + 4);
  if (length < kBasePagesHeader || length > kMaxRecord || h[kLengthPrefix] != kBasePagesKind) return false;
  out->pgno = Be32(h + kLengthPrefix + 1);
  out->count = Be32(h + kLengthPrefix + 5);
  out->pageBytes = length - kBasePagesHeader;
  if (out->count == 0 || out->pageBytes % out->count != 0 || out->pgno != nextPgno) return false;
  const uint64_t size = out->pageBytes / out->count;
  if (runPageSize == 0 ? !ValidPageSize(size) : size != runPageSize) return false;
  if (static_cast<uint64_t>(out->pgno) + out->count - 1 > 0xFFFFFFFFULL) return false;
  out->pageSize = static_cast<uint32_t>(size);
  return true;
}

}  // namespace

void ApplyBaseRun(const BaseRun& run, const PreadAt& readStream, const PwriteAt& writeDb, const HintAt& hint,
                  checksum::Xxh3State* hash, std::vector<uint8_t>* buffer, BaseRunResult* r) {
  r->end = run.offset;
  r->pageSize = run.pageSize;
  uint32_t nextPgno = run.nextPgno;
  uint8_t head[kRecordHead];
  size_t got = 0;
  r->failure = readStream(head, kRecordHead, run.offset, &got);
  if (r->failure.IsError() || got < kRecordHead) return;
  uint64_t unhinted = 0, hintFrom = 0;
  for (;;) {
    Head h;
    if (!Accept(head, nextPgno, r->pageSize, &h)) break;
    if (r->end - run.offset >= run.maxBytes && r->pages != 0) {
      r->more = true;  // and the record at `end` is one to apply
      break;
    }
    // the pages, and the next record's head behind them
    const size_t want = static_cast<size_t>(h.pageBytes) + kRecordHead;
    if (buffer->size() < want) buffer->resize(want);
    r->failure = readStream(buffer->data(), want, r->end + kRecordHead, &got);
    if (r->failure.IsError() || got < h.pageBytes) break;  // cut short: the caller reports it
    const uint64_t at = (static_cast<uint64_t>(h.pgno) - 1) * h.pageSize;
    hash->Update(buffer->data(), static_cast<size_t>(h.pageBytes));
    r->failure = writeDb(buffer->data(), static_cast<size_t>(h.pageBytes), at);
    if (r->failure.IsError()) {
      r->failedOnWrite = true;
      break;
    }
    if (unhinted == 0) hintFrom = at;
    unhinted += h.pageBytes;
    if (unhinted >= kBaseRunHintBytes) {
      hint(hintFrom, unhinted);
      unhinted = 0;
    }
    r->pageSize = h.pageSize;
    r->pages += h.count;
    nextPgno += h.count;
    r->end += kLengthPrefix + kBasePagesHeader + h.pageBytes;
    if (got < want) break;  // no complete head after it: the caller reads what is there
    std::copy(buffer->data() + h.pageBytes, buffer->data() + want, head);
  }
  if (unhinted != 0) hint(hintFrom, unhinted);
}

}  // namespace walnut::exportio
