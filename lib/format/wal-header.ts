/**
 * format/wal-header.ts — the 32-byte WAL header (reference/sqlite-wal.md section 2.1).
 *
 *   off size field
 *    0   4   magic: 0x377f0682 (checksum words little-endian) or 0x377f0683 (big-endian)
 *    4   4   format version, 3007000
 *    8   4   page size (65536 stored as is)
 *   12   4   checkpoint sequence number
 *   16   4   salt-1
 *   20   4   salt-2
 *   24   8   checksum (s0, s1) of bytes 0..23, starting from (0, 0)
 *
 * All fields big-endian. A header is usable iff the magic, page size and checksum check out;
 * otherwise SQLite treats the WAL as empty. A usable header with another version is a hard
 * error (SQLITE_CANTOPEN), which decodeWalHeader reports as status 'unknown-version'.
 */
import { unwindWalChecksum, walChecksumBytes } from './checksum';
import { isValidPageSize } from './page-size';

export const WAL_HEADER_SIZE = 32;
export const WAL_MAGIC_LE = 0x377f0682;
export const WAL_MAGIC_BE = 0x377f0683;
export const WAL_FORMAT_VERSION = 3007000;

export interface WalHeader {
  magic: number;
  version: number;
  pageSize: number;
  checkpointSeq: number;
  salt1: number;
  salt2: number;
  checksum: [number, number];
}

export type WalHeaderStatus = 'ok' | 'short' | 'bad-magic' | 'bad-page-size' | 'bad-checksum' | 'unknown-version';

export interface DecodedWalHeader {
  status: WalHeaderStatus;
  /** The fields as stored (present unless the input is shorter than 32 bytes). */
  header: WalHeader | null;
}

/** True when `a` and `b` are the salts of one WAL generation ([salt-1, salt-2]; a restart changes both). */
export function sameSalts(a: readonly number[], b: readonly number[]): boolean {
  return a[0] === b[0] && a[1] === b[1];
}

/** True when a WAL or frame header carries `salts` ([salt-1, salt-2]): it belongs to that generation. */
export function hasSalts(h: { readonly salt1: number; readonly salt2: number }, salts: readonly number[]): boolean {
  return h.salt1 === salts[0] && h.salt2 === salts[1];
}

export function bigEndianChecksum(magic: number): boolean {
  return (magic & 1) === 1;
}

/** The magic SQLite writes on this host (checksum words in native order). */
export function hostMagic(): number {
  return new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? WAL_MAGIC_LE : WAL_MAGIC_BE;
}

export function decodeWalHeader(bytes: Uint8Array): DecodedWalHeader {
  if (bytes.length < WAL_HEADER_SIZE) return { status: 'short', header: null };
  const dv = new DataView(bytes.buffer, bytes.byteOffset, WAL_HEADER_SIZE);
  const header: WalHeader = {
    magic: dv.getUint32(0),
    version: dv.getUint32(4),
    pageSize: dv.getUint32(8),
    checkpointSeq: dv.getUint32(12),
    salt1: dv.getUint32(16),
    salt2: dv.getUint32(20),
    checksum: [dv.getUint32(24), dv.getUint32(28)],
  };
  if ((header.magic & 0xfffffffe) >>> 0 !== WAL_MAGIC_LE) return { status: 'bad-magic', header };
  if (!isValidPageSize(header.pageSize)) return { status: 'bad-page-size', header };
  const [s0, s1] = walChecksumBytes(bytes.subarray(0, 24), bigEndianChecksum(header.magic));
  if (s0 !== header.checksum[0] || s1 !== header.checksum[1]) return { status: 'bad-checksum', header };
  if (header.version !== WAL_FORMAT_VERSION) return { status: 'unknown-version', header };
  return { status: 'ok', header };
}

export interface NewWalHeader {
  pageSize: number;
  checkpointSeq: number;
  salt1: number;
  salt2: number;
  /** Default: the host's order, as SQLite writes. */
  magic?: number;
}

/** Encodes a header and its checksum. */
export function encodeWalHeader(h: NewWalHeader): { bytes: Uint8Array; checksum: [number, number] } {
  if (!isValidPageSize(h.pageSize)) throw new RangeError(`invalid page size ${h.pageSize}`);
  const magic = h.magic ?? hostMagic();
  const bytes = new Uint8Array(WAL_HEADER_SIZE);
  const dv = new DataView(bytes.buffer);
  dv.setUint32(0, magic);
  dv.setUint32(4, WAL_FORMAT_VERSION);
  dv.setUint32(8, h.pageSize);
  dv.setUint32(12, h.checkpointSeq >>> 0);
  dv.setUint32(16, h.salt1 >>> 0);
  dv.setUint32(20, h.salt2 >>> 0);
  const checksum = walChecksumBytes(bytes.subarray(0, 24), bigEndianChecksum(magic));
  dv.setUint32(24, checksum[0]);
  dv.setUint32(28, checksum[1]);
  return { bytes, checksum };
}

/** Byte offset of frame `n` (1-based) for a page size. */
export function frameOffset(n: number, pageSize: number): number {
  return WAL_HEADER_SIZE + (n - 1) * (pageSize + 24);
}

/**
 * The header with these fields whose checksum is `checksum`, when one exists: the checkpoint
 * sequence is the one field the checksum leaves to solve for (its words are summed once into
 * it), and the rest must agree (about 2^-32 by chance). Null when no sequence gives it.
 */
export function walHeaderWithChecksum(h: Omit<NewWalHeader, 'checkpointSeq'> & { magic: number }, checksum: readonly [number, number]): Uint8Array | null {
  if (!isValidPageSize(h.pageSize)) return null;
  const bigEndian = bigEndianChecksum(h.magic);
  const probe = encodeWalHeader({ ...h, checkpointSeq: 0 }).bytes;
  // before the salts' pair, then after the first pair (magic, version)
  const [s0Before, s1Before] = unwindWalChecksum(probe.subarray(16, 24), checksum, bigEndian);
  const [s0First, s1First] = walChecksumBytes(probe.subarray(0, 8), bigEndian);
  const dv = new DataView(probe.buffer, probe.byteOffset, WAL_HEADER_SIZE);
  const pageWord = dv.getUint32(8, !bigEndian);
  if (((s0First + pageWord + s1First) >>> 0) !== s0Before) return null;
  const seqWord = (s1Before - s1First - s0Before) >>> 0;
  dv.setUint32(12, seqWord, !bigEndian); // the word as the checksum reads it
  const { bytes, checksum: got } = encodeWalHeader({ ...h, checkpointSeq: dv.getUint32(12) });
  return got[0] === checksum[0] && got[1] === checksum[1] ? bytes : null;
}

/**
 * The WAL header that frame 1 (`frame`: its 24-byte header and page, as on disk) was written
 * after, given the generation's salts, page size and byte order known from elsewhere (a live
 * wal-index header, a sidecar group): frame 1's checksum starts from the header's, so unwinding
 * it over the frame gives the header's checksum, and the checkpoint sequence is the one value
 * that checksum leaves (walHeaderWithChecksum). Null when frame 1 is not of those salts or no
 * header gives its checksum.
 */
export function walHeaderBeforeFrame1(frame: Uint8Array, g: { pageSize: number; salts: readonly [number, number]; bigEndian: boolean }): Uint8Array | null {
  if (!isValidPageSize(g.pageSize) || frame.length < 24 + g.pageSize) return null;
  const dv = new DataView(frame.buffer, frame.byteOffset, 24);
  if (dv.getUint32(0) === 0 || dv.getUint32(8) !== g.salts[0] || dv.getUint32(12) !== g.salts[1]) return null;
  // the checksummed bytes of a frame: its first 8 header bytes, then the page
  const input = new Uint8Array(8 + g.pageSize);
  input.set(frame.subarray(0, 8), 0);
  input.set(frame.subarray(24, 24 + g.pageSize), 8);
  const checksum = unwindWalChecksum(input, [dv.getUint32(16), dv.getUint32(20)], g.bigEndian);
  return walHeaderWithChecksum({ magic: g.bigEndian ? WAL_MAGIC_BE : WAL_MAGIC_LE, pageSize: g.pageSize, salt1: g.salts[0], salt2: g.salts[1] }, checksum);
}
