// A caller that reuses or gives away a page's buffer while its commit is in flight (a scratch
// buffer filled again for the next commit; an ArrayBuffer transferred to a worker) must not
// harm other callers' commits, and native code must never read memory it does not own.
// Before the pages were copied at commit():
//  - a page changed while its batch was on the I/O thread (between the frame's checksum and the
//    pwritev) was written with a checksum of other bytes: the next recovery (here python3's
//    sqlite3 after a SIGKILL) ended the WAL at that frame and dropped every later acknowledged
//    commit of the 63 other callers (up to 1,575 of them in a 3 s run);
//  - a page's buffer transferred right after commit() failed its whole batch (WALNUT_INVALID_
//    ARGUMENT, "page 66 must be a Uint8Array of exactly 4096 bytes") and broke the commit chain of
//    every caller;
//  - one transferred and collected while its batch's append waited on the I/O lane was read
//    after it was freed (ASan: heap-use-after-free in RunAppend's checksum, native/frames.cc).
// Now commit(), sequence() without `release` and tx.write() copy the pages before they return.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { describe, expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import { WalnutFile } from '../../lib/io/file';
import { HELPERS, runNode } from '../helpers/children';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const PAGE = 4096;

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** Every u32 LE pair of the page is (who, i). */
function pairsOf(page: Buffer): Set<string> {
  const seen = new Set<string>();
  for (let o = 0; o < PAGE; o += 8) seen.add(`${page.readUInt32LE(o)},${page.readUInt32LE(o + 4)}`);
  return seen;
}

describe('page buffers reused or transferred while their commit is in flight', () => {
  it('one caller scribbling over its page: after a SIGKILL, python3 sqlite3 recovery keeps every acknowledged commit of every caller, and its page as it was at commit()', async () => {
    const db = path.join(dir, 'scribble.db');
    const r = await runNode(path.join(HELPERS, 'page-reuse-child.js'), [db, '3']);
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout) as { acked: number[]; carelessAcked: number; commits: number; crashed?: string };
    expect(out.crashed).toBeUndefined();
    expect(out.carelessAcked).toBeGreaterThan(0);
    expect(fs.existsSync(`${db}-wal`)).toBe(true); // killed: nothing checkpointed, the WAL is recovered below
    // the first connection rebuilds the index from the WAL's frames (SQLite's recovery), then
    // copies every commit it kept into the database file
    const ckpt = execFileSync('python3', ['-c', 'import sqlite3, sys\nc = sqlite3.connect(sys.argv[1])\nprint(c.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0])\nc.close()', db], { encoding: 'utf8' });
    expect(ckpt.trim()).toBe('0');
    const bytes = fs.readFileSync(db);
    const lost: string[] = [];
    out.acked.forEach((acked, k) => {
      if (acked === 0) return;
      const at = (2 + k - 1) * PAGE;
      const page = bytes.subarray(at, at + PAGE);
      const pairs = page.length === PAGE ? pairsOf(page) : new Set<string>();
      if (pairs.size !== 1 || !pairs.has(`${k},${acked}`)) lost.push(`caller ${k}: acknowledged ${acked}, page holds ${[...pairs].slice(0, 2).join(' ')}`);
    });
    expect(lost).toEqual([]);
    // the careless caller's last commit holds its page as it was when commit() was called
    const careless = bytes.subarray(65 * PAGE, 66 * PAGE);
    expect([...pairsOf(careless)]).toEqual([`1000,${out.carelessAcked}`]);
  });

  it('a page changed right after commit(), sequence() (no release hook) or tx.write() returned: the commit holds the bytes as they were', async () => {
    const store = await open(path.join(dir, 'changed.db'), { pageSize: PAGE });
    try {
      const scratch = Buffer.alloc(PAGE, 1);
      const one = store.commit([{ pgno: 2, data: scratch }]);
      scratch.fill(0xff);
      await one;
      // a sequenced commit: snapshots read it before it is durable too
      scratch.fill(2);
      const { durable } = store.sequence([{ pgno: 3, data: scratch }]);
      scratch.fill(0xff);
      const early = store.trySnapshotSync()!;
      expect((await early.read(3)).equals(Buffer.alloc(PAGE, 2))).toBe(true);
      early.release();
      await durable;
      const tx = store.begin();
      scratch.fill(3);
      tx.write(4, scratch);
      scratch.fill(0xff);
      expect((await tx.read(4)).equals(Buffer.alloc(PAGE, 3))).toBe(true);
      await tx.commit();
      const snap = await store.snapshot();
      expect((await snap.read(2)).equals(Buffer.alloc(PAGE, 1))).toBe(true);
      expect((await snap.read(3)).equals(Buffer.alloc(PAGE, 2))).toBe(true);
      expect((await snap.read(4)).equals(Buffer.alloc(PAGE, 3))).toBe(true);
      snap.release();
    } finally {
      await store.close();
    }
  });

  it('a page buffer transferred right after commit() fails neither its commit nor the 63 others of its batch', async () => {
    const store = await open(path.join(dir, 'transferred.db'), { pageSize: PAGE });
    try {
      const commits: Promise<unknown>[] = [];
      for (let k = 0; k < 64; k++) {
        const page = new Uint8Array(PAGE).fill(k + 1);
        commits.push(store.commit([{ pgno: 2 + k, data: page }]));
        if (k === 31) structuredClone(page, { transfer: [page.buffer] }); // page is detached now
      }
      const outcomes = await Promise.allSettled(commits);
      expect(outcomes.filter((o) => o.status === 'rejected').map((o) => String((o as PromiseRejectedResult).reason))).toEqual([]);
      expect(store.chainBrokenBy).toBe(null);
      const snap = await store.snapshot();
      for (let k = 0; k < 64; k++) expect((await snap.read(2 + k)).equals(Buffer.alloc(PAGE, k + 1))).toBe(true);
      snap.release();
    } finally {
      await store.close();
    }
  });

  it('a page buffer transferred and collected while its batch waits on the I/O lane: the append reads no freed memory (run under ASan: npm run test:asan) and writes the page as it was', async () => {
    const store = await open(path.join(dir, 'collected.db'), { pageSize: PAGE, autoCheckpoint: false });
    const slow = await WalnutFile.open(path.join(dir, 'slow'), { create: true });
    try {
      const commitAll = (fillOf: (k: number) => number, hand: (k: number, page: Uint8Array) => void) =>
        Promise.allSettled(Array.from({ length: 64 }, (_, k) => {
          const page = new Uint8Array(PAGE).fill(fillOf(k));
          const done = store.commit([{ pgno: 2 + k, data: page }]);
          hand(k, page);
          return done;
        }));
      await commitAll((k) => k, () => undefined); // a write run is under way: the next batch's append goes straight to the lane
      const big = new Uint8Array(16 << 20).fill(1);
      for (let turns = 0; turns < 4; turns++) {
        const busy = slow.writev([big], 0, 'full'); // the I/O lane is busy: the batch's append waits behind it
        let victim: Uint8Array | null = null;
        const committed = commitAll((k) => (k === 63 ? 0xee : 0x10 + turns), (k, page) => {
          if (k === 63) victim = page;
        });
        for (let t = 0; t < turns; t++) await new Promise((resolve) => setImmediate(resolve));
        structuredClone(victim!, { transfer: [victim!.buffer as ArrayBuffer] }); // the receiver lets it go at once
        victim = null;
        for (let i = 0; i < 3; i++) {
          gc();
          await new Promise((resolve) => setTimeout(resolve, 2));
        }
        const reuse = Array.from({ length: 64 }, () => new Uint8Array(PAGE).fill(0x55)); // freed memory taken again
        await busy;
        const outcomes = await committed;
        expect(reuse.length).toBe(64);
        expect(outcomes.filter((o) => o.status === 'rejected').map((o) => String((o as PromiseRejectedResult).reason))).toEqual([]);
        const snap = await store.snapshot();
        expect((await snap.read(65)).equals(Buffer.alloc(PAGE, 0xee))).toBe(true);
        expect((await snap.read(2)).equals(Buffer.alloc(PAGE, 0x10 + turns))).toBe(true);
        snap.release();
      }
    } finally {
      await slow.close();
      await store.close();
    }
  });
});
