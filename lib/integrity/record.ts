/**
 * integrity/record.ts — SQLite's varints and record format, read defensively from page bytes.
 *
 * Varint: 1..9 bytes, big-endian groups of 7 bits with the high bit meaning "more"; the ninth
 * byte contributes all 8 bits. Values of up to 7 bytes (49 bits) are exact JS numbers; longer ones
 * are BigInts read as signed 64-bit (rowids may be negative).
 *
 * Record: varint header size H, then one serial type per column, then the column bodies:
 * 0 NULL, 1..6 big-endian signed ints of 1,2,3,4,6,8 bytes, 7 IEEE-754 double, 8 integer 0,
 * 9 integer 1, 10/11 reserved (corrupt), even N >= 12 BLOB of (N-12)/2 bytes, odd N >= 13 TEXT of
 * (N-13)/2 bytes.
 *
 * Every read takes an explicit end offset; running past it yields null (or false), never a read
 * out of bounds (the callers turn that into a finding).
 */

import type { ColumnOrder } from './key-order';

export type Key = number | bigint;

/**
 * A reusable varint reader: read() leaves the value in `value` and the offset after it in
 * `next`, so the hot loops of the checker allocate nothing per varint.
 */
export class VarintReader {
  value: Key = 0;
  next = 0;

  /** Reads a varint at `at` that must end before `end`; false when it does not. */
  read(b: Uint8Array, at: number, end: number): boolean {
    let v = 0;
    for (let i = 0; i < 7; i++) {
      if (at + i >= end) return false;
      const byte = b[at + i]!;
      v = v * 128 + (byte & 0x7f);
      if ((byte & 0x80) === 0) {
        this.value = v;
        this.next = at + i + 1;
        return true;
      }
    }
    if (at + 7 >= end) return false;
    let big = (BigInt(v) << 7n) | BigInt(b[at + 7]! & 0x7f);
    if ((b[at + 7]! & 0x80) === 0) {
      this.value = big;
      this.next = at + 8;
      return true;
    }
    if (at + 8 >= end) return false;
    big = (big << 8n) | BigInt(b[at + 8]!);
    this.value = BigInt.asIntN(64, big);
    this.next = at + 9;
    return true;
  }

  /** A varint that must be a size in 0..2^31-1 (payload and header sizes). */
  readSize(b: Uint8Array, at: number, end: number): boolean {
    return this.read(b, at, end) && typeof this.value === 'number' && this.value <= 0x7fffffff;
  }
}

export function serialTypeBytes(t: number): number {
  if (t >= 12) return (t - 12) >> 1;
  return [0, 1, 2, 3, 4, 6, 8, 8, 0, 0, -1, -1][t]!;
}

export type Value = null | number | bigint | { text: Uint8Array } | { blob: Uint8Array };

/** The columns of a record held entirely in `b[start, end)`, or null when it is malformed. */
export function decodeRecord(b: Uint8Array, start: number, end: number): Value[] | null {
  const v = new VarintReader();
  if (!v.readSize(b, start, end)) return null;
  const headerEnd = start + (v.value as number);
  if (headerEnd > end || v.next > headerEnd) return null;
  let at = v.next;
  let body = headerEnd;
  const out: Value[] = [];
  while (at < headerEnd) {
    if (!v.read(b, at, headerEnd) || typeof v.value !== 'number') return null;
    at = v.next;
    const t = v.value;
    const n = serialTypeBytes(t);
    if (n < 0 || body + n > end) return null;
    out.push(decodeValue(b, t, body, n));
    body += n;
  }
  return out;
}

function decodeValue(b: Uint8Array, t: number, at: number, n: number): Value {
  if (t === 0) return null;
  if (t >= 12) return (t & 1) === 0 ? { blob: b.subarray(at, at + n) } : { text: b.subarray(at, at + n) };
  return numberAt(b, t, at);
}

function signExtend(b: Uint8Array, at: number, n: number): number {
  let v = 0;
  for (let i = 0; i < n; i++) v = v * 256 + b[at + i]!;
  return b[at]! & 0x80 ? v - 2 ** (8 * n) : v;
}

function compareBytes(a: Uint8Array, as: number, an: number, b: Uint8Array, bs: number, bn: number): number {
  const n = Math.min(an, bn);
  for (let i = 0; i < n; i++) if (a[as + i] !== b[bs + i]) return a[as + i]! - b[bs + i]!;
  return an - bn;
}

/** 0 NULL, 1 number, 2 text, 3 blob, -1 reserved (10, 11). */
function typeClass(t: number): number {
  if (t === 0) return 0;
  if (t <= 9) return 1;
  if (t <= 11) return -1;
  return (t & 1) === 1 ? 2 : 3;
}

function numberAt(b: Uint8Array, t: number, at: number): number | bigint {
  if (t === 8) return 0;
  if (t === 9) return 1;
  if (t === 7) return new DataView(b.buffer, b.byteOffset + at, 8).getFloat64(0);
  if (t === 6) return new DataView(b.buffer, b.byteOffset + at, 8).getBigInt64(0);
  return signExtend(b, at, serialTypeBytes(t));
}

/** A record held in `data[start, end)` (an index key: the cell's local payload). */
export interface RecordKey {
  data: Uint8Array;
  start: number;
  end: number;
}

/** NOCASE: ASCII letters folded to lower case, then as BINARY (SQLite's sqlite3StrNICmp). */
function compareNocase(a: Uint8Array, as: number, an: number, b: Uint8Array, bs: number, bn: number): number {
  const n = Math.min(an, bn);
  for (let i = 0; i < n; i++) {
    let x = a[as + i]!;
    let y = b[bs + i]!;
    if (x >= 0x41 && x <= 0x5a) x += 0x20;
    if (y >= 0x41 && y <= 0x5a) y += 0x20;
    if (x !== y) return x - y;
  }
  return an - bn;
}

/** RTRIM: trailing spaces ignored, then as BINARY. */
function compareRtrim(a: Uint8Array, as: number, an: number, b: Uint8Array, bs: number, bn: number): number {
  while (an > 0 && a[as + an - 1] === 0x20) an--;
  while (bn > 0 && b[bs + bn - 1] === 0x20) bn--;
  return compareBytes(a, as, an, b, bs, bn);
}

const ra = new VarintReader();
const rb = new VarintReader();

/**
 * SQLite's ordering of index keys, on the record bytes: NULL < numbers (integers and reals by
 * value) < text (by the column's collation) < blob (memcmp), column by column, each column
 * ascending or descending as `order` says (columns past `order`: BINARY ascending); a key that
 * is a prefix of the other sorts first. null when either record is malformed.
 */
export function compareRecordKeys(x: RecordKey, y: RecordKey, order: readonly ColumnOrder[] = []): number | null {
  const a = x.data;
  const b = y.data;
  if (!ra.readSize(a, x.start, x.end) || !rb.readSize(b, y.start, y.end)) return null;
  const aHeaderEnd = x.start + (ra.value as number);
  const bHeaderEnd = y.start + (rb.value as number);
  if (aHeaderEnd > x.end || bHeaderEnd > y.end) return null;
  let ah = ra.next;
  let bh = rb.next;
  let ab = aHeaderEnd;
  let bb = bHeaderEnd;
  for (let col = 0; ah < aHeaderEnd && bh < bHeaderEnd; col++) {
    if (!ra.read(a, ah, aHeaderEnd) || !rb.read(b, bh, bHeaderEnd)) return null;
    const o = order[col];
    const sign = o?.desc ? -1 : 1;
    ah = ra.next;
    bh = rb.next;
    const ta = ra.value as number;
    const tb = rb.value as number;
    const ca = typeClass(ta);
    const cb = typeClass(tb);
    if (ca < 0 || cb < 0) return null;
    const na = serialTypeBytes(ta);
    const nb = serialTypeBytes(tb);
    if (ab + na > x.end || bb + nb > y.end) return null;
    if (ca !== cb) return sign * (ca - cb);
    if (ca === 1) {
      const va = numberAt(a, ta, ab);
      const vb = numberAt(b, tb, bb);
      if (va < vb) return -sign;
      if (va > vb) return sign;
    } else if (ca >= 2) {
      const collation = ca === 2 ? (o?.collation ?? 'binary') : 'binary';
      const c = collation === 'nocase' ? compareNocase(a, ab, na, b, bb, nb) : collation === 'rtrim' ? compareRtrim(a, ab, na, b, bb, nb) : compareBytes(a, ab, na, b, bb, nb);
      if (c !== 0) return sign * c;
    }
    ab += na;
    bb += nb;
  }
  return (ah < aHeaderEnd ? 1 : 0) - (bh < bHeaderEnd ? 1 : 0);
}

export function decodeText(bytes: Uint8Array, encoding: number): string {
  const label = encoding === 2 ? 'utf-16le' : encoding === 3 ? 'utf-16be' : 'utf-8';
  return new TextDecoder(label).decode(bytes);
}
