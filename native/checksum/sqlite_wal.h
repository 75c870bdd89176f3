// sqlite_wal.h — SQLite's WAL checksum (reference/sqlite-wal.md section 3).
//
// Input: 32-bit words (little-endian when the WAL magic is 0x377f0682, big-endian when it is
// 0x377f0683), consumed in pairs (a, b): s0 += a + s1; s1 += b + s0, all modulo 2^32. The
// length must be a multiple of 8.
//
// SQLite's loop is serial, but the recurrence is linear: with v = (s0, s1) and
// M = [[1, 1], [1, 2]], one pair does v' = M v + (a, a + b), so n pairs give
//   v_n = M^n v_0 + sum_i M^(n-1-i) (a_i, a_i + b_i).
// The sum is a dot product of the input words with coefficient vectors that depend only on
// the distance from the end of the chunk, so SIMD lanes multiply-accumulate whole chunks
// (kChunkPairs pairs) and one 2x2 matrix step joins each chunk to the running state.
// The plain loop is kept as the reference (SqliteWalChecksumScalar) and used by tests.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cpu.h"

namespace walnut::checksum {

struct WalChecksum {
  uint32_t s0;
  uint32_t s1;
};

constexpr size_t kChunkPairs = 512;  // 4096 bytes per SIMD chunk

// Coefficients for a chunk, shared by the SIMD kernels (built once).
struct WalChecksumTables {
  // word j of a chunk that ends kChunkPairs pairs later contributes coef0[j] * w to s0 and
  // coef1[j] * w to s1; a chunk of L pairs uses the last 2L entries.
  alignas(64) uint32_t coef0[2 * kChunkPairs];
  alignas(64) uint32_t coef1[2 * kChunkPairs];
  uint32_t power[kChunkPairs + 1][4];  // M^L as {m00, m01, m10, m11}
  WalChecksumTables();
};
const WalChecksumTables& WalTables();

// `length` must be a multiple of 8 (callers check).
WalChecksum SqliteWalChecksum(const uint8_t* data, size_t length, WalChecksum start, bool bigEndianWords);
WalChecksum SqliteWalChecksumScalar(const uint8_t* data, size_t length, WalChecksum start, bool bigEndianWords);
WalChecksum SqliteWalChecksumAvx2(const uint8_t* data, size_t length, WalChecksum start, bool bigEndianWords);
WalChecksum SqliteWalChecksumAvx512(const uint8_t* data, size_t length, WalChecksum start, bool bigEndianWords);

// Checksums one WAL frame continuing from `running`: header bytes 0..7 then the page.
inline WalChecksum SqliteWalFrameChecksum(const uint8_t* header, const uint8_t* page, size_t pageSize,
                                          WalChecksum running, bool bigEndianWords) {
  running = SqliteWalChecksumScalar(header, 8, running, bigEndianWords);
  return SqliteWalChecksum(page, pageSize, running, bigEndianWords);
}

Tier SqliteWalTier();
Tier SqliteWalMaxTier();
void SqliteWalSetTier(Tier tier);

}  // namespace walnut::checksum
