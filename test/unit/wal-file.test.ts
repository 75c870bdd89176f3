// WalFile on walnut's own files: bad input of every kind, the append window check, counters,
// and the write fault path (nothing advanced on failure, the next append overwrites).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { encodeWalHeader } from '../../lib/format/wal-header';
import { WalnutFile, nativeHandleOf } from '../../lib/io/file';
import { nativeFrames } from '../../lib/native';
import { WalFile } from '../../lib/wal/wal-file';
import { expectRejectsWalnut, expectWalnutError } from '../helpers/expect-error';
import { oracleScan } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
let n = 0;
const fresh = () => path.join(dir, `t${n++}.db-wal`);
const page = (size: number, fill: number) => new Uint8Array(size).fill(fill);

async function newWal(pageSize = 1024) {
  const w = await WalFile.open(fresh(), { create: true });
  await w.writeHeader({ pageSize, checkpointSeq: 0 });
  return w;
}

describe('recovery of bad input', () => {
  const cases: [string, (p: string) => void][] = [
    ['an empty file', (p) => fs.writeFileSync(p, '')],
    ['a file shorter than its header', (p) => fs.writeFileSync(p, Buffer.alloc(20, 1))],
    ['exactly a header and no frame', (p) => fs.writeFileSync(p, encodeWalHeader({ pageSize: 1024, checkpointSeq: 0, salt1: 1, salt2: 2 }).bytes)],
    ['a bad magic', (p) => {
      const h = Buffer.from(encodeWalHeader({ pageSize: 1024, checkpointSeq: 0, salt1: 1, salt2: 2 }).bytes);
      h.writeUInt32BE(0x377f0684, 0);
      fs.writeFileSync(p, Buffer.concat([h, Buffer.alloc(2096)]));
    }],
    ['a page size that is not a power of two', (p) => {
      const h = Buffer.from(encodeWalHeader({ pageSize: 1024, checkpointSeq: 0, salt1: 1, salt2: 2 }).bytes);
      h.writeUInt32BE(1000, 8);
      fs.writeFileSync(p, Buffer.concat([h, Buffer.alloc(4096)]));
    }],
    ['a header checksum mismatch', (p) => {
      const h = Buffer.from(encodeWalHeader({ pageSize: 1024, checkpointSeq: 0, salt1: 1, salt2: 2 }).bytes);
      h[30] ^= 0xff;
      fs.writeFileSync(p, Buffer.concat([h, Buffer.alloc(4096)]));
    }],
    ['garbage', (p) => fs.writeFileSync(p, Buffer.alloc(100_000).map((_, i) => (i * 7919) & 0xff))],
  ];
  for (const [name, make] of cases) {
    it(`treats ${name} as an empty WAL`, async () => {
      const p = fresh();
      make(p);
      const w = await WalFile.open(p, { readOnly: true });
      const r = await w.recover();
      expect(r.mxFrame).toBe(0);
      expect(r.commits).toBe(0);
      expect(r.invalidTailBytes).toBe(fs.statSync(p).size);
      expect(w.hasHeader).toBe(r.headerStatus === 'ok');
      await expectRejectsWalnut(w.append([{ pages: [{ pgno: 1, data: page(1024, 1) }], dbSize: 1 }]), r.headerStatus === 'ok' ? 'WALNUT_IO' : 'WALNUT_INVALID_ARGUMENT');
      await w.close();
    });
  }
});

describe('append', () => {
  it('writes commit marks, continues the chain across calls, and reports frame numbers', async () => {
    const w = await newWal(1024);
    const r1 = await w.append([
      { pages: [{ pgno: 1, data: page(1024, 1) }, { pgno: 2, data: page(1024, 2) }], dbSize: 2 },
      { pages: [{ pgno: 3, data: page(1024, 3) }], dbSize: 3 },
    ]);
    expect(r1).toEqual({ firstFrame: 1, lastFrame: 3, commitFrames: [2, 3], pgnos: new Uint32Array([1, 2, 3]) });
    const r2 = w.appendSync([{ pages: [{ pgno: 2, data: page(1024, 9) }], dbSize: 3 }], 'data');
    expect(r2).toEqual({ firstFrame: 4, lastFrame: 4, commitFrames: [4], pgnos: new Uint32Array([2]) });
    const scan = oracleScan(fs.readFileSync(w.path))!;
    expect(scan.frames.map((f) => [f.pgno, f.commitSize])).toEqual([[1, 0], [2, 2], [3, 3], [2, 3]]);
    expect(scan.running).toEqual(w.running);
    await w.close();
  });

  it("the commit sizes' array is reused across appends: a large batch's commit marks never leak into a later, smaller one's frames, async and sync interleaved", async () => {
    const w = await newWal(1024);
    const txs = (count: number, per: number, from: number) => Array.from({ length: count }, (_, t) => ({ pages: Array.from({ length: per }, (_, k) => ({ pgno: from + t * per + k, data: page(1024, t + 1) })), dbSize: 100 + from + t }));
    await w.append(txs(4, 1, 1), 'none'); // frames 1-4, every one a commit
    w.appendSync(txs(1, 3, 10), 'none'); // frames 5-7: only 7 commits
    await w.append(txs(2, 2, 20), 'none'); // frames 8-11: 9 and 11 commit
    await w.append(txs(1, 6, 30), 'none'); // frames 12-17: only 17 commits (grows the array)
    w.appendSync(txs(1, 2, 40), 'data'); // frames 18-19: only 19
    const scan = oracleScan(fs.readFileSync(w.path))!;
    expect(scan.frames.map((f) => f.commitSize)).toEqual([101, 102, 103, 104, 0, 0, 110, 0, 120, 0, 121, 0, 0, 0, 0, 0, 130, 0, 140]);
    expect(scan.running).toEqual(w.running);
    await w.close();
  });

  it('validates every argument before writing anything', async () => {
    const w = await newWal(1024);
    const sizeBefore = fs.statSync(w.path).size;
    await expectRejectsWalnut(w.append([{ pages: [{ pgno: 0, data: page(1024, 1) }], dbSize: 1 }]), 'WALNUT_INVALID_ARGUMENT');
    await expectRejectsWalnut(w.append([{ pages: [{ pgno: 1, data: page(512, 1) }], dbSize: 1 }]), 'WALNUT_INVALID_ARGUMENT');
    await expectRejectsWalnut(w.append([{ pages: [], dbSize: 1 }]), 'WALNUT_INVALID_ARGUMENT');
    await expectRejectsWalnut(w.append([{ pages: [{ pgno: 1, data: page(1024, 1) }], dbSize: 0 }]), 'WALNUT_INVALID_ARGUMENT');
    await expectRejectsWalnut(w.append([]), 'WALNUT_INVALID_ARGUMENT');
    await expectRejectsWalnut(w.append([{ pages: [{ pgno: 1.5, data: page(1024, 1) }], dbSize: 2 }]), 'WALNUT_INVALID_ARGUMENT');
    await expectRejectsWalnut(w.append([{ pages: [{ pgno: 1, data: 'x' as unknown as Uint8Array }], dbSize: 2 }]), 'WALNUT_INVALID_ARGUMENT');
    expectWalnutError(() => w.appendSync([{ pages: [{ pgno: 1, data: page(1024, 1) }], dbSize: 1 }], 'later' as 'data'), 'WALNUT_INVALID_ARGUMENT');
    await expectRejectsWalnut(w.writeHeader({ pageSize: 1000, checkpointSeq: 0 }), 'WALNUT_INVALID_ARGUMENT');
    expect(fs.statSync(w.path).size).toBe(sizeBefore);
    expect(w.mxFrame).toBe(0);
    await w.close();
  });

  it("the native append's positional call: the new running checksum comes back in the chain's words [4], [5], the file's size in [6], [7]; a malformed chain, durability, header or slot is refused before anything is written, both threads", async () => {
    const p = fresh();
    const { bytes, checksum } = encodeWalHeader({ pageSize: 1024, checkpointSeq: 0, salt1: 7, salt2: 9 });
    fs.writeFileSync(p, bytes);
    const f = await WalnutFile.open(p);
    const h = nativeHandleOf(f);
    const chain = () => new Uint32Array([1024, 0, 7, 9, checksum[0], checksum[1], 0, 0]);
    const one = (pgno: number) => [new Uint32Array([pgno]), new Uint32Array([pgno]), [page(1024, pgno)]] as const;
    type Append = typeof nativeFrames.appendSync;
    const bad: ((append: Append) => unknown)[] = [
      (append) => append(h, chain().subarray(0, 5), 32, ...one(1), 0, bytes, 32, undefined, 0), // a short chain
      (append) => append(h, { pageSize: 1024 } as unknown as Uint32Array, 32, ...one(1), 0, bytes, 32, undefined, 0), // the old object
      (append) => append(h, new Uint32Array([1000, 0, 7, 9, 0, 0, 0, 0]), 32, ...one(1), 0, bytes, 32, undefined, 0), // page size
      (append) => append(h, chain(), 32, ...one(1), 3, bytes, 32, undefined, 0), // durability
      (append) => append(h, chain(), 32, ...one(1), 0, bytes.subarray(0, 31), 32, undefined, 0), // a 31-byte header
      (append) => append(h, chain(), 32, ...one(1), 0, bytes, 32, new Uint8Array(23), 0), // a 23-byte slot
      (append) => append(h, chain(), 32, ...one(1), 0, bytes, undefined as unknown as number, undefined, 0), // a header without its size
    ];
    for (const call of bad) {
      expectWalnutError(() => call(nativeFrames.appendSync), 'WALNUT_INVALID_ARGUMENT');
      await expectRejectsWalnut(Promise.resolve().then(() => call(nativeFrames.append as unknown as Append)), 'WALNUT_INVALID_ARGUMENT');
    }
    expect(fs.statSync(p).size).toBe(32);
    const c = chain();
    expect(nativeFrames.appendSync(h, c, 32, ...one(1), 1, bytes, 32, null, 0)).toBeUndefined();
    const afterOne = oracleScan(fs.readFileSync(p))!.running;
    expect([c[4], c[5]]).toEqual(afterOne);
    expect([c[6], c[7]]).toEqual([32 + 1048, 0]);
    const c2 = new Uint32Array([1024, 0, 7, 9, c[4]!, c[5]!, 0, 0]);
    expect(await nativeFrames.append(h, c2, 32 + 1048, ...one(2), 1, bytes, 32 + 1048, undefined, 0)).toBeUndefined();
    const scan = oracleScan(fs.readFileSync(p))!;
    expect(scan.frames.map((fr) => fr.pgno)).toEqual([1, 2]);
    expect([c2[4], c2[5]]).toEqual(scan.running);
    expect([c2[0], c2[1], c2[2], c2[3]]).toEqual([1024, 0, 7, 9]); // only the checksum and size words change
    // with growTo: zeros after the frames; the size reported is the file's, theirs included
    const c4 = new Uint32Array([1024, 0, 7, 9, c2[4]!, c2[5]!, 0, 0]);
    expect(nativeFrames.appendSync(h, c4, 32 + 2 * 1048, ...one(3), 0, bytes, 32 + 2 * 1048, undefined, 32 + 8 * 1048)).toBeUndefined();
    expect([c4[6], c4[7]]).toEqual([32 + 8 * 1048, 0]);
    expect(fs.statSync(p).size).toBe(32 + 8 * 1048);
    // the chain array detached while the append runs: the append fails (its caller then invalidates the frame), never reports a chain it lost
    const c3 = new Uint32Array([1024, 0, 7, 9, c4[4]!, c4[5]!, 0, 0]);
    const pending = nativeFrames.append(h, c3, 32 + 3 * 1048, ...one(4), 1, bytes, 32 + 8 * 1048, undefined, 0);
    structuredClone(c3.buffer, { transfer: [c3.buffer] });
    await expectRejectsWalnut(pending, 'WALNUT_INVALID_ARGUMENT');
    await f.close();
  });

  it('refuses to write from a stale window (another writer appended or restarted)', async () => {
    const w = await newWal(1024);
    await w.append([{ pages: [{ pgno: 1, data: page(1024, 1) }], dbSize: 1 }]);
    const other = await WalFile.open(w.path);
    await other.recover();
    await other.append([{ pages: [{ pgno: 2, data: page(1024, 2) }], dbSize: 2 }]); // grows the file
    const before = fs.readFileSync(w.path);
    const err = await expectRejectsWalnut(w.append([{ pages: [{ pgno: 3, data: page(1024, 3) }], dbSize: 3 }]), 'WALNUT_BUSY');
    expect(err.reason).toBe('StaleAppendWindow');
    expect(fs.readFileSync(w.path).equals(before)).toBe(true);
    await other.restart(); // same size, new header
    expectWalnutError(() => w.appendSync([{ pages: [{ pgno: 3, data: page(1024, 3) }], dbSize: 3 }]), 'WALNUT_BUSY', { reason: 'StaleAppendWindow' });
    // after re-reading, the writer continues from the new state
    await w.recover();
    expect(w.mxFrame).toBe(0);
    await w.append([{ pages: [{ pgno: 3, data: page(1024, 3) }], dbSize: 3 }]);
    expect(oracleScan(fs.readFileSync(w.path))!.frames.length).toBe(1);
    await other.close();
    await w.close();
  });

  it('with `unchanged` (the caller vouches for the next slot) checks the header and size: a file cut shorter or its header rewritten in place is still refused, both threads', async () => {
    const w = await newWal(1024);
    await w.append([{ pages: [{ pgno: 1, data: page(1024, 1) }], dbSize: 1 }]);
    await w.append([{ pages: [{ pgno: 2, data: page(1024, 2) }], dbSize: 2 }], 'none', false, true);
    expect(w.mxFrame).toBe(2);
    const cut = 32 + 1024 + 24; // frame 2 is gone
    fs.truncateSync(w.path, cut);
    const err = await expectRejectsWalnut(w.append([{ pages: [{ pgno: 3, data: page(1024, 3) }], dbSize: 3 }], 'none', false, true), 'WALNUT_BUSY');
    expect(err.reason).toBe('StaleAppendWindow');
    expectWalnutError(() => w.appendSync([{ pages: [{ pgno: 3, data: page(1024, 3) }], dbSize: 3 }], 'none', true), 'WALNUT_BUSY', { reason: 'StaleAppendWindow' });
    expect(fs.statSync(w.path).size).toBe(cut); // nothing written into a hole
    await w.close();
    // the header rewritten in place (salt-1), the size unchanged
    const v = await newWal(1024);
    await v.append([{ pages: [{ pgno: 1, data: page(1024, 1) }], dbSize: 1 }]);
    const head = fs.readFileSync(v.path).subarray(0, 32);
    head.writeUInt32BE((head.readUInt32BE(16) + 1) >>> 0, 16);
    const fd = fs.openSync(v.path, 'r+');
    fs.writeSync(fd, head, 0, 32, 0);
    fs.closeSync(fd);
    const rewritten = fs.readFileSync(v.path);
    const stale = await expectRejectsWalnut(v.append([{ pages: [{ pgno: 2, data: page(1024, 2) }], dbSize: 2 }], 'none', false, true), 'WALNUT_BUSY');
    expect(stale.reason).toBe('StaleAppendWindow');
    expectWalnutError(() => v.appendSync([{ pages: [{ pgno: 2, data: page(1024, 2) }], dbSize: 2 }], 'none', true), 'WALNUT_BUSY', { reason: 'StaleAppendWindow' });
    expect(fs.readFileSync(v.path).equals(rewritten)).toBe(true);
    await v.close();
  });

  it('reports frame counter overflow as WALNUT_FULL before writing', async () => {
    const w = await newWal(512);
    w.TEST_setMxFrame(0xffffffff - 1);
    const sizeBefore = fs.statSync(w.path).size;
    const pages = [1, 2].map((pgno) => ({ pgno, data: page(512, pgno) }));
    await expectRejectsWalnut(w.append([{ pages, dbSize: 2 }]), 'WALNUT_FULL');
    expect(fs.statSync(w.path).size).toBe(sizeBefore);
    await w.close();
  });
});
