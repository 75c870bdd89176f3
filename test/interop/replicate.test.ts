// Replication to NATS JetStream (issue #22), against real nats-server processes on loopback
// (test/helpers/nats.ts; skipped with a message when nats-server is not installed): a primary
// written by 64 walnut/sql callers and by sqlite3 processes, a replica that must equal it at
// commit boundaries (same pages, same rows, integrity_check ok) while readers look at it;
// delta-encoded pages read back by restore; the publisher on a worker thread and on the store's
// loop; base images. Outages (server, replica or cluster node lost, NATS down past the lag
// bound) are in replicate-outages.test.ts, which runs beside this file.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { xxh3_128 } from '../../lib/checksum';
import { open } from '../../lib/commit/store';
import { WalnutError } from '../../lib/errors';
import { WalStreamReader } from '../../lib/export/framing';
import { decodeRecord } from '../../lib/export/records';
import { ReplicaPosition } from '../../lib/replicate/position';
import { openReplica } from '../../lib/replicate/replica';
import { restoreFromNats } from '../../lib/replicate/restore-nats';
import type { ReplicateOptions, ReplicationHandle } from '../../lib/replicate/publisher';
import { ReplicationThread } from '../../lib/replicate/thread';
import { openDatabase } from '../../lib/sql/database';
import { runNode, sqliteWriters } from '../helpers/children';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { growWal, segmentEnd, shmMxFrame, untilWalMoves } from '../helpers/large-wal';
import { NATS_SKIP, NOBODY_ANSWERS, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { pageHashes } from '../helpers/page-hashes';
import { caughtUp, loggedCommits, newPrimary, noise, rawCommitters, replicating } from '../helpers/replicating';
import { Database } from '../helpers/sqlite';
import { pageRoles } from '../helpers/sqlite-db';
import { tmpDir } from '../helpers/tmp';
import { until, WAIT_MS } from '../helpers/until';

if (NATS_SKIP !== null) console.warn(NATS_SKIP);

const dir = tmpDir('walnut-replicate-');
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
const started: NatsNode[] = [];
afterAll(() => stopNats(started));
let n = 0;

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

/** The log as stored: every COMMIT_META's commit in stream order, and the commits that a message ends inside of (its last record is not a COMMIT_META). */
async function logCommits(servers: string, stream: string): Promise<{ commits: number[]; splitInside: number[] }> {
  const { connect } = await import('@nats-io/transport-node');
  const { jetstream } = await import('@nats-io/jetstream');
  const nc = await connect({ servers });
  try {
    const c = await jetstream(nc).consumers.get(stream, { filter_subjects: `walnut.${stream}.log` });
    const commits: number[] = [];
    const splitInside: number[] = [];
    for (;;) {
      const m = await c.next({ expires: 1000 });
      if (m === null) break;
      let endsInside = false;
      for (const payload of WalStreamReader.fromBuffer(m.data)) {
        const rec = decodeRecord(payload);
        endsInside = rec.kind !== 'commitMeta' && rec.kind !== 'walHeader';
        if (rec.kind === 'commitMeta') commits.push(Number(rec.seq));
      }
      if (endsInside) splitInside.push((commits[commits.length - 1] ?? 0) + 1);
      if (m.info.pending === 0) break;
    }
    return { commits, splitInside };
  } finally {
    await nc.close();
  }
}

describe('openReplica options (no server needed)', () => {
  it('bad options are refused with WALNUT_INVALID_ARGUMENT (a NaN connectTimeoutMs waited forever for an unreachable server)', async () => {
    const servers = NOBODY_ANSWERS; // nothing listens there
    const at = (): string => path.join(dir, `bad-replica${n++}.db`);
    for (const [name, value] of [['connectTimeoutMs', NaN], ['connectTimeoutMs', '100'], ['connectTimeoutMs', -1], ['maxBatchCommits', 0], ['maxBatchPages', 1.5], ['pageCacheBytes', -1], ['open', 42]] as const) {
      await expectRejectsWalnut(openReplica(at(), { servers, stream: 's', [name]: value } as never), 'WALNUT_INVALID_ARGUMENT', { reason: name });
    }
    await expectRejectsWalnut(openReplica(at(), null as never), 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
    // an option it does not take (misspelt) is refused, not dropped
    await expectRejectsWalnut(openReplica(at(), { servers, stream: 's', maxBatchcommits: 10 } as never), 'WALNUT_INVALID_ARGUMENT', { reason: 'maxBatchcommits' });
    // so is one of the replica store's open() options, nested ones too, before anything connects (it was
    // refused only once connected and the base image restored; here: WALNUT_IO, no server)
    for (const [open, reason] of [[{ busyTimout: 100 }, 'busyTimout'], [{ groupCommit: { maxBatchByte: 1 } }, 'groupCommit.maxBatchByte'], [{ pageSize: 3000 }, 'pageSize']] as const) {
      await expectRejectsWalnut(openReplica(at(), { servers, stream: 's', connectTimeoutMs: 0, open } as never), 'WALNUT_INVALID_ARGUMENT', { reason });
    }
  });

  it('the replica position file is written on the I/O thread (a promise; its fdatasyncSync blocked the replica\'s loop for every batch): each record reads back, the newest of the two slots wins', async () => {
    const db = path.join(dir, `position${n++}.db`);
    const first = ReplicaPosition.open(db, 'app');
    expect(first.record).toBeNull();
    for (let seq = 1; seq <= 3; seq++) {
      const written = first.position.write({ state: 'ready', applied: { session: 's', seq, logNext: seq + 1 }, intent: null });
      expect(written).toBeInstanceOf(Promise);
      await written;
    }
    first.position.close();
    const again = ReplicaPosition.open(db, 'app');
    expect(again.record).toEqual({ state: 'ready', applied: { session: 's', seq: 3, logNext: 4 }, intent: null, stream: 'app' });
    again.position.close();
  });

  it('replicateTo: a bad maxInFlight is refused with WALNUT_INVALID_ARGUMENT before anything connects', async () => {
    const store = await open(newPrimary(dir));
    const servers = NOBODY_ANSWERS;
    for (const value of [0, 1.5, 1025, '4', NaN]) {
      await expectRejectsWalnut((async () => store.replicateTo({ servers, stream: 's', maxInFlight: value as never }))(), 'WALNUT_INVALID_ARGUMENT', { reason: 'maxInFlight' });
    }
    // an option it does not take (misspelt) is refused, not dropped
    await expectRejectsWalnut((async () => store.replicateTo({ servers, stream: 's', maxInflight: 64 } as never))(), 'WALNUT_INVALID_ARGUMENT', { reason: 'maxInflight' });
    await store.close();
  });

  it('replicateTo against a server nobody answers at says so (an \'error\' WALNUT_IO reason Unreachable, metrics().lastError) while it keeps retrying, on a worker thread and on the store\'s loop; the store commits on and closes cleanly (before: silence until close)', async () => {
    for (const thread of [true, false]) {
      const store = await open(newPrimary(dir));
      const servers = NOBODY_ANSWERS;
      const r = store.replicateTo({ servers, stream: 'nobody', thread, stopTimeoutMs: 500 }); // close() tries to publish that long
      const errors: WalnutError[] = [];
      const told = new Promise<void>((resolve) => r.on('error', (e: WalnutError) => (errors.push(e), resolve())));
      await store.commit([{ pgno: 3, data: noise(1) }]);
      await told;
      expect(errors[0]).toBeInstanceOf(WalnutError);
      expect(errors[0]).toMatchObject({ code: 'WALNUT_IO', reason: 'Unreachable' });
      expect(errors[0].message).toContain(servers);
      await until(() => r.metrics().lastError !== null);
      expect(r.metrics().lastError).toMatch(/^WALNUT_IO: no NATS server answers/);
      await store.commit([{ pgno: 4, data: noise(2) }]);
      await store.close();
    }
  });

  it('stop() that ends a replication before any session began (no server answered within stopTimeoutMs): ready rejects WALNUT_CLOSED, on a worker thread and on the store\'s loop', async () => {
    for (const thread of [true, false]) {
      const store = await open(newPrimary(dir));
      const r = store.replicateTo({ servers: NOBODY_ANSWERS, stream: 'nobody', thread, stopTimeoutMs: 100 });
      await r.stop();
      await expectRejectsWalnut(r.ready, 'WALNUT_CLOSED');
      await store.close();
    }
  });

  it('restoreFromNats refuses an option it does not take with WALNUT_INVALID_ARGUMENT before connecting, as restore does (a misspelt until restored the newest state)', async () => {
    const servers = NOBODY_ANSWERS; // nothing listens there: refused before any connection is tried
    await expectRejectsWalnut(restoreFromNats(path.join(dir, `nats-restore${n++}.db`), { servers, stream: 's', untill: 5 } as never), 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
    await expectRejectsWalnut(restoreFromNats(path.join(dir, `nats-restore${n++}.db`), { servers, stream: 's', onProgress: 'yes' } as never), 'WALNUT_INVALID_ARGUMENT', { reason: 'onProgress' });
  });
});

describe.skipIf(NATS_SKIP !== null)(`replication to NATS JetStream${NATS_SKIP ? ` (skipped: ${NATS_SKIP})` : ''}`, () => {
  it('a replica equals the primary at commit boundaries: 64 walnut/sql callers, then sqlite3 writer processes; readers see valid states throughout', async () => {
    const { server, file, store, r } = await replicating(dir, started, 'main', { baseEveryCommits: 150 });
    const replicaPath = path.join(dir, 'main-replica.db');
    const replica = await openReplica(replicaPath, { servers: server.url, stream: 'main' });
    const watch = watchBoundaries(replicaPath);

    // walnut's commits: 64 concurrent callers through walnut/sql (group commit)
    const sql = await openDatabase(file);
    await Promise.all(Array.from({ length: 64 }, async (_, w) => {
      for (let i = 0; i < 4; i++) await sql.run('INSERT INTO t(w, v) VALUES (?, randomblob(?))', [100 + w, 200 + ((w * 7 + i * 13) % 900)]);
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

    expect(await pageHashes(replica.store)).toEqual(await pageHashes(store));
    const primaryView = sqliteView(file);
    const replicaView = sqliteView(replicaPath);
    expect(replicaView.integrity).toBe('ok');
    expect(replicaView.rows).toBe(primaryView.rows);
    expect(JSON.parse(replicaView.rows)).toHaveLength(64 * 4 + sqliteCommits);
    await replica.close();
    await store.close();
  });

  it('at scale: a primary\'s WAL grows past 16,000 frames (5+ -shm segments, 1 KiB pages) while python3 inserts from another process beside 8 walnut committers; the replica equals the primary at the last commit, integrity ok, every commit in the stream once and applied once', async () => {
    const server = await startNatsServer();
    started.push(server);
    // 1 KiB pages; rows whose blobs overflow: walnut's committers stamp overflow pages (chain link kept), python3 inserts rows
    const file = path.join(dir, `scale${n++}.db`);
    const db = new Database(file);
    db.pragma('page_size = 1024');
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, w INTEGER, v BLOB)');
    for (let i = 0; i < 8; i++) db.prepare('INSERT INTO t(w, v) VALUES (0, ?)').run(Buffer.alloc(4 * 1024, i));
    db.close();
    const bytes = fs.readFileSync(file);
    const slots = pageRoles(file).pages.filter((p) => p.role === 'overflow').slice(0, 8).map((p) => ({ pgno: p.pgno, next: bytes.readUInt32BE((p.pgno - 1) * 1024) }));
    const store = await open(file, { autoCheckpoint: false });
    const r = store.replicateTo({ servers: server.url, stream: 'scale', stopTimeoutMs: 60_000 });
    const bases: number[] = [];
    r.on('base', (b: { seq: number }) => bases.push(b.seq));
    await r.ready;
    const replicaPath = path.join(dir, 'scale-replica.db');
    const replica = await openReplica(replicaPath, { servers: server.url, stream: 'scale' });

    // 12,000 frames first, fast: the database's pages committed again unchanged
    await growWal(store, 12_000);
    expect(shmMxFrame(file)).toBeLessThan(segmentEnd(2)); // segments 0-2: the next boundaries are crossed below, with everyone writing

    // python3 (wal_autocheckpoint 0) beside 8 walnut committers, 550 one-page commits each: past 16,350 frames with walnut's alone
    const python = sqliteWriters(file, 1, 3, 0);
    await untilWalMoves(file, shmMxFrame(file)); // python3's first commit lands before the committers start (see untilWalMoves)
    const COMMITS = 550;
    await Promise.all(slots.map(async (slot, w) => {
      for (let k = 1; k <= COMMITS; k++) {
        const page = Buffer.alloc(1024, (w * 7 + k) & 0xff);
        page.writeUInt32BE(slot.next, 0);
        page.writeUInt32BE(k, 12);
        await store.commit([{ pgno: slot.pgno, data: page }]);
      }
    }));
    const pythonCommits = await python;
    expect(pythonCommits).toBeGreaterThan(0);
    expect(shmMxFrame(file)).toBeGreaterThan(segmentEnd(3));
    expect(fs.statSync(`${file}-shm`).size).toBeGreaterThanOrEqual(5 * 32_768);

    await caughtUp(r, replica);
    const m = r.metrics();
    const logged = await loggedCommits([server.url], 'scale');
    expect(logged).toEqual(Array.from({ length: logged.length }, (_, i) => logged[0]! + i)); // in order, none twice, no gap
    expect(logged[logged.length - 1]).toBe(m.publishedSeq);
    expect(logged[0]).toBe(bases[0]! + 1); // the log goes on from the session's first base
    const lag = replica.lag();
    expect(lag).toMatchObject({ appliedSeq: m.publishedSeq, rebases: 0 });
    expect(lag.appliedCommits).toBe(m.publishedSeq - bases[0]!); // each commit applied once

    expect(await pageHashes(replica.store)).toEqual(await pageHashes(store));
    const primaryView = sqliteView(file);
    const replicaView = sqliteView(replicaPath);
    expect(replicaView.integrity).toBe('ok');
    expect(replicaView.rows).toBe(primaryView.rows);
    const rows = JSON.parse(replicaView.rows) as Array<{ w: number }>;
    expect(rows.filter((row) => row.w === 1)).toHaveLength(pythonCommits);
    const rsnap = await replica.store.snapshot();
    const stamps = await Promise.all(slots.map(async (s) => (await rsnap.read(s.pgno)).readUInt32BE(12)));
    rsnap.release();
    expect(stamps).toEqual(Array(8).fill(COMMITS));
    await replica.close();
    await store.close();
  });

  it('a second primary replicating to the same stream: the one overtaken stops with WALNUT_CONFLICT OtherPrimary; the replica follows the newer one (it re-based over and over before)', async () => {
    const { server, store: a, r: ra } = await replicating(dir, started, 'twin');
    const errors: unknown[] = [];
    ra.on('error', (e) => errors.push(e));
    const ended = new Promise<void>((res) => ra.once('end', () => res()));
    for (let i = 0; i < 20; i++) await a.commit([{ pgno: 3 + (i % 4), data: noise(i) }]);
    const replica = await openReplica(path.join(dir, 'twin-replica.db'), { servers: server.url, stream: 'twin' });
    const replicaErrors: unknown[] = [];
    replica.on('error', (e) => replicaErrors.push(e));
    await replica.waitFor(20, ra.metrics().session);
    const rebasesBefore = replica.lag().rebases;
    // b, another database, is started on the same stream by mistake: its first base image is
    // the stream's newest, so the replica re-bases onto b once; a's next message is refused
    const b = await open(newPrimary(dir));
    const rb = b.replicateTo({ servers: server.url, stream: 'twin' });
    await rb.ready;
    await until(() => rb.metrics().bases >= 1, WAIT_MS, () => rb.metrics());
    for (let i = 20; i < 30; i++) await a.commit([{ pgno: 3 + (i % 4), data: noise(i) }]);
    await ended;
    expect(errors.map((e) => (e as { code?: string; reason?: string }))).toContainEqual(expect.objectContaining({ code: 'WALNUT_CONFLICT', reason: 'OtherPrimary' }));
    for (let i = 0; i < 10; i++) await b.commit([{ pgno: 3 + (i % 4), data: noise(100 + i) }]);
    await until(() => rb.metrics().publishedSeq === rb.metrics().exportedSeq && rb.metrics().exportedSeq >= 10, WAIT_MS, () => rb.metrics());
    await replica.waitFor(rb.metrics().publishedSeq, rb.metrics().session);
    expect(replica.lag().rebases).toBe(rebasesBefore + 1);
    expect(await pageHashes(replica.store)).toEqual(await pageHashes(b));
    expect(rb.metrics().lastError ?? '').not.toMatch(/OtherPrimary|another walnut primary/);
    await replica.close();
    await rb.stop();
    await Promise.all([a.close(), b.close()]);
  });

  it('waitFor: a wait still pending when the replica closes rejects WALNUT_CLOSED (it never settled); bad arguments are refused', async () => {
    const { server, store, r } = await replicating(dir, started, 'waitclose');
    const replica = await openReplica(path.join(dir, 'waitclose-replica.db'), { servers: server.url, stream: 'waitclose' });
    await expectRejectsWalnut(replica.waitFor(NaN), 'WALNUT_INVALID_ARGUMENT', { reason: 'seq' });
    await expectRejectsWalnut(replica.waitFor(-1), 'WALNUT_INVALID_ARGUMENT', { reason: 'seq' });
    await expectRejectsWalnut(replica.waitFor(1, 7 as never), 'WALNUT_INVALID_ARGUMENT', { reason: 'session' });
    const pending = expectRejectsWalnut(replica.waitFor(1_000_000, r.metrics().session), 'WALNUT_CLOSED');
    await replica.close();
    await pending;
    await expectRejectsWalnut(replica.waitFor(1_000_000), 'WALNUT_CLOSED');
    await store.close();
  });

  it('several messages in flight, one refused by the stream: none behind it is stored before it; once it is taken, each commit is in the stream once, in order', async () => {
    // the stream exists first, with a message size limit the big commit below passes (a
    // stand-in for any failure of one message while the ones behind it are already sent)
    const server = await startNatsServer();
    started.push(server);
    const { connect } = await import('@nats-io/transport-node');
    const { jetstreamManager } = await import('@nats-io/jetstream');
    const nc = await connect({ servers: server.url });
    const jsm = await jetstreamManager(nc);
    const config = { name: 'refused', subjects: ['walnut.refused.>'], storage: 'file' as never, duplicate_window: 120e9 };
    await jsm.streams.add(config);
    const store = await open(newPrimary(dir));
    const r = store.replicateTo({ servers: server.url, stream: 'refused', maxInFlight: 8, delta: false, stopTimeoutMs: 60_000 });
    await r.ready;
    // the limit set once the publisher has read the stream's config (it builds its messages
    // within the max_msg_size it finds there): a limit it does not know of refuses the big one
    await jsm.streams.update('refused', { ...config, max_msg_size: 64 << 10 } as never);
    const small = async (count: number): Promise<void> => {
      for (let i = 0; i < count; i++) {
        await store.commit([{ pgno: 3, data: noise(i) }]);
        await new Promise((res) => setTimeout(res, 15)); // an export pass each: a message each
      }
    };
    await small(5);
    await until(() => r.metrics().publishedSeq === r.metrics().exportedSeq && r.metrics().exportedSeq >= 5, WAIT_MS, () => r.metrics());
    const big = r.metrics().exportedSeq + 1;
    await store.commit(Array.from({ length: 40 }, (_, k) => ({ pgno: 10 + k, data: noise(100 + k) }))); // ~165 KiB: refused
    await small(12);
    await until(() => r.metrics().publishRetries >= 3 && r.metrics().exportedSeq >= big + 12, WAIT_MS, () => r.metrics());
    const held = r.metrics();
    expect(held.peakInFlight).toBeGreaterThan(1); // the small ones were sent behind the big one
    expect(held.publishedSeq).toBe(big - 1); // and none of them was stored
    expect(await loggedCommits([server.url], 'refused')).toEqual(Array.from({ length: big - 1 }, (_, i) => i + 1));
    await jsm.streams.update('refused', { ...config, max_msg_size: -1 } as never);
    await nc.close();
    await r.stop();
    const m = r.metrics();
    expect(m.publishedSeq).toBe(m.exportedSeq);
    expect(await loggedCommits([server.url], 'refused')).toEqual(Array.from({ length: m.publishedSeq }, (_, i) => i + 1));
    await store.close();
  });

  it('delta-encoded pages: restore from the stream at any commit (walnut restore --nats --until) equals the primary at that commit; bytes per one-row update far below a full page', async () => {
    const { server, store, r } = await replicating(dir, started, 'pitr', { baseEveryCommits: 100 });
    // commit i writes page 3 + i % 5: the page's pattern with a few bytes that say i
    const pageOf = (p: number, i: number): Buffer => {
      const b = Buffer.alloc(4096, p);
      b.writeUInt32BE(i, 100 + (i % 7) * 500);
      return b;
    };
    // 300 commits, and on until a third base image was taken: a base starts after a commit, one
    // at a time, so under load the second can start late and the third fall after commit 300
    let COMMITS = 0;
    while (COMMITS < 300 || (r.metrics().bases < 3 && COMMITS < 3_000)) {
      const i = ++COMMITS;
      await store.commit([{ pgno: 3 + (i % 5), data: pageOf(3 + (i % 5), i) }]);
    }
    const base = await pageHashes(store); // pages 1, 2 are SQLite's: the same at every commit here
    await r.stop();
    const m = r.metrics();
    expect(m.publishedSeq).toBe(COMMITS); // the WAL was empty at the start: the base is commit 0
    expect(m.bases).toBeGreaterThanOrEqual(3);
    expect(m.deltaFrames).toBeGreaterThan(COMMITS - 10); // a page sent again goes as a delta
    expect(m.deltaBytes / m.deltaFrames).toBeLessThan(0.05 * 4120); // vs a 4,120-byte frame
    const expected = (k: number): string[] =>
      base.map((h, idx) => {
        const p = idx + 1;
        if (p < 3) return h;
        let last = k;
        while (last > 0 && 3 + (last % 5) !== p) last--;
        return xxh3_128(last > 0 ? pageOf(p, last) : Buffer.alloc(4096)).toString(16);
      });
    for (const until of [3, 150, 201, 299]) {
      const out = path.join(dir, `pitr-${until}.db`);
      if (until % 2 === 1) {
        const run = await runNode(bin, ['restore', '--nats', server.url, '--stream', 'pitr', out, '--until', String(until), '--json']);
        expect(run.code, run.stderr).toBe(0);
        expect(JSON.parse(run.stdout)).toMatchObject({ lastCommitSeq: until, stoppedBy: 'until' });
      } else {
        expect(await restoreFromNats(out, { servers: server.url, stream: 'pitr', until })).toMatchObject({ lastCommitSeq: until, stoppedBy: 'until' });
      }
      const restored = fs.readFileSync(out);
      const got = Array.from({ length: restored.length / 4096 }, (_, k) => xxh3_128(restored.subarray(k * 4096, (k + 1) * 4096)).toString(16));
      expect(got, `until ${until}`).toEqual(expected(until).slice(0, got.length));
      expect(got.length).toBe(Math.min(base.length, 3 + Math.min(until, 4)));
    }
    const whole = path.join(dir, 'pitr-all.db');
    expect(await restoreFromNats(whole, { servers: server.url, stream: 'pitr' })).toMatchObject({ lastCommitSeq: COMMITS, stoppedBy: null });
    const all = fs.readFileSync(whole);
    expect(Array.from({ length: all.length / 4096 }, (_, k) => xxh3_128(all.subarray(k * 4096, (k + 1) * 4096)).toString(16))).toEqual(base);
    await store.close();
  });

  it('commits queued as framed entries: commits larger than a message (FRAMES split across entries and messages) among one-page commits, delta on and off, on a worker thread and on the store\'s loop; a restore at every commit equals the primary there, every commit in the stream once, and a message ends inside a commit only for a commit past its size', async () => {
    const server = await startNatsServer();
    started.push(server);
    const pageOf = (p: number, i: number): Buffer => {
      const b = Buffer.alloc(4096, p); // a few bytes that say i: sent again, a page goes as a delta
      b.writeUInt32BE(i, 8 + (i % 9) * 400);
      return b;
    };
    for (const [thread, delta] of [[true, true], [false, false]] as const) {
      const stream = `entries${thread ? 'w' : 'l'}${delta ? 'd' : 'f'}`;
      const file = newPrimary(dir);
      const store = await open(file);
      const r = store.replicateTo({ servers: server.url, stream, thread, delta, maxMessageBytes: 64 << 10, baseEveryCommits: 1_000_000, stopTimeoutMs: 60_000 });
      await r.ready;
      // commit i: 40 pages (160 KiB, past 2.5 messages) every 7th, else one page; 64 of them at once
      // after the first 20, so a hand-over holds many commits
      const pagesOf = (i: number): number[] => (i % 7 === 0 ? Array.from({ length: 40 }, (_, k) => 3 + ((i + k) % 60)) : [3 + (i % 60)]);
      const states: string[][] = [];
      const version = new Map<number, number>();
      const snapshot = (): string[] => Array.from({ length: 62 }, (_, k) => k + 1).map((p) => (p < 3 ? '' : version.has(p) ? xxh3_128(pageOf(p, version.get(p)!)).toString(16) : ''));
      let i = 0;
      for (; i < 20; ) {
        i++;
        await store.commit(pagesOf(i).map((p) => ({ pgno: p, data: pageOf(p, i) })));
        for (const p of pagesOf(i)) version.set(p, i);
        states[i] = snapshot();
      }
      const batch = Array.from({ length: 64 }, () => ++i);
      await Promise.all(batch.map((k) => store.commit(pagesOf(k).map((p) => ({ pgno: p, data: pageOf(p, k) })))));
      await r.stop();
      const m = r.metrics();
      expect(m.publishedSeq).toBe(i);
      expect(m.exportedSeq).toBe(i);
      if (delta) expect(m.deltaFrames).toBeGreaterThan(0);
      else expect(m.deltaFrames).toBe(0);
      // the log as stored: each commit once, in order; a message that ends inside a commit only in a large one
      const restored = path.join(dir, `${stream}.db`);
      for (const until of [1, 7, 14, 20]) {
        await restoreFromNats(restored, { servers: server.url, stream, until });
        const bytes = fs.readFileSync(restored);
        const got = Array.from({ length: Math.min(62, bytes.length / 4096) }, (_, k) => (k < 2 ? '' : bytes.subarray(k * 4096, (k + 1) * 4096).some((b) => b !== 0) ? xxh3_128(bytes.subarray(k * 4096, (k + 1) * 4096)).toString(16) : ''));
        expect(got, `${stream} until ${until}`).toEqual(states[until]!.slice(0, got.length));
        fs.rmSync(restored);
      }
      await restoreFromNats(restored, { servers: server.url, stream });
      const whole = fs.readFileSync(restored);
      const live = await pageHashes(store);
      expect(Array.from({ length: whole.length / 4096 }, (_, k) => xxh3_128(whole.subarray(k * 4096, (k + 1) * 4096)).toString(16)).slice(2)).toEqual(live.slice(2));
      fs.rmSync(restored);
      const log = await logCommits(server.url, stream);
      expect(log.commits).toEqual(Array.from({ length: i }, (_, k) => k + 1));
      expect(log.splitInside.length).toBeGreaterThan(0); // the 40-page commits span messages
      for (const split of log.splitInside) expect(split % 7, `message ending inside commit ${split}`).toBe(0);
      await store.close();
    }
  });

  it('a replica behind the stream\'s retention re-bases from the newest base image when it reopens', async () => {
    const { server, store, r } = await replicating(dir, started, 'retention', { maxBytes: 256 << 10, baseEveryCommits: 20, delta: false, maxMessageBytes: 64 << 10 });
    const replicaPath = path.join(dir, 'retention-replica.db');
    let replica = await openReplica(replicaPath, { servers: server.url, stream: 'retention' });
    for (let i = 0; i < 10; i++) await store.commit([{ pgno: 3 + (i % 4), data: noise(i) }]);
    await replica.waitFor(10, r.metrics().session);
    await replica.close();
    for (let i = 10; i < 200; i++) await store.commit([{ pgno: 3 + (i % 4), data: noise(i) }]); // 780 KiB: the first commits leave the stream
    await until(() => r.metrics().publishedSeq === r.metrics().exportedSeq && r.metrics().exportedSeq >= 200);
    replica = await openReplica(replicaPath, { servers: server.url, stream: 'retention' });
    await caughtUp(r, replica);
    expect(replica.lag().rebases).toBe(1);
    expect(await pageHashes(replica.store)).toEqual(await pageHashes(store));
    await replica.close();
    await store.close();
  });

  it('on a worker thread (the default): the worker terminated is an error WALNUT_IO WorkerExited, then end; the store keeps committing, a TRUNCATE checkpoint of it completes (nothing of the worker holds the WAL) and it closes cleanly', async () => {
    const { store, r } = await replicating(dir, started, 'dies');
    expect(r).toBeInstanceOf(ReplicationThread);
    const errors: unknown[] = [];
    r.on('error', (e) => errors.push(e));
    const ended = new Promise<void>((res) => r.once('end', () => res()));
    for (let i = 0; i < 10; i++) await store.commit([{ pgno: 3 + (i % 4), data: noise(i) }]);
    await until(() => r.metrics().publishedSeq >= 10, WAIT_MS, () => r.metrics());
    await (r as ReplicationThread).worker.terminate();
    await ended;
    expect(errors).toContainEqual(expect.objectContaining({ code: 'WALNUT_IO', reason: 'WorkerExited' }));
    for (let i = 10; i < 40; i++) await store.commit([{ pgno: 3 + (i % 4), data: noise(i) }]);
    await r.stop(); // ended already: resolves at once
    const ckpt = await store.checkpoint('truncate');
    expect(ckpt).toMatchObject({ busy: false });
    expect(store.metrics().walFrames).toBe(0);
    await store.close();
  });

  it('close() while commits are being published, and close() before the worker is ready: every commit that resolved is in the stream once, no unhandled rejection, the worker exits', async () => {
    const { server, store, r } = await replicating(dir, started, 'closing');
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown): number => unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      const exited = new Promise<void>((res) => (r as ReplicationThread).worker.once('exit', () => res()));
      let stop = false;
      const writing = rawCommitters(store, 8, () => stop);
      await until(() => r.metrics().publishedSeq > 50);
      const closing = store.close(); // mid-stream: the committers' next calls are refused
      stop = true;
      const commits = await writing.catch(() => -1);
      await closing;
      await exited;
      expect(r.metrics().publishedSeq).toBe(r.metrics().exportedSeq);
      const logged = await loggedCommits([server.url], 'closing');
      expect(logged.length).toBe(r.metrics().publishedSeq - logged[0]! + 1);
      expect(logged.every((seq, i) => i === 0 || seq === logged[i - 1]! + 1)).toBe(true);
      if (commits >= 0) expect(r.metrics().publishedSeq).toBeGreaterThanOrEqual(commits);

      // a replication closed before its worker has opened the database
      const early = await open(newPrimary(dir));
      const r2 = early.replicateTo({ servers: server.url, stream: 'closing2' });
      const ended = new Promise<void>((res) => r2.once('end', () => res()));
      await early.close();
      await ended;
      await r2.ready.catch((e: unknown) => expect(e).toMatchObject({ code: 'WALNUT_CLOSED' }));
      await new Promise((res) => setTimeout(res, 50));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('base images by commit count wait until the log since the last base is half its size (a 16 MiB base went out after every baseEveryCommits one-row commits)', async () => {
    const file = newPrimary(dir);
    const store = await open(file);
    const big = Buffer.alloc(4096, 7);
    await store.commit(Array.from({ length: 4000 }, (_, k) => ({ pgno: 3 + k, data: big })));
    await store.checkpoint('passive');
    const server = await startNatsServer();
    started.push(server);
    const r = store.replicateTo({ servers: server.url, stream: 'bases', baseEveryCommits: 50 });
    await r.ready;
    const page = Buffer.alloc(4096, 9);
    for (let i = 0; i < 400; i++) {
      page.writeUInt32BE(i, 100); // one row's worth: a PAGE_DELTA of a few bytes
      await store.commit([{ pgno: 3 + (i % 8), data: page }]);
    }
    await r.stop();
    expect(r.metrics()).toMatchObject({ bases: 1, publishedSeq: 401 }); // the session's own only (its base at commit 1)
    await store.close();
  });

  it('the database renamed under the store: the worker refuses its path (WALNUT_CANTOPEN NotTheStoresFile), never creates a new database there, and the replication ends once', async () => {
    const file = newPrimary(dir);
    const store = await open(file);
    fs.renameSync(file, `${file}-moved`);
    const errors: unknown[] = [];
    const r = store.replicateTo({ servers: 'nats://127.0.0.1:1', stream: 'moved' });
    r.on('error', (e) => errors.push(e));
    const ended = new Promise<void>((res) => r.once('end', () => res()));
    await expectRejectsWalnut(r.ready, 'WALNUT_CANTOPEN', { reason: 'NotTheStoresFile' });
    await ended;
    expect(errors).toHaveLength(1);
    expect(fs.existsSync(file)).toBe(false);
    await store.close();
  });

  it('on a worker thread, options holding what cannot cross threads (a function) are refused as unknown options with a WalnutError, never a DataCloneError; only the resolved options cross, and a replication with the known options publishes', async () => {
    const server = await startNatsServer();
    started.push(server);
    const store = await open(newPrimary(dir));
    await expectRejectsWalnut((async () => store.replicateTo({ servers: server.url, stream: 'clone', onError: () => undefined } as ReplicateOptions))(), 'WALNUT_INVALID_ARGUMENT', { reason: 'onError' });
    const r = store.replicateTo({ servers: server.url, stream: 'clone' });
    expect(r).toBeInstanceOf(ReplicationThread);
    await r.ready;
    for (let i = 0; i < 3; i++) await store.commit([{ pgno: 3 + i, data: noise(i) }]);
    await r.stop();
    expect(r.metrics()).toMatchObject({ publishedSeq: 3, exportedSeq: 3 });
    await store.close();
  });

  it('on a worker thread, metrics() read in a \'published\' handler never has publishedSeq past exportedSeq (the event moved publishedSeq past the worker\'s last report), nor lag once they meet', async () => {
    const { store, r } = await replicating(dir, started, 'published-metrics');
    const seen: ReturnType<ReplicationHandle['metrics']>[] = [];
    r.on('published', () => seen.push(r.metrics()));
    for (let i = 0; i < 40; i++) await store.commit([{ pgno: 3 + (i % 4), data: noise(i) }]);
    await until(() => r.metrics().publishedSeq >= 40);
    await store.close();
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.filter((m) => m.publishedSeq > m.exportedSeq || (m.publishedSeq === m.exportedSeq && m.lagCommits !== 0))).toEqual([]);
  });

  it('a \'published\' event splits its age into the stages of its message: queuedMs (export queued -> the message sent) and ackMs (sent -> acknowledged), each >= 0 and together at most ageMs, on a worker thread and on the store\'s loop (before: ageMs only)', async () => {
    for (const thread of [true, false]) {
      const { store, r } = await replicating(dir, started, `published-stages-${thread}`, { thread });
      const events: { seq: number; ageMs: number; queuedMs: number; ackMs: number }[] = [];
      r.on('published', (e) => events.push(e));
      for (let i = 0; i < 30; i++) await store.commit([{ pgno: 3 + (i % 4), data: noise(i) }]);
      await until(() => r.metrics().publishedSeq >= 30);
      await store.close();
      expect(events.length).toBeGreaterThan(0);
      for (const e of events) {
        expect(typeof e.queuedMs).toBe('number');
        expect(typeof e.ackMs).toBe('number');
        expect(e.queuedMs).toBeGreaterThanOrEqual(0);
        expect(e.ackMs).toBeGreaterThanOrEqual(0);
        expect(e.queuedMs + e.ackMs).toBeLessThanOrEqual(e.ageMs + 1e-6);
      }
    }
  });

  it('on a worker thread, stop() with a stopTimeoutMs past what a timer holds (2^31 ms) publishes the backlog (the worker was terminated 1 ms into stop(): WorkerExited, nothing published)', async () => {
    const { store, r } = await replicating(dir, started, 'long-stop', { stopTimeoutMs: 2 ** 31 });
    const errors: unknown[] = [];
    r.on('error', (e) => errors.push(e));
    const commits = Array.from({ length: 100 }, (_, i) => store.commit([{ pgno: 3 + (i % 8), data: noise(i) }]));
    await Promise.all(commits);
    await r.stop();
    expect(errors).toEqual([]);
    expect(r.metrics()).toMatchObject({ publishedSeq: 100, exportedSeq: 100 });
    await store.close();
  });

  it('thread must be a boolean; lockingMode exclusive publishes from the store\'s own loop (no other connection can open the database)', async () => {
    const store = await open(newPrimary(dir), { lockingMode: 'exclusive' });
    await expectRejectsWalnut((async () => store.replicateTo({ servers: 'nats://127.0.0.1:1', stream: 's', thread: 'yes' as never }))(), 'WALNUT_INVALID_ARGUMENT', { reason: 'thread' });
    const server = await startNatsServer();
    started.push(server);
    const r = store.replicateTo({ servers: server.url, stream: 'exclusive' });
    expect(r).not.toBeInstanceOf(ReplicationThread);
    await r.ready;
    for (let i = 0; i < 5; i++) await store.commit([{ pgno: 3 + i, data: noise(i) }]);
    await store.close();
    expect(r.metrics()).toMatchObject({ publishedSeq: 5, exportedSeq: 5 });
  });

  it('stop() or close() right after replicateTo publishes what was committed before it (a graceful stop flushes), on a worker thread and on the store\'s loop: ready resolves, the stream restores to the primary\'s state, restoreFromNats reports progress (before: nothing was published, and ready resolved all the same)', async () => {
    const server = await startNatsServer();
    started.push(server);
    for (const thread of [true, false]) {
      for (const how of ['stop', 'close'] as const) {
        const store = await open(newPrimary(dir));
        for (let i = 0; i < 5; i++) await store.commit([{ pgno: 3 + i, data: noise(i) }]);
        const expected = await pageHashes(store);
        const stream = `flush-${thread}-${how}`;
        const r = store.replicateTo({ servers: server.url, stream, thread, stopTimeoutMs: 60_000 });
        if (how === 'stop') await r.stop();
        else await store.close();
        await r.ready;
        expect(r.metrics().publishedSeq, `${stream}`).toBe(r.metrics().exportedSeq);
        const out = path.join(dir, `${stream}.db`);
        const progress: number[] = [];
        await restoreFromNats(out, { servers: server.url, stream, onProgress: (bytes) => progress.push(bytes) });
        const restored = fs.readFileSync(out);
        expect(Array.from({ length: restored.length / 4096 }, (_, k) => xxh3_128(restored.subarray(k * 4096, (k + 1) * 4096)).toString(16)), stream).toEqual(expected);
        expect(progress.length, stream).toBeGreaterThan(0);
        expect(progress.every((b, i) => i === 0 || b >= progress[i - 1]!)).toBe(true);
        if (how === 'stop') await store.close();
      }
    }
  });

  it('a replication worker that crashes (an exception it does not catch) is one error WALNUT_IO WorkerExited, then end (it was two errors: the worker\'s \'error\' and its exit each raised one)', async () => {
    const { store, r } = await replicating(dir, started, 'crash');
    const errors: WalnutError[] = [];
    r.on('error', (e: WalnutError) => errors.push(e));
    const ended = new Promise<void>((res) => r.once('end', () => res()));
    for (let i = 0; i < 5; i++) await store.commit([{ pgno: 3 + i, data: noise(i) }]);
    (r as ReplicationThread).worker.postMessage(null); // its message handler throws on it
    await ended;
    expect(errors.map((e) => [e.code, e.reason])).toEqual([['WALNUT_IO', 'WorkerExited']]);
    expect(r.metrics().lastError).toMatch(/^WALNUT_IO: /);
    await store.commit([{ pgno: 9, data: noise(9) }]);
    await store.close();
  });

  it('a later base image does not hold the log up: log messages are stored between its parts (queued ahead of the log, every commit waited for the whole base); a restore from such a base and a replica created from the newest equal the primary', async () => {
    const file = newPrimary(dir);
    const store = await open(file);
    const fill = (p: number, i: number): Buffer => {
      const b = Buffer.alloc(4096, p & 0xff);
      b.writeUInt32BE(i, 8 + (i % 100) * 40);
      return b;
    };
    const PAGES = 600;
    await store.commit(Array.from({ length: PAGES }, (_, k) => ({ pgno: 3 + k, data: fill(3 + k, 0) })));
    const server = await startNatsServer();
    started.push(server);
    // 64 KiB messages: a base of 2.4 MB goes out in ~75 parts, each after the one before is stored
    const r = store.replicateTo({ servers: server.url, stream: 'interleave', maxMessageBytes: 64 << 10, baseEveryMs: 200, stopTimeoutMs: 60_000 });
    await r.ready;
    let commits = 0;
    const deadline = Date.now() + 2 * WAIT_MS; // for a hang only (21 s at load 15)
    while (r.metrics().bases < 4 && Date.now() < deadline) {
      commits++;
      await store.commit([{ pgno: 3 + (commits % 50), data: fill(3 + (commits % 50), commits) }]);
    }
    await r.stop();
    const m = r.metrics();
    expect(m.bases).toBeGreaterThanOrEqual(4);
    expect(m.publishedSeq).toBe(m.exportedSeq);
    const offset = m.publishedSeq - commits; // the session's number of the loop's commit 0
    // the stream: each later base's parts, and whether a log message lies between its first and final part
    const { connect } = await import('@nats-io/transport-node');
    const { jetstreamManager } = await import('@nats-io/jetstream');
    const nc = await connect({ servers: server.url });
    const jsm = await jetstreamManager(nc);
    const last = (await jsm.streams.info('interleave')).state.last_seq;
    const subjects: string[] = [];
    const finals: { seq: number; first: number; last: number }[] = [];
    for (let q = 1; q <= last; q++) {
      const msg = (await jsm.streams.getMessage('interleave', { seq: q }))!;
      subjects[q] = msg.subject;
      if (msg.header.get('Walnut-Base-Final') === '1' && msg.header.get('Walnut-Log-From') !== '') {
        finals.push({ seq: Number(msg.header.get('Walnut-Base-Seq')), first: Number(msg.header.get('Walnut-Base-First')), last: q });
      }
    }
    await nc.close();
    const interleaved = finals.filter((b) => subjects.slice(b.first, b.last).some((x) => x === 'walnut.interleave.log'));
    expect(interleaved.length, JSON.stringify(finals)).toBeGreaterThan(0);
    // a restore from an interleaved base: the state at its commit and one after it
    const expected = (seq: number): string[] => {
      const j = seq - offset;
      return Array.from({ length: PAGES }, (_, k) => {
        const p = 3 + k;
        let i = j;
        while (i > 0 && 3 + (i % 50) !== p) i--;
        return xxh3_128(fill(p, i > 0 ? i : 0)).toString(16);
      });
    };
    const base = interleaved[0]!;
    for (const until of [base.seq, base.seq + 1]) {
      const out = path.join(dir, `interleave-${until}.db`);
      expect(await restoreFromNats(out, { servers: server.url, stream: 'interleave', until })).toMatchObject({ lastCommitSeq: until });
      const restored = fs.readFileSync(out);
      expect(Array.from({ length: PAGES }, (_, k) => xxh3_128(restored.subarray((k + 2) * 4096, (k + 3) * 4096)).toString(16)), `until ${until}`).toEqual(expected(until));
    }
    // a new replica starts from the newest base and applies the log after it
    const replica = await openReplica(path.join(dir, 'interleave-replica.db'), { servers: server.url, stream: 'interleave' });
    await replica.waitFor(m.publishedSeq, m.session);
    expect(await pageHashes(replica.store)).toEqual(await pageHashes(store));
    await replica.close();
    await store.close();
  });
  it('a later base image goes out in parts of at most 256 KiB (a log message sent behind a part is stored after it: behind 900 KiB parts it waited 5x longer), the session\'s first base in parts up to maxMessageBytes; a replica created from the later base equals the primary', async () => {
    const file = newPrimary(dir);
    const store = await open(file);
    await store.commit(Array.from({ length: 700 }, (_, k) => ({ pgno: 3 + k, data: noise(k) }))); // ~2.8 MiB
    await store.checkpoint('passive'); // in the session's first base, not its log
    const server = await startNatsServer();
    started.push(server);
    const r = store.replicateTo({ servers: server.url, stream: 'smallparts', baseEveryMs: 300 });
    await r.ready;
    let i = 0;
    while (r.metrics().bases < 2) await store.commit([{ pgno: 3 + (i % 20), data: noise(1000 + i++) }]);
    await r.stop();
    const { connect } = await import('@nats-io/transport-node');
    const { jetstreamManager } = await import('@nats-io/jetstream');
    const nc = await connect({ servers: server.url });
    const jsm = await jetstreamManager(nc);
    const last = (await jsm.streams.info('smallparts')).state.last_seq;
    const parts = new Map<string, number[]>(); // base seq -> part sizes
    for (let q = 1; q <= last; q++) {
      const msg = (await jsm.streams.getMessage('smallparts', { seq: q }))!;
      if (msg.subject !== 'walnut.smallparts.base') continue;
      const key = msg.header.get('Walnut-Base-Seq');
      parts.set(key, [...(parts.get(key) ?? []), msg.data.length]);
    }
    await nc.close();
    const [first, ...later] = [...parts.values()];
    expect(later.length).toBeGreaterThan(0);
    expect(Math.max(...first!)).toBeGreaterThan(256 << 10);
    for (const sizes of later) {
      expect(Math.max(...sizes), JSON.stringify(sizes)).toBeLessThanOrEqual(256 << 10);
      expect(sizes.length).toBeGreaterThanOrEqual(11); // 2.8 MiB
    }
    const replica = await openReplica(path.join(dir, 'smallparts-replica.db'), { servers: server.url, stream: 'smallparts' });
    const m = r.metrics();
    await replica.waitFor(m.publishedSeq, m.session);
    expect(await pageHashes(replica.store)).toEqual(await pageHashes(store));
    await replica.close();
    await store.close();
  });
  it('close() while a later base image is being read is no error, on the store\'s loop and on a worker thread (it was an \'error\' WALNUT_CLOSED "the snapshot was released" on a clean close; the worker now gives its loop turns during the read too)', async () => {
    const server = await startNatsServer();
    started.push(server);
    const errors: string[] = [];
    // the 2,000-page primary built once and copied for each attempt (committing it took 0.7-1 s a time)
    const template = newPrimary(dir);
    const built = await open(template);
    await built.commit(Array.from({ length: 2000 }, (_, k) => ({ pgno: 3 + k, data: noise(k % 7) })));
    await built.close();
    for (let attempt = 0; attempt < 12; attempt++) {
      const thread = attempt % 2 === 1;
      const file = newPrimary(dir);
      for (const suffix of ['', '-wal']) if (fs.existsSync(template + suffix)) fs.copyFileSync(template + suffix, file + suffix);
      const store = await open(file);
      const copied = await store.snapshot();
      expect(copied.dbSize).toBe(2002);
      copied.release();
      // 64 KiB messages: the base is read 7 pages at a time, the loop given a turn between
      const r = store.replicateTo({ servers: server.url, stream: `closebase${attempt}`, thread, baseEveryMs: 1, maxMessageBytes: 64 << 10 });
      r.on('error', (e: WalnutError) => errors.push(`${e.code}: ${e.message}`));
      await r.ready;
      for (let i = 0; i < 5; i++) await store.commit([{ pgno: 3 + i, data: noise(100 + i) }]); // each starts a base when none is being read
      await new Promise((res) => setTimeout(res, (attempt >> 1) * 3));
      await store.close();
      await r.stop();
      expect(r.metrics().publishedSeq).toBe(r.metrics().exportedSeq);
    }
    expect(errors).toEqual([]);
  });
});
