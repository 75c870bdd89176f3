// The -wal-fec file itself: groups round-trip, a scan keeps only whole verified groups (torn tail,
// garbage, a flipped byte), and the writer follows WAL generations as the WAL's header on disk
// names them (the current generation replaces the file; a group of a generation the WAL has left
// is dropped, never wiping the current one's; reset() removes only its own generation). Groups of
// version 2 carry the WAL header (a usable one only); version 1 groups are still read.
import * as fs from 'node:fs';
import * as path from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { rsCodec } from '../../lib/fec/codec';
import { encodeGroup, pageHashes, readGroup, scanSidecar } from '../../lib/fec/sidecar';
import { FecSidecarWriter, sidecarPathOf } from '../../lib/fec/writer';
import { encodeWalHeader } from '../../lib/format/wal-header';
import { WalnutFile } from '../../lib/io/file';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir('fec-sidecar');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const PS = 512;

function group(firstFrame: number, k: number, salts: [number, number], fill: number, chainWord: number | null = null) {
  const pages = new Uint8Array(k * PS).map((_, i) => (i * 31 + fill) & 0xff);
  const walHeader = encodeWalHeader({ pageSize: PS, checkpointSeq: 0, salt1: salts[0], salt2: salts[1] }).bytes;
  return encodeGroup({ codec: 'rs', salts, firstFrame, k, r: 2, pageSize: PS, chainWord, version: 2, walHeader, pgnos: Uint32Array.from({ length: k }, (_, i) => i + 2), commits: Uint32Array.from({ length: k }, (_, i) => (i === k - 1 ? 99 : 0)), hashes: pageHashes(pages, k, PS), repair: rsCodec.encode(pages, k, PS, 2) }, rsCodec.id);
}

function scan(file: string) {
  const f = WalnutFile.openSync(file, { readOnly: true });
  try {
    const s = scanSidecar(f);
    return { ...s, first: s.groups[0] ? readGroup(f, s.groups[0]) : null };
  } finally {
    f.closeSync();
  }
}

describe('sidecar groups', () => {
  it('round-trip, and a scan stops at a torn group or garbage, and passes over a flipped byte', () => {
    const file = path.join(dir, 'a-wal-fec');
    const g1 = group(1, 3, [7, 8], 1);
    const g2 = group(4, 5, [7, 8], 2, 0xdeadbeef);
    fs.writeFileSync(file, Buffer.concat([g1, g2]));
    const s = scan(file);
    expect(s.groups.map((g) => [g.firstFrame, g.k, g.r, g.pageSize, g.codec, g.salts, g.chainWord])).toEqual([[1, 3, 2, PS, 'rs', [7, 8], null], [4, 5, 2, PS, 'rs', [7, 8], 0xdeadbeef]]);
    expect(s.invalidTailBytes).toBe(0);
    expect([...s.first!.pgnos]).toEqual([2, 3, 4]);
    expect([...s.first!.commits]).toEqual([0, 0, 99]);

    fs.writeFileSync(file, Buffer.concat([g1, g2.subarray(0, g2.length - 1)]));
    expect(scan(file).groups).toHaveLength(1);
    fs.writeFileSync(file, Buffer.concat([g1, Buffer.alloc(3000, 0x5a), g2]));
    expect(scan(file).groups).toHaveLength(1);
    const flipped = Buffer.concat([g1, g2]);
    flipped[g1.length + 300] ^= 4;
    fs.writeFileSync(file, flipped);
    expect(scan(file).groups).toHaveLength(1);
    expect(scan(file)).toMatchObject({ invalidTailBytes: g2.length });
    // a damaged group with others after it is passed over (its header says how long it is)
    const g3 = group(9, 2, [7, 8], 3);
    fs.writeFileSync(file, Buffer.concat([flipped, g3]));
    expect(scan(file).groups.map((g) => g.firstFrame)).toEqual([1, 9]);
    expect(scan(file)).toMatchObject({ invalidTailBytes: 0, skippedBytes: g2.length });
    // a header claiming a huge group is refused before anything is allocated for it
    const huge = Buffer.from(g1);
    huge.writeUInt32LE(255, 28);
    fs.writeFileSync(file, huge);
    expect(scan(file).groups).toHaveLength(0);
  });
});

describe('sidecar versions', () => {
  const pages = new Uint8Array(3 * PS).map((_, i) => (i * 7) & 0xff);
  const fields = (salts: [number, number], walHeader: Uint8Array | null, version: number) => ({ codec: 'rs' as const, salts, firstFrame: 1, k: 3, r: 2, pageSize: PS, chainWord: 5, version, walHeader, pgnos: Uint32Array.of(2, 3, 4), commits: Uint32Array.of(0, 0, 4), hashes: pageHashes(pages, 3, PS), repair: rsCodec.encode(pages, 3, PS, 2) });
  const header = (salts: [number, number]) => encodeWalHeader({ pageSize: PS, checkpointSeq: 3, salt1: salts[0], salt2: salts[1] }).bytes;

  it('version 2 carries the WAL header; version 1 (before header copies) is read the same without it', () => {
    const file = path.join(dir, 'versions-wal-fec');
    const v2 = encodeGroup(fields([7, 8], header([7, 8]), 2), rsCodec.id);
    const v1 = encodeGroup(fields([7, 8], null, 1), rsCodec.id);
    expect(v2.length - v1.length).toBe(32);
    fs.writeFileSync(file, Buffer.concat([v1, v2]));
    const s = scan(file);
    expect(s.groups.map((g) => [g.version, g.walHeader === null ? null : Buffer.from(g.walHeader).equals(header([7, 8]))])).toEqual([[1, null], [2, true]]);
    const f = WalnutFile.openSync(file, { readOnly: true });
    try {
      for (const ref of s.groups) expect([...readGroup(f, ref).pgnos, ...readGroup(f, ref).commits]).toEqual([2, 3, 4, 0, 0, 4]);
    } finally {
      f.closeSync();
    }
  });

  it('a header copy of other salts, or whose own checksum fails, is no copy (the group still covers its frames); a version 2 group needs one; version 3 is not read', () => {
    const file = path.join(dir, 'copies-wal-fec');
    const badSum = header([7, 8]);
    badSum[25]! ^= 1;
    fs.writeFileSync(file, Buffer.concat([encodeGroup(fields([7, 8], header([7, 9]), 2), rsCodec.id), encodeGroup(fields([7, 8], badSum, 2), rsCodec.id)]));
    expect(scan(file).groups.map((g) => [g.version, g.walHeader])).toEqual([[2, null], [2, null]]);
    expect(() => encodeGroup(fields([7, 8], null, 2), rsCodec.id)).toThrow(RangeError);
    const v3 = Buffer.from(encodeGroup(fields([7, 8], header([7, 8]), 2), rsCodec.id));
    v3.writeUInt32LE(3, 8);
    fs.writeFileSync(file, v3);
    expect(scan(file)).toMatchObject({ groups: [], invalidTailBytes: v3.length });
  });
});

/** A WAL header naming the generation `salts` (a usable one: the writer copies it into every group, and records none of a damaged header). */
function walHeader(wal: string, salts: [number, number]): void {
  const h = encodeWalHeader({ pageSize: PS, checkpointSeq: 0, salt1: salts[0], salt2: salts[1] }).bytes;
  const fd = fs.openSync(wal, fs.existsSync(wal) ? 'r+' : 'w');
  fs.writeSync(fd, h, 0, 32, 0);
  fs.closeSync(fd);
}

/** Frame f's header in that WAL (of generation `salts`): the writer reads the checksum the group follows from it. */
function walFrameHeader(wal: string, f: number, salts: [number, number]): void {
  const h = Buffer.alloc(24);
  h.writeUInt32BE(salts[0], 8);
  h.writeUInt32BE(salts[1], 12);
  h.writeUInt32BE(f, 20); // a checksum word
  const fd = fs.openSync(wal, 'r+');
  fs.writeSync(fd, h, 0, 24, 32 + (f - 1) * (24 + PS));
  fs.closeSync(fd);
}

describe('FecSidecarWriter generations', () => {
  const pagesOf = (n: number, fill: number) => Array.from({ length: n }, (_, i) => ({ pgno: i + 2, data: new Uint8Array(PS).fill(fill + i) }));

  it('a newer generation replaces the file, an older one is dropped, reset() removes only its own', async () => {
    const wal = path.join(dir, 'g.db-wal');
    const a = await FecSidecarWriter.open(wal, rsCodec, 2, PS, null);
    const b = await FecSidecarWriter.open(wal, rsCodec, 2, PS, null);
    walHeader(wal, [10, 1]);
    a.add([{ pages: pagesOf(3, 1), dbSize: 9 }], 1, [10, 1]);
    await a.flush();
    expect(scan(sidecarPathOf(wal)).groups.map((g) => g.salts)).toEqual([[10, 1]]);
    walHeader(wal, [11, 2]);
    b.add([{ pages: pagesOf(2, 2), dbSize: 9 }], 1, [11, 2]); // b restarted the WAL
    await b.flush();
    expect(scan(sidecarPathOf(wal)).groups.map((g) => g.salts)).toEqual([[11, 2]]);
    a.add([{ pages: pagesOf(2, 3), dbSize: 9 }], 4, [10, 1]); // a's late group of the old generation
    await a.flush();
    expect(a.metrics().staleGroups).toBe(1);
    expect(scan(sidecarPathOf(wal)).groups.map((g) => g.salts)).toEqual([[11, 2]]);
    a.reset(); // a's generation is not the file's: nothing removed
    await a.flush();
    expect(scan(sidecarPathOf(wal)).groups).toHaveLength(1);
    b.reset();
    await b.flush();
    expect(fs.statSync(sidecarPathOf(wal)).size).toBe(0);
    await a.close();
    await b.close();
  });

  it('copies the WAL header into every group, and copies no damaged header: that append\'s groups are dropped, the file kept', async () => {
    const wal = path.join(dir, 'damaged-header.db-wal');
    const w = await FecSidecarWriter.open(wal, rsCodec, 2, PS, null);
    walHeader(wal, [20, 3]);
    const good = fs.readFileSync(wal).subarray(0, 32);
    w.add([{ pages: pagesOf(2, 1), dbSize: 9 }], 1, [20, 3]);
    await w.flush();
    expect(scan(sidecarPathOf(wal)).groups.map((g) => Buffer.from(g.walHeader!).equals(good))).toEqual([true]);
    const fd = fs.openSync(wal, 'r+');
    fs.writeSync(fd, Buffer.from([good[9]! ^ 0x40]), 0, 1, 9); // the page size: the header no longer checks
    fs.closeSync(fd);
    walFrameHeader(wal, 2, [20, 3]);
    w.add([{ pages: pagesOf(2, 2), dbSize: 9 }], 3, [20, 3]);
    await w.close();
    expect(w.metrics()).toMatchObject({ groups: 1, staleGroups: 1, writeErrors: 0 });
    expect(scan(sidecarPathOf(wal)).groups.map((g) => [g.firstFrame, Buffer.from(g.walHeader!).equals(good)])).toEqual([[1, true]]);
  });

  it('a garbage sidecar is replaced, never read as a newer generation', async () => {
    const wal = path.join(dir, 'garbage.db-wal');
    fs.writeFileSync(sidecarPathOf(wal), Buffer.alloc(5000, 0xa5)); // "salt-1" 0xa5a5a5a5
    const w = await FecSidecarWriter.open(wal, rsCodec, 2, PS, null);
    walHeader(wal, [0xa5a5a5a4, 7]);
    w.add([{ pages: pagesOf(2, 1), dbSize: 9 }], 1, [0xa5a5a5a4, 7]); // one less: "older" by salt-1 order
    await w.close();
    expect(w.metrics()).toMatchObject({ groups: 1, staleGroups: 0 });
    expect(scan(sidecarPathOf(wal)).groups.map((g) => g.salts)).toEqual([[0xa5a5a5a4, 7]]);
  });

  it('a batch over the group limit is split: 255 - R frames per group', async () => {
    const wal = path.join(dir, 'split.db-wal');
    const w = await FecSidecarWriter.open(wal, rsCodec, 4, PS, null);
    walHeader(wal, [1, 1]);
    walFrameHeader(wal, 10, [1, 1]);
    walFrameHeader(wal, 261, [1, 1]);
    w.add([{ pages: pagesOf(200, 0), dbSize: 300 }, { pages: pagesOf(300, 1), dbSize: 300 }], 11, [1, 1]);
    await w.close();
    const s = scan(sidecarPathOf(wal));
    expect(s.groups.map((g) => [g.firstFrame, g.k, g.chainWord])).toEqual([[11, 251, 10], [262, 249, 261]]);
  });
});
