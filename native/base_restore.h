// base_restore.h — a restore's base image straight from the stream file: consecutive BASE_PAGES
// records (base_image.h draws their layout) parsed, hashed and written to the database in one
// pass (DESIGN.md section 5; lib/export/restore.ts owns the rules, this the fast path).
//
//   stream file: ... | u64 BE length | 0x03 | u32 BE pgno | u32 BE n | n pages | u64 BE length | ...
//                      ^ run.offset
//   database:    page p of a record at (p - 1) * pageSize
//
// Invariants this file keeps:
//  - A record is applied only when the JavaScript path would accept it unchanged: its length
//    prefix is 9..16 MiB, its kind BASE_PAGES, its count >= 1 and divides its page bytes, its page
//    size the run's (the first record's when the run has none yet: a power of two 512..65536),
//    its first pgno the one expected next, and every byte of it is in the file. The first
//    record that is not (or any other kind, or the end of the file) ends the run without being
//    touched: the caller reads it the ordinary way, which reports what is wrong with it.
//  - Per record: one read of its pages and the next record's 17 header bytes into `buffer`
//    (reused: one record long, so it stays in the CPU cache for the hash and the write), the
//    xxh3-128 advanced over the pages, one write of the pages. Writeback of the database is
//    started every kHintBytes written (a hint; the caller fsyncs once at the end).
//  - A run stops after the record that takes it past `maxBytes` of the stream when the next one
//    is one to apply (more = true), so the caller can report progress between runs and start
//    the next at `end`.
//  - Failures of a read or a write end the run with `failure` set; the pages hashed and written
//    by then are counted, so the caller must not go on with this hash (it fails the restore).
//  - No N-API here: the fuzz target (fuzz/native/fuzz_base_restore.cc) links this file alone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "checksum/xxh3.h"
#include "os_failure.h"

namespace walnut::exportio {

struct BaseRun {
  uint64_t offset = 0;    // the stream file offset of a record's length prefix
  uint64_t maxBytes = 0;  // stop after the record that passes this many stream bytes
  uint32_t nextPgno = 1;  // the first pgno the next record must carry
  uint32_t pageSize = 0;  // 0: the first record's (then it must be a valid page size)
};

struct BaseRunResult {
  OsFailure failure;
  bool failedOnWrite = false;  // which file `failure` is about
  uint64_t end = 0;            // offset of the first record not applied
  uint32_t pages = 0;          // pages applied
  uint32_t pageSize = 0;       // the run's page size (0 when no record was applied and none was given)
  bool more = false;           // stopped at maxBytes: the record at `end` is one to apply
};

// Reads up to `len` bytes at `pos`; *got < len only at end of file.
using PreadAt = std::function<OsFailure(uint8_t* buf, size_t len, uint64_t pos, size_t* got)>;
// Writes all `len` bytes at `pos`, or fails.
using PwriteAt = std::function<OsFailure(const uint8_t* buf, size_t len, uint64_t pos)>;
// Starts writeback of [pos, pos + len) (a hint: its failure changes nothing).
using HintAt = std::function<void(uint64_t pos, uint64_t len)>;

constexpr uint64_t kBaseRunHintBytes = 8u << 20;

void ApplyBaseRun(const BaseRun& run, const PreadAt& readStream, const PwriteAt& writeDb, const HintAt& hint,
                  checksum::Xxh3State* hash, std::vector<uint8_t>* buffer, BaseRunResult* r);

}  // namespace walnut::exportio
