/**
 * format/shm-header.ts — the wal-index header (WalIndexHdr, 48 bytes, stored twice at shm
 * offsets 0 and 48) and the checkpoint-info offsets (reference/sqlite-wal.md section 5.1).
 *
 *   off size field           (host byte order, except aSalt)
 *    0   4   iVersion        3007000
 *    4   4   unused          0
 *    8   4   iChange         bumped by every commit; 0 after recovery
 *   12   1   isInit          1 once initialised
 *   13   1   bigEndCksum     1 when the WAL magic is 0x377f0683
 *   14   2   szPage          page size, 65536 encoded as 1; 0 while the WAL has no commit
 *   16   4   mxFrame         last valid commit frame
 *   20   4   nPage           database size in pages after that commit
 *   24   8   aFrameCksum     running checksum at mxFrame
 *   32   8   aSalt           WAL header bytes 16..23, raw (big-endian)
 *   40   8   aCksum          checksum of bytes 0..39, host-order words, from (0, 0)
 *
 * A header is good iff both copies are byte-identical, isInit is set and aCksum matches.
 *
 * The index after it (native/shm.h owns it; integrity/shm-check.ts reads it): 32 KiB segments,
 * each a page-number array (u32 per frame, host order) and, at 16 KiB, a hash table of 8192 u16
 * slots; segment 0's array starts after the 136 bytes of headers and checkpoint info and holds
 * 4062 frames, every later segment holds 4096.
 */
import { walChecksumBytes } from './checksum';
import { decodeShmPageSize, encodeShmPageSize } from './page-size';
import { sameSalts } from './wal-header';

export const SHM_HEADER_SIZE = 48;
export const SHM_VERSION = 3007000;

/** WalCkptInfo offsets (bytes from the start of the -shm). */
export const CKPT_NBACKFILL = 96;
export const CKPT_READMARK = (i: number): number => 100 + 4 * i;
export const CKPT_NBACKFILL_ATTEMPTED = 128;
export const READMARK_NOT_USED = 0xffffffff;

/** The index's layout (see the file comment). */
export const SHM_SEGMENT_BYTES = 32768;
export const SHM_INDEX_HEADER_BYTES = 136;
export const SHM_HASH_OFFSET = 16384;
export const SHM_HASH_SLOTS = 8192;
export const SHM_FIRST_SEGMENT_FRAMES = 4062;
export const SHM_SEGMENT_FRAMES = 4096;

/** Lock byte offsets in the -shm (SQLite's UNIX_SHM_BASE = 120) and the DMS byte. */
export const SHM_LOCK = {
  WRITE: 120,
  CKPT: 121,
  RECOVER: 122,
  READ: (i: number): number => 123 + i,
  DMS: 128,
} as const;

const HOST_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export interface ShmHeader {
  iVersion: number;
  iChange: number;
  isInit: number;
  bigEndCksum: boolean;
  pageSize: number; // decoded szPage (0 when unset)
  mxFrame: number;
  nPage: number;
  frameChecksum: [number, number];
  salts: [number, number]; // as numbers, read big-endian from the raw bytes
}

/**
 * Encodes into `out` (48 bytes; a fresh array by default). A caller publishing every commit
 * passes one array of its own: the DataView of a fresh small array moves its bytes off the V8
 * heap (a malloc and a sweep per call; bench/README #19 session 11 (lone)).
 */
export function encodeShmHeader(h: Omit<ShmHeader, 'iVersion' | 'isInit'>, out: Uint8Array = new Uint8Array(SHM_HEADER_SIZE)): Uint8Array {
  const dv = viewOf(out);
  dv.setUint32(0, SHM_VERSION, HOST_LE);
  dv.setUint32(4, 0, HOST_LE);
  dv.setUint32(8, h.iChange >>> 0, HOST_LE);
  out[12] = 1;
  out[13] = h.bigEndCksum ? 1 : 0;
  dv.setUint16(14, h.pageSize === 0 ? 0 : encodeShmPageSize(h.pageSize), HOST_LE);
  dv.setUint32(16, h.mxFrame, HOST_LE);
  dv.setUint32(20, h.nPage, HOST_LE);
  dv.setUint32(24, h.frameChecksum[0], HOST_LE);
  dv.setUint32(28, h.frameChecksum[1], HOST_LE);
  dv.setUint32(32, h.salts[0], false);
  dv.setUint32(36, h.salts[1], false);
  // SQLite's checksum of the first 40 bytes, in native-order words (walChecksumBytes without
  // its views and arrays: a publish per lone commit encodes one header)
  let s0 = 0;
  let s1 = 0;
  for (let i = 0; i < 40; i += 8) {
    s0 = (s0 + dv.getUint32(i, HOST_LE) + s1) >>> 0;
    s1 = (s1 + dv.getUint32(i + 4, HOST_LE) + s0) >>> 0;
  }
  dv.setUint32(40, s0, HOST_LE);
  dv.setUint32(44, s1, HOST_LE);
  return out;
}

/** The DataView of the last array encoded into (a WalIndex encodes every header into its one array). */
let lastOut: Uint8Array | null = null;
let lastView: DataView | null = null;

function viewOf(out: Uint8Array): DataView {
  if (out !== lastOut || lastView === null) {
    lastView = new DataView(out.buffer, out.byteOffset, SHM_HEADER_SIZE);
    lastOut = out;
  }
  return lastView;
}

/**
 * Checks the two copies read by ShmRegion.readHeader (96 bytes: copy 0 then copy 1) and
 * decodes copy 0; null when the header is not good (the caller recovers).
 */
export function decodeShmHeaderCopies(both: Uint8Array): ShmHeader | null {
  for (let i = 0; i < SHM_HEADER_SIZE; i++) if (both[i] !== both[SHM_HEADER_SIZE + i]) return null;
  const h = both.subarray(0, SHM_HEADER_SIZE);
  if (h[12] === 0) return null;
  const dv = new DataView(h.buffer, h.byteOffset, SHM_HEADER_SIZE);
  const [c0, c1] = walChecksumBytes(h.subarray(0, 40), !HOST_LE);
  if (c0 !== dv.getUint32(40, HOST_LE) || c1 !== dv.getUint32(44, HOST_LE)) return null;
  return {
    iVersion: dv.getUint32(0, HOST_LE),
    iChange: dv.getUint32(8, HOST_LE),
    isInit: h[12]!,
    bigEndCksum: h[13] === 1,
    pageSize: decodeShmPageSize(dv.getUint16(14, HOST_LE)),
    mxFrame: dv.getUint32(16, HOST_LE),
    nPage: dv.getUint32(20, HOST_LE),
    frameChecksum: [dv.getUint32(24, HOST_LE), dv.getUint32(28, HOST_LE)],
    salts: [dv.getUint32(32, false), dv.getUint32(36, false)],
  };
}

/**
 * Going from header `a` to a later header `b`: did a commit happen in between? No when the
 * committed state is the same (same generation, mxFrame, nPage and running checksum: a header
 * rewritten by recovery, iChange aside), or when `b` only restarted the WAL (walRestartHdr: mxFrame
 * 0 under new salts, nPage and the running checksum carried over from the last commit's header;
 * a commit in between would have moved the running checksum). Anything else: yes (a commit, or a
 * change nothing but a commit can be ruled out for, e.g. recovery of a WAL whose header died).
 */
export function committedBetween(a: ShmHeader, b: ShmHeader): boolean {
  const sameTail = a.nPage === b.nPage && a.frameChecksum[0] === b.frameChecksum[0] && a.frameChecksum[1] === b.frameChecksum[1];
  if (!sameTail) return true;
  const sameGeneration = sameSalts(a.salts, b.salts);
  if (sameGeneration) return a.mxFrame !== b.mxFrame;
  return b.mxFrame !== 0;
}

export function sameHeaderBytes(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < SHM_HEADER_SIZE; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Segment holding frame F (1-based). */
export function shmSegmentOf(frame: number): number {
  return Math.floor((frame + SHM_SEGMENT_FRAMES - SHM_FIRST_SEGMENT_FRAMES - 1) / SHM_SEGMENT_FRAMES);
}

/** Frames held by the segments before segment `seg` (SQLite's iZero). */
export function shmFramesBefore(seg: number): number {
  return seg === 0 ? 0 : SHM_FIRST_SEGMENT_FRAMES + (seg - 1) * SHM_SEGMENT_FRAMES;
}
