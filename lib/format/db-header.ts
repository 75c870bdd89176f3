/**
 * format/db-header.ts — the fields of SQLite's 100-byte database header that walnut needs
 * (SQLite file format section 1.3; reference/sqlite-wal.md section 15).
 *
 *   off size field
 *    0  16   "SQLite format 3\0"
 *   16   2   page size (BE; 1 means 65536)
 *   18   1   file format write version: 1 rollback journal, 2 WAL
 *   19   1   file format read version:  1 rollback journal, 2 WAL
 *   20   1   reserved bytes at the end of each page
 *   24   4   file change counter
 *   28   4   database size in pages (valid only if nonzero and offset 92 equals offset 24)
 *   92   4   version-valid-for number
 *   96   4   SQLITE_VERSION_NUMBER of the last writer
 */
import { decodeDbPageSize } from './page-size';

export const DB_HEADER_SIZE = 100;
const MAGIC = 'SQLite format 3\0';

export interface DbHeader {
  pageSize: number; // 0 when the stored value is invalid
  writeVersion: number;
  readVersion: number;
  reservedBytes: number;
  changeCounter: number;
  inHeaderDbSize: number;
  versionValidFor: number;
  sqliteVersion: number;
}

export function hasDbMagic(bytes: Uint8Array): boolean {
  if (bytes.length < 16) return false;
  for (let i = 0; i < 16; i++) if (bytes[i] !== MAGIC.charCodeAt(i)) return false;
  return true;
}

/** Decodes the header; null when the bytes are not a SQLite database header. */
export function decodeDbHeader(bytes: Uint8Array): DbHeader | null {
  if (bytes.length < DB_HEADER_SIZE || !hasDbMagic(bytes)) return null;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, DB_HEADER_SIZE);
  return {
    pageSize: decodeDbPageSize(dv.getUint16(16)),
    writeVersion: bytes[18]!,
    readVersion: bytes[19]!,
    reservedBytes: bytes[20]!,
    changeCounter: dv.getUint32(24),
    inHeaderDbSize: dv.getUint32(28),
    versionValidFor: dv.getUint32(92),
    sqliteVersion: dv.getUint32(96),
  };
}

/** WAL mode means both format versions are 2. */
export function isWalMode(h: DbHeader): boolean {
  return h.writeVersion === 2 && h.readVersion === 2;
}

/** The in-header database size when SQLite would trust it, else null. */
export function trustedDbSize(h: DbHeader): number | null {
  return h.inHeaderDbSize !== 0 && h.versionValidFor === h.changeCounter ? h.inHeaderDbSize : null;
}
