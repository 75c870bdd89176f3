// ShmRegion.commitInline (native/shm.cc), the lone commit's one native call: the WAL append,
// the wal-index entries and the header publish. Every argument is checked before anything is
// touched (the WAL file and the -shm are byte-for-byte unchanged after a refusal); it writes
// nothing when the live header is not the caller's own or the commit is not for this thread;
// what it writes is what walAppendSync + append() + writeHeader() write (the WAL checked by an
// independent oracle, the header re-encoded in TypeScript); closed files are WALNUT_CLOSED; a
// store closed while lone commits run settles each one (resolved and kept, or WALNUT_CLOSED).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open } from '../../lib/index';
import { encodeShmHeader, CKPT_NBACKFILL } from '../../lib/format/shm-header';
import { encodeWalHeader } from '../../lib/format/wal-header';
import { nativeHandleOf, WalnutFile } from '../../lib/io/file';
import { nativeFrames, newShmRegion, type NativeShmRegion } from '../../lib/native';
import { WalnutError } from '../../lib/errors';
import { expectWalnutError } from '../helpers/expect-error';
import { oracleScan } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
let n = 0;
const PAGE = 1024;
const FRAME = 24 + PAGE;
const page = (fill: number) => new Uint8Array(PAGE).fill(fill);

/** A WAL of one commit (frame 1, page 1) indexed in a real -shm whose live header names it. */
async function oneCommit() {
  const base = path.join(dir, `t${n++}`);
  const { bytes: walHeader, checksum } = encodeWalHeader({ pageSize: PAGE, checkpointSeq: 0, salt1: 7, salt2: 9 });
  fs.writeFileSync(`${base}-wal`, walHeader);
  fs.writeFileSync(`${base}-shm`, '');
  const wal = await WalnutFile.open(`${base}-wal`);
  const shm = await WalnutFile.open(`${base}-shm`);
  const region = newShmRegion(nativeHandleOf(shm));
  region.grow(1);
  const chain = new Uint32Array([PAGE, 0, 7, 9, checksum[0], checksum[1], 0, 0]);
  nativeFrames.appendSync(nativeHandleOf(wal), chain, 32, new Uint32Array([1]), new Uint32Array([1]), [page(1)], 1, walHeader, 32, null, 0);
  region.append(1, new Uint32Array([1]), 0);
  const header = (mxFrame: number, iChange: number, running: [number, number]) =>
    encodeShmHeader({ iChange, bigEndCksum: false, pageSize: PAGE, mxFrame, nPage: mxFrame, frameChecksum: running, salts: [7, 9] });
  const expect1 = header(1, 5, [chain[4]!, chain[5]!]);
  region.writeHeader(expect1);
  return { base, wal, shm, region, walHeader, chain, expect1, header };
}

const shmBytes = (base: string) => fs.readFileSync(`${base}-shm`);
const walBytes = (base: string) => fs.readFileSync(`${base}-wal`);

describe('ShmRegion.commitInline', () => {
  it('refuses every malformed argument before touching the WAL or the -shm', async () => {
    const t = await oneCommit();
    const h = nativeHandleOf(t.wal);
    const publish = () => t.header(2, 6, [0, 0]);
    type Args = Parameters<NativeShmRegion['commitInline']>;
    const good = (): Args => [h, t.chain.slice(), 32 + FRAME, new Uint32Array([2]), new Uint32Array([2]), [page(2)], 1, t.walHeader, 32 + FRAME, undefined, 0, t.expect1, publish()];
    const with_ = (i: number, v: unknown): Args => {
      const a = good() as unknown[];
      a[i] = v;
      return a as Args;
    };
    const bad: [string, Args][] = [
      ['no arguments', [] as unknown as Args],
      ['a wal that is not a NativeFile', with_(0, {})],
      ['a short chain', with_(1, t.chain.subarray(0, 5))],
      ['a page size that is not a power of two', with_(1, new Uint32Array([1000, 0, 7, 9, 0, 0]))],
      ['an offset inside a frame', with_(2, 32 + FRAME + 1)],
      ['a negative offset', with_(2, -1)],
      ['an offset past 2^53', with_(2, 2 ** 60)],
      ['pgnos not a Uint32Array', with_(3, [2])],
      ['pgnos longer than pages', with_(3, new Uint32Array([2, 3]))],
      ['commitSizes shorter than pages', with_(4, new Uint32Array(0))],
      ['no pages', with_(5, [])],
      ['a page of the wrong size', with_(5, [new Uint8Array(PAGE - 1)])],
      ['a page that is no Uint8Array', with_(5, [new Uint16Array(PAGE / 2)])],
      ['page number 0', with_(3, new Uint32Array([0]))],
      ['durability 3', with_(6, 3)],
      ['a 31-byte WAL header', with_(7, t.walHeader.subarray(0, 31))],
      ['growTo past 1 TiB', with_(10, 2 ** 41)],
      ['a 47-byte expect', with_(11, t.expect1.subarray(0, 47))],
      ['expect as a Uint32Array', with_(11, new Uint32Array(12))],
      ['a 49-byte publish', with_(12, new Uint8Array(49))],
      ['no publish', with_(12, undefined)],
      ["expect's mxFrame not the frame before offset's", with_(11, t.header(2, 5, [0, 0]))],
      ["publish's mxFrame not the last frame appended", with_(12, t.header(3, 6, [0, 0]))],
    ];
    const wal0 = walBytes(t.base);
    const shm0 = shmBytes(t.base);
    for (const [what, args] of bad) {
      let caught: unknown;
      try {
        t.region.commitInline(...args);
      } catch (e) {
        caught = e;
      }
      expect(caught, what).toBeInstanceOf(WalnutError);
      expect((caught as WalnutError).code, what).toBe('WALNUT_INVALID_ARGUMENT');
      expect((caught as { stage?: string }).stage, what).toBeUndefined();
    }
    expect(walBytes(t.base).equals(wal0)).toBe(true);
    expect(shmBytes(t.base).equals(shm0)).toBe(true);
    // the good call still works after all that
    expect(t.region.commitInline(...good())).toBe(1);
    await t.wal.close();
    await t.shm.close();
  });

  it('writes nothing when the live header is not the expected one (0) or the commit is not inline (2: all backfilled)', async () => {
    const t = await oneCommit();
    const h = nativeHandleOf(t.wal);
    const args = (expect: Uint8Array) => [h, t.chain.slice(), 32 + FRAME, new Uint32Array([2]), new Uint32Array([2]), [page(2)], 1, t.walHeader, 32 + FRAME, undefined, 0, expect, t.header(2, 6, [0, 0])] as Parameters<NativeShmRegion['commitInline']>;
    const wal0 = walBytes(t.base);
    const shm0 = shmBytes(t.base);
    const other = t.header(1, 4, [t.chain[4]!, t.chain[5]!]); // another iChange: not this header
    expect(t.region.commitInline(...args(other))).toBe(0);
    // copy 1 differs from copy 0 (a publish cut short, or damage): not the expected header either
    const shm = await WalnutFile.open(`${t.base}-shm`);
    const flipped = Buffer.from(t.expect1.subarray(8, 12));
    flipped[0] ^= 1;
    shm.writeSync(flipped, 0, 4, 48 + 8);
    expect(t.region.commitInline(...args(t.expect1))).toBe(0);
    shm.writeSync(t.expect1.subarray(8, 12), 0, 4, 48 + 8);
    await shm.close();
    t.region.store32(CKPT_NBACKFILL, 1);
    expect(t.region.commitInline(...args(t.expect1))).toBe(2);
    expect(walBytes(t.base).equals(wal0)).toBe(true);
    expect(shmBytes(t.base).equals(shm0)).toBe(false); // nBackfill only
    t.region.store32(CKPT_NBACKFILL, 0);
    expect(shmBytes(t.base).equals(shm0)).toBe(true);
    await t.wal.close();
    await t.shm.close();
  });

  it('appends as walAppendSync, indexes as append() and publishes the header TypeScript encodes, checksums filled in', async () => {
    const t = await oneCommit();
    const h = nativeHandleOf(t.wal);
    const chain = t.chain.slice();
    const publish = t.header(3, 6, [0, 0]);
    const pages = [page(2), page(3)];
    // two frames of one commit: commit size only on the last
    expect(t.region.commitInline(h, chain, 32 + FRAME, new Uint32Array([2, 3]), new Uint32Array([0, 3]), pages, 1, t.walHeader, 32 + FRAME, undefined, 0, t.expect1, publish)).toBe(1);
    const scan = oracleScan(walBytes(t.base))!;
    expect(scan.frames.map((f) => [f.pgno, f.commitSize])).toEqual([[1, 1], [2, 0], [3, 3]]);
    expect([chain[4], chain[5]]).toEqual(scan.running);
    const want = t.header(3, 6, scan.running as [number, number]);
    expect(Buffer.from(publish).equals(Buffer.from(want))).toBe(true);
    const shm = shmBytes(t.base);
    expect(shm.subarray(0, 48).equals(Buffer.from(want))).toBe(true);
    expect(shm.subarray(48, 96).equals(Buffer.from(want))).toBe(true);
    expect([t.region.lookup(1, 3, 1), t.region.lookup(2, 3, 1), t.region.lookup(3, 3, 1), t.region.lookup(4, 3, 1)]).toEqual([1, 2, 3, 0]);
    await t.wal.close();
    await t.shm.close();
  });

  it('on a closed region or WAL file: WALNUT_CLOSED, nothing written', async () => {
    const t = await oneCommit();
    const args = () => [nativeHandleOf(t.wal), t.chain.slice(), 32 + FRAME, new Uint32Array([2]), new Uint32Array([2]), [page(2)], 1, t.walHeader, 32 + FRAME, undefined, 0, t.expect1, t.header(2, 6, [0, 0])] as Parameters<NativeShmRegion['commitInline']>;
    const wal0 = walBytes(t.base);
    await t.wal.close();
    expectWalnutError(() => t.region.commitInline(...args()), 'WALNUT_CLOSED');
    t.region.unmap();
    expectWalnutError(() => t.region.commitInline(...args()), 'WALNUT_CLOSED');
    expect(walBytes(t.base).equals(wal0)).toBe(true);
    await t.shm.close();
  });

  it('a store closed while lone commits run: each commit resolves (and is there after a reopen) or rejects WALNUT_CLOSED', async () => {
    const db = path.join(dir, 'race.db');
    const data = (v: number) => Buffer.alloc(4096, v);
    let acknowledged = new Map<number, number>();
    for (let round = 0; round < 40; round++) {
      const store = await open(db, { synchronous: 'full' });
      const settled: Promise<void>[] = [];
      const ack = new Map<number, number>();
      // a lone committer: each commit after the previous one settled, so every one is inline
      const run = (async () => {
        for (let i = 0; ; i++) {
          const pgno = 2 + (i % 7);
          const v = (round * 31 + i) & 255;
          try {
            await store.commit([{ pgno, data: data(v) }]);
            ack.set(pgno, v);
          } catch (e) {
            expect(e).toBeInstanceOf(WalnutError);
            expect((e as WalnutError).code).toBe('WALNUT_CLOSED');
            return;
          }
        }
      })();
      settled.push(run);
      // close after `round % 8` turns of the event loop (a commit is in flight or just settled)
      for (let k = 0; k < round % 8; k++) await new Promise((r) => setImmediate(r));
      await store.close();
      await Promise.all(settled);
      acknowledged = new Map([...acknowledged, ...ack]);
      const again = await open(db);
      const snap = await again.snapshot();
      for (const [pgno, v] of acknowledged) expect((await snap.read(pgno))[0], `round ${round} page ${pgno}`).toBe(v);
      snap.release();
      await again.close();
    }
  }, 120_000);
});

// A frame number near 2^32 (from a crafted live header) needs ~1M -shm segments: append() and
// commitInline() refuse past grow()'s 65,536 instead of growing a sparse 32 GiB -shm by a million
// one-byte writes (found by the session-13 hostile pass).
describe('ShmRegion segment bound', () => {
  it('append() at frame 2^32 - 256: WALNUT_INVALID_ARGUMENT, the -shm not grown', async () => {
    const t = await oneCommit();
    const before = fs.statSync(`${t.base}-shm`).size;
    expectWalnutError(() => t.region.append(0xffffff00, new Uint32Array([2]), 0), 'WALNUT_INVALID_ARGUMENT');
    expect(fs.statSync(`${t.base}-shm`).size).toBe(before);
    await t.wal.close();
    await t.shm.close();
  });
});
