// The public commit API: group commit, ordering, transactions (first committer wins),
// snapshot isolation, batching limits, options and argument errors, and the fault matrix.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import { WalnutError } from '../../lib/errors';
import { HELPERS, runJsonChild } from '../helpers/children';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
let n = 0;
const fresh = () => path.join(dir, `s${n++}.db`);
const page = (v: number, size = 4096) => {
  const b = Buffer.alloc(size, v & 0xff);
  b.writeUInt32BE(v, 0);
  return b;
};

describe('open', () => {
  it('creates a new database that SQLite accepts, with the requested page size', async () => {
    const p = fresh();
    const store = await open(p, { pageSize: 8192 });
    expect(store.pageSize).toBe(8192);
    expect(fs.statSync(p).size).toBe(8192);
    await store.close();
    const db = new Database(p);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('page_size', { simple: true })).toBe(8192);
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    db.exec('CREATE TABLE t(x); INSERT INTO t VALUES (1)');
    db.close();
    // an existing database keeps its own page size
    const again = await open(p, { pageSize: 1024 });
    expect(again.pageSize).toBe(8192);
    await again.close();
  });

  it('validates options, naming the option', async () => {
    const bad: [object, string][] = [
      [{ pageSize: 1000 }, 'pageSize'],
      [{ synchronous: 'sometimes' }, 'synchronous'],
      [{ lockingMode: 'private' }, 'lockingMode'],
      [{ groupCommit: { maxBatchBytes: 0 } }, 'groupCommit.maxBatchBytes'],
      [{ groupCommit: { maxWaitMicros: -1 } }, 'groupCommit.maxWaitMicros'],
      [{ groupCommit: { linger: 1 } }, 'groupCommit.linger'],
      [{ autoCheckpoint: 0 }, 'autoCheckpoint'],
      [{ busyTimeout: 1.5 }, 'busyTimeout'],
      [{ fec: { repairSymbols: 17 } }, 'fec.repairSymbols'],
      [{ fec: { codec: 'lz4' } }, 'fec.codec'],
      [{ fec: { repairSymbols: 2, extra: 1 } }, 'fec.extra'],
      [{ fec: true }, 'fec'],
      [{ keepWal: 'yes' }, 'keepWal'],
      [{ colour: 'blue' }, 'colour'],
      // names inherited from a prototype (options built as Object.create(defaults)) are read as
      // options, so they are checked as options: a misspelt one was dropped
      [Object.create({ busyTimout: 100 }), 'busyTimout'],
      [{ groupCommit: Object.create({ maxBatchByte: 1 }) }, 'groupCommit.maxBatchByte'],
      [{ fec: Object.assign(Object.create({ codek: 'rs' }), { repairSymbols: 2 }) }, 'fec.codek'],
    ];
    for (const [options, reason] of bad) {
      await expectRejectsWalnut(open(fresh(), options as never), 'WALNUT_INVALID_ARGUMENT', { reason });
    }
  });
});

describe('commit', () => {
  it('turns 500 concurrent commits into a few batches, in submission order', async () => {
    const store = await open(fresh());
    const results = await Promise.all(Array.from({ length: 500 }, (_, i) => store.commit([{ pgno: 2 + (i % 50), data: page(i) }])));
    for (let i = 1; i < results.length; i++) {
      expect(results[i]!.commitSeq).toBe(results[i - 1]!.commitSeq + 1);
      expect(results[i]!.firstFrame).toBe(results[i - 1]!.lastFrame + 1);
    }
    expect(results.every((r) => r.durable)).toBe(true);
    const m = store.metrics();
    expect(m.commits).toBe(500);
    expect(m.batches).toBeLessThan(500);
    expect(m.fsyncs).toBe(m.batches);
    const snap = await store.snapshot();
    for (let pg = 2; pg < 52; pg++) expect((await snap.read(pg)).readUInt32BE(0)).toBe(450 + pg - 2); // the last write per page
    expect(snap.dbSize).toBe(51);
    snap.release();
    await store.close();
  });

  it('later writes of the same page in one commit win; dbSize defaults and can be set', async () => {
    const store = await open(fresh());
    await store.commit([{ pgno: 3, data: page(1) }, { pgno: 3, data: page(2) }]);
    let snap = await store.snapshot();
    expect((await snap.read(3)).readUInt32BE(0)).toBe(2);
    expect(snap.dbSize).toBe(3);
    snap.release();
    await store.commit([{ pgno: 2, data: page(9) }], { dbSize: 10 });
    snap = await store.snapshot();
    expect(snap.dbSize).toBe(10);
    expect((await snap.read(10)).equals(Buffer.alloc(4096))).toBe(true); // never written: zeros
    snap.release();
    await store.close();
  });

  it('splits batches at maxBatchBytes', async () => {
    const store = await open(fresh(), { groupCommit: { maxBatchBytes: 2 * 4096 } });
    await Promise.all(Array.from({ length: 10 }, (_, i) => store.commit([{ pgno: 2 + i, data: page(i) }])));
    const m = store.metrics();
    expect(m.batches).toBeGreaterThanOrEqual(5);
    expect(m.batchSize.max).toBeLessThanOrEqual(2);
    expect(m.wakeReasons.sizeCap).toBeGreaterThan(0);
    // a commit larger than the cap still goes, alone
    await store.commit([2, 3, 4].map((pgno) => ({ pgno, data: page(pgno) })));
    await store.close();
  });

  it('waits up to maxWaitMicros to gather a batch', async () => {
    const store = await open(fresh(), { groupCommit: { maxWaitMicros: 2000 } });
    const first = store.commit([{ pgno: 2, data: page(1) }]);
    await new Promise((r) => setTimeout(r, 0));
    const second = store.commit([{ pgno: 3, data: page(2) }]);
    await Promise.all([first, second]);
    expect(store.metrics().wakeReasons.timer).toBeGreaterThan(0);
    await store.close();
  });

  it('rejects bad pages and calls after close with WalnutErrors', async () => {
    const store = await open(fresh());
    await expectRejectsWalnut(store.commit([{ pgno: 2, data: Buffer.alloc(100) }]), 'WALNUT_INVALID_ARGUMENT', { reason: 'pageSize' });
    await expectRejectsWalnut(store.commit([{ pgno: 0, data: page(1) }]), 'WALNUT_INVALID_ARGUMENT', { reason: 'pgno' });
    await expectRejectsWalnut(store.commit([{ pgno: 2, data: 'x' as unknown as Buffer }]), 'WALNUT_INVALID_ARGUMENT', { reason: 'data' });
    await expectRejectsWalnut(store.commit([]), 'WALNUT_INVALID_ARGUMENT', { reason: 'pages' });
    await expectRejectsWalnut(store.commit([{ pgno: 2, data: page(1) }], { dbSize: 0 }), 'WALNUT_INVALID_ARGUMENT', { reason: 'dbSize' });
    // the failed calls wrote nothing
    expect(store.metrics().walFrames).toBe(0);
    await store.close();
    await expectRejectsWalnut(store.commit([{ pgno: 2, data: page(1) }]), 'WALNUT_CLOSED');
    await expectRejectsWalnut(store.snapshot(), 'WALNUT_CLOSED');
    expect(() => store.begin()).toThrow(WalnutError);
  });

  it('synchronous normal and off commit without syncing each batch', async () => {
    for (const synchronous of ['normal', 'off'] as const) {
      const store = await open(fresh(), { synchronous });
      const r = await store.commit([{ pgno: 2, data: page(1) }]);
      expect(r.durable).toBe(false);
      expect(store.metrics().fsyncs).toBe(0);
      await store.close();
    }
  });
});

describe('transactions', () => {
  it('see their snapshot plus their own writes', async () => {
    const store = await open(fresh());
    await store.commit([{ pgno: 2, data: page(1) }]);
    const tx = store.begin();
    await store.commit([{ pgno: 2, data: page(2) }]); // after the snapshot
    expect((await tx.read(2)).readUInt32BE(0)).toBe(1);
    tx.write(3, page(7));
    expect((await tx.read(3)).readUInt32BE(0)).toBe(7);
    await tx.rollback();
    await store.close();
  });

  it('first committer wins on pages read or written; the loser writes nothing', async () => {
    const store = await open(fresh());
    await store.commit([{ pgno: 2, data: page(1) }, { pgno: 3, data: page(1) }]);
    const a = store.begin();
    const b = store.begin();
    const c = store.begin();
    const va = (await a.read(2)).readUInt32BE(0);
    const vb = (await b.read(2)).readUInt32BE(0);
    a.write(2, page(va + 10));
    b.write(2, page(vb + 20));
    c.write(4, page(99)); // disjoint
    const framesBefore = store.metrics().walFrames;
    const ra = await a.commit();
    expect(ra).not.toBeNull();
    await expectRejectsWalnut(b.commit(), 'WALNUT_CONFLICT');
    expect(store.metrics().walFrames).toBe(framesBefore + 1);
    expect(await c.commit()).not.toBeNull();
    // a blind write to a page someone committed after the snapshot also loses
    const d = store.begin();
    await store.commit([{ pgno: 3, data: page(5) }]);
    d.write(3, page(6));
    await expectRejectsWalnut(d.commit(), 'WALNUT_CONFLICT');
    const snap = await store.snapshot();
    expect((await snap.read(2)).readUInt32BE(0)).toBe(11);
    expect((await snap.read(3)).readUInt32BE(0)).toBe(5);
    snap.release();
    expect(store.metrics().conflicts).toBe(2);
    await store.close();
  });

  it('conflicts inside one batch: the earlier transaction wins', async () => {
    const store = await open(fresh());
    await store.commit([{ pgno: 2, data: page(1) }]);
    const txs = Array.from({ length: 5 }, () => store.begin());
    for (const tx of txs) {
      const v = (await tx.read(2)).readUInt32BE(0);
      tx.write(2, page(v + 1));
    }
    const outcomes = await Promise.allSettled(txs.map((t) => t.commit()));
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    expect(outcomes[0]!.status).toBe('fulfilled');
    const snap = await store.snapshot();
    expect((await snap.read(2)).readUInt32BE(0)).toBe(2);
    snap.release();
    await store.close();
  });
});

describe('another connection writes between our batches', () => {
  it('both connections commits survive (the append window is re-read under the write lock)', async () => {
    const p = fresh();
    const one = await open(p);
    const two = await open(p);
    for (let i = 0; i < 20; i++) {
      await one.commit([{ pgno: 2, data: page(i) }]);
      await two.commit([{ pgno: 3, data: page(100 + i) }]);
    }
    await Promise.all([one.commit([{ pgno: 4, data: page(7) }]), two.commit([{ pgno: 5, data: page(8) }])]);
    await one.close();
    await two.close();
    // the last connection to close checkpointed everything and removed the -wal and -shm
    expect(fs.existsSync(`${p}-wal`)).toBe(false);
    expect(fs.existsSync(`${p}-shm`)).toBe(false);
    const three = await open(p);
    const snap = await three.snapshot();
    expect((await snap.read(2)).readUInt32BE(0)).toBe(19);
    expect((await snap.read(3)).readUInt32BE(0)).toBe(119);
    expect((await snap.read(4)).readUInt32BE(0)).toBe(7);
    expect((await snap.read(5)).readUInt32BE(0)).toBe(8);
    expect(snap.mxFrame).toBe(0);
    snap.release();
    await three.close();
  });
});

describe('fault matrix', () => {
  async function run(scenario: string) {
    const db = fresh();
    const out = await runJsonChild<any>(path.join(HELPERS, 'store-fault-child.js'), [db, scenario], { WALNUT_FAULT_INJECTION: '1' });
    // reopen: exactly the acknowledged commits are there
    const store = await open(db);
    const snap = await store.snapshot();
    for (const { pgno, v } of out.acknowledged) expect((await snap.read(pgno))[100]).toBe(v);
    const acked = new Set(out.acknowledged.map((a: { pgno: number }) => a.pgno));
    for (const pgno of [3, 4, 5, 6, 7]) if (!acked.has(pgno)) expect((await snap.read(pgno)).equals(Buffer.alloc(4096))).toBe(true);
    snap.release();
    await store.close();
    return out;
  }

  for (const [scenario, code] of [['writeEIO', 'WALNUT_IO'], ['writeENOSPC', 'WALNUT_FULL'], ['shortWrite', 'WALNUT_IO']] as const) {
    it(`${scenario}: the batch gets ${code}, nothing is published, later commits are refused (ChainBroken) until resumeCommits()`, async () => {
      const out = await run(scenario);
      expect(out.before.ok).toBe(true);
      for (const b of out.batch) expect(b).toMatchObject({ ok: false, code, name: 'WalnutError' });
      expect(out.after).toMatchObject({ ok: false, code: 'WALNUT_FAILED', reason: 'ChainBroken', causeCode: code, name: 'WalnutError' });
      expect(out.resumed).toBe(true);
      expect(out.afterResume.ok).toBe(true);
      expect(out.acknowledged.map((a: { pgno: number }) => a.pgno)).toEqual([2, 7]);
    });
  }

  it('fsyncEIO: the batch and every later call get WALNUT_FAILED; reopening recovers', async () => {
    const out = await run('fsyncEIO');
    for (const b of out.batch) expect(b).toMatchObject({ ok: false, code: 'WALNUT_FAILED' });
    expect(out.after).toMatchObject({ ok: false, code: 'WALNUT_FAILED' });
    expect(out.resumed).toBe(false); // a failed sync stops the store for good: reopen
    expect(out.afterResume).toMatchObject({ ok: false, code: 'WALNUT_FAILED' });
    expect(out.acknowledged.map((a: { pgno: number }) => a.pgno)).toEqual([2]);
  });
});

describe('SQLite reads what walnut committed', () => {
  it('SQLite page images committed through store.commit pass integrity_check', async () => {
    const src = path.join(dir, 'img-src.db');
    const s = new Database(src);
    s.pragma('journal_mode = WAL');
    s.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)');
    const ins = s.prepare('INSERT INTO t(v) VALUES (?)');
    for (let i = 0; i < 300; i++) ins.run(`row ${i} `.repeat(20));
    s.pragma('wal_checkpoint(TRUNCATE)');
    s.close();
    const image = fs.readFileSync(src);
    // a new walnut database receives SQLite's pages 1..N in three transactions (each of the full
    // size: page 1's header says N pages, and a smaller dbSize would be refused)
    const target = fresh();
    const store = await open(target);
    const pages = image.length / 4096;
    const all = Array.from({ length: pages }, (_, i) => ({ pgno: i + 1, data: image.subarray(i * 4096, (i + 1) * 4096) }));
    const third = Math.ceil(pages / 3);
    const size = { dbSize: pages };
    await Promise.all([store.commit(all.slice(0, third), size), store.commit(all.slice(third, 2 * third), size), store.commit(all.slice(2 * third), size)]);
    await store.close();
    const db = new Database(target);
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    expect(db.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: 300 });
    db.close();
  });
});
