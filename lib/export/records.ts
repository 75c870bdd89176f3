/**
 * export/records.ts — walnut's record payloads inside ARKHEXP1 records (DESIGN.md section 5).
 * First byte = kind; integers big-endian.
 *
 *   0x07 BASE_META    u64 commit sequence of the state the base image holds, u64 unix ms at
 *                     which the exporter saw that state; the stream's first record
 *   0x03 BASE_PAGES   u32 first pgno, u32 count, count pages (the base image)
 *   0x04 BASE_END     u32 dbSize, 16-byte xxh3-128 of pages 1..dbSize in order
 *   0x01 WAL_HEADER   32-byte WAL header, bit-exact; starts a generation (new salts). Optionally
 *                     followed by u32 F, u32 c1, u32 c2: frames 1..F of this generation are
 *                     already in the base image, the stream carries frames F+1.. and (c1, c2)
 *                     is the checksum chain's value after frame F (frame F's checksum field).
 *                     Only the first WAL_HEADER after the base image may carry F > 0.
 *   0x02 FRAMES       consecutive WAL frames of the current generation, bit-exact
 *                     (24-byte header + page each); the checksum chain continues across
 *                     records; a transaction ends at its commit frame
 *   0x05 COMMIT_META  u64 commit sequence, u64 unix ms, 16-byte xxh3-128 of the transaction's frames
 *   0x06 PAGE_DELTA   one WAL frame whose page is sent as changed byte ranges against the page's
 *                     previous version in the stream (the last frame or base page of that pgno
 *                     before it): the frame's 24-byte header bit-exact, the 16-byte xxh3-128 of
 *                     the full new page, u32 range count, then per range u32 offset, u32
 *                     length, length bytes (ranges ascending, not overlapping, inside the page).
 *                     It stands for that frame wherever a FRAMES frame could (page-delta.ts);
 *                     written by replication (lib/replicate), read by restore and replicas.
 *
 * What a stream holds (the guarantee restore.ts relies on): the base image is the database
 * state after commit N (BASE_META's sequence); then come the commits after it, in order,
 * numbered N+1, N+2, ... with no gap, across WAL generations. So every commit boundary in a
 * stream is a state the database really had. The time of a commit (and of the base) is when
 * the exporter saw it committed: never earlier than the commit, never decreasing along a stream.
 *
 * The exporter numbers commits by the WAL generation that is current when the export begins:
 * commit k is that generation's k-th commit (0 is the state before its first), so the same
 * commit has the same number in every export begun during that generation, wherever its
 * base image lands.
 *
 * The first layout (walnut 0.1.0 before BASE_META; no anchor in WAL_HEADER) began with
 * BASE_PAGES: its base image was the newest state and the first generation was replayed over
 * it from frame 1, so only its end is a real state. restore.ts reads such a stream whole only.
 *
 * Pure codecs: no I/O. Decoding checks every length and answers WALNUT_INVALID_FRAMING
 * (reason UnknownRecordKind or Truncated) for payloads that do not fit their kind.
 */
import { walnutError } from '../errors';
import { be32 } from '../format/frame-header';

/** Memory a payload may be written into (reused: the encoder writes every byte). */
export interface PayloadMemory {
  take(n: number): Uint8Array;
}

/** A payload's memory: from the caller's blocks (reused, framing.ts's ByteBlocks, replicate/buffers.ts's RecordArena) or of its own. */
const bytes = (n: number, blocks: PayloadMemory | undefined): Uint8Array => blocks?.take(n) ?? new Uint8Array(n);

/** The largest commit sequence a stream can hold (BASE_META's and COMMIT_META's are u64s). */
export const MAX_COMMIT_SEQUENCE = 2n ** 64n - 1n;

export const KIND = { WAL_HEADER: 0x01, FRAMES: 0x02, BASE_PAGES: 0x03, BASE_END: 0x04, COMMIT_META: 0x05, PAGE_DELTA: 0x06, BASE_META: 0x07 } as const;

/** Where a generation's frames in the stream begin: after frame `frame`, the chain then at `checksum`. */
export interface ChainAnchor {
  frame: number;
  checksum: [number, number];
}

export type ExportRecord =
  | { kind: 'baseMeta'; seq: bigint; timeMs: bigint }
  | { kind: 'walHeader'; header: Uint8Array; anchor: ChainAnchor | null }
  | { kind: 'frames'; frames: Uint8Array }
  | { kind: 'basePages'; firstPgno: number; count: number; pages: Uint8Array }
  | { kind: 'baseEnd'; dbSize: number; hash: Uint8Array }
  | { kind: 'commitMeta'; seq: bigint; timeMs: bigint; hash: Uint8Array }
  | { kind: 'pageDelta'; frameHeader: Uint8Array; pageHash: Uint8Array; ranges: Uint8Array; count: number };

function bad(reason: 'UnknownRecordKind' | 'Truncated', message: string): never {
  throw walnutError('WALNUT_INVALID_FRAMING', `${reason}: ${message}`, { reason });
}

/** WAL_HEADER; with an anchor past frame 0, the generation continues after frames the base image holds. */
export function encodeWalHeaderRecord(header: Uint8Array, anchor: ChainAnchor | null = null): Uint8Array {
  const anchored = anchor !== null && anchor.frame > 0;
  const out = new Uint8Array(anchored ? 45 : 33);
  out[0] = KIND.WAL_HEADER;
  out.set(header.subarray(0, 32), 1);
  if (anchored) {
    const dv = new DataView(out.buffer);
    dv.setUint32(33, anchor.frame);
    dv.setUint32(37, anchor.checksum[0]);
    dv.setUint32(41, anchor.checksum[1]);
  }
  return out;
}

export function encodeBaseMetaRecord(seq: bigint, timeMs: bigint): Uint8Array {
  const out = new Uint8Array(17);
  const dv = new DataView(out.buffer);
  out[0] = KIND.BASE_META;
  dv.setBigUint64(1, seq);
  dv.setBigUint64(9, timeMs);
  return out;
}

/** FRAMES payload from frame buffers (each 24 + pageSize bytes). */
export function encodeFramesRecord(frames: readonly Uint8Array[], blocks?: PayloadMemory): Uint8Array {
  let n = 1;
  for (const f of frames) n += f.length;
  const out = bytes(n, blocks);
  out[0] = KIND.FRAMES;
  let at = 1;
  for (const f of frames) {
    out.set(f, at);
    at += f.length;
  }
  return out;
}

export function encodeBasePagesRecord(firstPgno: number, pages: readonly Uint8Array[]): Uint8Array {
  const size = pages[0]?.length ?? 0;
  const out = basePagesRecord(firstPgno, pages.length, size);
  pages.forEach((p, i) => out.set(p, BASE_PAGES_HEADER + i * size));
  return out;
}

/** Where a BASE_PAGES payload's pages begin. */
export const BASE_PAGES_HEADER = 9;

/**
 * A BASE_PAGES payload for `count` pages of `pageSize` bytes from `firstPgno`, for a caller that
 * reads the pages into it (no page of its own each): zeroed, or in `memory`'s (reused: the
 * caller writes every page).
 */
export function basePagesRecord(firstPgno: number, count: number, pageSize: number, memory?: PayloadMemory): Uint8Array {
  const n = BASE_PAGES_HEADER + pageSize * count;
  const out = memory?.take(n) ?? new Uint8Array(n);
  const dv = new DataView(out.buffer, out.byteOffset, BASE_PAGES_HEADER);
  out[0] = KIND.BASE_PAGES;
  dv.setUint32(1, firstPgno);
  dv.setUint32(5, count);
  return out;
}

export function encodeBaseEndRecord(dbSize: number, hash: Uint8Array): Uint8Array {
  const out = new Uint8Array(21);
  out[0] = KIND.BASE_END;
  new DataView(out.buffer).setUint32(1, dbSize);
  out.set(hash.subarray(0, 16), 5);
  return out;
}

export function encodeCommitMetaRecord(seq: bigint, timeMs: bigint, hash: Uint8Array, blocks?: PayloadMemory): Uint8Array {
  const out = bytes(33, blocks);
  const dv = new DataView(out.buffer, out.byteOffset, 33);
  out[0] = KIND.COMMIT_META;
  dv.setBigUint64(1, seq);
  dv.setBigUint64(9, timeMs);
  out.set(hash.subarray(0, 16), 17);
  return out;
}

/**
 * A COMMIT_META payload's commit sequence, and its unix ms, read in place (decodeRecord's
 * length check, no record object or DataView: the replication reads them for every commit).
 */
/**
 * The commit sequence of the COMMIT_META record at `at` of `p`, `length` bytes (the whole of `p`
 * by default; a reader of framed records passes where one lies, with no view of it).
 */
export function commitMetaSeq(p: Uint8Array, at = 0, length = p.length - at): bigint {
  if (length !== 33 || p[at] !== KIND.COMMIT_META) bad('Truncated', 'COMMIT_META must be 33 bytes');
  const hi = be32(p, at + 1);
  const lo = be32(p, at + 5);
  return hi === 0 ? BigInt(lo) : (BigInt(hi) << 32n) | BigInt(lo);
}

/** The commit time (ms) of the COMMIT_META record at `at` of `p`. */
export function commitMetaTimeMs(p: Uint8Array, at = 0): number {
  return be32(p, at + 9) * 2 ** 32 + be32(p, at + 13);
}

export function decodeRecord(p: Uint8Array): ExportRecord {
  const dv = new DataView(p.buffer, p.byteOffset, p.byteLength);
  switch (p[0]) {
    case KIND.WAL_HEADER: {
      if (p.length !== 33 && p.length !== 45) bad('Truncated', `WAL_HEADER has ${p.length - 1} bytes, not 32 or 44`);
      const anchor = p.length === 45 ? { frame: dv.getUint32(33), checksum: [dv.getUint32(37), dv.getUint32(41)] as [number, number] } : null;
      return { kind: 'walHeader', header: p.subarray(1, 33), anchor };
    }
    case KIND.BASE_META:
      if (p.length !== 17) bad('Truncated', 'BASE_META must be 17 bytes');
      return { kind: 'baseMeta', seq: dv.getBigUint64(1), timeMs: dv.getBigUint64(9) };
    case KIND.FRAMES:
      if (p.length < 2) bad('Truncated', 'an empty FRAMES record');
      return { kind: 'frames', frames: p.subarray(1) };
    case KIND.BASE_PAGES: {
      if (p.length < 9) bad('Truncated', 'BASE_PAGES shorter than its header');
      const count = dv.getUint32(5);
      const body = p.length - 9;
      if (count === 0 || body % count !== 0) bad('Truncated', `BASE_PAGES body of ${body} bytes does not hold ${count} equal pages`);
      return { kind: 'basePages', firstPgno: dv.getUint32(1), count, pages: p.subarray(9) };
    }
    case KIND.BASE_END:
      if (p.length !== 21) bad('Truncated', 'BASE_END must be 21 bytes');
      return { kind: 'baseEnd', dbSize: dv.getUint32(1), hash: p.subarray(5, 21) };
    case KIND.COMMIT_META:
      if (p.length !== 33) bad('Truncated', 'COMMIT_META must be 33 bytes');
      return { kind: 'commitMeta', seq: dv.getBigUint64(1), timeMs: dv.getBigUint64(9), hash: p.subarray(17, 33) };
    case KIND.PAGE_DELTA: {
      if (p.length < 45) bad('Truncated', 'PAGE_DELTA shorter than its header');
      const count = dv.getUint32(41);
      // every range's bounds are checked before any byte of it is used
      let at = 45;
      for (let i = 0; i < count; i++) {
        if (p.length - at < 8) bad('Truncated', `PAGE_DELTA range ${i} of ${count} is cut off`);
        const length = dv.getUint32(at + 4);
        if (p.length - at - 8 < length) bad('Truncated', `PAGE_DELTA range ${i} of ${count} is cut off`);
        at += 8 + length;
      }
      if (at !== p.length) bad('Truncated', `PAGE_DELTA has ${p.length - at} bytes after its ranges`);
      return { kind: 'pageDelta', frameHeader: p.subarray(1, 25), pageHash: p.subarray(25, 41), ranges: p.subarray(45), count };
    }
    default:
      return bad('UnknownRecordKind', `record kind 0x${(p[0] ?? 0).toString(16).padStart(2, '0')}`);
  }
}
