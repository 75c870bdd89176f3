/**
 * commit/pages.ts — validation of the page writes callers hand to commit() and tx.write():
 * everything SQLite would refuse to open is refused here, before a byte is written, with
 * WALNUT_INVALID_ARGUMENT naming the field in `reason`. The rules:
 *
 *   data     a Buffer or Uint8Array of exactly pageSize bytes;
 *   pgno     an integer in 1..maxPageNumber(rules): at most the store's maxPageCount (option;
 *            default 2^30 - 1, SQLite's default max_page_count before 3.45; at most
 *            SQLITE_MAX_PAGE_COUNT, 0xfffffffe), and no byte of the page past MAX_DATABASE_BYTES
 *            (16 TiB, the largest file ext4 holds with 4 KiB blocks: a page past it could be
 *            acknowledged but never checkpointed); never the lock-byte page (the page holding
 *            byte offset 2^30, which SQLite never uses for data);
 *   page 1   a database header for this store (format/db-header.ts): the SQLite magic, this
 *            page size, format versions 2/2 (WAL), the reserved bytes the database was opened
 *            with (16 with page checksums), payload fractions 64/32/32, a schema format SQLite
 *            reads; its in-header size, when SQLite would trust it, must not exceed the commit's
 *            dbSize (SQLite reports such a database corrupt); a commit that shrinks the
 *            database without writing page 1 is held to the database's current page 1 the same
 *            way (the group committer checks it under the write lock, where page 1 is known);
 *   options  undefined, null, or an object whose only key is dbSize (a misspelt key would
 *            silently drop a truncation);
 *   dbSize   the database size in pages after the commit, bounded like pgno, and never below
 *            the highest page the commit writes. It may be below the previous size: the commit
 *            truncates the database, as SQLite's VACUUM and auto_vacuum do (pages past it read as
 *            zeros and a complete checkpoint cuts the file to it).
 *
 * Within one commit a later write of the same page wins; the result is sorted by page number,
 * as SQLite writes.
 */
import { describeValue, uint8Length } from '../arguments';
import { walnutError } from '../errors';
import { DB_HEADER_SIZE, decodeDbHeader, hasDbMagic, isWalMode, lockBytePage, MAX_SCHEMA_FORMAT, PAYLOAD_FRACTIONS, trustedDbSizeOf } from '../format/db-header';
import { be32 } from '../format/frame-header';
import { decodeDbPageSize } from '../format/page-size';
import { unknownOptionName } from '../option-names';
import type { WalPage } from '../wal/wal-file';

export interface PageWrite {
  pgno: number;
  data: Uint8Array;
}

/** SQLITE_MAX_PAGE_COUNT: the largest page number SQLite uses. */
export const MAX_PAGE_COUNT = 0xfffffffe;
/** The largest database file walnut writes: 16 TiB (2^44 bytes). */
export const MAX_DATABASE_BYTES = 2 ** 44;

/** What a commit's pages are checked against: fixed when the store opens. */
export interface PageRules {
  pageSize: number;
  /** Reserved bytes at the end of each page (page 1's byte 20) when the store opened. */
  reservedBytes: number;
  /** Option maxPageCount. */
  maxPageCount: number;
}

function invalid(reason: string, message: string): never {
  throw walnutError('WALNUT_INVALID_ARGUMENT', message, { reason });
}

/** The largest page number (and database size in pages) a commit may have. */
export function maxPageNumber(rules: PageRules): number {
  return Math.min(rules.maxPageCount, MAX_PAGE_COUNT, MAX_DATABASE_BYTES / rules.pageSize);
}

function checkPageNumber(pgno: unknown, rules: PageRules): asserts pgno is number {
  const max = maxPageNumber(rules);
  if (typeof pgno !== 'number' || !Number.isInteger(pgno) || pgno < 1 || pgno > max) {
    invalid('pgno', `page number ${describeValue(pgno)} must be an integer in 1..${max} (page size ${rules.pageSize}, maxPageCount ${rules.maxPageCount})`);
  }
  if (pgno === lockBytePage(rules.pageSize)) {
    invalid('pgno', `page ${pgno} holds the database's lock bytes (offset 2^30); SQLite never stores data there`);
  }
}

export function checkPage(pgno: unknown, data: unknown, rules: PageRules): void {
  checkPageNumber(pgno, rules);
  const length = uint8Length(data);
  if (length < 0) invalid('data', `page ${pgno}: data must be a Buffer or Uint8Array`);
  if (length !== rules.pageSize) invalid('pageSize', `page ${pgno} has ${length} bytes; the page size is ${rules.pageSize}`);
  if (pgno === 1) checkPage1(data as Uint8Array, rules);
}

/** Page 1 must stay a database header SQLite (and walnut) open as this store's database. */
function checkPage1(data: Uint8Array, rules: PageRules): void {
  // every commit of page 1 passes here (each SQL transaction's): the bytes checked in place
  // first, the header decoded (~250 bytes of garbage) only to say what is wrong
  if (page1Acceptable(data, rules)) return;
  const h = decodeDbHeader(data);
  if (h === null) invalid('page1.magic', 'page 1 does not start with the SQLite header "SQLite format 3\\0"');
  if (h.pageSize !== rules.pageSize) invalid('page1.pageSize', `page 1's header says page size ${h.pageSize || 'invalid'}; the database's page size is ${rules.pageSize}`);
  if (!isWalMode(h)) invalid('page1.fileFormat', `page 1's format versions (bytes 18/19) are ${h.writeVersion}/${h.readVersion}; a WAL database has 2/2`);
  if (h.reservedBytes !== rules.reservedBytes) {
    invalid('page1.reservedBytes', `page 1 reserves ${h.reservedBytes} bytes per page (byte 20); this database reserves ${rules.reservedBytes}${rules.reservedBytes === 16 ? ' (page checksums)' : ''}`);
  }
  if (h.payloadFractions.some((v, i) => v !== PAYLOAD_FRACTIONS[i])) {
    invalid('page1.payloadFractions', `page 1's payload fractions (bytes 21..23) are ${h.payloadFractions.join('/')}; SQLite opens only ${PAYLOAD_FRACTIONS.join('/')}`);
  }
  if (h.schemaFormat > MAX_SCHEMA_FORMAT) invalid('page1.schemaFormat', `page 1's schema format (offset 44) is ${h.schemaFormat}; SQLite reads 0..${MAX_SCHEMA_FORMAT}`);
}

/** checkPage1's checks on the bytes themselves: true when it would accept `data` (pageSize bytes). */
function page1Acceptable(data: Uint8Array, rules: PageRules): boolean {
  return (
    data.length >= DB_HEADER_SIZE &&
    hasDbMagic(data) &&
    decodeDbPageSize((data[16]! << 8) | data[17]!) === rules.pageSize &&
    data[18] === 2 &&
    data[19] === 2 &&
    data[20] === rules.reservedBytes &&
    data[21] === PAYLOAD_FRACTIONS[0] &&
    data[22] === PAYLOAD_FRACTIONS[1] &&
    data[23] === PAYLOAD_FRACTIONS[2] &&
    be32(data, 44) <= MAX_SCHEMA_FORMAT
  );
}

/** A commit's options ({ dbSize }, or none; store.commit also takes `base`): their dbSize, checked (checkDbSize). */
export function commitDbSize(options: unknown, rules: PageRules, known: readonly string[] = ['dbSize']): number | undefined {
  if (options === undefined) return undefined;
  // (null is no "none": option-names.ts)
  if (typeof options !== 'object' || options === null || Array.isArray(options)) invalid('options', `commit options must be an object: { ${known.join(', ')} }, not ${describeValue(options)}`);
  const key = unknownOptionName(options, known);
  if (key !== undefined) invalid('options', `commit option ${key} does not exist (only ${known.join(', ')})`);
  return checkDbSize((options as { dbSize?: unknown }).dbSize, rules);
}

function checkDbSize(dbSize: unknown, rules: PageRules): number | undefined {
  if (dbSize === undefined) return undefined;
  const max = maxPageNumber(rules);
  if (typeof dbSize !== 'number' || !Number.isInteger(dbSize) || dbSize < 1 || dbSize > max) {
    invalid('dbSize', `dbSize ${describeValue(dbSize)} must be an integer in 1..${max} (page size ${rules.pageSize}, maxPageCount ${rules.maxPageCount})`);
  }
  return dbSize;
}

/**
 * The smallest database size (in pages) a commit of these pages may have: its highest page,
 * and page 1's in-header size when SQLite would trust it.
 */
export function minimumDbSize(pages: readonly WalPage[]): number {
  const top = pages.length === 0 ? 0 : pages[pages.length - 1]!.pgno; // sorted
  const inHeader = pages[0]?.pgno === 1 ? trustedDbSizeOf(pages[0].data) : null;
  return Math.max(top, inHeader ?? 0);
}

/** Refuses a database size below what the commit's pages need (minimumDbSize). */
export function checkCommitSize(pages: readonly WalPage[], dbSize: number): void {
  const min = minimumDbSize(pages);
  if (dbSize >= min) return;
  const top = pages[pages.length - 1]!.pgno;
  invalid('dbSize', top > dbSize
    ? `dbSize ${dbSize} is below page ${top}, which the same commit writes`
    : `dbSize ${dbSize} is below page 1's in-header database size ${min} (SQLite would report the database corrupt)`);
}

/** Validated, deduplicated (last write wins) and sorted by page number; with dbSize, checked against it. */
export function normalizePages(pages: unknown, rules: PageRules, dbSize?: number): WalPage[] {
  if (!Array.isArray(pages) || pages.length === 0) invalid('pages', 'pages must be a non-empty array of { pgno, data }');
  // sized once (a growing [] allocated a 17-slot backing store per commit: every commit() allocates this)
  const n = pages.length;
  const out: WalPage[] = new Array<WalPage>(n);
  // Read every page first, check them after: reading one may run the caller's code (an accessor
  // of the array or of a page object), which may shrink or transfer the buffer of a page read
  // before it; checked as they were read, such a page went to the copy (page-arena.ts) checked
  // but no longer pageSize bytes. Between the checks and the copy no caller code runs.
  for (let i = 0; i < n; i++) {
    const p = (pages as PageWrite[])[i];
    if (typeof p !== 'object' || p === null) invalid('pages', 'each page must be { pgno, data }');
    const { pgno, data } = p;
    out[i] = { pgno, data };
  }
  let ascending = true;
  for (let i = 0; i < n; i++) {
    const { pgno, data } = out[i]!;
    checkPage(pgno, data, rules);
    if (i > 0 && pgno <= out[i - 1]!.pgno) ascending = false;
  }
  // pages given in ascending order (one page; SQLite's order; walnut/sql's): no map, no sort
  const sorted = ascending ? out : [...new Map(out.map((p) => [p.pgno, p.data]))].sort((a, b) => a[0] - b[0]).map(([pgno, data]) => ({ pgno, data }));
  if (dbSize !== undefined) checkCommitSize(sorted, dbSize);
  return sorted;
}
