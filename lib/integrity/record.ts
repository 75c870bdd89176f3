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
 * Every read takes an explicit end offset; running past it yields null, never a read out of
 * bounds (the callers turn null into a finding).
 */

export type Key = number | bigint;

export interface Varint {
  value: Key;
  next: number;
}

/** Reads a varint at `at` that must end before `end`; null when it does not. */
export function readVarint(b: Uint8Array, at: number, end: number): Varint | null {
  let v = 0;
  for (let i = 0; i < 7; i++) {
    if (at + i >= end) return null;
    const byte = b[at + i]!;
    v = v * 128 + (byte & 0x7f);
    if ((byte & 0x80) === 0) return { value: v, next: at + i + 1 };
  }
  let big = BigInt(v);
  if (at + 7 >= end) return null;
  const b7 = b[at + 7]!;
  big = (big << 7n) | BigInt(b7 & 0x7f);
  if ((b7 & 0x80) === 0) return { value: big, next: at + 8 };
  if (at + 8 >= end) return null;
  big = (big << 8n) | BigInt(b[at + 8]!);
  return { value: BigInt.asIntN(64, big), next: at + 9 };
}

/** A varint that must be a non-negative size below 2^31 (payload sizes, header sizes). */
export function readSize(b: Uint8Array, at: number, end: number): { value: number; next: number } | null {
  const v = readVarint(b, at, end);
  if (v === null || typeof v.value !== 'number' || v.value > 0x7fffffff) return null;
  return { value: v.value, next: v.next };
}

export function serialTypeBytes(t: number): number {
  if (t >= 12) return (t - 12) >> 1;
  return [0, 1, 2, 3, 4, 6, 8, 8, 0, 0, -1, -1][t]!;
}

export type Value = null | number | bigint | { text: Uint8Array } | { blob: Uint8Array };

/** The columns of a record held entirely in `b[start, end)`, or null when it is malformed. */
export function decodeRecord(b: Uint8Array, start: number, end: number): Value[] | null {
  const h = readSize(b, start, end);
  if (h === null || h.value < 1 || start + h.value > end) return null;
  const headerEnd = start + h.value;
  let at = h.next;
  let body = headerEnd;
  const out: Value[] = [];
  while (at < headerEnd) {
    const st = readVarint(b, at, headerEnd);
    if (st === null || typeof st.value !== 'number') return null;
    at = st.next;
    const t = st.value;
    const n = serialTypeBytes(t);
    if (n < 0 || body + n > end) return null;
    out.push(decodeValue(b, t, body, n));
    body += n;
  }
  return out;
}

function decodeValue(b: Uint8Array, t: number, at: number, n: number): Value {
  if (t === 0) return null;
  if (t === 8) return 0;
  if (t === 9) return 1;
  if (t >= 12) return (t & 1) === 0 ? { blob: b.subarray(at, at + n) } : { text: b.subarray(at, at + n) };
  if (t === 7) return new DataView(b.buffer, b.byteOffset + at, 8).getFloat64(0);
  if (n === 8) return new DataView(b.buffer, b.byteOffset + at, 8).getBigInt64(0);
  return signExtend(b, at, n);
}

function signExtend(b: Uint8Array, at: number, n: number): number {
  let v = 0;
  for (let i = 0; i < n; i++) v = v * 256 + b[at + i]!;
  return b[at]! & 0x80 ? v - 2 ** (8 * n) : v;
}

function rank(v: Value): number {
  if (v === null) return 0;
  if (typeof v === 'number' || typeof v === 'bigint') return 1;
  return 'text' in v ? 2 : 3;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/**
 * SQLite's ordering of index keys with the BINARY collation and ascending columns: NULL <
 * numbers (integers and reals by value) < text (memcmp) < blob (memcmp), column by column; a key
 * that is a prefix of the other sorts first.
 */
export function compareRecords(a: Value[], b: Value[]): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a[i]!;
    const y = b[i]!;
    const rx = rank(x);
    const ry = rank(y);
    if (rx !== ry) return rx - ry;
    if (rx === 1) {
      if ((x as number) < (y as number)) return -1;
      if ((x as number) > (y as number)) return 1;
    } else if (rx === 2) {
      const c = compareBytes((x as { text: Uint8Array }).text, (y as { text: Uint8Array }).text);
      if (c !== 0) return c;
    } else if (rx === 3) {
      const c = compareBytes((x as { blob: Uint8Array }).blob, (y as { blob: Uint8Array }).blob);
      if (c !== 0) return c;
    }
  }
  return a.length - b.length;
}

export function decodeText(bytes: Uint8Array, encoding: number): string {
  const label = encoding === 2 ? 'utf-16le' : encoding === 3 ? 'utf-16be' : 'utf-8';
  return new TextDecoder(label).decode(bytes);
}
