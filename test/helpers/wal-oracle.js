// An independent reading of the WAL format in plain JavaScript (reference/sqlite-wal.md
// sections 2-4): the oracle walnut's native recovery is compared with, in tests and in the
// fuzz runner. Written from the format description, sharing no code with lib/.
'use strict';

/** The serial SQLite WAL checksum loop. */
function jsWalChecksum(data, s0, s1, bigEndian) {
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  for (let i = 0; i + 8 <= data.length; i += 8) {
    s0 = (s0 + dv.getUint32(i, !bigEndian) + s1) >>> 0;
    s1 = (s1 + dv.getUint32(i + 4, !bigEndian) + s0) >>> 0;
  }
  return [s0, s1];
}

/**
 * Recovery scan of a WAL image. Returns null when the header is unusable (the WAL counts as
 * empty), throws Error('CANTOPEN') for a usable header with an unknown version.
 */
function oracleScan(wal) {
  if (wal.length <= 32) return null;
  const magic = wal.readUInt32BE(0);
  if (((magic & 0xfffffffe) >>> 0) !== 0x377f0682) return null;
  const bigEndian = (magic & 1) === 1;
  const pageSize = wal.readUInt32BE(8);
  if (pageSize < 512 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0) return null;
  const hc = jsWalChecksum(wal.subarray(0, 24), 0, 0, bigEndian);
  if (hc[0] !== wal.readUInt32BE(24) || hc[1] !== wal.readUInt32BE(28)) return null;
  if (wal.readUInt32BE(4) !== 3007000) throw new Error('CANTOPEN');
  const salts = [wal.readUInt32BE(16), wal.readUInt32BE(20)];
  let running = hc;
  const frames = [];
  const result = { pageSize, bigEndian, salts, checkpointSeq: wal.readUInt32BE(12), frames: [], dbSize: 0, commits: 0, running: hc, lastValidFrame: 0 };
  const frameSize = pageSize + 24;
  for (let off = 32, i = 1; off + frameSize <= wal.length; off += frameSize, i++) {
    const pgno = wal.readUInt32BE(off);
    if (pgno === 0) break;
    if (wal.readUInt32BE(off + 8) !== salts[0] || wal.readUInt32BE(off + 12) !== salts[1]) break;
    let c = jsWalChecksum(wal.subarray(off, off + 8), running[0], running[1], bigEndian);
    c = jsWalChecksum(wal.subarray(off + 24, off + frameSize), c[0], c[1], bigEndian);
    if (c[0] !== wal.readUInt32BE(off + 16) || c[1] !== wal.readUInt32BE(off + 20)) break;
    running = c;
    result.lastValidFrame = i;
    const commitSize = wal.readUInt32BE(off + 4);
    frames.push({ index: i, pgno, commitSize, offset: off });
    if (commitSize !== 0) {
      result.frames = frames.slice();
      result.dbSize = commitSize;
      result.commits++;
      result.running = running;
    }
  }
  return result;
}

module.exports = { jsWalChecksum, oracleScan };
