/**
 * fec/sidecar.ts — the `<db>-wal-fec` file: one group per commit batch (a batch larger than the
 * codec's K limit becomes several groups), appended after the batch is written to the WAL.
 * SQLite never opens it. All integers little-endian.
 *
 *   offset  size  field
 *        0     8  magic "WALNTFEC"
 *        8     4  version: 2 (1: groups written before header copies; still read, see below)
 *       12     1  codec (1 rs, 2 raptorq; fec/codec.ts)
 *       13     1  flags: bit 0 set when the chain word at 44 is there, then 2 zero bytes
 *       16     8  WAL salt-1, salt-2 of the generation the frames belong to
 *       24     4  first frame number (1-based); the group covers first .. first + K - 1
 *       28     4  K source frames (1..255)
 *       32     4  R repair symbols (1..255)
 *       36     4  page size T (the symbol size)
 *       40     4  repair data bytes (codec.repairBytes(T, R))
 *       44     4  chain word: the second word of the WAL checksum stored just before the first
 *                  frame (frame first - 1's, or the WAL header's for frame 1), or zero
 *       48    32  (version 2) the WAL header of the generation, bit-exact: the 32 bytes at the
 *                  WAL's offset 0 when the group was written; its salts are the group's (16..23)
 *                  and its own checksum (bytes 24..31) holds. Version 1 has no such field: the
 *                  page numbers follow at 48.
 *       80   4*K  page number of each frame (48 in version 1)
 *        .   4*K  commit field of each frame (database size in pages on a commit frame, else 0)
 *        .  16*K  XXH3-128 (canonical big-endian bytes) of each frame's page
 *        .     .  repair data
 *        .    16  XXH3-128 of every byte of the group before it
 *
 * The chain word ties a group to the WAL's history, not only to its generation: frames of one
 * generation can be written twice from some frame on (a recovery that dropped them, then new
 * commits there by SQLite, or by walnut without the sidecar), and a group over the old frames that
 * are still on disk past the new ones would otherwise "repair" them back onto the new ones.
 *
 * The header copy lets recovery restore a damaged WAL header (its magic, version, page size,
 * checkpoint sequence, salts or checksum: one flipped bit there and SQLite reads the whole WAL as
 * empty). Every group carries it, so losing some groups keeps it; the copy is keyed by the salts
 * it protects (a group's salts) and checked three ways before use: the group's hash, the WAL
 * header's own checksum, and the frames on disk, which must continue its checksum chain
 * (repair.ts, restoreHeader). A version 1 group still serves frame repair, and the one over
 * frame 1 still gives the header (its chain word is the header checksum's second word; the rest
 * is solved from frame 1: repair.ts headersFromFrame1).
 *
 * Invariants: a group is only ever appended whole (one write), so a crash leaves at most a torn
 * last group, which the trailing hash rejects, and the next append cuts it off first (writer.ts);
 * scanning passes over a group whose hash does not verify when its header holds (a damaged byte)
 * and stops where a header does not decode (garbage: only whole groups before it count). Groups of another WAL
 * generation (other salts) are ignored by recovery; the writer truncates the file when the WAL
 * restarts (the first group with new salts).
 */
import { walnutError } from '../errors';
import { xxh3_128Into } from '../checksum';
import { isValidPageSize } from '../format/page-size';
import { decodeWalHeader, hasSalts } from '../format/wal-header';
import type { WalnutFile } from '../io/file';
import { codecNameOf, type FecCodecName } from './codec';

export const GROUP_MAGIC = 'WALNTFEC';
export const GROUP_VERSION = 2;
/** The fixed header's first part, the same in both versions: enough to decode a group's shape and length. */
export const GROUP_FIXED_BYTES = 48;
/** Where the WAL header copy lies in a version 2 group (it ends the fixed header there). */
const HEADER_COPY_AT = 48;
const WAL_HEADER_BYTES = 32;
export const HASH_BYTES = 16;

/** Bytes before the page numbers: 48 in version 1, 80 in version 2 (the WAL header copy). */
function fixedBytesOf(version: number): number {
  return version === 1 ? GROUP_FIXED_BYTES : GROUP_FIXED_BYTES + WAL_HEADER_BYTES;
}

/** What a group's fixed header says. */
export interface FecGroupShape {
  codec: FecCodecName;
  salts: [number, number];
  firstFrame: number;
  k: number;
  r: number;
  pageSize: number;
  /** The chain word (see the file comment); null in a group written without it. */
  chainWord: number | null;
  /** 1 or 2 (the file comment). */
  version: number;
}

export interface FecGroup extends FecGroupShape {
  /** The WAL header copy (version 2; null in version 1). When encoding, required. */
  walHeader: Uint8Array | null;
  pgnos: Uint32Array;
  commits: Uint32Array;
  /** K * 16 bytes */
  hashes: Uint8Array;
  repair: Uint8Array;
}

/** Where a verified group lies in the file. */
export interface FecGroupRef extends FecGroupShape {
  offset: number;
  length: number;
  /**
   * The WAL header copy of a version 2 group, when it is one: 32 bytes whose own checksum holds
   * and whose salts are the group's (null in version 1, and in a group whose copy fails that:
   * its frames are still covered).
   */
  walHeader: Uint8Array | null;
}

export function groupLength(k: number, repairBytes: number, version = GROUP_VERSION): number {
  return fixedBytesOf(version) + 24 * k + repairBytes + HASH_BYTES;
}

/** The copy at 48 of a whole version 2 group when it is a usable WAL header of the group's salts, else null. */
function headerCopyOf(whole: Uint8Array, version: number, salts: [number, number]): Uint8Array | null {
  if (version !== 2 || whole.length < HEADER_COPY_AT + WAL_HEADER_BYTES) return null;
  const copy = whole.slice(HEADER_COPY_AT, HEADER_COPY_AT + WAL_HEADER_BYTES);
  const d = decodeWalHeader(copy);
  if (d.status !== 'ok' || !hasSalts(d.header!, salts)) return null;
  return copy;
}

/** XXH3-128 of each of the K pages in `pages` (back to back), K * 16 bytes. */
export function pageHashes(pages: Uint8Array, k: number, pageSize: number): Uint8Array {
  const out = new Uint8Array(HASH_BYTES * k);
  for (let i = 0; i < k; i++) xxh3_128Into(pages, out, HASH_BYTES * i, { offset: i * pageSize, length: pageSize });
  return out;
}

/** Whether page `i` of the group (at `offset` in `data`, `length` bytes) still has its hash. */
export function pageMatchesHash(data: Uint8Array, offset: number, length: number, hashes: Uint8Array, i: number): boolean {
  xxh3_128Into(data, digestScratch, 0, { offset, length });
  for (let j = 0; j < HASH_BYTES; j++) if (digestScratch[j] !== hashes[i * HASH_BYTES + j]) return false;
  return true;
}

const digestScratch = new Uint8Array(HASH_BYTES);

export function encodeGroup(g: FecGroup, codecId: number): Uint8Array {
  const k = g.k;
  // (version 1 only for tests of sidecars written before header copies)
  if (g.version !== 1 && (g.walHeader === null || g.walHeader.length !== WAL_HEADER_BYTES)) throw new RangeError('a version 2 group is written with the 32-byte WAL header of its generation');
  const version = g.version === 1 ? 1 : GROUP_VERSION;
  const out = new Uint8Array(groupLength(k, g.repair.length, version));
  const dv = new DataView(out.buffer);
  for (let i = 0; i < 8; i++) out[i] = GROUP_MAGIC.charCodeAt(i);
  dv.setUint32(8, version, true);
  out[12] = codecId;
  if (g.chainWord !== null) {
    out[13] = 1;
    dv.setUint32(44, g.chainWord, true);
  }
  dv.setUint32(16, g.salts[0], true);
  dv.setUint32(20, g.salts[1], true);
  dv.setUint32(24, g.firstFrame, true);
  dv.setUint32(28, k, true);
  dv.setUint32(32, g.r, true);
  dv.setUint32(36, g.pageSize, true);
  dv.setUint32(40, g.repair.length, true);
  if (version === 2) out.set(g.walHeader!, HEADER_COPY_AT);
  let at = fixedBytesOf(version);
  for (let i = 0; i < k; i++, at += 4) dv.setUint32(at, g.pgnos[i]!, true);
  for (let i = 0; i < k; i++, at += 4) dv.setUint32(at, g.commits[i]!, true);
  out.set(g.hashes, at);
  at += HASH_BYTES * k;
  out.set(g.repair, at);
  at += g.repair.length;
  xxh3_128Into(out, out, at, { offset: 0, length: at });
  return out;
}

/** The fixed header's fields when they are self-consistent (nothing is trusted before this). */
export function decodeGroupHeader(b: Uint8Array): Omit<FecGroupRef, 'offset' | 'walHeader'> | null {
  if (b.length < GROUP_FIXED_BYTES) return null;
  for (let i = 0; i < 8; i++) if (b[i] !== GROUP_MAGIC.charCodeAt(i)) return null;
  const dv = new DataView(b.buffer, b.byteOffset, GROUP_FIXED_BYTES);
  const codec = codecNameOf(b[12]!);
  const k = dv.getUint32(28, true);
  const r = dv.getUint32(32, true);
  const pageSize = dv.getUint32(36, true);
  const repairBytes = dv.getUint32(40, true);
  const version = dv.getUint32(8, true);
  if ((version !== 1 && version !== 2) || codec === null || !isValidPageSize(pageSize)) return null;
  if (k < 1 || k > 255 || r < 1 || r > 255) return null;
  const expected = codec === 'rs' ? pageSize * r : (pageSize + 4) * r;
  if (repairBytes !== expected) return null;
  const firstFrame = dv.getUint32(24, true);
  if (firstFrame < 1) return null;
  const chainWord = (b[13]! & 1) === 1 ? dv.getUint32(44, true) : null;
  return { length: groupLength(k, repairBytes, version), codec, salts: [dv.getUint32(16, true), dv.getUint32(20, true)], firstFrame, k, r, pageSize, chainWord, version };
}

export interface SidecarScan {
  groups: FecGroupRef[];
  /** Bytes after the last whole group (a torn group or garbage). */
  invalidTailBytes: number;
  /** Bytes of damaged groups passed over before the last whole group (see scanSidecar). */
  skippedBytes: number;
  fileSize: number;
}

/**
 * Every whole group in the file, in file order. A group whose header holds (so its length is
 * known) but whose hash does not verify (a damaged byte in the sidecar) is passed over, so one
 * flipped byte does not take away every group after it; the scan stops where a header does not
 * decode (garbage) or a group runs past the end (torn).
 */
export function scanSidecar(file: WalnutFile): SidecarScan {
  const size = file.sizeSync();
  const groups: FecGroupRef[] = [];
  const fixed = new Uint8Array(GROUP_FIXED_BYTES);
  let offset = 0;
  let end = 0; // after the last whole group
  let skipped = 0;
  while (offset + GROUP_FIXED_BYTES <= size) {
    if (file.readSync(fixed, 0, GROUP_FIXED_BYTES, offset) !== GROUP_FIXED_BYTES) break;
    const f = decodeGroupHeader(fixed);
    if (f === null || offset + f.length > size) break;
    const whole = new Uint8Array(f.length);
    if (file.readSync(whole, 0, f.length, offset) !== f.length) break;
    if (groupHashHolds(whole)) {
      groups.push({ offset, ...f, walHeader: headerCopyOf(whole, f.version, f.salts) });
      skipped += offset - end;
      end = offset + f.length;
    }
    offset += f.length;
  }
  return { groups, invalidTailBytes: size - end, skippedBytes: skipped, fileSize: size };
}

/** Whether a whole group's bytes end with the XXH3-128 of the rest. */
export function groupHashHolds(whole: Uint8Array): boolean {
  const body = whole.length - HASH_BYTES;
  xxh3_128Into(whole, groupDigest, 0, { offset: 0, length: body });
  for (let i = 0; i < HASH_BYTES; i++) if (groupDigest[i] !== whole[body + i]) return false;
  return true;
}

const groupDigest = new Uint8Array(HASH_BYTES);

/** Reads a group found by scanSidecar (its hash was verified then; the file is re-read). */
export function readGroup(file: WalnutFile, ref: FecGroupRef): FecGroup {
  const whole = new Uint8Array(ref.length);
  if (file.readSync(whole, 0, ref.length, ref.offset) !== ref.length) {
    throw walnutError('WALNUT_CORRUPT', 'the FEC sidecar shrank while it was read', { path: file.path });
  }
  const dv = new DataView(whole.buffer);
  const k = ref.k;
  let at = fixedBytesOf(ref.version);
  const pgnos = new Uint32Array(k);
  const commits = new Uint32Array(k);
  for (let i = 0; i < k; i++, at += 4) pgnos[i] = dv.getUint32(at, true);
  for (let i = 0; i < k; i++, at += 4) commits[i] = dv.getUint32(at, true);
  const hashes = whole.slice(at, at + HASH_BYTES * k);
  at += HASH_BYTES * k;
  const repair = whole.slice(at, ref.length - HASH_BYTES);
  return { codec: ref.codec, salts: ref.salts, firstFrame: ref.firstFrame, k, r: ref.r, pageSize: ref.pageSize, chainWord: ref.chainWord, version: ref.version, walHeader: ref.walHeader, pgnos, commits, hashes, repair };
}
