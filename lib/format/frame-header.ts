/**
 * format/frame-header.ts — the 24-byte WAL frame header (reference/sqlite-wal.md section 2.2).
 *
 *   off size field
 *    0   4   page number (nonzero)
 *    4   4   database size in pages after the commit, on a commit frame; 0 otherwise
 *    8   8   salt-1, salt-2 (copies of the WAL header's)
 *   16   8   cumulative checksum (s0, s1) over header bytes 0..7 and the page, chained from
 *            the previous frame (the first from the WAL header's checksum)
 *
 * Big-endian. The checksum covers bytes 0..7 only: salts are not checksummed.
 */

export const FRAME_HEADER_SIZE = 24;

/** The big-endian u32 at `at` (the caller has checked the bounds): a header field read without a DataView (an allocation each). */
export function be32(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) >>> 0) + (b[at + 1]! << 16) + (b[at + 2]! << 8) + b[at + 3]!;
}

export interface FrameHeader {
  pgno: number;
  commitSize: number;
  salt1: number;
  salt2: number;
  checksum: [number, number];
}

export function decodeFrameHeader(bytes: Uint8Array, offset = 0): FrameHeader {
  if (bytes.length - offset < FRAME_HEADER_SIZE) throw new RangeError('frame header needs 24 bytes');
  const dv = new DataView(bytes.buffer, bytes.byteOffset + offset, FRAME_HEADER_SIZE);
  return {
    pgno: dv.getUint32(0),
    commitSize: dv.getUint32(4),
    salt1: dv.getUint32(8),
    salt2: dv.getUint32(12),
    checksum: [dv.getUint32(16), dv.getUint32(20)],
  };
}

export function encodeFrameHeader(h: FrameHeader, out: Uint8Array = new Uint8Array(FRAME_HEADER_SIZE), offset = 0): Uint8Array {
  const dv = new DataView(out.buffer, out.byteOffset + offset, FRAME_HEADER_SIZE);
  dv.setUint32(0, h.pgno);
  dv.setUint32(4, h.commitSize);
  dv.setUint32(8, h.salt1);
  dv.setUint32(12, h.salt2);
  dv.setUint32(16, h.checksum[0]);
  dv.setUint32(20, h.checksum[1]);
  return out;
}
