/**
 * fec/repair.ts — repairs damaged WAL frames from the -wal-fec sidecar during recovery.
 *
 * SQLite's recovery stops at the first frame whose checksum chain breaks and drops every frame
 * after it. Here, when the frame after the last valid one (B = lastValidFrame + 1) is damaged
 * and a sidecar group of the same WAL generation (salts) covers it:
 *   1. the group must have been written after the frame now before its first one (its chain
 *      word: frames of one generation may be written anew from some frame on, and a group over
 *      the old ones must not bring them back onto the new ones); each page of the group is
 *      checked against its XXH3-128 in the group; frames before B must match (they passed the
 *      chain: a mismatch means the group is not this WAL's);
 *   2. the pages that do not match are erasures at known positions: the codec decodes them
 *      from the intact pages and the repair symbols, and the decoded pages must match their
 *      hashes too;
 *   3. frames B .. end of group are rebuilt: page number and commit field from the group,
 *      salts from the WAL, the checksum chain continued from frame B - 1's (or the WAL header's)
 *      checksum; the ones that differ from the file are rewritten with one write and a sync;
 *   4. recovery scans again and goes on past the repaired group (repeat for later damage).
 * When repair is not possible the WAL is left as it is, so recovery truncates at the damage as
 * SQLite's does, and the reason is reported: no-sidecar, missing-group, unprotected-tail (damage
 * after the last frame any group covers: typically the torn last batch of a crash, also right
 * after a WAL restart, while the sidecar still holds only earlier generations' groups, nothing,
 * or a torn first group of the new one), salt-mismatch (groups of a foreign generation only),
 * page-size-mismatch, group-mismatch, too-many-damaged, decode-failed, decoded-mismatch,
 * codec-unavailable. Where nothing after frame B carries this WAL generation's salts (zeros of
 * preallocated space, frames of an older generation after a restart; looked for in the next
 * DAMAGE_LOOKAHEAD_FRAMES frames only) and no group covers B, the log simply ends there: not
 * damage, nothing reported. So it does where B is the zeroed frame header an append writes after
 * its last commit frame and no group covers B or a later frame (endsAtAppendTail): what follows
 * it of this generation is a killed writer's (or a failed batch's) unpublished frames, which that
 * append disowned.
 *
 * Before any of this, a damaged WAL header (bad magic, page size or checksum: SQLite reads the
 * whole WAL as empty) is restored from the header copies the groups carry (sidecar.ts), see
 * restoreHeader: only to a copy the header on disk is a damaged form of, and whose salts and
 * checksum chain the frames after it continue through a commit (or, for a sidecar copy, whose
 * group over frame 1 was written after it while frame 1 on disk fails that group: damage to the
 * WAL's first sector, frame 1 then rebuilt below); the candidates frame 1 alone
 * gives (headersFromFrame1Alone) are tried last under the same two conditions, for a WAL
 * restarted by a writer the sidecar never saw, or no sidecar at all. Else the header stays as it
 * is and the fallback (frame 0) says why: no-sidecar, header-unprotected (no copy, and no version
 * 1 group over an intact frame 1 to solve it from: headersFromFrame1), header-mismatch. The
 * sidecar is not pruned then.
 *
 * The caller holds the WAL exclusively (WalIndex recovery locks, or `walnut recover --repair`).
 */
import * as fs from 'node:fs';

import { sqliteWalChecksum, sqliteWalFrameChecksums } from '../checksum';
import { decodeFrameHeader, encodeFrameHeader, FRAME_HEADER_SIZE } from '../format/frame-header';
import { unwindWalChecksum } from '../format/checksum';
import { bigEndianChecksum, decodeWalHeader, frameOffset, hasSalts, sameSalts, WAL_HEADER_SIZE, WAL_MAGIC_BE, WAL_MAGIC_LE, walHeaderBeforeFrame1, walHeaderWithChecksum, type WalHeaderStatus } from '../format/wal-header';
import { isValidPageSize } from '../format/page-size';
import { WalnutFile } from '../io/file';
import { requireRegularFiles } from '../io/real-path';
import type { EventRing } from '../telemetry/events';
import type { WalFile, WalRecovery } from '../wal/wal-file';
import { loadCodec } from './codec';
import { decodeGroupHeader, GROUP_FIXED_BYTES, GROUP_MAGIC, pageMatchesHash, readGroup, scanSidecar, type FecGroup, type SidecarScan } from './sidecar';
import { sidecarPathOf } from './writer';

export type FecFallbackReason =
  | 'no-sidecar'
  | 'missing-group'
  | 'unprotected-tail'
  | 'salt-mismatch'
  | 'page-size-mismatch'
  | 'group-mismatch'
  | 'too-many-damaged'
  | 'decode-failed'
  | 'decoded-mismatch'
  | 'codec-unavailable'
  | 'header-unprotected'
  | 'header-mismatch';

export interface FecFallback {
  /** The frame where recovery stops; 0 for the WAL header (header-unprotected, header-mismatch, or no-sidecar there). */
  frame: number;
  reason: FecFallbackReason;
  message: string;
}

export interface FecRepairReport {
  /** Frames rewritten (or, with dryRun, that would be). */
  repairedFrames: number[];
  /** Sidecar groups used. */
  groups: number;
  /** Why recovery stops at a damaged frame (null: no damage left, or the log simply ends). */
  fallback: FecFallback | null;
  /**
   * The WAL header was damaged and was restored from the sidecar's copy (with dryRun: would
   * be): how it read before, the generation restored, and the committed frames that follow it.
   */
  restoredHeader: RestoredHeader | null;
}

export interface RestoredHeader {
  /** What was wrong with the header on disk (format/wal-header.ts). */
  was: WalHeaderStatus;
  salts: [number, number];
  checkpointSeq: number;
  /** Frames through the last commit that continue the restored header's checksum chain. */
  walFrames: number;
  /** Where the header came from: a sidecar group's copy (or a version 1 group over frame 1), or frame 1 alone. */
  from: 'sidecar' | 'frame-1';
}

export interface FecRecoveryMetrics {
  repairedFrames: number;
  repairedGroups: number;
  /** WAL headers restored from the sidecar's copy. */
  restoredHeaders: number;
  fallbacks: Partial<Record<FecFallbackReason, number>>;
}

export function newRecoveryMetrics(): FecRecoveryMetrics {
  return { repairedFrames: 0, repairedGroups: 0, restoredHeaders: 0, fallbacks: {} };
}

/**
 * Whether frame i of `frames` (whole frames back to back) carries the WAL's salts and a checksum
 * that continues the one stored in frame i - 1: true for a frame written after its predecessor
 * and not damaged since (a damaged frame fails this with probability 1 - 2^-64).
 */
function continuesChain(frames: Uint8Array, i: number, frameBytes: number, salts: [number, number], bigEndianWords: boolean): boolean {
  const at = i * frameBytes;
  const h = decodeFrameHeader(frames, at);
  if (!hasSalts(h, salts)) return false;
  const prev = decodeFrameHeader(frames, at - frameBytes).checksum;
  let c = sqliteWalChecksum(frames, prev[0], prev[1], { offset: at, length: 8, bigEndianWords });
  c = sqliteWalChecksum(frames, c[0], c[1], { offset: at + FRAME_HEADER_SIZE, length: frameBytes - FRAME_HEADER_SIZE, bigEndianWords });
  return c[0] === h.checksum[0] && c[1] === h.checksum[1];
}

function isZero(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/**
 * Whether the log ends at frame b with the tail every append writes (native/frames.cc): the
 * frame header right after its last frame zeroed, and nothing else, so that frames of this
 * generation left there unpublished (a writer killed between its write and its publish, a
 * failed batch) never continue the chain. So: frame b - 1 is a commit frame (an append's
 * last), b's header is all zeros and its page is not (what was there before, a killed writer's
 * page; a wholly zeroed frame is a hole or damage). The frames of this generation after it were
 * never acknowledged: not damage, not an unprotected tail, just where the log ends. Asked only
 * where no sidecar group covers b or a later frame (one that does: committed frames follow, and
 * b's zeroed header is damage).
 */
function endsAtAppendTail(wal: WalFile, r: WalRecovery, b: number): boolean {
  if (b < 2 || r.mxFrame !== b - 1) return false;
  const frame = new Uint8Array(FRAME_HEADER_SIZE + r.pageSize);
  if (wal.file.readSync(frame, 0, frame.length, frameOffset(b, r.pageSize)) !== frame.length) return false;
  return isZero(frame.subarray(0, FRAME_HEADER_SIZE)) && !isZero(frame.subarray(FRAME_HEADER_SIZE));
}

/**
 * Whether frame i's header names another page AND another commit field than its group, under
 * this generation's salts: a frame written anew, not one damaged (a flip changes one field, and
 * a torn or zeroed header loses the salts).
 */
function rewrittenHeader(frames: Uint8Array, i: number, frameBytes: number, salts: [number, number], pgno: number, commit: number): boolean {
  const h = decodeFrameHeader(frames, i * frameBytes);
  return hasSalts(h, salts) && h.pgno !== pgno && h.commitSize !== commit;
}

/** How many restarts (salt-1 steps) a sidecar's groups may lag behind its WAL; a foreign sidecar's salt-1 is random. */
const MAX_RESTARTS_BEHIND = 1 << 16;

/**
 * Whether a sidecar without a whole group of the WAL's generation `salts` is one whose writer had
 * not caught up with a restart (the writer is asynchronous, and truncates the file at the first
 * group of a new generation): every whole group belongs to an earlier generation of this WAL
 * (salt-1 a few steps behind: it grows by one at each restart), and what follows them is nothing
 * or a torn append of a group of this or an earlier generation. Garbage or a foreign sidecar is not.
 */
function lagsBehindRestart(sidecar: WalnutFile, scan: SidecarScan, salts: [number, number]): boolean {
  const earlier = (g: { salts: [number, number] }) => {
    const steps = (salts[0] - g.salts[0]) >>> 0;
    return steps >= 1 && steps <= MAX_RESTARTS_BEHIND;
  };
  if (!scan.groups.every(earlier)) return false;
  if (scan.invalidTailBytes === 0) return true;
  const head = new Uint8Array(GROUP_FIXED_BYTES);
  const n = sidecar.readSync(head, 0, GROUP_FIXED_BYTES, scan.fileSize - scan.invalidTailBytes);
  if (n < GROUP_FIXED_BYTES) return head.subarray(0, Math.min(n, GROUP_MAGIC.length)).every((c, i) => c === GROUP_MAGIC.charCodeAt(i));
  const torn = decodeGroupHeader(head);
  return torn !== null && (sameSalts(torn.salts, salts) || earlier(torn));
}

/**
 * Whether the group was written after the frame now before its first one (its chain word, see
 * sidecar.ts; a group without one is taken as it is). Only asked where that frame passed the
 * checksum chain, so its stored checksum is the WAL's.
 */
function followsChain(wal: WalFile, g: { firstFrame: number; chainWord: number | null }, ps: number): boolean {
  if (g.chainWord === null) return true;
  const word = new Uint8Array(4);
  wal.file.readSync(word, 0, 4, g.firstFrame === 1 ? 28 : frameOffset(g.firstFrame - 1, ps) + 20);
  return new DataView(word.buffer).getUint32(0) === g.chainWord;
}

export interface RepairOptions {
  /** Report what would be repaired; write nothing. */
  dryRun?: boolean;
  /** The WAL's state as the caller just recovered it (saves a scan). */
  recovery?: WalRecovery;
  events?: EventRing | null;
  metrics?: FecRecoveryMetrics;
}

/**
 * Repairs what the sidecar can (see the file comment). When recovery still stops at damage, the
 * groups covering frames past where it stops are removed from the sidecar (and groups of other
 * generations with them): those frames will be overwritten by the next commits under the same
 * salts, and a group describing replaced frames must never be used to "repair" them.
 */
export async function repairWal(wal: WalFile, options: RepairOptions = {}): Promise<FecRepairReport> {
  requireRegularFiles(null, [sidecarPathOf(wal.path)]); // a directory there: WALNUT_CANTOPEN NotRegularFile, as verify says
  const [report, last] = await repairDamage(wal, options);
  // (not after a header left damaged: its groups may be all that can still restore it, by hand
  // or a later walnut; the next writer restarts the WAL and the sidecar with it anyway)
  if (!options.dryRun && report.fallback !== null && report.fallback.reason !== 'no-sidecar' && report.fallback.frame > 0) {
    try {
      pruneStaleGroups(wal, last);
    } catch (e) {
      // the sidecar stays as it was: the stale-group checks in repairDamage still apply
      const err = e as { code?: string; message?: string };
      options.events?.emit('fec', () => ({ stage: 'prune', path: wal.path, code: err.code, message: err.message }));
    }
  }
  return report;
}

/** Rewrites the sidecar with only the groups of this generation that end by the last commit frame. */
function pruneStaleGroups(wal: WalFile, r: WalRecovery): void {
  const sidecarPath = sidecarPathOf(wal.path);
  const file = WalnutFile.openSync(sidecarPath);
  try {
    file.lockSync(0, 1, 'exclusive', 5000); // appenders in other processes wait (writer.ts)
    const scan = scanSidecar(file);
    const keep = scan.groups.filter((g) => r.headerStatus === 'ok' && sameSalts(g.salts, r.salts) && g.firstFrame + g.k - 1 <= r.mxFrame);
    if (keep.length === scan.groups.length && scan.invalidTailBytes === 0 && scan.skippedBytes === 0) return;
    const parts = keep.map((g) => {
      const bytes = new Uint8Array(g.length);
      file.readSync(bytes, 0, g.length, g.offset);
      return bytes;
    });
    const tmp = `${sidecarPath}.tmp`;
    const out = WalnutFile.openSync(tmp, { create: true, truncate: true, mode: fs.statSync(sidecarPath).mode & 0o777 });
    try {
      try {
        let at = 0;
        for (const p of parts) at += out.writeSync(p, 0, p.length, at);
        out.fdatasyncSync();
      } finally {
        out.closeSync();
      }
      fs.renameSync(tmp, sidecarPath);
    } catch (e) {
      // (a full disk, say: the sidecar stays as it was; a half-written copy left here would hold
      // the disk's last free blocks, and nothing else removes it)
      fs.rmSync(tmp, { force: true });
      throw e;
    }
  } finally {
    file.closeSync();
  }
}

/**
 * How many frames past the one where recovery stops are looked at for a later frame of this
 * generation (which makes the stop damage, not the log's end). Bounded: a huge tail of zeros or
 * of an older generation's frames (a sparse 10 GiB -wal) was read header by header to its end
 * (49 s). A stretch of damage longer than this reads as the log's end, as SQLite's recovery
 * takes every stop (a covering sidecar group still marks it as damage).
 */
export const DAMAGE_LOOKAHEAD_FRAMES = 16384;

/** Header statuses that are damage (format/wal-header.ts): 'unknown-version' has a checksum that holds, so it was written so. */
export function headerDamaged(status: WalRecovery['headerStatus']): boolean {
  return status === 'bad-magic' || status === 'bad-page-size' || status === 'bad-checksum';
}

/** The WAL header's 4-byte words that differ between `a` and `b` (32 bytes each). */
function wordsDiffering(a: Uint8Array, b: Uint8Array): number {
  let n = 0;
  for (let w = 0; w < WAL_HEADER_SIZE; w += 4) {
    if (a[w] !== b[w] || a[w + 1] !== b[w + 1] || a[w + 2] !== b[w + 2] || a[w + 3] !== b[w + 3]) n++;
  }
  return n;
}

/**
 * Most words a damaged header may differ in from the copy it is restored to. Damage (a flipped
 * bit, a smashed byte range within two words) changes one or two; another generation's header
 * differs in at least three (salt-2 is random, and the checksum's two words follow the salts):
 * a header SQLite or walnut wrote after the sidecar's last group (a restart whose frames have
 * not come yet, so the old generation's frames still follow it) is never "restored" to the old
 * generation, which would make those stale frames valid again.
 */
const MAX_DAMAGED_HEADER_WORDS = 2;

/**
 * Restores a damaged WAL header from the sidecar's copies (sidecar.ts), newest first: a copy is
 * used only when the header on disk is a damaged form of it (MAX_DAMAGED_HEADER_WORDS) and the
 * frames that follow continue its salts and checksum chain through at least one commit. Returns
 * what was restored, or why not (the caller reports it as the fallback).
 */
function restoreHeader(wal: WalFile, r: WalRecovery, sidecarPath: string, dryRun: boolean): RestoredHeader | { reason: FecFallbackReason; message: string } {
  const damaged = `the WAL header is damaged (${r.headerStatus}): SQLite reads the WAL as empty`;
  const onDisk = new Uint8Array(WAL_HEADER_SIZE);
  wal.file.readSync(onDisk, 0, WAL_HEADER_SIZE, 0);
  const copies: Uint8Array[] = [];
  const add = (h: Uint8Array) => {
    if (!copies.some((c) => wordsDiffering(c, h) === 0)) copies.push(h);
  };
  const hasSidecar = fs.existsSync(sidecarPath);
  let groups = 0;
  const pageSizes: number[] = [];
  /** The groups over frame 1, read: what vouches for a copy when frame 1 itself is damaged (overFrame1Damaged). */
  const overFrame1: FecGroup[] = [];
  if (hasSidecar) {
    const sidecar = WalnutFile.openSync(sidecarPath, { readOnly: true });
    try {
      const scan = scanSidecar(sidecar);
      groups = scan.groups.length;
      for (const g of scan.groups) if (g.firstFrame === 1 && g.chainWord !== null) overFrame1.push(readGroup(sidecar, g));
      for (const g of [...scan.groups].reverse()) if (g.walHeader !== null) add(g.walHeader);
      // version 1 groups carry no copy; the one over frame 1 still pins the header down (headersFromFrame1)
      if (copies.length === 0) for (const g of scan.groups) if (g.version === 1 && g.firstFrame === 1) for (const h of headersFromFrame1(wal, readGroup(sidecar, g), onDisk)) add(h);
      for (const g of scan.groups) if (!pageSizes.includes(g.pageSize)) pageSizes.push(g.pageSize);
    } finally {
      sidecar.closeSync();
    }
  }
  // Last, the headers frame 1 alone leaves possible (headersFromFrame1Alone): tried after the
  // sidecar's copies, under the same two checks.
  const fromSidecar = copies.length;
  for (const h of headersFromFrame1Alone(wal, onDisk, pageSizes, r.fileSize)) add(h);
  if (copies.length === 0) {
    const why = !hasSidecar ? `there is no FEC sidecar (${sidecarPath})`
      : groups > 0 ? `its ${groups} groups were written before groups carried a copy of it (sidecar version 1), and none over frame 1 that is intact gives it`
        : 'the sidecar holds no whole group';
    return { reason: hasSidecar ? 'header-unprotected' : 'no-sidecar', message: `${damaged}; ${why}, and frame 1 gives no header of a valid page size` };
  }
  const refused: string[] = [];
  for (const [i, copy] of copies.entries()) {
    const h = decodeWalHeader(copy).header!;
    const name = `${i < fromSidecar ? 'the sidecar\'s copy of' : 'frame 1\'s'} generation ${h.salt1}/${h.salt2} (page size ${h.pageSize})`;
    const words = wordsDiffering(onDisk, copy);
    if (words > MAX_DAMAGED_HEADER_WORDS) {
      refused.push(`${name}: the header on disk differs from it in ${words} of 8 words (another generation's header, not a damaged copy)`);
      continue;
    }
    const under = wal.scanUnderHeaderSync(copy);
    if (under.mxFrame === 0 && !(i < fromSidecar && overFrame1Damaged(wal, copy, overFrame1))) {
      refused.push(`${name}: no committed frame continues its salts and checksum chain`);
      continue;
    }
    if (!dryRun) {
      wal.file.writeSync(copy, 0, WAL_HEADER_SIZE, 0);
      wal.file.fdatasyncSync();
    }
    return { was: r.headerStatus as WalHeaderStatus, salts: [h.salt1, h.salt2], checkpointSeq: h.checkpointSeq, walFrames: under.mxFrame, from: i < fromSidecar ? 'sidecar' : 'frame-1' };
  }
  return { reason: 'header-mismatch', message: `${damaged}; no header fits it: ${refused.join('; ')}` };
}

/**
 * Whether a sidecar group of `copy`'s generation over frame 1, written after that header (its
 * chain word is the copy's checksum's second word), vouches for `copy` although no frame
 * continues its chain: frame 1 on disk is damaged (its page fails the group's hash, or its page
 * number, commit field or salts are not the group's), so the frame repair that follows the
 * header's restoration rebuilds it from the group. A torn first sector of the -wal damages the
 * header and frame 1 together: the header was refused (header-mismatch) and the whole WAL read
 * as empty, though the sidecar held the copy and the parity for frame 1.
 */
function overFrame1Damaged(wal: WalFile, copy: Uint8Array, groups: readonly FecGroup[]): boolean {
  const h = decodeWalHeader(copy).header!;
  const checksumWord2 = new DataView(copy.buffer, copy.byteOffset, WAL_HEADER_SIZE).getUint32(28);
  const g = groups.find((x) => sameSalts(x.salts, [h.salt1, h.salt2]) && x.pageSize === h.pageSize && x.chainWord === checksumWord2);
  if (g === undefined) return false;
  const frame = new Uint8Array(FRAME_HEADER_SIZE + g.pageSize);
  if (wal.file.readSync(frame, 0, frame.length, WAL_HEADER_SIZE) !== frame.length) return false; // (not there at all: nothing to repair it over)
  const f = decodeFrameHeader(frame, 0);
  return f.pgno !== g.pgnos[0] || f.commitSize !== g.commits[0] || !hasSalts(f, g.salts) || !pageMatchesHash(frame, FRAME_HEADER_SIZE, g.pageSize, g.hashes, 0);
}

/**
 * The WAL headers frame 1 on disk gives without any sidecar group: for each page size (the
 * header on disk's if valid, the sidecar groups', then every other) and both byte orders, the
 * header that frame 1's salts and stored checksum were written after (format/wal-header.ts
 * walHeaderBeforeFrame1: its checkpoint sequence is solved from the checksum, and a 32-bit
 * condition must hold for one to exist at all). Frame 1 is the evidence here, so a candidate
 * is only taken under restoreHeader's two checks: the header on disk is a damaged form of it
 * (<= 2 words differ: another generation's header differs in salts and checksum, >= 4 words)
 * and the frames continue its chain through a commit.
 */
function headersFromFrame1Alone(wal: WalFile, onDisk: Uint8Array, groupPageSizes: readonly number[], fileSize: number): Uint8Array[] {
  const dv = new DataView(onDisk.buffer, onDisk.byteOffset, WAL_HEADER_SIZE);
  const sizes = [dv.getUint32(8), ...groupPageSizes];
  for (let ps = 512; ps <= 65536; ps *= 2) sizes.push(ps);
  const diskBigEndian = bigEndianChecksum(dv.getUint32(0));
  const out: Uint8Array[] = [];
  const tried = new Set<number>();
  for (const ps of sizes) {
    if (tried.has(ps) || !isValidPageSize(ps)) continue;
    tried.add(ps);
    if (WAL_HEADER_SIZE + FRAME_HEADER_SIZE + ps > fileSize) continue;
    const frame = new Uint8Array(FRAME_HEADER_SIZE + ps);
    if (wal.file.readSync(frame, 0, frame.length, WAL_HEADER_SIZE) !== frame.length) continue;
    const h = decodeFrameHeader(frame, 0);
    for (const bigEndian of [diskBigEndian, !diskBigEndian]) {
      const header = walHeaderBeforeFrame1(frame, { pageSize: ps, salts: [h.salt1, h.salt2], bigEndian });
      if (header !== null) out.push(header);
    }
  }
  return out;
}

/**
 * The WAL headers a version 1 group over frame 1 (no header copy) leaves possible, from frame 1
 * as it is on disk: the frame must be the group's (its page number, commit field, salts and page
 * hash); its stored checksum, unwound over the frame, is the header's checksum, whose second word
 * the group recorded (its chain word); the salts and page size are the group's, the version is
 * SQLite's, the byte order is tried both ways (the header on disk's first), and the checkpoint
 * sequence is the one value the checksum leaves (format/wal-header.ts walHeaderWithChecksum).
 * What comes out is checked as a copy is (restoreHeader): the header on disk must be a damaged
 * form of it and the frames must continue its chain.
 */
function headersFromFrame1(wal: WalFile, g: FecGroup, onDisk: Uint8Array): Uint8Array[] {
  if (g.chainWord === null || g.firstFrame !== 1) return [];
  const ps = g.pageSize;
  const frame = new Uint8Array(FRAME_HEADER_SIZE + ps);
  if (wal.file.readSync(frame, 0, frame.length, WAL_HEADER_SIZE) !== frame.length) return [];
  const h = decodeFrameHeader(frame, 0);
  if (h.pgno !== g.pgnos[0] || h.commitSize !== g.commits[0] || !hasSalts(h, g.salts) || !pageMatchesHash(frame, FRAME_HEADER_SIZE, ps, g.hashes, 0)) return [];
  // the checksummed bytes of a frame: its first 8 header bytes, then the page
  const input = new Uint8Array(8 + ps);
  input.set(frame.subarray(0, 8), 0);
  input.set(frame.subarray(FRAME_HEADER_SIZE), 8);
  const diskMagic = new DataView(onDisk.buffer, onDisk.byteOffset, WAL_HEADER_SIZE).getUint32(0);
  const magics = bigEndianChecksum(diskMagic) ? [WAL_MAGIC_BE, WAL_MAGIC_LE] : [WAL_MAGIC_LE, WAL_MAGIC_BE];
  const out: Uint8Array[] = [];
  for (const magic of magics) {
    const checksum = unwindWalChecksum(input, h.checksum, bigEndianChecksum(magic));
    if (checksum[1] !== g.chainWord) continue;
    const header = walHeaderWithChecksum({ magic, pageSize: ps, salt1: g.salts[0], salt2: g.salts[1] }, checksum);
    if (header !== null) out.push(header);
  }
  return out;
}

/** The report, and the WAL's state as last recovered (after the last rewrite, if any). */
async function repairDamage(wal: WalFile, options: RepairOptions): Promise<[FecRepairReport, WalRecovery]> {
  const report: FecRepairReport = { repairedFrames: [], groups: 0, fallback: null, restoredHeader: null };
  let r = options.recovery ?? wal.recoverSync();
  const sidecarPath = sidecarPathOf(wal.path);
  let sidecar: WalnutFile | null = null;
  let scan: SidecarScan | null = null;
  const fail = (frame: number, reason: FecFallbackReason, message: string) => {
    report.fallback = { frame, reason, message };
    if (options.metrics) options.metrics.fallbacks[reason] = (options.metrics.fallbacks[reason] ?? 0) + 1;
    options.events?.emit('fec', () => ({ stage: 'fallback', path: wal.path, frame, reason, message }));
  };
  // a damaged header first: without it no frame counts (a WAL of only a header has nothing to restore)
  if (headerDamaged(r.headerStatus) && r.fileSize > WAL_HEADER_SIZE + FRAME_HEADER_SIZE) {
    const restored = restoreHeader(wal, r, sidecarPath, options.dryRun === true);
    if ('reason' in restored) {
      fail(0, restored.reason, restored.message);
      return [report, r];
    }
    report.restoredHeader = restored;
    if (options.dryRun) return [report, r];
    if (options.metrics) options.metrics.restoredHeaders++;
    options.events?.emit('fec', () => ({ stage: 'restore-header', path: wal.path, was: restored.was, salts: restored.salts, walFrames: restored.walFrames }));
    r = wal.recoverSync();
  }
  try {
    for (let round = 0; round < 100_000; round++, r = wal.recoverSync()) {
      if (r.headerStatus !== 'ok') return [report, r]; // no header, no generation: nothing to repair against
      const ps = r.pageSize;
      const frameBytes = FRAME_HEADER_SIZE + ps;
      const b = r.lastValidFrame + 1;
      if (frameOffset(b, ps) + FRAME_HEADER_SIZE > r.fileSize) return [report, r]; // the log ends here
      // Is frame b damage, or just where this generation's log ends (zeros, or frames of an
      // older generation after a restart)? Damage: b carries this generation's salts, or a
      // later frame does (the log went on past b). A covering sidecar group is evidence too.
      const head = new Uint8Array(FRAME_HEADER_SIZE);
      const ofThisGeneration = (f: number) => {
        wal.file.readSync(head, 0, FRAME_HEADER_SIZE, frameOffset(f, ps));
        return !isZero(head) && hasSalts(decodeFrameHeader(head), r.salts);
      };
      let damaged = ofThisGeneration(b);
      const lookEnd = Math.min(r.fileSize, frameOffset(b + 1 + DAMAGE_LOOKAHEAD_FRAMES, ps));
      for (let f = b + 1; !damaged && frameOffset(f, ps) + FRAME_HEADER_SIZE <= lookEnd; f++) damaged = ofThisGeneration(f);

      if (scan === null) {
        if (!fs.existsSync(sidecarPath)) {
          if (damaged && !endsAtAppendTail(wal, r, b)) fail(b, 'no-sidecar', `frame ${b} is damaged and there is no FEC sidecar (${sidecarPath})`);
          return [report, r];
        }
        sidecar = WalnutFile.openSync(sidecarPath, { readOnly: true });
        scan = scanSidecar(sidecar);
      }
      const same = scan.groups.filter((g) => sameSalts(g.salts, r.salts));
      const ref = same.filter((g) => g.firstFrame <= b && b < g.firstFrame + g.k).pop();
      if (ref === undefined) {
        // A later frame of this generation after an append's tail is a killed writer's or a failed
        // batch's, unpublished (it was reported as an unprotected tail, after protected frames);
        // not where a group covers a later frame: committed frames follow, b is damage
        const groupAfter = same.some((g) => g.firstFrame > b);
        if (!damaged || (!groupAfter && endsAtAppendTail(wal, r, b))) return [report, r];
        const covered = same.reduce((m, g) => Math.max(m, g.firstFrame + g.k - 1), 0);
        if (same.length > 0 && b > covered) fail(b, 'unprotected-tail', `frame ${b} is torn or damaged after the last protected frame (${covered}): a write cut short by a crash, or a batch whose sidecar group was not written yet`);
        else if (same.length > 0) fail(b, 'missing-group', `frame ${b} is damaged and no sidecar group covers it`);
        else if (lagsBehindRestart(sidecar!, scan, r.salts)) fail(b, 'unprotected-tail', `frame ${b} is torn or damaged and the sidecar has no group of this WAL generation yet: a crash soon after a restart, before the sidecar writer caught up`);
        else if (scan.groups.length > 0) fail(b, 'salt-mismatch', `frame ${b} is damaged; the sidecar's groups belong to another WAL generation`);
        else fail(b, 'no-sidecar', `frame ${b} is damaged and the sidecar holds no whole group${scan.invalidTailBytes > 0 ? ' (torn or garbage)' : ''}`);
        return [report, r];
      }
      if (ref.pageSize !== ps) {
        fail(b, 'page-size-mismatch', `the sidecar group covering frame ${b} is for ${ref.pageSize}-byte pages, the WAL has ${ps}`);
        return [report, r];
      }
      const g = readGroup(sidecar!, ref);
      const k = g.k;
      const first = g.firstFrame;
      if (!followsChain(wal, g, ps)) {
        fail(b, 'group-mismatch', `the sidecar group over frames ${first}..${first + k - 1} was written after another frame ${first - 1} than the WAL's: the WAL was written anew from there, the group is stale`);
        return [report, r];
      }

      // the group's frames as they are in the WAL (short reads leave zeros: missing frames)
      const frames = new Uint8Array(k * frameBytes);
      wal.file.readSync(frames, 0, frames.length, frameOffset(first, ps));
      const pages = new Uint8Array(k * ps);
      for (let i = 0; i < k; i++) pages.set(frames.subarray(i * frameBytes + FRAME_HEADER_SIZE, (i + 1) * frameBytes), i * ps);
      const present = new Uint8Array(k + g.r).fill(1);
      const hashOk = (i: number) => pageMatchesHash(pages, i * ps, ps, g.hashes, i);
      let missing = 0;
      for (let i = 0; i < k; i++) {
        if (hashOk(i)) continue;
        if (first + i < b) {
          fail(b, 'group-mismatch', `frame ${first + i} passed the checksum chain but does not match the sidecar group's hash`);
          return [report, r];
        }
        if ((i > 0 && continuesChain(frames, i, frameBytes, r.salts, wal.bigEndianChecksums)) || rewrittenHeader(frames, i, frameBytes, r.salts, g.pgnos[i]!, g.commits[i]!)) {
          // an intact frame (its checksum continues its predecessor's) with other contents: the
          // group describes frames that were replaced (a writer without fec appended after a
          // recovery that dropped them), so rebuilding from it would bring back old data
          fail(b, 'group-mismatch', `frame ${first + i} is intact but differs from the sidecar group: the group is stale`);
          return [report, r];
        }
        present[i] = 0;
        missing++;
      }
      if (missing > 0) {
        let codec;
        try {
          codec = await loadCodec(g.codec);
        } catch (e) {
          fail(b, 'codec-unavailable', (e as Error).message);
          return [report, r];
        }
        const why = codec.unsupported(ps);
        if (why !== null) {
          fail(b, 'codec-unavailable', why);
          return [report, r];
        }
        if (g.codec === 'rs' && missing > g.r) {
          fail(b, 'too-many-damaged', `${missing} pages of frames ${first}..${first + k - 1} are damaged; the group repairs at most ${g.r}`);
          return [report, r];
        }
        let decoded: boolean;
        try {
          decoded = codec.decode(pages, present, g.repair, k, ps, g.r);
        } catch {
          decoded = false; // a codec that fails on what a hash-verified group holds: not repairable
        }
        if (!decoded) {
          fail(b, missing > g.r ? 'too-many-damaged' : 'decode-failed', `${missing} damaged pages in frames ${first}..${first + k - 1} could not be decoded from ${g.r} repair symbols`);
          return [report, r];
        }
        for (let i = 0; i < k; i++) {
          if (!present[i] && !hashOk(i)) {
            fail(b, 'decoded-mismatch', `the decoded page of frame ${first + i} does not match its hash`);
            return [report, r];
          }
        }
      }

      // frames b .. end of group, rebuilt with the chain continued from frame b - 1
      const from = b - first;
      // (salts and checksums are filled in by sqliteWalFrameChecksums)
      const fixed = Buffer.alloc((k - from) * frameBytes);
      for (let i = from; i < k; i++) {
        const at = (i - from) * frameBytes;
        encodeFrameHeader({ pgno: g.pgnos[i]!, commitSize: g.commits[i]!, salt1: 0, salt2: 0, checksum: [0, 0] }, fixed, at);
        fixed.set(pages.subarray(i * ps, (i + 1) * ps), at + FRAME_HEADER_SIZE);
      }
      const prev = Buffer.alloc(8);
      wal.file.readSync(prev, 0, 8, b === 1 ? 24 : frameOffset(b - 1, ps) + 16);
      sqliteWalFrameChecksums(fixed, ps, [prev.readUInt32BE(0), prev.readUInt32BE(4)], r.salts, { bigEndianWords: wal.bigEndianChecksums });
      const onDisk = Buffer.from(frames.buffer, frames.byteOffset, frames.length);
      const changed: number[] = [];
      for (let i = from; i < k; i++) {
        const rebuilt = fixed.subarray((i - from) * frameBytes, (i - from + 1) * frameBytes);
        if (!rebuilt.equals(onDisk.subarray(i * frameBytes, (i + 1) * frameBytes))) changed.push(first + i);
      }
      if (changed.length === 0) {
        // the frame is fine by the group and yet the chain broke at it: nothing more to do here
        fail(b, 'group-mismatch', `frame ${b} matches its sidecar group but the WAL chain still breaks there`);
        return [report, r];
      }
      report.repairedFrames.push(...changed);
      report.groups++;
      if (options.dryRun) return [report, r];
      wal.file.writeSync(fixed, 0, fixed.length, frameOffset(b, ps));
      wal.file.fdatasyncSync();
      if (options.metrics) {
        options.metrics.repairedFrames += changed.length;
        options.metrics.repairedGroups++;
      }
      options.events?.emit('fec', () => ({ stage: 'repair', path: wal.path, firstFrame: first, lastFrame: first + k - 1, frames: changed }));
    }
    return [report, r];
  } finally {
    sidecar?.closeSync();
  }
}

export interface FecAuditGroup {
  firstFrame: number;
  lastFrame: number;
  /** Frames whose page no longer matches its hash, or whose header no longer names its page. */
  damagedFrames: number[];
  /** At most R damaged: recovery can rebuild them (certainly with rs, very likely with raptorq). */
  repairable: boolean;
}

/**
 * Checks every frame protected by a sidecar group of the WAL's current generation against its
 * group (page hash, page number, commit field, salts), so damage is found in every group at
 * once, not only where recovery would stop first. Frames up to the end of the valid checksum
 * chain are sound by the chain; one of them differing from its group marks the group stale
 * (skipped). Null when there is no sidecar. Reads only; the WAL may be open read-only.
 */
export function auditSidecar(wal: WalFile, recovery?: WalRecovery): FecAuditGroup[] | null {
  const sidecarPath = sidecarPathOf(wal.path);
  if (!fs.existsSync(sidecarPath)) return null;
  const r = recovery ?? wal.recoverSync();
  if (r.headerStatus !== 'ok') return [];
  const sidecar = WalnutFile.openSync(sidecarPath, { readOnly: true });
  try {
    const out: FecAuditGroup[] = [];
    for (const ref of scanSidecar(sidecar).groups) {
      if (!sameSalts(ref.salts, r.salts) || ref.pageSize !== r.pageSize) continue;
      // a group written after other frames than the ones now before it (the WAL was written anew
      // from there) says nothing of the frames it covers; where that frame is past the chain's
      // end, its checksum is not known to be the WAL's: the group is checked frame by frame
      if (ref.firstFrame - 1 <= r.lastValidFrame && !followsChain(wal, ref, ref.pageSize)) continue;
      const g = readGroup(sidecar, ref);
      const ps = g.pageSize;
      const frameBytes = FRAME_HEADER_SIZE + ps;
      const frames = new Uint8Array(g.k * frameBytes);
      wal.file.readSync(frames, 0, frames.length, frameOffset(g.firstFrame, ps));
      const damaged: number[] = [];
      let stale = false;
      for (let i = 0; i < g.k && !stale; i++) {
        const at = i * frameBytes;
        const h = decodeFrameHeader(frames, at);
        const ok = h.pgno === g.pgnos[i] && h.commitSize === g.commits[i] && hasSalts(h, r.salts) && pageMatchesHash(frames, at + FRAME_HEADER_SIZE, ps, g.hashes, i);
        // a frame the checksum chain vouches for (or that continues its predecessor's checksum)
        // yet differs from its group: the group is stale (the frames were rewritten after a
        // recovery that dropped them), not the frame damaged
        if (!ok && (g.firstFrame + i <= r.lastValidFrame || (i > 0 && continuesChain(frames, i, frameBytes, r.salts, wal.bigEndianChecksums)))) stale = true;
        else if (!ok) damaged.push(g.firstFrame + i);
      }
      if (!stale && damaged.length > 0) out.push({ firstFrame: g.firstFrame, lastFrame: g.firstFrame + g.k - 1, damagedFrames: damaged, repairable: damaged.length <= g.r });
    }
    return out;
  } finally {
    sidecar.closeSync();
  }
}
