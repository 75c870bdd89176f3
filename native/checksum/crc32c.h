// crc32c.h — CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the CRC of iSCSI, ext4
// and SSE4.2's crc32 instruction.
//
// Crc32c(data, initial) uses the usual pre/post inversion, so Crc32c(b, Crc32c(a, 0)) equals
// Crc32c(a || b, 0). The "Update" kernels work on the raw (non-inverted) register.
// Paths: scalar slicing-by-8 (tables built at load), and SSE4.2 with three interleaved streams
// whose partial CRCs are joined with "shift by N zero bytes" operators (linear maps on the
// 32-bit register, applied with four 256-entry tables).
#pragma once

#include <cstddef>
#include <cstdint>

#include "cpu.h"

namespace walnut::checksum {

uint32_t Crc32c(const uint8_t* data, size_t length, uint32_t initial);

uint32_t Crc32cUpdateScalar(uint32_t state, const uint8_t* data, size_t length);
uint32_t Crc32cUpdateSse42(uint32_t state, const uint8_t* data, size_t length);

Tier Crc32cTier();
Tier Crc32cMaxTier();
void Crc32cSetTier(Tier tier);

}  // namespace walnut::checksum
