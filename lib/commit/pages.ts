/**
 * commit/pages.ts — validation of the page writes callers hand to commit(): exactly pageSize
 * bytes each (Buffer or Uint8Array), 1-based page numbers, and within one commit a later
 * write of the same page wins. The result is sorted by page number, as SQLite writes.
 */
import { walnutError } from '../errors';
import type { WalPage } from '../wal/wal-file';

export interface PageWrite {
  pgno: number;
  data: Uint8Array;
}

export function checkPage(pgno: unknown, data: unknown, pageSize: number): void {
  if (typeof pgno !== 'number' || !Number.isInteger(pgno) || pgno < 1 || pgno > 0xffffffff) {
    throw walnutError('WALNUT_INVALID_ARGUMENT', `page number ${String(pgno)} must be an integer in 1..2^32-1`, { reason: 'pgno' });
  }
  if (!(data instanceof Uint8Array)) {
    throw walnutError('WALNUT_INVALID_ARGUMENT', `page ${pgno}: data must be a Buffer or Uint8Array`, { reason: 'data' });
  }
  if (data.length !== pageSize) {
    throw walnutError('WALNUT_INVALID_ARGUMENT', `page ${pgno} has ${data.length} bytes; the page size is ${pageSize}`, { reason: 'pageSize' });
  }
}

export function checkDbSize(dbSize: unknown): number | undefined {
  if (dbSize === undefined) return undefined;
  if (typeof dbSize !== 'number' || !Number.isInteger(dbSize) || dbSize < 1 || dbSize > 0xffffffff) {
    throw walnutError('WALNUT_INVALID_ARGUMENT', `dbSize ${String(dbSize)} must be an integer in 1..2^32-1`, { reason: 'dbSize' });
  }
  return dbSize;
}

/** Validated, deduplicated (last write wins) and sorted by page number. */
export function normalizePages(pages: unknown, pageSize: number): WalPage[] {
  if (!Array.isArray(pages) || pages.length === 0) {
    throw walnutError('WALNUT_INVALID_ARGUMENT', 'pages must be a non-empty array of { pgno, data }', { reason: 'pages' });
  }
  const byPgno = new Map<number, Uint8Array>();
  for (const p of pages as PageWrite[]) {
    if (typeof p !== 'object' || p === null) throw walnutError('WALNUT_INVALID_ARGUMENT', 'each page must be { pgno, data }', { reason: 'pages' });
    checkPage(p.pgno, p.data, pageSize);
    byPgno.set(p.pgno, p.data);
  }
  return [...byPgno].sort((a, b) => a[0] - b[0]).map(([pgno, data]) => ({ pgno, data }));
}
