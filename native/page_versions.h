// page_versions.h — PageVersions: the replication's "previous version in the stream" of each
// page (lib/export/page-delta.ts owns the rule), kept beside the export's native framer
// (commit_records.h) so PAGE_DELTA records are encoded inside the WAL read. Engine code: no N-API.
//
// Invariants (the same as the JavaScript PageVersions it replaces for the publisher):
//  - Find(pgno) is the last version Put() or rewritten (Touch) for pgno, or nullptr: never
//    evicted, never deleted, never past a Truncate().
//  - At most `budget` bytes of versions are kept: a Put() past it drops the least recently
//    put or touched versions first; a version larger than the budget is not kept at all
//    (budget 0: nothing is kept, so nothing is ever encoded as a delta).
//  - Find()'s answer stays valid until the next Put() or Truncate() (Touch() keeps it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <unordered_map>
#include <vector>

namespace walnut::pagedelta {

class PageVersions {
 public:
  explicit PageVersions(uint64_t budget) : budget_(budget) {}
  PageVersions(const PageVersions&) = delete;
  PageVersions& operator=(const PageVersions&) = delete;

  // pgno's version (size bytes, as it was put) or nullptr; *size set when found.
  uint8_t* Find(uint32_t pgno, uint32_t* size);
  // pgno's version was rewritten in place (EncodePageDelta's updatePrevious): the most recently used now.
  void Touch(uint32_t pgno);
  // Keeps a copy of page[0, size) as pgno's version.
  void Put(uint32_t pgno, const uint8_t* page, uint32_t size);
  // The database now has dbSize pages: versions past it are dropped.
  void Truncate(uint32_t dbSize);
  uint64_t bytes() const { return bytes_; }
  size_t count() const { return order_.size(); }

 private:
  struct Version {
    uint32_t pgno;
    uint32_t size;
    std::unique_ptr<uint8_t[]> bytes;
  };
  using Order = std::list<Version>;  // least recently used first
  void Drop(Order::iterator it);

  uint64_t budget_;
  uint64_t bytes_ = 0;
  Order order_;
  std::unordered_map<uint32_t, Order::iterator> byPgno_;
  std::vector<Version> spare_;  // dropped versions' memory, for the next Put of their size
};

}  // namespace walnut::pagedelta
