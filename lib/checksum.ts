/**
 * checksum.ts — the `walnut/checksum` subpath: SQLite's WAL checksum, CRC-32C and XXH3, all
 * native (native/checksum/), with the fastest SIMD path the CPU offers chosen at load.
 *
 * Every function takes a Buffer or Uint8Array and an optional byte range; bad arguments raise
 * WalnutError WALNUT_INVALID_ARGUMENT. A range (or options) left out is none; one given must be
 * an object: null is refused as every verb's options are (option-names.ts), reason 'range'.
 */
import { describeValue } from './arguments';
import { walnutError } from './errors';
import { nativeChecksum, type ChecksumTier } from './native';

export type { ChecksumTier };

export interface Range {
  /** First byte (default 0). */
  offset?: number;
  /** Number of bytes (default: to the end). */
  length?: number;
}

export interface SqliteWalChecksumOptions extends Range {
  /** true for WALs with magic 0x377f0683 (big-endian words); default false (0x377f0682). */
  bigEndianWords?: boolean;
}

/** Scratch for native results (JS is single-threaded per isolate; read right after the call). */
const pair = new Uint32Array(2);
const walState = new Uint32Array(3);

/** `range` (or options holding one) as given: {} when left out, else it must be an object (reason 'range'). */
function rangeOf<T extends object>(range: T | undefined): T {
  if (range === undefined) return {} as T;
  if (typeof range !== 'object' || range === null) throw walnutError('WALNUT_INVALID_ARGUMENT', `a range (or options) must be an object such as { offset, length }, not ${describeValue(range)}`, { reason: 'range' });
  return range;
}

function isInteger(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** The bytes of `range` within `data`, checked (subarray alone would clamp silently). */
function view(data: Uint8Array, range: Range): Uint8Array {
  if (!(data instanceof Uint8Array)) {
    throw walnutError('WALNUT_INVALID_ARGUMENT', 'data must be a Buffer or Uint8Array', { reason: 'data' });
  }
  if (range.offset === undefined && range.length === undefined) return data;
  const offset = range.offset ?? 0;
  if (!isInteger(offset) || offset > data.length) {
    throw walnutError('WALNUT_INVALID_ARGUMENT', `offset ${offset} is not within the buffer`, { reason: 'offset' });
  }
  const length = range.length ?? data.length - offset;
  if (!isInteger(length) || length > data.length - offset) {
    throw walnutError('WALNUT_INVALID_ARGUMENT', 'offset + length is beyond the end of the buffer', { reason: 'length' });
  }
  return data.subarray(offset, offset + length);
}

function u32(v: unknown, name: string): number {
  if (!isInteger(v) || v > 0xffffffff) {
    throw walnutError('WALNUT_INVALID_ARGUMENT', `${name} must be an integer in 0..2^32-1`, { reason: name });
  }
  return v;
}

/** SQLite's WAL checksum continuing from (s0, s1); the range length must be a multiple of 8. */
export function sqliteWalChecksum(
  data: Uint8Array,
  s0 = 0,
  s1 = 0,
  options: SqliteWalChecksumOptions = {},
): [number, number] {
  walState[0] = u32(s0, 's0');
  walState[1] = u32(s1, 's1');
  const o = rangeOf(options);
  walState[2] = o.bigEndianWords === true ? 1 : 0;
  nativeChecksum.sqliteWalChecksum(view(data, o), walState);
  return [walState[0]!, walState[1]!];
}

/**
 * Fills in N consecutive WAL frames (24-byte header + page each) in place: writes the salts to
 * header bytes 8..15 and the cumulative checksum (header bytes 0..7 + page, continuing from
 * (s0, s1)) to bytes 16..23. Returns the running checksum after the last frame.
 */
export function sqliteWalFrameChecksums(
  frames: Uint8Array,
  pageSize: number,
  running: readonly [number, number],
  salts: readonly [number, number],
  options: { bigEndianWords?: boolean } = {},
): [number, number] {
  // each checked here: the addon reads a missing one (a pair of one element) as 0
  const s0 = u32(running?.[0], 's0');
  const s1 = u32(running?.[1], 's1');
  const salt1 = u32(salts?.[0], 'salt1');
  const salt2 = u32(salts?.[1], 'salt2');
  nativeChecksum.sqliteWalFrameChecksums(frames, pageSize, s0, s1, salt1, salt2, rangeOf(options).bigEndianWords === true, pair);
  return [pair[0]!, pair[1]!];
}

/** CRC-32C (Castagnoli); pass a previous result as `initial` to continue it. */
export function crc32c(data: Uint8Array, initial = 0, range: Range = {}): number {
  return nativeChecksum.crc32c(view(data, rangeOf(range)), initial);
}

/** XXH3-64 with an optional 64-bit seed. */
export function xxh3_64(data: Uint8Array, seed: bigint | number = 0n, range: Range = {}): bigint {
  const r = rangeOf(range);
  return nativeChecksum.xxh3_64(data, r.offset, r.length, seed);
}

/** XXH3-128 with an optional 64-bit seed, as a 128-bit BigInt (high64 << 64 | low64). */
export function xxh3_128(data: Uint8Array, seed: bigint | number = 0n, range: Range = {}): bigint {
  const r = rangeOf(range);
  return nativeChecksum.xxh3_128(data, r.offset, r.length, seed);
}

/** XXH3-128 (seed 0) written as 16 canonical (big-endian) bytes into `out` at `outOffset`. */
export function xxh3_128Into(data: Uint8Array, out: Uint8Array, outOffset = 0, range: Range = {}): void {
  const r = rangeOf(range);
  nativeChecksum.xxh3_128_into(data, r.offset, r.length, out, outOffset);
}

/** Streaming XXH3: feed pieces of any size; digests equal the one-shot hash of all pieces. */
export class Xxh3Stream {
  readonly #state;
  constructor(seed: bigint | number = 0n) {
    this.#state = new nativeChecksum.Xxh3Stream(seed);
  }
  update(data: Uint8Array, range: Range = {}): this {
    const r = rangeOf(range);
    this.#state.update(data, r.offset, r.length);
    return this;
  }
  digest64(): bigint {
    return this.#state.digest64();
  }
  digest128(): bigint {
    return this.#state.digest128();
  }
}

/** Which implementation each checksum uses on this CPU, and the best one available. */
export function checksumPaths() {
  return nativeChecksum.paths();
}
