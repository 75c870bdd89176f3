// walnut/sql and the store's conditional commits beside another process's FULL, RESTART and
// TRUNCATE checkpoints (python3's sqlite3, busy_timeout 5000). Such a checkpoint holds WAL's
// WRITE lock while it waits for readers: a walnut connection that kept a read mark while its
// commit waited for WRITE stalled both until a busy timeout (the checkpoint returned busy after
// 5 s, every time, beside a continuously committing walnut/sql). Asserted: every checkpoint
// completes (busy 0; a busy result is what a timeout gives), no walnut/sql caller sees an
// error for it, no acknowledged row is lost, integrity ok; a conditional commit whose base its
// caller still holds fails at once (WALNUT_BUSY, CheckpointWaits) instead of stalling. Hang
// guards only, no timing asserts.
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

import { describe, expect, test } from 'vitest';

import { open, type Store } from '../../lib/index';
import { isWalnutError, openDatabase, type Database } from '../../lib/sql';
import { HELPERS, runPython, SqlitePeer } from '../helpers/children';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { checkpoints, expectCompleted, holdsWrite, PATIENT_MS } from '../helpers/sqlite-checkpointer';
import { tmpDir } from '../helpers/tmp';

function cli(file: string, sql: string): string {
  return execFileSync('sqlite3', [file, sql], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

/**
 * `n` walnut/sql callers inserting rows (w = `w`) one autocommit statement each, until `beside`
 * settles; a caller retries only a WALNUT_CONFLICT (another process's commit overtook its
 * transaction: documented, retryable) and records any other error.
 */
async function insertingBeside<T>(db: Database, n: number, w: number, beside: Promise<T>, counts: { acked: number; conflicts: number }): Promise<{ out: T; errors: string[] }> {
  let stop = false;
  const errors: string[] = [];
  const caller = async (): Promise<void> => {
    while (!stop) {
      try {
        await db.run('INSERT INTO t(w, v) VALUES (?, randomblob(100))', [w]);
        counts.acked++;
      } catch (e) {
        if (isWalnutError(e, 'WALNUT_CONFLICT')) counts.conflicts++;
        else errors.push(`${(e as { code?: string }).code}/${(e as { reason?: string }).reason}: ${(e as Error).message}`);
      }
    }
  };
  const callers = Array.from({ length: n }, caller);
  try {
    return { out: await beside, errors };
  } finally {
    stop = true;
    await Promise.all(callers);
  }
}

/** insertingBeside's counts once its callers have stopped (a call in flight at the end counts when it settles). */
async function insertedBeside<T>(db: Database, n: number, w: number, beside: Promise<T>): Promise<{ out: T; acked: number; conflicts: number; errors: string[] }> {
  const counts = { acked: 0, conflicts: 0 };
  const r = await insertingBeside(db, n, w, beside, counts);
  return { ...r, ...counts };
}


/** The first byte of each of `pgnos` as a new snapshot of `store` reads them. */
async function firstBytes(store: Store, pgnos: number[]): Promise<number[]> {
  const s = await store.snapshot();
  try {
    return await Promise.all(pgnos.map(async (pgno) => (await s.read(pgno))[0]!));
  } finally {
    s.release();
  }
}

describe('walnut/sql beside another process\'s FULL, RESTART and TRUNCATE checkpoints', () => {
  for (const callers of [1, 64]) {
    test(`${callers} caller(s) committing continuously: python3 RESTART, TRUNCATE and FULL checkpoints (busy_timeout 5000) each complete (busy 0), the callers see no error, no row is lost`, async () => {
      const file = path.join(tmpDir(), `ckpt-${callers}.db`);
      const db = await openDatabase(file);
      try {
        await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, w INTEGER, v BLOB)');
        const run = await insertedBeside(db, callers, 1, checkpoints(file, ['RESTART', 'TRUNCATE', 'FULL'], 2).run);
        console.log(`${callers} caller(s): ${run.acked} rows beside checkpoints ${JSON.stringify(run.out.results.map((r) => [r.mode, r.busy, r.ms]))} (checkpoint lock busy ${run.out.ckptBusy}x)`);
        expect(run.errors).toEqual([]);
        expect(run.conflicts).toBe(0); // nobody else commits
        expectCompleted(run.out);
        expect(run.acked).toBeGreaterThan(0);
        expect(await db.get('SELECT count(*) AS n FROM t')).toEqual({ n: run.acked });
      } finally {
        await db.close();
      }
      expect(cli(file, 'PRAGMA integrity_check; SELECT count(*) FROM t')).toMatch(/^ok\n\d+$/);
    });
  }

  test('a WAL of 16,000+ frames (4+ -shm segments), a python3 writer and 16 walnut/sql callers: python3 RESTART and TRUNCATE checkpoints complete, every acknowledged row of both is there', async () => {
    const file = path.join(tmpDir(), 'ckpt-large.db');
    const db = await openDatabase(file, { pageSize: 1024, autoCheckpoint: false });
    try {
      await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, w INTEGER, v BLOB)');
      // walnut holds the database open, so the filling process's close neither checkpoints nor deletes the WAL
      await runPython(path.join(HELPERS, 'sqlite-fill.py'), [file, '17000', '900']);
      expect(db.store.metrics().walFrames).toBeGreaterThan(16_000);
      const writer = runPython(path.join(HELPERS, 'sqlite-writer.py'), [file, '3', '2', '0']);
      // the python3 writer's first commit, before the callers start (from then on the committer shares WRITE with it)
      for (let i = 0; (await db.get('SELECT count(*) AS n FROM t WHERE w = 2'))!.n === 0; i++) {
        if (i > 2000) throw new Error('the python3 writer never committed');
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      const run = await insertedBeside(db, 16, 1, Promise.all([checkpoints(file, ['RESTART', 'TRUNCATE'], 2, 300).run, writer]));
      const [ckpt, written] = run.out;
      console.log(`large WAL: walnut/sql ${run.acked} rows (${run.conflicts} conflicts retried), python3 writer ${written.trim()}, checkpoints ${JSON.stringify(ckpt.results.map((r) => [r.mode, r.busy, r.log, r.ms]))}`);
      // a caller kept out past its busy timeout (WALNUT_BUSY) by python3's writer and the RESTART
      // checkpoints holding WRITE is an honest outcome on a loaded machine (its row is not
      // acknowledged); any other error is not
      const busy = run.errors.filter((e) => e.startsWith('WALNUT_BUSY/'));
      if (busy.length > 0) console.log(`large WAL: ${busy.length} calls WALNUT_BUSY, first: ${busy[0]}`);
      expect(run.errors.filter((e) => !e.startsWith('WALNUT_BUSY/'))).toEqual([]);
      expectCompleted(ckpt);
      const rows = (await db.all('SELECT w, count(*) AS n FROM t GROUP BY w ORDER BY w')) as { w: number; n: number }[];
      // a back-to-back python3 writer can keep walnut/sql's callers out for its whole run (each
      // side's busy handler polls; SQLite's processes starve each other alike): 0 acknowledged
      // rows is then an honest outcome, and GROUP BY has no w = 1 group
      const expected = [{ w: -1, n: 17000 }, { w: 1, n: run.acked }, { w: 2, n: Number(written.trim()) }].filter((g) => g.n > 0);
      expect(rows).toEqual(expected);
    } finally {
      await db.close();
    }
    expect(cli(file, 'PRAGMA integrity_check')).toBe('ok');
  });

  test('close() while a commit waits for a python3 RESTART checkpoint that holds WRITE (and waits for a sqlite3 reader): the commit is cut (WALNUT_CLOSED, WriteWaitCut: nothing of it written), the checkpoint completes, close() resolves', async () => {
    const file = path.join(tmpDir(), 'ckpt-close.db');
    const db = await openDatabase(file);
    const reader = new SqlitePeer(file);
    try {
      await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, w INTEGER, v BLOB)');
      for (let i = 0; i < 20; i++) await db.run('INSERT INTO t(w, v) VALUES (0, randomblob(100))');
      await reader.exec('BEGIN');
      expect(await reader.get('SELECT count(*) AS n FROM t')).toEqual({ n: 20 }); // a read mark below the WAL's end from now on
      await db.run('INSERT INTO t(w, v) VALUES (0, randomblob(100))'); // the WAL moves past the reader's mark
      const ckpt = checkpoints(file, ['RESTART'], 1, 0, PATIENT_MS);
      await holdsWrite(file, ckpt.pid); // it waits for the reader now, holding WRITE
      // (close() cuts a wait for WRITE another connection holds: the commit rejects, close() goes on)
      const committed = db.run('INSERT INTO t(w, v) VALUES (7, randomblob(100))').then(() => 'ok', (e: { code?: string; reason?: string }) => `${e.code}/${e.reason}`);
      const closed = db.close();
      await new Promise((resolve) => setTimeout(resolve, 200));
      await reader.exec('COMMIT'); // the sqlite3 reader goes: nothing of walnut's may keep the checkpoint waiting
      expectCompleted(await ckpt.run);
      expect(await committed).toBe('WALNUT_CLOSED/WriteWaitCut');
      await closed;
    } finally {
      await reader.close();
      await db.close();
    }
    expect(cli(file, 'PRAGMA integrity_check; SELECT count(*) FROM t WHERE w = 7; SELECT count(*) FROM t')).toBe('ok\n0\n21');
  });
});

describe("walnut/sql's own store.checkpoint('restart' | 'truncate') while its callers commit", () => {
  // Its kept views and the bases of its sequenced commits (waiting for the WRITE the checkpoint
  // holds) were counted busy readers at once: every such checkpoint came back busy under load,
  // the WAL never cut (20 of 20 busy with 1 or 16 callers). Now, every frame in the database
  // file, those that see the live state read the database file (READ(0)), as before a commit
  // restarts the WAL, and the restart or truncate goes on.
  for (const callers of [1, 16]) {
    test(`${callers} caller(s), a WAL of 16,000+ frames (4+ -shm segments) written by python3 first: restarts and truncates complete, the WAL is cut to 0, every row is there, integrity ok`, async () => {
      const file = path.join(tmpDir(), `own-ckpt-${callers}.db`);
      const db = await openDatabase(file, { pageSize: 1024, autoCheckpoint: false });
      try {
        await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, w INTEGER, v BLOB)');
        await runPython(path.join(HELPERS, 'sqlite-fill.py'), [file, '17000', '900']);
        expect(db.store.metrics().walFrames).toBeGreaterThan(16_000);
        const results: { mode: string; busy: boolean; walFrames: number }[] = [];
        const checkpointing = (async () => {
          for (let i = 0; i < 12; i++) {
            await new Promise((resolve) => setTimeout(resolve, 25));
            const r = await db.store.checkpoint(i % 3 === 2 ? 'restart' : 'truncate');
            results.push({ mode: r.mode, busy: r.busy, walFrames: r.walFrames });
          }
        })();
        const run = await insertedBeside(db, callers, 1, checkpointing);
        console.log(`${callers} caller(s): ${run.acked} rows beside own checkpoints ${JSON.stringify(results.map((r) => [r.mode, r.busy, r.walFrames]))}`);
        expect(run.errors).toEqual([]);
        expect(run.conflicts).toBe(0); // nobody else commits
        for (const r of results) {
          expect(r, JSON.stringify(r)).toMatchObject({ busy: false });
          if (r.mode === 'truncate') expect(r.walFrames).toBe(0);
        }
        expect(run.acked).toBeGreaterThan(0);
        expect(await db.all('SELECT w, count(*) AS n FROM t GROUP BY w ORDER BY w')).toEqual([{ w: -1, n: 17000 }, { w: 1, n: run.acked }]);
      } finally {
        await db.close();
      }
      expect(cli(file, 'PRAGMA integrity_check; SELECT count(*) FROM t')).toMatch(/^ok\n\d+$/);
    });
  }
});

describe('the store\'s conditional commits beside another process\'s RESTART checkpoint', () => {
  test('a commit whose base its caller still holds fails at once (WALNUT_BUSY, CheckpointWaits) instead of stalling the checkpoint; one whose base was released, and a plain commit, wait for it and are written', async () => {
    const file = path.join(tmpDir(), 'ckpt-base.db');
    const store = await open(file, { shareLane: false, autoCheckpoint: false });
    const reader = new SqlitePeer(file);
    const page = (b: number): Buffer => Buffer.alloc(store.pageSize, b);
    try {
      await store.commit([{ pgno: 2, data: page(1) }], { dbSize: 3 });
      await reader.exec('BEGIN');
      await reader.pragma('page_count'); // a read transaction: its mark stays below the WAL's end
      await store.commit([{ pgno: 3, data: page(2) }]);
      const ckpt = checkpoints(file, ['RESTART'], 1, 0, PATIENT_MS);
      await holdsWrite(file, ckpt.pid); // it waits for the sqlite3 reader, holding WRITE
      const held = await store.snapshot();
      const released = await store.snapshot();
      released.release();
      // (a stall would end in WALNUT_BUSY too, after the busy timeout, with reason BusyWrite)
      const e = await expectRejectsWalnut(store.commit([{ pgno: 2, data: page(3) }], { base: held }), 'WALNUT_BUSY', { reason: 'CheckpointWaits' });
      expect(e.message).toMatch(/checkpoint/);
      held.release();
      expect(store.resumeCommits(e)).toBe(true); // a failed commit breaks the chain, as any failure does
      const later = store.commit([{ pgno: 2, data: page(4) }], { base: released });
      const plain = store.commit([{ pgno: 3, data: page(5) }]);
      await new Promise((resolve) => setTimeout(resolve, 200));
      await reader.exec('COMMIT');
      expectCompleted(await ckpt.run);
      await later;
      await plain;
      expect(await firstBytes(store, [2, 3])).toEqual([4, 5]);
    } finally {
      await reader.close();
      await store.close();
    }
  });

  test('a Transaction whose commit waits for WRITE held by such a checkpoint fails at once (WALNUT_BUSY, CheckpointWaits) and lets its snapshot go: the checkpoint completes', async () => {
    const file = path.join(tmpDir(), 'ckpt-tx.db');
    const store = await open(file, { shareLane: false, autoCheckpoint: false });
    const page = (b: number): Buffer => Buffer.alloc(store.pageSize, b);
    try {
      await store.commit([{ pgno: 2, data: page(1) }], { dbSize: 2 });
      const tx = store.begin();
      expect((await tx.read(2))[0]).toBe(1);
      tx.write(2, page(2));
      const ckpt = checkpoints(file, ['RESTART'], 1, 0, PATIENT_MS);
      await holdsWrite(file, ckpt.pid); // it holds WRITE, and waits for the transaction's read mark
      await expectRejectsWalnut(tx.commit(), 'WALNUT_BUSY', { reason: 'CheckpointWaits' });
      expectCompleted(await ckpt.run);
      expect(store.chainBrokenBy).toBeNull(); // a transaction's failure breaks no chain (group-committer.ts)
      const again = store.begin();
      again.write(2, page(3));
      await again.commit();
      expect(await firstBytes(store, [2])).toEqual([3]);
    } finally {
      await store.close();
    }
  });

  test('a Transaction whose commit is queued behind a batch that waits for WRITE held by such a checkpoint (it waits for the transaction\'s read mark) fails at once too: the checkpoint completes, the batch is written', async () => {
    const file = path.join(tmpDir(), 'ckpt-tx-queued.db');
    const store = await open(file, { shareLane: false, autoCheckpoint: false, busyTimeout: 20_000 });
    const page = (b: number): Buffer => Buffer.alloc(store.pageSize, b);
    try {
      await store.commit([{ pgno: 2, data: page(1) }], { dbSize: 4 });
      const tx = store.begin();
      expect((await tx.read(2))[0]).toBe(1);
      tx.write(2, page(2));
      await store.commit([{ pgno: 3, data: page(1) }]); // the WAL moves past the transaction's read mark
      const ckpt = checkpoints(file, ['FULL'], 1, 0, PATIENT_MS);
      await holdsWrite(file, ckpt.pid); // it holds WRITE and waits for the transaction's read mark (busy_timeout PATIENT_MS)
      const plain = store.commit([{ pgno: 4, data: page(3) }]); // its batch waits for WRITE
      await new Promise((resolve) => setTimeout(resolve, 200));
      const e = await expectRejectsWalnut(tx.commit(), 'WALNUT_BUSY', { reason: 'CheckpointWaits' });
      expectCompleted(await ckpt.run); // (before: busy 1 after its timeout, the queued commit keeping the read mark)
      await plain;
      expect(store.resumeCommits(e)).toBe(false); // nothing to mend: a transaction's failure breaks no chain
      expect(await firstBytes(store, [2, 4])).toEqual([1, 3]);
    } finally {
      await store.close();
    }
  });

  test('a Transaction failed CheckpointWaits (it breaks no chain): the batch it left empty neither waits on for WRITE nor breaks the chain when that checkpoint outlasts the busy timeout (nobody was told that failure)', async () => {
    const file = path.join(tmpDir(), 'ckpt-tx-empty.db');
    const store = await open(file, { shareLane: false, autoCheckpoint: false, busyTimeout: 300 });
    const reader = new SqlitePeer(file);
    const page = (b: number): Buffer => Buffer.alloc(store.pageSize, b);
    try {
      await store.commit([{ pgno: 2, data: page(1) }], { dbSize: 3 });
      await reader.exec('BEGIN');
      await reader.pragma('page_count'); // a read mark below the WAL's end from now on
      await store.commit([{ pgno: 3, data: page(2) }]);
      const tx = store.begin();
      expect((await tx.read(2))[0]).toBe(1);
      tx.write(2, page(3));
      const ckpt = checkpoints(file, ['RESTART'], 1, 0, PATIENT_MS);
      await holdsWrite(file, ckpt.pid); // it holds WRITE and waits for the sqlite3 reader (busy_timeout PATIENT_MS)
      const e = await expectRejectsWalnut(tx.commit(), 'WALNUT_BUSY', { reason: 'CheckpointWaits' });
      expect(store.resumeCommits(e)).toBe(false); // nothing to mend
      // several of walnut's busy timeouts (300 ms) while the checkpoint still waits for the reader
      await new Promise((resolve) => setTimeout(resolve, 1500));
      await reader.exec('COMMIT');
      expectCompleted(await ckpt.run);
      // a commit now is written (it was refused WALNUT_FAILED ChainBroken, its cause a
      // WALNUT_BUSY no commit had been given)
      await store.commit([{ pgno: 2, data: page(4) }]);
      expect(store.metrics().chainBreaks).toBe(0);
      expect(await firstBytes(store, [2])).toEqual([4]);
    } finally {
      await reader.close();
      await store.close();
    }
  });
});
