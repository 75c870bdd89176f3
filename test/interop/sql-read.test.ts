// walnut/sql read connections (issue #20): queries outside transactions run on their own SQLite
// connections with their own snapshots, so a long read neither waits behind the writer's
// callers nor holds them up; what only the writer connection knows stays on it.
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

import { describe, expect, test } from 'vitest';

import { isWalnutError, openDatabase } from '../../lib/sql';
import { HELPERS, runPython } from '../helpers/children';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { tmpDir } from '../helpers/tmp';
import { WAIT_MS } from '../helpers/until';

function cli(file: string, sql: string): string {
  return execFileSync('sqlite3', [file, sql], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

/** Rows (g, 'a') and (g, 'b') for g in [0, pairs): a snapshot holds both of a pair or neither. */
const SEED = (pairs: number): string =>
  `INSERT INTO t(g, v) WITH RECURSIVE c(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM c WHERE x < ${2 * pairs - 1}) SELECT x / 2, CASE x % 2 WHEN 0 THEN 'a' ELSE 'b' END FROM c`;

describe('walnut/sql read connections', () => {
  test('a long read while 64 callers commit: a consistent snapshot (every acknowledged pair, no half pair), and the writer keeps running transactions during it', async () => {
    const file = path.join(tmpDir(), 'long-read.db');
    // synchronous 'off': the commits' pace is the write's, not the disk's flush (the read is what is measured)
    const db = await openDatabase(file, { synchronous: 'off' });
    const SEEDED = 40_000;
    try {
      await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, g INTEGER, v TEXT)');
      await db.exec(SEED(SEEDED));
      let stop = false;
      let started = 0;
      let next = SEEDED;
      const acked = new Set<number>();
      const callers = Array.from({ length: 64 }, async () => {
        while (!stop) {
          const g = next++;
          await db.transaction(async (tx) => {
            started++;
            await tx.run('INSERT INTO t(g, v) VALUES (?, ?)', [g, 'a']);
            await tx.run('INSERT INTO t(g, v) VALUES (?, ?)', [g, 'b']);
          });
          acked.add(g);
        }
      });
      let startedDuring = 0;
      // Up to 5 long reads; the old single connection ran at most the 64 transactions queued
      // ahead of a read before it (each caller has one outstanding), never more.
      for (let attempt = 0; attempt < 5 && startedDuring <= 64; attempt++) {
        const ackedBefore = [...acked];
        const startedBefore = started;
        const rows = (await db.all('SELECT g, v FROM t')) as { g: number; v: string }[];
        startedDuring = started - startedBefore;
        const seen = new Map<number, string>();
        for (const r of rows) seen.set(r.g, (seen.get(r.g) ?? '') + r.v);
        for (const [g, vs] of seen) if (vs !== 'ab') throw new Error(`pair ${g} seen as '${vs}': not one snapshot`);
        for (let g = 0; g < SEEDED; g++) expect(seen.has(g)).toBe(true);
        for (const g of ackedBefore) if (!seen.has(g)) throw new Error(`pair ${g} was acknowledged before the read began and is missing`);
      }
      stop = true;
      await Promise.all(callers);
      expect(startedDuring).toBeGreaterThan(64);
      expect(await db.get('SELECT count(*) AS n FROM t')).toEqual({ n: 2 * (SEEDED + acked.size) });
    } finally {
      await db.close();
    }
    expect(cli(file, 'PRAGMA integrity_check')).toBe('ok');
  });

  test('reads see every acknowledged write; per-connection things (TEMP tables, last_insert_rowid(), changes()) are answered by the writer; readConnections is checked', async () => {
    const file = path.join(tmpDir(), 'read-routing.db');
    await expectRejectsWalnut(openDatabase(file, { readConnections: -1 }), 'WALNUT_INVALID_ARGUMENT', { reason: 'readConnections' });
    await expectRejectsWalnut(openDatabase(file, { readConnections: 1.5 }), 'WALNUT_INVALID_ARGUMENT', { reason: 'readConnections' });
    for (const readConnections of [0, 1, 3]) {
      const db = await openDatabase(file, { readConnections });
      try {
        await db.exec('DROP TABLE IF EXISTS t; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)');
        const reads = await Promise.all(
          Array.from({ length: 16 }, async (_, i) => {
            const { lastInsertRowid } = await db.run('INSERT INTO t(v) VALUES (?)', [`v${i}`]);
            return (await db.get('SELECT v FROM t WHERE id = ?', [lastInsertRowid])) as { v: string } | undefined;
          }),
        );
        expect(reads.map((r) => r?.v)).toEqual(Array.from({ length: 16 }, (_, i) => `v${i}`));
        const { lastInsertRowid } = await db.run("INSERT INTO t(v) VALUES ('last')");
        expect(await db.get('SELECT last_insert_rowid() AS id, changes() AS c')).toEqual({ id: lastInsertRowid, c: 1 });
        await db.exec("CREATE TEMP TABLE scratch(x); INSERT INTO scratch VALUES ('temp')");
        expect(await db.all('SELECT x FROM scratch')).toEqual([{ x: 'temp' }]);
        // a statement that writes, through get(): runs on the writer, and its write is kept
        expect(await db.get("INSERT INTO t(v) VALUES ('returning') RETURNING v")).toEqual({ v: 'returning' });
        expect(await db.get("SELECT count(*) AS n FROM t WHERE v = 'returning'")).toEqual({ n: 1 });
        await expectRejectsWalnut(db.get('SELECT * FROM nowhere'), 'WALNUT_SQL', { sqliteCode: 1 });
      } finally {
        await db.close();
      }
    }
  });

  test('a loop of reads that need no I/O still lets the event loop turn (a timer fires, commits complete)', async () => {
    for (const readConnections of [0, 2]) {
      const db = await openDatabase(path.join(tmpDir(), `turns-${readConnections}.db`), { readConnections });
      try {
        await db.exec('CREATE TABLE t(v)');
        let fired = false;
        setTimeout(() => (fired = true), 1);
        const writing = db.run('INSERT INTO t VALUES (1)'); // its durability needs the event loop
        let committed = false;
        void writing.then(() => (committed = true));
        // the old code spun here until this; WAIT_MS, not 5 s: a commit's fsync on a loaded disk can take seconds
        const giveUp = performance.now() + WAIT_MS;
        while ((!fired || !committed) && performance.now() < giveUp) await db.get('SELECT 1 AS one');
        expect(fired).toBe(true);
        expect(committed).toBe(true);
        await writing;
      } finally {
        await db.close();
      }
    }
  });

  test('close() while reads and writes are queued: each settles (a result or WALNUT_CLOSED), nothing hangs, the files stay sound', async () => {
    const file = path.join(tmpDir(), 'read-close.db');
    const db = await openDatabase(file);
    await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)');
    await db.exec(SEED(2000).replace('t(g, v)', 't(id, v)').replace('x / 2', 'x'));
    const calls: Promise<unknown>[] = [];
    for (let i = 0; i < 50; i++) {
      calls.push(db.all('SELECT * FROM t'));
      calls.push(db.run('INSERT INTO t(v) VALUES (?)', ['late']));
    }
    const closing = db.close();
    calls.push(db.get('SELECT 1 AS one'));
    const settled = await Promise.allSettled(calls);
    await closing;
    for (const s of settled) {
      if (s.status === 'rejected') expect((s.reason as { code?: string }).code).toBe('WALNUT_CLOSED');
    }
    expect(settled.at(-1)!.status).toBe('rejected');
    expect(cli(file, 'PRAGMA integrity_check')).toBe('ok');
  });
});

describe('walnut/sql read marks', () => {
  /** 64 callers, 60 inserts each, a read now and then (a read connection's base too). */
  async function load(db: Awaited<ReturnType<typeof openDatabase>>): Promise<void> {
    await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)');
    const insert = await db.prepare('INSERT INTO t(v) VALUES (?)');
    let done = 0;
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        for (let i = 0; i < 60; i++) {
          await insert.run(['x'.repeat(100)]);
          if (++done % 500 === 0) await db.get('SELECT count(*) AS n FROM t');
        }
      }),
    );
  }

  test('the read snapshot kept across back-to-back transactions does not keep the WAL from restarting under 64 callers', async () => {
    const file = path.join(tmpDir(), 'marks.db');
    const db = await openDatabase(file, { synchronous: 'off', autoCheckpoint: 200 });
    try {
      await load(db);
      // 3,840 commits of 2 pages: without restarts the WAL would hold 7,680 frames
      expect(db.store.metrics().walFrames).toBeLessThan(2000);
    } finally {
      await db.close();
    }
    expect(cli(file, 'PRAGMA integrity_check; SELECT count(*) FROM t')).toBe(`ok\n${64 * 60}`);
  });

  test("a lone caller's snapshot, kept across its own commits, beside a python3 writer that commits and runs RESTART checkpoints: every acknowledged row of both is there, integrity ok", async () => {
    const file = path.join(tmpDir(), 'lone.db');
    // small auto-checkpoints: walnut restarts the WAL under the kept snapshot every ~25 transactions
    const db = await openDatabase(file, { autoCheckpoint: 50 });
    let acknowledged = 0;
    let py: string[] = [];
    try {
      await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, w INTEGER, v BLOB)');
      const insert = await db.prepare('INSERT INTO t(w, v) VALUES (0, randomblob(300))');
      let running = true;
      // python3: one row per transaction, a RESTART checkpoint after every 5 (SQLite's own, from another process)
      const writer = runPython(path.join(HELPERS, 'sqlite-writer.py'), [file, '1.5', '1', '0', '5']).finally(() => (running = false));
      for (let i = 0; running; i++) {
        try {
          await insert.run();
          acknowledged++;
        } catch (e) {
          if (!isWalnutError(e, 'WALNUT_CONFLICT')) throw e; // overtaken by a python3 commit: retryable
        }
        if (i % 20 === 19) await new Promise((resolve) => setTimeout(resolve, 2)); // idle now and then: its snapshot goes
      }
      py = (await writer).trim().split('\n');
      expect((await db.get('SELECT count(*) AS n FROM t WHERE w = 0'))!.n).toBe(acknowledged);
    } finally {
      await db.close();
    }
    expect(acknowledged).toBeGreaterThan(0);
    expect(cli(file, 'PRAGMA integrity_check; SELECT count(*) FROM t WHERE w = 0; SELECT count(*) FROM t WHERE w = 1')).toBe(`ok\n${acknowledged}\n${py[0]}`);
  });

  test('once the calls settled the database holds no read mark: a TRUNCATE checkpoint right then empties the WAL', async () => {
    const file = path.join(tmpDir(), 'idle.db');
    const db = await openDatabase(file, { synchronous: 'off', autoCheckpoint: false });
    try {
      await load(db);
      expect(await db.store.checkpoint('truncate')).toMatchObject({ busy: false, walFrames: 0 });
      await db.get('SELECT count(*) AS n FROM t'); // a read alone (nothing in flight) lets its mark go too
      expect(await db.store.checkpoint('truncate')).toMatchObject({ busy: false, walFrames: 0 });
    } finally {
      await db.close();
    }
  });
});
