// Replication at the scale users reach, real parts only: a walnut/sql primary with 16 callers,
// a python3 sqlite3 writer beside them and db.store.checkpoint('truncate') in a loop (since
// 7b8a82d/040ae34 it succeeds under load: the WAL is cut and restarted over and over under the
// follow export), replicated on a worker thread and on the store's loop. Every transaction of
// either writer adds 1 to both rows of `pair` (each on a page of its own) and inserts one row
// into t, so every committed state has pair 1 = pair 2 = count(t): python3 read transactions on
// the replica must never see it broken while the replica applies. Also: the replica a `walnut
// replica` process SIGKILLed again and again and the nats-server killed and restarted, then
// point-in-time restores of that stream; and one python3 transaction of 16,500+ frames (4+ -shm
// segments, 16 MiB: many NATS messages) beside walnut's callers. Asserted each time: the replica
// equals the primary (pages, rows, integrity ok), each commit applied once, none lost.
// `npm test` runs the worker-thread case (~8 s); the store's-loop case, the SIGKILL/restart
// case and the big transaction (~60 s together) run with WALNUT_SCALE=1: `npm run test:scale`.
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { openReplica } from '../../lib/replicate/replica';
import { restoreFromNats } from '../../lib/replicate/restore-nats';
import { isWalnutError, openDatabase, type Database as SqlDatabase } from '../../lib/sql';
import { HELPERS, runPython } from '../helpers/children';
import { segmentEnd } from '../helpers/large-wal';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { pageHashes } from '../helpers/page-hashes';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';

if (NATS_SKIP !== null) console.warn(NATS_SKIP);

const dir = tmpDir('walnut-repl-truncate-');
/** The longer cases (header) run only with WALNUT_SCALE=1 (npm run test:scale). */
const SCALE = process.env.WALNUT_SCALE === '1';
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
const started: NatsNode[] = [];
afterAll(() => stopNats(started));
let n = 0;


/** Rows, the pair and integrity_check as SQLite reads them. */
function view(file: string): { rows: string; pair: number[]; count: number; integrity: string } {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return {
      rows: JSON.stringify(db.prepare('SELECT id, w, i, hex(v) AS v FROM t ORDER BY id').all()),
      pair: (db.prepare('SELECT n FROM pair ORDER BY id').all() as { n: number }[]).map((r) => r.n),
      count: (db.prepare('SELECT count(*) AS c FROM t').get() as { c: number }).c,
      integrity: String(db.pragma('integrity_check', { simple: true })),
    };
  } finally {
    db.close();
  }
}

const SCHEMA = 'CREATE TABLE pair(id INTEGER PRIMARY KEY, n INTEGER, pad BLOB); INSERT INTO pair VALUES (1, 0, zeroblob(3000)), (2, 0, zeroblob(3000)); CREATE TABLE t(id INTEGER PRIMARY KEY, w INTEGER, i INTEGER, v BLOB)';

/** 16 walnut/sql callers of pair transactions and a truncate checkpoint every 3 ms, until stop(). */
function load(db: SqlDatabase): { stop: () => Promise<{ acked: number; checkpoints: number; errors: string[] }> } {
  let writing = true;
  let acked = 0;
  let checkpoints = 0;
  const errors: string[] = [];
  const callers = Array.from({ length: 16 }, async (_, w) => {
    for (let i = 0; writing; i++) {
      try {
        await db.transaction(async (tx) => {
          await tx.run('UPDATE pair SET n = n + 1');
          await tx.run('INSERT INTO t(w, i, v) VALUES (?, ?, randomblob(?))', [w, i, 100 + ((w * 31 + i * 7) % 2000)]);
        });
        acked++;
      } catch (e) {
        // the python3 writer overtook the transaction, or held WRITE past the busy timeout
        if (!isWalnutError(e, 'WALNUT_CONFLICT') && !isWalnutError(e, 'WALNUT_BUSY')) errors.push(String(e));
      }
      if (i % 4 === 3) await new Promise((r) => setTimeout(r, 1));
    }
  });
  const checkpointer = (async () => {
    while (writing) {
      try {
        await db.store.checkpoint('truncate');
        checkpoints++;
      } catch (e) {
        errors.push(`checkpoint: ${String(e)}`);
      }
      await new Promise((r) => setTimeout(r, 3));
    }
  })();
  return {
    stop: async () => {
      writing = false;
      await Promise.all([...callers, checkpointer]);
      return { acked, checkpoints, errors };
    },
  };
}

async function primary(): Promise<{ file: string; db: SqlDatabase; server: NatsNode }> {
  const server = await startNatsServer();
  started.push(server);
  const file = path.join(dir, `primary${n++}.db`);
  const db = await openDatabase(file, { busyTimeout: 5000 });
  await db.exec(SCHEMA);
  return { file, db, server };
}

describe.skipIf(NATS_SKIP !== null)('replication under truncate checkpoints, a python3 writer and readers of the replica', () => {
  for (const thread of [true, false]) {
    it.skipIf(!thread && !SCALE)(`${thread ? 'on a worker thread' : "on the store's loop"}: the replica equals the primary, python3 read transactions on it never see the pair broken`, async () => {
      const { file, db, server } = await primary();
      const stream = `load${n}`;
      const r = db.store.replicateTo({ servers: server.url, stream, thread, stopTimeoutMs: 60_000, baseEveryCommits: 500 });
      const publisherErrors: string[] = [];
      r.on('error', (e) => publisherErrors.push(String(e)));
      await r.ready;
      const replicaPath = path.join(dir, `${stream}-replica.db`);
      const replica = await openReplica(replicaPath, { servers: server.url, stream });
      const applied: number[] = [];
      replica.on('applied', (e: { seq: number; commits: number }) => applied.push(e.seq - e.commits + 1, e.seq));
      const reader = runPython(path.join(HELPERS, 'sqlite-pair-reader.py'), [replicaPath, '5']);
      const python = runPython(path.join(HELPERS, 'sqlite-pair-writer.py'), [file, '4', '99', '100']);
      const running = load(db);
      const pythonCommits = Number((await python).trim());
      const { acked, checkpoints, errors } = await running.stop();
      await r.stop();
      const m = r.metrics();
      await replica.waitFor(m.publishedSeq, m.session);
      const read = await reader;

      expect(errors).toEqual([]);
      expect(publisherErrors).toEqual([]);
      expect(checkpoints).toBeGreaterThan(SCALE ? 5 : 0); // how many fit in the writer's seconds is a rate: the count behind WALNUT_SCALE (CI saw 5 under the suite's load)
      expect(read).toMatch(/^reads [1-9]\d*\n$/); // reads made, none broken
      expect(m.sessions).toBe(1);
      expect(replica.lag()).toMatchObject({ appliedSeq: m.publishedSeq, rebases: 0 });
      for (let i = 2; i < applied.length; i += 2) expect(applied[i]).toBe(applied[i - 1]! + 1); // consecutive, each once
      expect(await pageHashes(replica.store)).toEqual(await pageHashes(db.store));
      const p = view(file);
      const q = view(replicaPath);
      expect(q.integrity).toBe('ok');
      expect(q.rows).toBe(p.rows);
      expect(p.pair).toEqual([acked + pythonCommits, acked + pythonCommits]);
      expect(q.pair).toEqual(p.pair);
      await replica.close();
      await db.close();
    });
  }

  it.skipIf(!SCALE)('a walnut replica process SIGKILLed four times and the nats-server killed and restarted under that load: the replica resumes and equals the primary; restores at commits of the stream hold the pair whole', async () => {
    const { file, db, server } = await primary();
    const r = db.store.replicateTo({ servers: server.url, stream: 'kill', stopTimeoutMs: 60_000, baseEveryCommits: 300 });
    await r.ready;
    const replicaPath = path.join(dir, 'kill-replica.db');
    const python = runPython(path.join(HELPERS, 'sqlite-pair-writer.py'), [file, '5', '99', '20']);
    const running = load(db);
    for (let round = 0; round < 4; round++) {
      const child: ChildProcess = spawn(process.execPath, [bin, 'replica', '--nats', server.url, '--stream', 'kill', replicaPath, '--interval', '20', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let appliedBefore = -1;
      let appliedNow = -1;
      let err = '';
      child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      child.stdout!.on('data', (d: Buffer) => {
        for (const line of d.toString().split('\n')) {
          if (!line.startsWith('{')) continue;
          const c = (JSON.parse(line) as { appliedCommits: number }).appliedCommits;
          if (appliedBefore < 0) appliedBefore = c;
          appliedNow = c;
        }
      });
      await until(() => appliedNow > appliedBefore || child.exitCode !== null, 60_000, () => err);
      expect(child.exitCode, err).toBe(null);
      if (round === 1) {
        await server.stop('SIGKILL');
        await new Promise((res) => setTimeout(res, 300));
        await server.start();
      }
      await new Promise((res) => setTimeout(res, 100 + round * 71));
      await new Promise<void>((res) => {
        child.once('exit', () => res());
        child.kill('SIGKILL');
      });
    }
    const pythonCommits = Number((await python).trim());
    const { acked, errors } = await running.stop();
    await r.stop();
    const m = r.metrics();
    const replica = await openReplica(replicaPath, { servers: server.url, stream: 'kill' });
    await replica.waitFor(m.publishedSeq, m.session);
    expect(errors).toEqual([]);
    expect(m.sessions).toBe(1);
    expect(replica.lag().rebases).toBe(0); // resumed every time: each state was one the stream continues from
    expect(await pageHashes(replica.store)).toEqual(await pageHashes(db.store));
    const p = view(file);
    expect(view(replicaPath)).toEqual(p);
    expect(p.pair).toEqual([acked + pythonCommits, acked + pythonCommits]);
    await replica.close();
    // commit k of the session is the state after the schema's 3 commits and k - 3 pair transactions
    for (const at of [Math.floor(m.publishedSeq / 3), Math.floor(m.publishedSeq / 2), m.publishedSeq - 7]) {
      const out = path.join(dir, `kill-at-${at}.db`);
      await restoreFromNats(out, { servers: server.url, stream: 'kill', until: at });
      const v = view(out);
      expect(v.integrity).toBe('ok');
      expect(v.pair).toEqual([at - 3, at - 3]);
      expect(v.count).toBe(at - 3);
    }
    await db.close();
  });

  it.skipIf(!SCALE)('one python3 transaction of 16,500+ frames (1 KiB pages, 16 MiB: many NATS messages) beside walnut/sql callers and truncate checkpoints: applied whole, never seen half-applied', async () => {
    const server = await startNatsServer();
    started.push(server);
    const file = path.join(dir, `big${n++}.db`);
    const s = new Database(file);
    s.pragma('page_size = 1024');
    s.pragma('journal_mode = WAL');
    s.exec(SCHEMA.replaceAll('zeroblob(3000)', 'zeroblob(800)'));
    s.close();
    const db = await openDatabase(file, { busyTimeout: 30_000 });
    const r = db.store.replicateTo({ servers: server.url, stream: 'big', stopTimeoutMs: 60_000 });
    await r.ready;
    const replicaPath = path.join(dir, 'big-replica.db');
    const replica = await openReplica(replicaPath, { servers: server.url, stream: 'big' });
    let peakFrames = 0;
    const reader = runPython(path.join(HELPERS, 'sqlite-pair-reader.py'), [replicaPath, '6']);
    const running = load(db);
    const watchFrames = setInterval(() => (peakFrames = Math.max(peakFrames, db.store.metrics().walFrames)), 20);
    const rows = Number((await runPython(path.join(HELPERS, 'sqlite-big-txn.py'), [file, '16500', '700', '99'])).trim());
    await new Promise((res) => setTimeout(res, 300));
    const { acked, errors } = await running.stop();
    clearInterval(watchFrames);
    await r.stop();
    const m = r.metrics();
    await replica.waitFor(m.publishedSeq, m.session);
    const read = await reader;
    expect(errors).toEqual([]);
    expect(peakFrames).toBeGreaterThan(segmentEnd(3)); // the WAL held the big commit at once: 4+ -shm segments
    expect(read).toMatch(/^reads [1-9]\d*\n$/);
    expect(replica.lag()).toMatchObject({ appliedSeq: m.publishedSeq, rebases: 0 });
    expect(await pageHashes(replica.store)).toEqual(await pageHashes(db.store));
    const p = view(file);
    expect(view(replicaPath)).toEqual(p);
    expect(p.pair).toEqual([acked + rows, acked + rows]);
    await replica.close();
    await db.close();
  });
});
