// What the replication test files (test/interop/replicate*.test.ts) share: primaries (WAL-mode
// databases made by SQLite) replicating to a nats-server of their own, committers through a
// store, the replica waited for once the primary published everything, and the stream's log
// read back as stored. Servers started here are pushed to the caller's list for its afterAll.
import * as path from 'node:path';
import { expect } from 'vitest';

import { open, type Store } from '../../lib/commit/store';
import { WalStreamReader } from '../../lib/export/framing';
import { decodeRecord } from '../../lib/export/records';
import type { ReplicateOptions, ReplicationHandle } from '../../lib/replicate/publisher';
import type { Replica } from '../../lib/replicate/replica';
import { restoreFromNats } from '../../lib/replicate/restore-nats';
import { startNatsServer, type NatsNode } from './nats';
import { pageHashes } from './page-hashes';
import { Database } from './sqlite';

let primaries = 0;

/** A WAL-mode database made by SQLite in `dir` with table t(w, v); WAL empty. */
export function newPrimary(dir: string): string {
  const p = path.join(dir, `primary${primaries++}.db`);
  const db = new Database(p);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, w INTEGER, v BLOB)');
  db.close();
  return p;
}

/**
 * A SQLite-made WAL-mode database at `file` with table t(id, v) of `rows` rows of random
 * `blobBytes`-byte blobs (one transaction), checkpointed (TRUNCATE: every page in the file, the
 * WAL empty) and closed: a primary whose base image is large (8000 rows of 3500 bytes: ~32 MiB
 * of 4 KiB pages, 4000 rows: ~16 MiB).
 */
export function blobPrimary(file: string, rows: number, blobBytes = 3500): void {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)');
  const ins = db.prepare('INSERT INTO t(v) VALUES (randomblob(?))');
  db.transaction(() => {
    for (let i = 0; i < rows; i++) ins.run(blobBytes);
  })();
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
}

/**
 * Restores `stream` (restoreFromNats, the whole stream) into the new file `out`, opens it
 * readOnly and expects its pages to equal `want` (the primary's pageHashes), then closes it.
 */
export async function expectRestoredEqual(out: string, servers: string | string[], stream: string, want: string[]): Promise<void> {
  await restoreFromNats(out, { servers, stream });
  const restored = await open(out, { readOnly: true });
  try {
    expect(await pageHashes(restored)).toEqual(want);
  } finally {
    await restored.close();
  }
}

/** Publishes what is committed, then waits until the replica holds the newest commit. */
export async function caughtUp(r: ReplicationHandle, replica: Replica): Promise<void> {
  await r.stop();
  const m = r.metrics();
  expect(m.publishedSeq).toBe(m.exportedSeq);
  // a hang detector that says where the replica was (once, in CI, the retention test below hung
  // here or in openReplica until vitest's 300 s timeout, with nothing to tell which)
  let timer: NodeJS.Timeout | undefined;
  const stuck = new Promise<never>((_, reject) => {
    const json = (v: unknown): string => JSON.stringify(v, (_, x: unknown) => (typeof x === 'bigint' ? String(x) : x));
    timer = setTimeout(() => reject(new Error(`the replica did not reach commit ${m.publishedSeq} of session ${m.session} in 240 s: replica ${json(replica.lag())}, publisher ${json(m)}`)), 240_000);
    timer.unref();
  });
  try {
    await Promise.race([replica.waitFor(m.publishedSeq, m.session), stuck]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * `count` committers through the store, each on pages of its own (3 + 2w, 4 + 2w), changing a
 * few bytes per commit (so pages go again as deltas), until `stop()`; resolves with the commits.
 */
export async function rawCommitters(store: Store, count: number, stop: () => boolean): Promise<number> {
  let commits = 0;
  await Promise.all(Array.from({ length: count }, async (_, w) => {
    const mine = [Buffer.alloc(4096, w), Buffer.alloc(4096, w + 100)];
    for (let i = 0; !stop(); i++) {
      const page = mine[i % 2]!;
      page.writeUInt32BE(i, (i * 24) % 4000);
      await store.commit([{ pgno: 3 + 2 * w + (i % 2), data: page }]);
      commits++;
      if (i % 8 === 7) await new Promise((r) => setTimeout(r, 1));
    }
  }));
  return commits;
}

/** The commit sequences of every COMMIT_META in the stream's log, in stream order (retried while a cluster settles). */
export async function loggedCommits(servers: string[], stream: string): Promise<number[]> {
  const { connect } = await import('@nats-io/transport-node');
  const { jetstream } = await import('@nats-io/jetstream');
  const nc = await connect({ servers });
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        // a short API timeout, retried: after a cluster lost a node the first requests may go unanswered
        const c = await jetstream(nc, { timeout: 1000 }).consumers.get(stream, { filter_subjects: `walnut.${stream}.log` });
        const seqs: number[] = [];
        for (;;) {
          const m = await c.next({ expires: 1000 });
          if (m === null) return seqs;
          for (const payload of WalStreamReader.fromBuffer(m.data)) {
            const rec = decodeRecord(payload);
            if (rec.kind === 'commitMeta') seqs.push(Number(rec.seq));
          }
          if (m.info.pending === 0) return seqs;
        }
      } catch (e) {
        if (attempt === 40) throw e;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  } finally {
    await nc.close();
  }
}

/** A page that does not compress into a delta against any other of these. */
export function noise(i: number): Buffer {
  return Buffer.from(Array.from({ length: 4096 }, (_, k) => (i * 131 + k * 7 + ((k * k) >> 3)) & 0xff));
}

/** A NATS server (pushed to `started`, for the file's afterAll to stop), a new primary in `dir` (newPrimary) opened by walnut, replicating to `stream`. */
export async function replicating(dir: string, started: NatsNode[], stream: string, options: Omit<ReplicateOptions, 'servers' | 'stream'> = {}): Promise<{ server: NatsNode; file: string; store: Store; r: ReplicationHandle }> {
  const server = await startNatsServer();
  started.push(server);
  const file = newPrimary(dir);
  const store = await open(file);
  const r = store.replicateTo({ servers: server.url, stream, stopTimeoutMs: 60_000, ...options }); // stop() publishes the backlog: give a slow machine time
  await r.ready;
  return { server, file, store, r };
}
