// page_versions.cc — see page_versions.h.
#include "page_versions.h"

#include <cstring>

namespace walnut::pagedelta {

uint8_t* PageVersions::Find(uint32_t pgno, uint32_t* size) {
  auto it = byPgno_.find(pgno);
  if (it == byPgno_.end()) return nullptr;
  *size = it->second->size;
  return it->second->bytes.get();
}

void PageVersions::Touch(uint32_t pgno) {
  auto it = byPgno_.find(pgno);
  if (it != byPgno_.end()) order_.splice(order_.end(), order_, it->second);
}

void PageVersions::Put(uint32_t pgno, const uint8_t* page, uint32_t size) {
  auto found = byPgno_.find(pgno);
  if (found != byPgno_.end() && found->second->size == size) {
    std::memmove(found->second->bytes.get(), page, size);
    order_.splice(order_.end(), order_, found->second);
    return;
  }
  if (found != byPgno_.end()) Drop(found->second);
  if (size > budget_) return;
  bytes_ += size;
  while (bytes_ > budget_ && !order_.empty()) Drop(order_.begin());  // the new version is not among them
  Version v{pgno, size, nullptr};
  for (size_t i = spare_.size(); i-- > 0;) {
    if (spare_[i].size != size) continue;
    v.bytes = std::move(spare_[i].bytes);
    spare_.erase(spare_.begin() + static_cast<std::ptrdiff_t>(i));
    break;
  }
  if (v.bytes == nullptr) v.bytes = std::make_unique<uint8_t[]>(size);
  std::memcpy(v.bytes.get(), page, size);
  byPgno_[pgno] = order_.insert(order_.end(), std::move(v));
}

void PageVersions::Truncate(uint32_t dbSize) {
  for (auto it = order_.begin(); it != order_.end();) {
    auto next = std::next(it);
    if (it->pgno > dbSize) Drop(it);
    it = next;
  }
}

void PageVersions::Drop(Order::iterator it) {
  bytes_ -= it->size;
  byPgno_.erase(it->pgno);
  if (spare_.size() < 64) spare_.push_back(std::move(*it));  // a few, to reuse: a page first touched costs a fault per 4 KiB
  order_.erase(it);
}

}  // namespace walnut::pagedelta
