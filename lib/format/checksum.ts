/**
 * format/checksum.ts — SQLite's WAL checksum in plain TypeScript, for the small fixed-size
 * structures the codecs in this folder own (the 24 checksummed bytes of the WAL header and
 * the 40 of a wal-index header). Pages and frame chains are checksummed natively (format/ is
 * pure and may not use the addon).
 *
 * Words are taken big-endian or little-endian; for each pair (a, b):
 * s0 += a + s1; s1 += b + s0 (mod 2^32). Length must be a multiple of 8.
 */

export function walChecksumBytes(
  bytes: Uint8Array,
  bigEndianWords: boolean,
  start: readonly [number, number] = [0, 0],
): [number, number] {
  if (bytes.length % 8 !== 0) throw new RangeError('checksum input must be a multiple of 8 bytes');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let s0 = start[0];
  let s1 = start[1];
  for (let i = 0; i < bytes.length; i += 8) {
    s0 = (s0 + dv.getUint32(i, !bigEndianWords) + s1) >>> 0;
    s1 = (s1 + dv.getUint32(i + 4, !bigEndianWords) + s0) >>> 0;
  }
  return [s0, s1];
}

/**
 * The checksum a run of walChecksumBytes over `bytes` started from, given the one it ended with:
 * each step is undone (s1 -= b + s0, then s0 -= a + s1). So the checksum stored just before a
 * frame (the WAL header's, for frame 1) follows from the frame and its own stored checksum.
 */
export function unwindWalChecksum(bytes: Uint8Array, end: readonly [number, number], bigEndianWords: boolean): [number, number] {
  if (bytes.length % 8 !== 0) throw new RangeError('checksum input must be a multiple of 8 bytes');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let s0 = end[0];
  let s1 = end[1];
  for (let i = bytes.length - 8; i >= 0; i -= 8) {
    s1 = (s1 - dv.getUint32(i + 4, !bigEndianWords) - s0) >>> 0;
    s0 = (s0 - dv.getUint32(i, !bigEndianWords) - s1) >>> 0;
  }
  return [s0, s1];
}
