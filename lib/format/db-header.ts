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
 *   21   3   max embedded payload fraction, min embedded payload fraction, leaf payload
 *            fraction: must be 64, 32, 32 (SQLite refuses the file otherwise)
 *   24   4   file change counter
 *   28   4   database size in pages (valid only if nonzero and offset 92 equals offset 24)
 *   44   4   schema format number (1..4; 0 in a database without a schema yet)
 *   92   4   version-valid-for number
 *   96   4   SQLITE_VERSION_NUMBER of the last writer
 *
 * Format versions (18/19): SQLite opens the database in WAL mode when the read version is 2,
 * and reads only versions 1 and 2. `PRAGMA journal_mode=WAL` on a rollback-journal database
 * (btree.c sqlite3BtreeSetVersion, then the pager's commit of page 1) sets both to 2, sets
 * offset 28 to the pages in the file when the in-header size was not trusted, and bumps the
 * change counter (24) and version-valid-for (92) to the same new value; walnut changes exactly
 * those bytes (walModeHeader) and no page contents, so it leaves offset 96 (SQLite's version
 * number) as it was.
 *
 * The database file's lock bytes (SQLite's unix VFS, os_unix.c; reference section 7.1) live
 * here too: a byte range of the database file, never data (the page holding PENDING is never
 * used by SQLite).
 */
import { decodeDbPageSize, encodeDbPageSize } from './page-size';

export const DB_HEADER_SIZE = 100;

/** Lock bytes of the database file: PENDING, RESERVED, then the 510-byte SHARED range. */
export const DB_LOCK = {
  PENDING: 0x40000000,
  RESERVED: 0x40000001,
  SHARED_FIRST: 0x40000002,
  SHARED_SIZE: 510,
} as const;

/** The page holding the lock bytes (file offset 2^30, SQLite's PENDING_BYTE_PAGE): never data. */
export function lockBytePage(pageSize: number): number {
  return Math.floor(DB_LOCK.PENDING / pageSize) + 1;
}
const MAGIC = 'SQLite format 3\0';
/** The payload fractions every SQLite database has (bytes 21..23). */
export const PAYLOAD_FRACTIONS: readonly [number, number, number] = [64, 32, 32];
/** The newest schema format SQLite reads (SQLITE_MAX_FILE_FORMAT). */
export const MAX_SCHEMA_FORMAT = 4;

export interface DbHeader {
  pageSize: number; // 0 when the stored value is invalid
  writeVersion: number;
  readVersion: number;
  reservedBytes: number;
  /** Bytes 21..23: SQLite opens only 64, 32, 32. */
  payloadFractions: [number, number, number];
  changeCounter: number;
  inHeaderDbSize: number;
  schemaFormat: number;
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
    payloadFractions: [bytes[21]!, bytes[22]!, bytes[23]!],
    changeCounter: dv.getUint32(24),
    inHeaderDbSize: dv.getUint32(28),
    schemaFormat: dv.getUint32(44),
    versionValidFor: dv.getUint32(92),
    sqliteVersion: dv.getUint32(96),
  };
}

/**
 * Page 1 of a new, empty database in WAL mode, as SQLite creates it: the 100-byte header
 * (page size, format versions 2/2, change counter 1, size 1 page, default cache size 0; the
 * schema format and the text encoding left 0, as SQLite's newDatabase() leaves them: its first
 * CREATE writes both, and only while the schema format is 0, so a 4 and a UTF-8 here made a
 * `PRAGMA encoding='UTF-16le'` before the first table store UTF-16 under a UTF-8 header, a
 * malformed schema to every other SQLite: test/hostile/sql-new-database-encoding) followed by
 * an empty table b-tree leaf (the sqlite_schema root), whose content area starts at the usable
 * size (page size - reserved bytes).
 */
export function newDatabasePage1(pageSize: number, sqliteVersion = 3040001, reservedBytes = 0): Uint8Array {
  const page = new Uint8Array(pageSize);
  page.set(new TextEncoder().encode(MAGIC.slice(0, 15)), 0); // the 16th byte stays 0
  const dv = new DataView(page.buffer);
  dv.setUint16(16, encodeDbPageSize(pageSize));
  page[18] = 2; // write version: WAL
  page[19] = 2; // read version: WAL
  page[20] = reservedBytes; // reserved bytes at the end of each page
  page.set(PAYLOAD_FRACTIONS, 21); // max embedded, min embedded, leaf payload fractions
  dv.setUint32(24, 1); // file change counter
  dv.setUint32(28, 1); // database size in pages
  dv.setUint32(92, 1); // version-valid-for = change counter
  dv.setUint32(96, sqliteVersion);
  // b-tree page header at offset 100: leaf table page, no cells, content area at the page end
  page[100] = 0x0d;
  const contentStart = pageSize - reservedBytes;
  dv.setUint16(105, contentStart === 65536 ? 0 : contentStart);
  return page;
}

/** WAL mode means both format versions are 2. */
export function isWalMode(h: DbHeader): boolean {
  return h.writeVersion === 2 && h.readVersion === 2;
}

/**
 * How SQLite opens the database: 'wal' when both format versions are 2 (what walnut needs),
 * 'rollback' for versions 1 and 2 otherwise (convertible), null for versions SQLite cannot use.
 */
export function journalModeOf(h: DbHeader): 'wal' | 'rollback' | null {
  if (h.writeVersion < 1 || h.writeVersion > 2 || h.readVersion < 1 || h.readVersion > 2) return null;
  return isWalMode(h) ? 'wal' : 'rollback';
}

/**
 * The 100-byte header as `PRAGMA journal_mode=WAL` leaves it (see the comment at the top):
 * bytes 18/19 = 2, offsets 24 and 92 = change counter + 1, and offset 28 = `filePages` when
 * the in-header size was not trusted. `head` is not changed.
 */
export function walModeHeader(head: Uint8Array, filePages: number): Uint8Array {
  const h = decodeDbHeader(head);
  if (h === null) throw new RangeError('walModeHeader: not a SQLite database header');
  const out = head.slice(0, DB_HEADER_SIZE);
  const dv = new DataView(out.buffer);
  out[18] = 2;
  out[19] = 2;
  if (trustedDbSize(h) === null) dv.setUint32(28, filePages);
  const counter = (h.changeCounter + 1) >>> 0;
  dv.setUint32(24, counter);
  dv.setUint32(92, counter);
  return out;
}

/** The in-header database size when SQLite would trust it, else null. */
export function trustedDbSize(h: DbHeader): number | null {
  return h.inHeaderDbSize !== 0 && h.versionValidFor === h.changeCounter ? h.inHeaderDbSize : null;
}

/**
 * trustedDbSize(decodeDbHeader(bytes)) without decoding the rest of the header (null also when
 * `bytes` holds no database header): the commit path asks it of every commit of page 1, two or
 * three times (commit/pages.ts minimumDbSize), and a decoded header is ~250 bytes of garbage
 * each time (a lone walnut/sql transaction's: 770 of its 12,500 bytes).
 */
export function trustedDbSizeOf(bytes: Uint8Array): number | null {
  if (bytes.length < DB_HEADER_SIZE || !hasDbMagic(bytes)) return null;
  const size = beUint32(bytes, 28);
  return size !== 0 && beUint32(bytes, 92) === beUint32(bytes, 24) ? size : null;
}

function beUint32(bytes: Uint8Array, at: number): number {
  return ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;
}
