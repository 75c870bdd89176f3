/**
 * export/page-delta.ts — PAGE_DELTA (records.ts, kind 0x06): a WAL frame whose page travels as
 * the byte ranges that changed against the page's previous version in the stream, as
 * FrankenSQLite's cell-delta frames do for its WAL (reference/fsqlite-wal.md). The on-disk WAL
 * stays SQLite's: a delta is turned back into the bit-exact frame before anything uses it.
 *
 * Invariants:
 *  - "Previous version in the stream" is the last frame (FRAMES or PAGE_DELTA) or base page of
 *    that page number before the record, in stream order. The encoder (PageVersions) keeps
 *    exactly that: every frame and base page it passes updates it; a commit that shrinks the
 *    database drops the versions past its size (a page grown back is sent whole); a page it
 *    has no version of (never seen, or evicted past its byte budget) is sent whole.
 *  - Applying a delta is idempotent: ranges are absolute bytes, so applying it to the new
 *    version gives the new version again (replica.ts relies on this when it resumes).
 *  - The decoder checks every range against the page size before touching memory and the
 *    result against the record's xxh3-128 of the full page: a delta applied to the wrong base
 *    never yields a page silently (WALNUT_CORRUPT, reason 'DeltaMismatch').
 *  - A delta is sent only when it is smaller than half the page; otherwise the frame goes whole.
 *  - Encoding is native (native/page_delta.h); encodePageDeltaJs is the reference it must match
 *    byte for byte (test/unit/page-delta-native). Decoding stays here.
 */
import { xxh3_128Into } from '../checksum';
import { FRAME_HEADER_SIZE } from '../format/frame-header';
import { walnutError } from '../errors';
import { nativeEncodePageDelta } from '../native';
import { KIND, type PayloadMemory } from './records';

/** Unchanged runs shorter than this are sent inside the surrounding range (a range costs 8 bytes). */
const MERGE_GAP = 8;

/** Where the native encoder writes a payload before it is copied to its memory: a delta is at most half a page, and pages at most 64 KiB. */
const deltaScratch = new Uint8Array(32 << 10);

/**
 * The PAGE_DELTA payload for `frame` (24-byte header + page) against `previous` (the page's
 * previous version, same size), or null when the whole frame is the smaller record; written
 * into `memory` when given (every byte of it). Encoded natively (native/page_delta.h, the
 * same bytes as encodePageDeltaJs): the compare, the hash and the ranges were ~10% of the
 * replication worker's CPU in JavaScript. With `updatePrevious`, `previous` holds the frame's
 * page afterwards (when the sizes match), delta or not: the publisher's page version moves
 * on in the same pass (PageVersions.rewritten).
 */
export function encodePageDelta(frame: Uint8Array, previous: Uint8Array, memory?: PayloadMemory, updatePrevious = false): Uint8Array | null {
  const n = nativeEncodePageDelta(frame, previous, deltaScratch, updatePrevious);
  if (n === 0) return null;
  const out = memory?.take(n) ?? new Uint8Array(n);
  out.set(deltaScratch.subarray(0, n));
  return out;
}

/**
 * The reference encoder, in JavaScript: encodePageDelta's bytes, which the native encoder must
 * reproduce exactly (test/unit/page-delta-native). Allocates nothing but the payload.
 */
export function encodePageDeltaJs(frame: Uint8Array, previous: Uint8Array, memory?: PayloadMemory): Uint8Array | null {
  const pageSize = frame.length - FRAME_HEADER_SIZE;
  if (previous.length !== pageSize) return null;
  // both operands as aligned words: the frame's page starts at word HEADER_WORDS of its copy
  const a = copied(0, frame);
  const b = (previous.byteOffset & 7) === 0 ? inPlace(previous) : copied(1, previous);
  const page = a.bytes;
  const prev = b.bytes;
  const H = FRAME_HEADER_SIZE;
  const HEADER_WORDS = H >>> 2;
  const ranges = rangesScratch; // start, end pairs
  ranges.length = 0;
  const words = pageSize >>> 2; // page sizes are powers of two >= 512
  const doubles = pageSize >>> 3;
  const HEADER_DOUBLES = H >>> 3;
  for (let i = 0; i < pageSize; ) {
    if ((i & 7) === 0) {
      // equal bytes skipped eight at a time (a page mostly did not change): doubles compare
      // equal only for equal bits, but for +0 and -0 (their words checked) and never for
      // NaNs (those go on word by word below)
      let d = i >>> 3;
      for (; d < doubles; d++) {
        const x = a.doubles[HEADER_DOUBLES + d]!;
        if (x !== b.doubles[d] || (x === 0 && (a.words[HEADER_WORDS + 2 * d] !== b.words[2 * d] || a.words[HEADER_WORDS + 2 * d + 1] !== b.words[2 * d + 1]))) break;
      }
      i = d << 3;
      if (i >= pageSize) break;
    }
    if ((i & 3) === 0) {
      let w = i >>> 2;
      while (w < words && a.words[HEADER_WORDS + w] === b.words[w]) w++;
      i = w << 2;
      if (i >= pageSize) break;
    }
    if (page[H + i] === prev[i]) {
      i++;
      continue;
    }
    let end = i + 1;
    while (end < pageSize && page[H + end] !== prev[end]) end++;
    const last = ranges.length - 1;
    if (last > 0 && i - ranges[last]! <= MERGE_GAP) ranges[last] = end;
    else ranges.push(i, end);
    i = end;
  }
  let size = 45;
  for (let r = 0; r < ranges.length; r += 2) size += 8 + ranges[r + 1]! - ranges[r]!;
  if (size * 2 > pageSize) return null;
  const out = memory?.take(size) ?? new Uint8Array(size);
  out[0] = KIND.PAGE_DELTA;
  for (let k = 0; k < H; k++) out[1 + k] = frame[k]!;
  pageRange.length = pageSize;
  xxh3_128Into(frame, out, 25, pageRange);
  putBe32(out, 41, ranges.length / 2);
  let at = 45;
  for (let r = 0; r < ranges.length; r += 2) {
    const start = ranges[r]!;
    const end = ranges[r + 1]!;
    putBe32(out, at, start);
    putBe32(out, at + 4, end - start);
    if (end - start <= 64) for (let k = start; k < end; k++) out[at + 8 + k - start] = page[H + k]!;
    else out.set(page.subarray(H + start, H + end), at + 8);
    at += 8 + end - start;
  }
  return out;
}

/** A copy of an operand in aligned memory, as bytes, 32-bit words and doubles (native byte order: only compared for equality). */
interface Operand {
  bytes: Uint8Array;
  words: Int32Array;
  doubles: Float64Array;
}

const operand = (n: number): Operand => {
  const bytes = new Uint8Array(n);
  return { bytes, words: new Int32Array(bytes.buffer), doubles: new Float64Array(bytes.buffer, 0, n >>> 3) };
};

/** The two operands' copies (reused, grown when needed), the ranges found, the page's place in a frame for its hash. */
const operands: Operand[] = [operand(0), operand(0)];
const rangesScratch: number[] = [];
const pageRange = { offset: FRAME_HEADER_SIZE, length: 0 };

/** `src` copied into operands[slot]. */
function copied(slot: number, src: Uint8Array): Operand {
  let o = operands[slot]!;
  if (o.bytes.length < src.length) o = operands[slot] = operand((src.length + 7) & ~7);
  o.bytes.set(src);
  return o;
}

/** An operand aligned to 8 bytes as it is (PageVersions' versions): no copy. */
function inPlace(src: Uint8Array): Operand {
  return { bytes: src, words: new Int32Array(src.buffer, src.byteOffset, src.length >>> 2), doubles: new Float64Array(src.buffer, src.byteOffset, src.length >>> 3) };
}

function putBe32(out: Uint8Array, at: number, v: number): void {
  out[at] = v >>> 24;
  out[at + 1] = (v >>> 16) & 0xff;
  out[at + 2] = (v >>> 8) & 0xff;
  out[at + 3] = v & 0xff;
}

/** The page number a PAGE_DELTA's frame header names. */
export function deltaPgno(frameHeader: Uint8Array): number {
  return new DataView(frameHeader.buffer, frameHeader.byteOffset, 4).getUint32(0);
}

/**
 * The bit-exact frame a decoded PAGE_DELTA stands for: its header, then `previous` with the
 * ranges written over it. WALNUT_CORRUPT (reason 'DeltaMismatch') when a range leaves the page
 * or the result is not the page the record's hash names.
 */
export function applyPageDelta(rec: { frameHeader: Uint8Array; pageHash: Uint8Array; ranges: Uint8Array; count: number }, previous: Uint8Array): Uint8Array {
  const pageSize = previous.length;
  const frame = new Uint8Array(FRAME_HEADER_SIZE + pageSize);
  frame.set(rec.frameHeader, 0);
  frame.set(previous, FRAME_HEADER_SIZE);
  const dv = new DataView(rec.ranges.buffer, rec.ranges.byteOffset, rec.ranges.byteLength);
  for (let i = 0, at = 0; i < rec.count; i++) {
    const offset = dv.getUint32(at);
    const length = dv.getUint32(at + 4);
    if (offset > pageSize || length > pageSize - offset) mismatch(deltaPgno(rec.frameHeader), `range ${offset}+${length} leaves the ${pageSize}-byte page`);
    frame.set(rec.ranges.subarray(at + 8, at + 8 + length), FRAME_HEADER_SIZE + offset);
    at += 8 + length;
  }
  const hash = new Uint8Array(16);
  xxh3_128Into(frame.subarray(FRAME_HEADER_SIZE), hash);
  for (let i = 0; i < 16; i++) if (hash[i] !== rec.pageHash[i]) mismatch(deltaPgno(rec.frameHeader), 'the page it yields does not match its xxh3-128 (applied to the wrong previous version)');
  return frame;
}

function mismatch(pgno: number, why: string): never {
  throw walnutError('WALNUT_CORRUPT', `PAGE_DELTA for page ${pgno}: ${why}`, { reason: 'DeltaMismatch', pgno });
}

/**
 * "Previous version in the stream" (see the header) as a reader keeps it (the replica's page
 * cache, replica.ts): the last version of each page it passed, most recently used last, at
 * most `budget` bytes of pages kept. get()'s answer holds pgno's version until the next set()
 * of pgno. (The publisher's versions are native now, beside the export's framer:
 * native/page_versions.h, the same rules.)
 */
export class PageVersions {
  readonly #pages = new Map<number, Uint8Array>();
  #bytes = 0;
  constructor(readonly budget: number) {}

  /** pgno's version (how long it holds it: see the class). */
  get(pgno: number): Uint8Array | undefined {
    return this.#pages.get(pgno);
  }

  /** Keeps a copy of `page` as pgno's version (in the previous version's memory when the size matches). */
  set(pgno: number, page: Uint8Array): void {
    const old = this.#pages.get(pgno);
    if (old !== undefined && old.length === page.length) {
      old.set(page);
      this.#pages.delete(pgno); // most recently used last
      this.#pages.set(pgno, old);
      return;
    }
    this.delete(pgno);
    if (page.length > this.budget) return;
    // the least recently used go first (the new version is not among them: it fits the budget)
    this.#bytes += page.length;
    for (const [old, p] of this.#pages) {
      if (this.#bytes <= this.budget) break;
      this.#pages.delete(old);
      this.#bytes -= p.length;
    }
    this.#pages.set(pgno, new Uint8Array(page));
  }

  delete(pgno: number): void {
    const p = this.#pages.get(pgno);
    if (p === undefined) return;
    this.#pages.delete(pgno);
    this.#bytes -= p.length;
  }

  /** The database now has `dbSize` pages: versions past it are gone from the stream's state. */
  truncate(dbSize: number): void {
    for (const pgno of [...this.#pages.keys()]) if (pgno > dbSize) this.delete(pgno);
  }

  clear(): void {
    this.#pages.clear();
    this.#bytes = 0;
  }
}
