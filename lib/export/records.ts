/**
 * export/records.ts — walnut's record payloads inside ARKHEXP1 records (DESIGN.md section 5).
 * First byte = kind; integers big-endian.
 *
 *   0x01 WAL_HEADER   32-byte WAL header, bit-exact; starts a generation (new salts)
 *   0x02 FRAMES       consecutive WAL frames of the current generation, bit-exact
 *                     (24-byte header + page each); the checksum chain continues across
 *                     records; a transaction ends at its commit frame
 *   0x03 BASE_PAGES   u32 first pgno, u32 count, count pages (the base image)
 *   0x04 BASE_END     u32 dbSize, 16-byte xxh3-128 of pages 1..dbSize in order
 *   0x05 COMMIT_META  u64 commit sequence, u64 unix ms, 16-byte xxh3-128 of the transaction's frames
 *
 * Pure codecs: no I/O. Decoding checks every length and answers WALNUT_INVALID_FRAMING
 * (reason UnknownRecordKind or Truncated) for payloads that do not fit their kind.
 */
import { walnutError } from '../errors';
import type { ByteBlocks } from './framing';

/** A payload's memory: from the caller's blocks (reused, framing.ts) or of its own. */
const bytes = (n: number, blocks: ByteBlocks | undefined): Uint8Array => blocks?.take(n) ?? new Uint8Array(n);

export const KIND = { WAL_HEADER: 0x01, FRAMES: 0x02, BASE_PAGES: 0x03, BASE_END: 0x04, COMMIT_META: 0x05 } as const;

export type ExportRecord =
  | { kind: 'walHeader'; header: Uint8Array }
  | { kind: 'frames'; frames: Uint8Array }
  | { kind: 'basePages'; firstPgno: number; count: number; pages: Uint8Array }
  | { kind: 'baseEnd'; dbSize: number; hash: Uint8Array }
  | { kind: 'commitMeta'; seq: bigint; timeMs: bigint; hash: Uint8Array };

function bad(reason: 'UnknownRecordKind' | 'Truncated', message: string): never {
  throw walnutError('WALNUT_INVALID_FRAMING', `${reason}: ${message}`, { reason });
}

export function encodeWalHeaderRecord(header: Uint8Array): Uint8Array {
  const out = new Uint8Array(33);
  out[0] = KIND.WAL_HEADER;
  out.set(header.subarray(0, 32), 1);
  return out;
}

/** FRAMES payload from frame buffers (each 24 + pageSize bytes). */
export function encodeFramesRecord(frames: readonly Uint8Array[], blocks?: ByteBlocks): Uint8Array {
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
  const out = new Uint8Array(9 + size * pages.length);
  const dv = new DataView(out.buffer);
  out[0] = KIND.BASE_PAGES;
  dv.setUint32(1, firstPgno);
  dv.setUint32(5, pages.length);
  pages.forEach((p, i) => out.set(p, 9 + i * size));
  return out;
}

export function encodeBaseEndRecord(dbSize: number, hash: Uint8Array): Uint8Array {
  const out = new Uint8Array(21);
  out[0] = KIND.BASE_END;
  new DataView(out.buffer).setUint32(1, dbSize);
  out.set(hash.subarray(0, 16), 5);
  return out;
}

export function encodeCommitMetaRecord(seq: bigint, timeMs: bigint, hash: Uint8Array, blocks?: ByteBlocks): Uint8Array {
  const out = bytes(33, blocks);
  const dv = new DataView(out.buffer, out.byteOffset, 33);
  out[0] = KIND.COMMIT_META;
  dv.setBigUint64(1, seq);
  dv.setBigUint64(9, timeMs);
  out.set(hash.subarray(0, 16), 17);
  return out;
}

export function decodeRecord(p: Uint8Array): ExportRecord {
  const dv = new DataView(p.buffer, p.byteOffset, p.byteLength);
  switch (p[0]) {
    case KIND.WAL_HEADER:
      if (p.length !== 33) bad('Truncated', `WAL_HEADER has ${p.length - 1} bytes, not 32`);
      return { kind: 'walHeader', header: p.subarray(1) };
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
    default:
      return bad('UnknownRecordKind', `record kind 0x${(p[0] ?? 0).toString(16).padStart(2, '0')}`);
  }
}
