// base_image.h — the export's base image, read and framed in one pass (DESIGN.md section 5;
// lib/export/records.ts owns the record layout, reference/arkhe-export.md the framing).
//
// A chunk is `pageCount` consecutive pages starting at `firstPgno`, laid out in `out` as
// complete ARKHEXP1 records of BASE_PAGES, `pagesPerRecord` pages each (the last may be short):
//
//   +----------------+------+------------+---------+--------------------------+
//   | u64 BE length  | 0x03 | u32 BE pgno| u32 BE n| n pages                  |  ...next record
//   +----------------+------+------------+---------+--------------------------+
//     length = 9 + n * pageSize <= 16 MiB
//
// Invariants this file keeps:
//  - Each page is what the exporter's snapshot sees: the WAL frame `frames[i]` when nonzero
//    (the caller looked it up in the wal-index under that snapshot), else the database file when
//    pgno <= dbFilePages, else zeros — exactly Snapshot.readIntoSync's rule. A database-file
//    read that ends early (the file is shorter than it was) gives zeros for the rest; a WAL
//    frame that lies beyond the WAL's end is an error (missingFrame), never zeros.
//  - Pages land straight in `out` (one copy, from the page cache), record by record: database
//    pages in one pread per run of file pages, WAL pages in one preadv per run of consecutive
//    frames (the 24-byte frame headers go to a scratch buffer).
//  - The xxh3-128 stream over the page bytes advances in page order, each record's pages right
//    after they were read (still in the CPU cache). After a failure the hash has taken part of
//    the chunk: the caller must not go on with it (export_io.cc refuses to).
//  - CheckBaseChunk validates every number against `out` before anything is touched; the fill
//    trusts what it checked. No N-API here: fuzz targets link this file alone.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <functional>

#include "checksum/xxh3.h"
#include "os_failure.h"
#include "page_size.h"

namespace walnut::exportio {

constexpr uint64_t kMaxRecord = 16u << 20;  // ARKHEXP1's hard ceiling on a payload
constexpr size_t kLengthPrefix = 8;
constexpr size_t kBasePagesHeader = 9;  // kind, u32 first pgno, u32 count
constexpr uint8_t kBasePagesKind = 0x03;

struct BaseChunk {
  uint32_t pageSize = 0;
  uint32_t pagesPerRecord = 0;
  uint32_t firstPgno = 0;
  uint32_t pageCount = 0;
  uint32_t dbFilePages = 0;          // the database file's pages when the snapshot began
  const uint32_t* frames = nullptr;  // pageCount entries (0 = not in the WAL), or null: none
  bool checkTrailers = false;        // verify walnut's 16-byte XXH3-128 page trailers
};

struct BaseChunkResult {
  OsFailure failure;           // the database or WAL read failed
  uint32_t missingFrame = 0;   // a needed WAL frame lies beyond the WAL's end
  uint32_t badTrailerPgno = 0;  // a page whose trailer does not match it
  uint64_t bytes = 0;          // bytes of `out` filled (BaseChunkBytes) on success
  bool ok() const { return !failure.IsError() && missingFrame == 0 && badTrailerPgno == 0; }
};

// Reads into `iov` at `pos`; *got < the requested total only at end of file.
using ReadvAt = std::function<OsFailure(struct iovec* iov, size_t count, uint64_t pos, size_t* got)>;

// Bytes the chunk takes as framed records (0 when the numbers are out of range).
uint64_t BaseChunkBytes(uint32_t pageSize, uint32_t pagesPerRecord, uint32_t pageCount);

// nullptr when `c` fits `outLength` bytes and every number is in range; else why not.
const char* CheckBaseChunk(const BaseChunk& c, uint64_t outLength);

// Fills `out` (checked with CheckBaseChunk first) and advances `hash` over the pages.
void FillBaseChunk(const BaseChunk& c, const ReadvAt& readDb, const ReadvAt& readWal, uint8_t* out,
                   checksum::Xxh3State* hash, BaseChunkResult* r);

}  // namespace walnut::exportio
