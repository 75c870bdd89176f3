// The replication's last commits: stop() publishes every commit that was durable in the
// database when stop() was called, walnut's own and other processes' (python3's sqlite3, which
// the follow export sees in the WAL), and close() every commit the store acknowledged (it stops
// the replication after its last commit settled) and every commit durable when it was called.
// Real scale: a 16,500-frame WAL (4+ -shm segments) on the primary, a python3 writer committing
// in a loop (BEGIN IMMEDIATE, waiting out walnut's WRITE in its busy handler) beside walnut/sql
// callers (each transaction of either: pair 1 and pair 2 += 1, one row into t), through the
// moment stop() or close() is called and after it.
// What the database held when stop()/close() was called is read by better-sqlite3, synchronously,
// right before the call in the same turn of the event loop: every row there (its id at most
// that read's max(id)) must be in the stream, restored from it (restoreFromNats). The restored
// state must also be a state the primary had: t's rows are never changed or deleted and pair
// counts the transactions, so the restore's rows are the primary's rows up to its max(id) and
// both pair rows = count(*) of t.
// Also: stop() called right after close(), while close() still writes commits queued before it
// (a batch each), and right after walnut/sql's close() while its queued transactions still run:
// every one close() acknowledges is in the stream; and the handle's arguments
// (metrics(x) refused; stop() refuses a number, a timeout it does not take, and takes a signal's name).
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import { restoreFromNats } from '../../lib/replicate/restore-nats';
import { isWalnutError, openDatabase, type Database as SqlDatabase } from '../../lib/sql';
import { HELPERS } from '../helpers/children';
import { expectRejectsWalnut, expectWalnutError } from '../helpers/expect-error';
import { segmentEnd } from '../helpers/large-wal';
import { sqliteRowCount } from '../helpers/sqlite-db';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';

if (NATS_SKIP !== null) console.warn(NATS_SKIP);

const dir = tmpDir('walnut-replicate-stop-tail-');
/** Two of the six python3 cases run in `npm test`, all of them with WALNUT_SCALE=1 (npm run test:scale). */
const SCALE = process.env.WALNUT_SCALE === '1';
const BULK_ROWS = 16_500; // one walnut transaction of 16,500+ frames (1 KiB pages): 4+ -shm segments

interface State {
  maxId: number;
  pair: number[];
  count: number;
  rows: string[];
}

/** What SQLite reads of `file` now (better-sqlite3, synchronously): t's rows, pair's counts. */
function stateOf(file: string): State {
  const db = new Database(file, { fileMustExist: true });
  try {
    const rows = (db.prepare('SELECT id, w, i, hex(v) AS v FROM t ORDER BY id').all() as { id: number; w: number; i: number; v: string }[]).map((r) => `${r.id} ${r.w} ${r.i} ${r.v}`);
    return {
      maxId: (db.prepare('SELECT coalesce(max(id), 0) AS m FROM t').get() as { m: number }).m,
      pair: (db.prepare('SELECT n FROM pair ORDER BY id').all() as { n: number }[]).map((r) => r.n),
      count: rows.length,
      rows,
    };
  } finally {
    db.close();
  }
}

/**
 * A python3 writer (sqlite-pair-writer.py, BEGIN IMMEDIATE: it waits out walnut's WRITE in its
 * busy handler) until end(); `printed` the ids of its commits it reported; `nextCommit(f)` runs f
 * as the next report comes in (a commit python3 has just made).
 */
function pythonWriter(file: string, autocheckpoint: number): { printed: number[]; nextCommit: (f: () => void) => void; end: () => Promise<void> } {
  const child: ChildProcess = spawn('python3', [path.join(HELPERS, 'sqlite-pair-writer.py'), file, '3600', '99', String(autocheckpoint), '1'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const printed: number[] = [];
  let next: (() => void) | null = null;
  let partial = '';
  child.stdout!.on('data', (d: Buffer) => {
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop()!;
    for (const line of lines) printed.push(Number(line));
    if (lines.length > 0 && next !== null) {
      const f = next;
      next = null;
      f();
    }
  });
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  return {
    printed,
    nextCommit: (f) => (next = f),
    end: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/**
 * Four walnut/sql callers committing pair += 1 and one row each (and with `truncate`, a truncate
 * checkpoint every 3 ms: the WAL cut and restarted under the follow export), until end();
 * `acked` the ids of the commits that resolved.
 */
function walnutCallers(db: SqlDatabase, truncate: boolean): { acked: number[]; end: () => Promise<string[]> } {
  let writing = true;
  const acked: number[] = [];
  const errors: string[] = [];
  const callers = Array.from({ length: 4 }, async (_, w) => {
    for (let i = 0; writing; i++) {
      try {
        const id = await db.transaction(async (tx) => {
          await tx.run('UPDATE pair SET n = n + 1');
          const r = await tx.run('INSERT INTO t(w, i, v) VALUES (?, ?, randomblob(?))', [w, i, 100 + ((w * 31 + i * 7) % 2000)]);
          return Number(r.lastInsertRowid);
        });
        acked.push(id);
      } catch (e) {
        if (isWalnutError(e, 'WALNUT_CLOSED')) return; // close() came
        // python3 overtook the transaction, or held WRITE past the busy timeout
        if (!isWalnutError(e, 'WALNUT_CONFLICT') && !isWalnutError(e, 'WALNUT_BUSY')) errors.push(String(e));
      }
      // (with the checkpoints, a pause that leaves python3's busy handler a turn: it was starved, ~10 commits a second)
      await new Promise((r) => setTimeout(r, truncate ? 5 : 1));
    }
  });
  const checkpointer = (async () => {
    while (writing && truncate) {
      try {
        await db.store.checkpoint('truncate');
      } catch (e) {
        if (isWalnutError(e, 'WALNUT_CLOSED')) return;
        if (!isWalnutError(e, 'WALNUT_BUSY')) errors.push(`checkpoint: ${String(e)}`);
      }
      await new Promise((r) => setTimeout(r, 3));
    }
  })();
  return {
    acked,
    end: async () => {
      writing = false;
      await Promise.all([...callers, checkpointer]);
      return errors;
    },
  };
}

describe.skipIf(NATS_SKIP !== null)('replication: the last commits at stop() and close(), python3 writing beside, a 16,500-frame WAL', () => {
  let server: NatsNode;
  beforeAll(async () => {
    server = await startNatsServer();
  });
  afterAll(() => stopNats([server]));

  let n = 0;
  // [ending, thread, truncate checkpoints, run without WALNUT_SCALE]
  const cases = [
    ['stop', true, true, true],
    ['close', false, false, true],
    ['stop', false, false, false],
    ['stop', false, true, false],
    ['close', true, false, false],
    ['close', true, true, false],
  ] as const;
  for (const [ending, thread, truncate, always] of cases) {
    it.skipIf(!always && !SCALE)(`${ending}() with thread: ${thread}${truncate ? ', truncate checkpoints and python3 checkpointing every 100 frames' : ''}: the stream holds every commit the database held when ${ending}() was called${ending === 'close' ? ', and every commit the store acknowledged' : ''}`, async () => {
      const file = path.join(dir, `tail${n}.db`);
      const stream = `tail${n++}`;
      const s = new Database(file);
      s.pragma('page_size = 1024');
      s.pragma('journal_mode = WAL');
      s.exec('CREATE TABLE pair(id INTEGER PRIMARY KEY, n INTEGER, pad BLOB); INSERT INTO pair VALUES (1, 0, zeroblob(800)), (2, 0, zeroblob(800)); CREATE TABLE t(id INTEGER PRIMARY KEY, w INTEGER, i INTEGER, v BLOB); CREATE TABLE bulk(v BLOB)');
      s.close();
      const db = await openDatabase(file, { busyTimeout: 5000, autoCheckpoint: false });
      await db.exec(`WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < ${BULK_ROWS}) INSERT INTO bulk SELECT randomblob(900) FROM k`);
      expect(db.store.metrics().walFrames).toBeGreaterThan(segmentEnd(3));
      const r = db.store.replicateTo({ servers: server.url, stream, thread, stopTimeoutMs: 60_000 });
      const publisherErrors: string[] = [];
      r.on('error', (e) => publisherErrors.push(String(e)));
      await r.ready;
      const python = pythonWriter(file, truncate ? 100 : 0);
      const callers = walnutCallers(db, truncate);
      try {
        // both writers commit, and the replication publishes, before the end comes (python3
        // less often beside truncate checkpoints: walnut's WRITE leaves its busy handler few turns)
        const pythonCommits = truncate ? 10 : 100;
        await until(() => python.printed.length >= pythonCommits && callers.acked.length >= 50 && r.metrics().publishedSeq > 100, 60_000, () => ({ py: python.printed.length, walnut: callers.acked.length, m: r.metrics() }));
        // the end comes right after a commit of python3's (its report just read): the WAL's
        // newest commit is most likely its own, made after waiting out walnut's WRITE
        const { held, pythonId, ended } = await new Promise<{ held: State; pythonId: number; ended: Promise<void> }>((resolve) =>
          python.nextCommit(() => {
            const pythonId = python.printed[python.printed.length - 1]!;
            const held = stateOf(file); // what the database holds now: durable when the call below is made
            // close(), and stop() right after it: the replication stopped while walnut/sql's
            // close() lets its transactions finish (store.announceClose), then closes the store
            resolve({ held, pythonId, ended: ending === 'stop' ? r.stop() : Promise.all([db.close(), r.stop()]).then(() => undefined) });
          }),
        );
        expect(held.maxId).toBeGreaterThanOrEqual(pythonId);
        await ended;
        const errors = await callers.end();
        await python.end();
        if (ending === 'close') await r.stop(); // after close(): the replication has ended, nothing more
        else await db.close();
        const m = r.metrics();
        expect(errors).toEqual([]);
        expect(publisherErrors).toEqual([]);
        expect(m.sessions).toBe(1);
        expect(m.publishedSeq).toBe(m.exportedSeq);

        const restoredFile = path.join(dir, `${stream}-restored.db`);
        await restoreFromNats(restoredFile, { servers: server.url, stream });
        const restored = stateOf(restoredFile);
        const primary = stateOf(file);
        // every commit durable when stop()/close() was called
        expect(restored.maxId).toBeGreaterThanOrEqual(held.maxId);
        expect(restored.count).toBeGreaterThanOrEqual(held.count);
        // a state the primary had
        expect(restored.pair).toEqual([restored.count, restored.count]);
        expect(restored.rows).toEqual(primary.rows.slice(0, restored.count));
        if (ending === 'close') {
          // every commit the store acknowledged: close() settled them all before it stopped the replication
          const missing = callers.acked.filter((id) => id > restored.maxId);
          expect(missing).toEqual([]);
        }
      } finally {
        await callers.end().catch(() => undefined);
        await python.end();
        await r.stop();
        await db.close();
      }
    }, 120_000);
  }

  for (const thread of [false, true]) {
    it(`thread: ${thread}: stop() right after close(), while close() still writes the store's commits: every commit close() acknowledged is in the stream`, async () => {
      const file = path.join(dir, `inflight${n}.db`);
      const stream = `inflight${n++}`;
      const store = await open(file, { pageSize: 1024, groupCommit: { maxBatchBytes: 1 } }); // a batch per commit
      await store.commit([{ pgno: 2, data: Buffer.alloc(1024, 1) }]);
      const r = store.replicateTo({ servers: server.url, stream, thread, stopTimeoutMs: 60_000 });
      const publisherErrors: string[] = [];
      r.on('error', (e) => publisherErrors.push(String(e)));
      await r.ready;
      // commits queued at once: close() waits while they are written, one batch (and sync) after
      // another, and the replication's last pass must come after the last of them
      let acked = 0;
      const commits = Array.from({ length: 200 }, (_, i) => store.commit(Array.from({ length: 50 }, (_, k) => ({ pgno: 2 + k, data: Buffer.alloc(1024, (i % 250) + 2) }))).then(() => void acked++));
      await new Promise((resolve) => setImmediate(resolve)); // the committer took the first of them
      await Promise.all([store.close(), r.stop(), ...commits]);
      expect(acked).toBe(200);
      expect(publisherErrors).toEqual([]);
      const m = r.metrics();
      expect(m.publishedSeq).toBe(m.exportedSeq);
      const restored = await restoreFromNats(path.join(dir, `${stream}-restored.db`), { servers: server.url, stream });
      expect(restored.lastCommitSeq).toBe(1 + acked); // the first commit, then every one close() acknowledged
    }, 120_000);
  }

  for (const thread of [false, true]) {
    it(`walnut/sql, thread: ${thread}: stop() right after db.close(), its transactions still running: every one it acknowledged is in the stream`, async () => {
      const file = path.join(dir, `sqlclose${n}.db`);
      const stream = `sqlclose${n++}`;
      const db = await openDatabase(file, { pageSize: 1024 });
      await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)');
      const r = db.store.replicateTo({ servers: server.url, stream, thread, stopTimeoutMs: 60_000 });
      const publisherErrors: string[] = [];
      r.on('error', (e) => publisherErrors.push(String(e)));
      await r.ready;
      // transactions queued on the writer: db.close() lets them run and commit, then closes the store
      let acked = 0;
      const txs = Array.from({ length: 100 }, () => db.transaction(async (tx) => void (await tx.run('INSERT INTO t(v) VALUES (randomblob(3000))'))).then(() => void acked++));
      await new Promise((resolve) => setImmediate(resolve));
      await Promise.all([db.close(), r.stop(), ...txs]);
      expect(acked).toBe(100);
      expect(publisherErrors).toEqual([]);
      const restoredFile = path.join(dir, `${stream}-restored.db`);
      await restoreFromNats(restoredFile, { servers: server.url, stream });
      expect(sqliteRowCount(restoredFile, 't')).toBe(acked);
    }, 120_000);
  }

  for (const thread of [false, true]) {
    it(`thread: ${thread}: metrics(x) is refused, stop() refuses a number or bigint (a timeout it does not take) and stops nothing; stop() takes a signal's name; store.announceClose() is internal`, async () => {
      const file = path.join(dir, `args${n}.db`);
      const stream = `args${n++}`;
      const store = await open(file, { pageSize: 1024 });
      const r = store.replicateTo({ servers: server.url, stream, thread });
      try {
        await r.ready;
        const metrics = r.metrics as (...args: unknown[]) => unknown;
        const stop = r.stop as (...args: unknown[]) => Promise<void>;
        expect(expectWalnutError(() => metrics.call(r, 1), 'WALNUT_INVALID_ARGUMENT').reason).toBe('options');
        expect(expectWalnutError(() => metrics.call(r, undefined, {}), 'WALNUT_INVALID_ARGUMENT').message).toMatch(/replication\.metrics takes no arguments/);
        expect(metrics.call(r, undefined)).toMatchObject({ session: expect.any(String) }); // undefined is no argument
        for (const timeout of [5000, 1n]) expect((await expectRejectsWalnut(stop.call(r, timeout), 'WALNUT_INVALID_ARGUMENT')).message).toMatch(/stopTimeoutMs/);
        // nothing stopped: the replication publishes on
        await store.commit([{ pgno: 2, data: Buffer.alloc(1024, 7) }]);
        await until(() => r.metrics().publishedSeq >= 1, 60_000, () => r.metrics());
        // store.announceClose is walnut/sql's (internal): called from outside it is refused and
        // announces nothing (else the stop() below would wait for a close that never comes)
        expect(expectWalnutError(() => (store as unknown as { announceClose: (k?: unknown) => void }).announceClose(), 'WALNUT_INVALID_ARGUMENT').reason).toBe('internal');
        // a handler's argument (process.once('SIGTERM', r.stop.bind(r)) passes the signal's name) is taken
        await stop.call(r, 'SIGTERM');
        expect(r.metrics().publishedSeq).toBe(r.metrics().exportedSeq);
      } finally {
        await r.stop();
        await store.close();
      }
    }, 60_000);
  }
});
