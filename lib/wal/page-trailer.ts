/**
 * wal/page-trailer.ts — the opt-in 16-byte page checksum trailer (option `pageChecksums: true`).
 *
 * Format (fsqlite-wal.md section 7): the database header's reserved-space byte (offset 20) is 16,
 * so SQLite keeps the last 16 bytes of every page out of its b-tree; walnut stores there the
 * XXH3-128 (seed 0) of the page's first pageSize - 16 bytes, low u64 then high u64, each
 * little-endian: the exact byte reversal of the canonical (big-endian) digest xxh3_128Into writes.
 *
 * Invariants: a trailer of 16 zero bytes means "not stamped" (a page SQLite created after walnut
 * wrote the header, or one never committed by walnut) and is not a mismatch; any other value must
 * equal the hash of the page as stored. walnut stamps a page when it commits it, so a page that
 * SQLite later rewrites keeps walnut's old trailer and fails the check: a database with page
 * checksums must be written by walnut only (SQLite may read it freely).
 */
import { xxh3_128Into } from '../checksum';

export const PAGE_TRAILER_BYTES = 16;

/** Reserved bytes per page that mark a database with walnut page trailers. */
export const PAGE_TRAILER_RESERVED = PAGE_TRAILER_BYTES;

const scratch = new Uint8Array(PAGE_TRAILER_BYTES);

/** Writes the trailer of `page` in place (the page's last 16 bytes). */
export function stampPageTrailer(page: Uint8Array): void {
  const body = page.length - PAGE_TRAILER_BYTES;
  xxh3_128Into(page, scratch, 0, { offset: 0, length: body });
  for (let i = 0; i < PAGE_TRAILER_BYTES; i++) page[body + i] = scratch[PAGE_TRAILER_BYTES - 1 - i]!;
}

export type TrailerStatus = 'ok' | 'unstamped' | 'mismatch';

export function checkPageTrailer(page: Uint8Array): TrailerStatus {
  const body = page.length - PAGE_TRAILER_BYTES;
  let zero = true;
  for (let i = body; i < page.length; i++) {
    if (page[i] !== 0) {
      zero = false;
      break;
    }
  }
  if (zero) return 'unstamped';
  xxh3_128Into(page, scratch, 0, { offset: 0, length: body });
  for (let i = 0; i < PAGE_TRAILER_BYTES; i++) if (scratch[PAGE_TRAILER_BYTES - 1 - i] !== page[body + i]) return 'mismatch';
  return 'ok';
}
