/**
 * format/page-size.ts — page sizes and their three encodings.
 *
 *   WAL header offset 8 (u32 BE): the size itself, 512..65536.
 *   Database header offset 16 (u16 BE): the size, except 65536 is stored as 1.
 *   wal-index header szPage (u16, host order): (size & 0xff00) | (size >> 16), i.e. 1 for 65536.
 *
 * Valid page sizes are the powers of two from 512 to 65536.
 */

export const MIN_PAGE_SIZE = 512;
export const MAX_PAGE_SIZE = 65536;

export function isValidPageSize(n: number): boolean {
  return Number.isInteger(n) && n >= MIN_PAGE_SIZE && n <= MAX_PAGE_SIZE && (n & (n - 1)) === 0;
}

/** Database header offset 16 value -> page size (0 when the stored value is not valid). */
export function decodeDbPageSize(stored: number): number {
  const size = stored === 1 ? 65536 : stored;
  return isValidPageSize(size) ? size : 0;
}

export function encodeDbPageSize(pageSize: number): number {
  return pageSize === 65536 ? 1 : pageSize;
}

/** wal-index szPage encoding (reference/sqlite-wal.md section 5.1). */
export function encodeShmPageSize(pageSize: number): number {
  return (pageSize & 0xff00) | (pageSize >>> 16);
}

export function decodeShmPageSize(v: number): number {
  return (v & 0xfe00) + ((v & 1) << 16);
}
