// A WAL that readers keep from restarting (commit/auto-checkpoint.ts): auto-checkpoints back
// off instead of running (and being waited for) after every commit, store.metrics().wal and the
// walnut:wal event name the holder, and once the reader is gone the next commit restarts the
// WAL and cuts the file back to walSizeLimit. Holders: this store's snapshots, and a
// better-sqlite3 read transaction in another process. Not holders: the store's transactions
// once committing, and snapshots at the WAL's end once all of it is copied (moved to READ(0)).
import diagnostics from 'node:diagnostics_channel';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';

import type { Snapshot } from '../../lib/wal-index/snapshot';
import { open, type Store } from '../../lib/commit/store';
import { SqlitePeer } from '../helpers/children';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { tmpDir } from '../helpers/tmp';
import { until, WAIT_MS } from '../helpers/until';

const dir = tmpDir();
const EVERY = 100; // autoCheckpoint frames
const LIMIT = 64 * 1024; // walSizeLimit
const page = Buffer.alloc(4096, 7);

async function commits(store: Store, n: number, after?: () => Promise<void>): Promise<void> {
  for (let i = 0; i < n; i++) {
    await store.commit([{ pgno: 2 + (i % 50), data: page }]);
    await after?.();
  }
}

function walEvents(store: Store) {
  return store.recentEvents().filter((e) => e.name === 'wal').map((e) => e.data);
}

/** Releases the reader, commits once: that commit restarts the WAL and applies walSizeLimit. */
async function expectRestartAfter(store: Store, db: string, release: () => Promise<void> | void): Promise<void> {
  const before = store.metrics();
  await release();
  await store.commit([{ pgno: 2, data: page }]);
  const m = store.metrics();
  expect(m.walFrames).toBe(1);
  expect(fs.statSync(`${db}-wal`).size).toBe(LIMIT);
  expect(m.wal).toMatchObject({ frames: 1, bytes: LIMIT, pinnedBy: null, pinnedSinceMs: null, checkpointBackoff: null });
  // the one that let this commit restart the WAL (after a back-off one, if that was running)
  expect(m.checkpoints - before.checkpoints).toBeGreaterThanOrEqual(1);
  expect(m.checkpoints - before.checkpoints).toBeLessThanOrEqual(2);
  expect(walEvents(store).at(-1)).toMatchObject({ state: 'released' });
}

describe('auto-checkpoint with a reader holding the WAL', () => {
  it("snapshots of this store: checkpoints back off, metrics and an event name them, their release restarts the WAL", async () => {
    const published: unknown[] = [];
    const listener = (m: unknown) => published.push(m);
    diagnostics.subscribe('walnut:wal', listener);
    onTestFinished(() => void diagnostics.unsubscribe('walnut:wal', listener));
    const db = path.join(dir, 'snap.db');
    const store = await open(db, { autoCheckpoint: EVERY, walSizeLimit: LIMIT });
    await commits(store, 150);
    let snap: Snapshot = await store.snapshot();
    let previous: Snapshot | null = null;
    const m0 = store.metrics();
    // A reader that follows one commit behind: after every commit it takes a new snapshot and
    // drops the one before the last, so it always holds the WAL a commit below its end. Every
    // checkpoint copies all but that commit and cannot restart the WAL; it must not run (and be
    // waited for) after each commit. (A snapshot at the newest frame does not hold the WAL once
    // everything is copied: the writer moves it to the database file, see the test below.)
    await commits(store, 600, async () => {
      const next = await store.snapshot();
      previous?.release();
      previous = snap;
      snap = next;
    });
    // the back-off checkpoint the last commits started may still be copying (on a loaded
    // machine, dozens of commits later): its end sets the next point (nextAtFrames was 600 beside
    // a WAL of 627 frames, once in CI)
    await until(() => store.metrics().wal.checkpointBackoff!.nextAtFrames > store.metrics().walFrames, WAIT_MS);
    const m = store.metrics();
    expect(m.walFrames).toBeGreaterThan(600); // held: it could not restart
    expect(m.checkpoints - m0.checkpoints).toBeLessThanOrEqual(600 / EVERY + 2);
    expect(m.checkpointWaits - m0.checkpointWaits).toBeLessThanOrEqual(1);
    expect(m.wal.frames).toBe(m.walFrames);
    expect(m.wal.bytes).toBe(fs.statSync(`${db}-wal`).size);
    expect(m.wal.pinnedBy).toEqual({ snapshots: 2, exports: 0, oldestSnapshotFrame: m.walFrames - 1, connections: [] });
    expect(m.wal.pinnedSinceMs).toBeGreaterThanOrEqual(0);
    expect(m.wal.checkpointBackoff!.nextAtFrames).toBeGreaterThan(m.walFrames);
    expect(m.wal.pinnedCheckpoints).toBeGreaterThan(0);
    const events = walEvents(store);
    expect(events.length).toBeGreaterThan(0);
    expect(events.length).toBeLessThanOrEqual(4); // pinned at ~150..250 frames, again at each doubling
    expect(events[0]).toMatchObject({ state: 'pinned', pinnedBy: { snapshots: 2, connections: [] } });
    const text = store.metrics({ format: 'prometheus' });
    expect(text).toContain('walnut_wal_pinned 1');
    expect(text).toContain('walnut_wal_pinned_snapshots 2');
    await expectRestartAfter(store, db, () => {
      snap.release();
      previous?.release();
    });
    expect(store.metrics({ format: 'prometheus' })).toContain('walnut_wal_pinned 0');
    expect(published).toEqual(walEvents(store)); // the same events on the channel
    await store.close();
  });

  it('a snapshot held still: the first commit after its release restarts the WAL, not autoCheckpoint frames later', async () => {
    const db = path.join(dir, 'still.db');
    const store = await open(db, { autoCheckpoint: EVERY, walSizeLimit: LIMIT });
    const snap = await store.snapshot();
    await commits(store, 350);
    const m = store.metrics();
    expect(m.checkpoints).toBeLessThanOrEqual(350 / EVERY);
    expect(m.wal.pinnedBy).toMatchObject({ snapshots: 1, connections: [] });
    expect(fs.statSync(`${db}-wal`).size).toBeGreaterThan(350 * 4096);
    await expectRestartAfter(store, db, () => snap.release());
    await store.close();
  });

  it('a better-sqlite3 read transaction in another process: named by slot, mark and pid; its end restarts the WAL', async () => {
    const db = path.join(dir, 'peer.db');
    const store = await open(db, { autoCheckpoint: EVERY, walSizeLimit: LIMIT });
    await commits(store, 150);
    const peer = new SqlitePeer(db);
    try {
      const read = () => peer.get('SELECT count(*) AS n FROM sqlite_master');
      await peer.exec('BEGIN');
      await read();
      const m0 = store.metrics();
      await commits(store, 450);
      const m = store.metrics();
      expect(m.walFrames).toBeGreaterThan(450);
      expect(m.checkpoints - m0.checkpoints).toBeLessThanOrEqual(450 / EVERY + 2);
      expect(m.checkpointWaits - m0.checkpointWaits).toBeLessThanOrEqual(1); // before the first checkpoint found the reader
      expect(m.wal.pinnedBy!.snapshots).toBe(0);
      expect(m.wal.pinnedBy!.connections).toHaveLength(1);
      const [reader] = m.wal.pinnedBy!.connections;
      expect(reader!.pid).toBe(peer.pid);
      expect(reader!.slot).toBeGreaterThan(0);
      expect(reader!.mark).toBeLessThanOrEqual(150);
      expect(walEvents(store)[0]).toMatchObject({ state: 'pinned', pinnedBy: { snapshots: 0, connections: [{ pid: peer.pid }] } });
      expect(store.metrics({ format: 'prometheus' })).toContain(`walnut_wal_pinned_reader_mark{slot="${reader!.slot}",pid="${peer.pid}"} ${reader!.mark}`);
      await expectRestartAfter(store, db, async () => {
        await peer.exec('COMMIT');
      });
    } finally {
      await peer.close();
    }
    await store.close();
  });
});

describe("a store's own transactions do not hold the WAL", () => {
  it('16 transactions committing continuously: the WAL restarts, nothing committed is lost, first committer still wins', async () => {
    const db = path.join(dir, 'own-tx.db');
    const store = await open(db, { autoCheckpoint: EVERY, walSizeLimit: LIMIT });
    const WORKERS = 16;
    const COUNTERS = 4; // each shared by 4 workers: read-modify-write races on them
    const SUCCESSES = 80; // per worker: 1,280 commits of 2 frames, past EVERY frames many times
    let conflicts = 0;
    let maxFrames = 0;
    let restarts = 0;
    const counterPage = (w: number) => 2 + (w % COUNTERS);
    const ownPage = (w: number) => 10 + w;
    const worker = async (w: number) => {
      for (let done = 0; done < SUCCESSES; ) {
        const tx = store.begin();
        const n = value(await tx.read(counterPage(w)));
        tx.write(counterPage(w), withValue(n + 1));
        tx.write(ownPage(w), withValue(done + 1));
        try {
          await tx.commit();
          done++;
        } catch (e) {
          expect((e as { code?: string }).code).toBe('WALNUT_CONFLICT');
          conflicts++;
        }
        const frames = store.metrics().walFrames;
        if (frames < maxFrames) restarts++;
        maxFrames = Math.max(maxFrames, frames);
      }
    };
    // every worker's first snapshot is taken before any commit: 12 of the first 16 must lose
    await Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w)));
    expect(conflicts).toBeGreaterThanOrEqual(WORKERS - COUNTERS);
    const m = store.metrics();
    expect(m.conflicts).toBe(conflicts);
    expect(m.commits).toBe(WORKERS * SUCCESSES);
    // Before, each batch's own snapshots held read marks while it appended: the WAL never
    // restarted and held all 2,560 frames. Now it restarts once a checkpoint has copied
    // everything. (How often depends on the timing: a transaction between begin() and commit()
    // whose snapshot is below the WAL's end holds it, and pins the auto-checkpoint for a while.)
    expect(restarts).toBeGreaterThanOrEqual(1); // the bound itself: the next test, in rounds
    expect(maxFrames).toBeLessThan(2 * WORKERS * SUCCESSES);
    expect(m.wal.pinnedBy?.snapshots ?? 0).toBe(0);
    await store.commit([{ pgno: 100, data: page }]);
    await store.commit([{ pgno: 100, data: page }]);
    expect(store.metrics().wal).toMatchObject({ pinnedBy: null, pinnedSinceMs: null });
    expect(store.metrics().walFrames).toBeLessThan(EVERY * 2);
    // every committed transaction is there: each counter counts the commits of its 4 workers
    const snap = await store.snapshot();
    for (let c = 0; c < COUNTERS; c++) expect(value(await snap.read(2 + c))).toBe((WORKERS / COUNTERS) * SUCCESSES);
    for (let w = 0; w < WORKERS; w++) expect(value(await snap.read(ownPage(w)))).toBe(SUCCESSES);
    snap.release();
    await store.close();
  });

  it('16 transactions at a time, round after round: the WAL stays under twice autoCheckpoint frames', async () => {
    const db = path.join(dir, 'own-tx-rounds.db');
    const store = await open(db, { autoCheckpoint: EVERY, walSizeLimit: LIMIT });
    const WORKERS = 16;
    const COUNTERS = 8; // each shared by 2 workers: one of them loses each round
    const ROUNDS = 60;
    const wins = new Array<number>(COUNTERS).fill(0);
    let maxFrames = 0;
    for (let round = 0; round < ROUNDS; round++) {
      // every transaction of the round is open (snapshot taken, page read) before any commits,
      // and none is open between rounds: no reader but the committing transactions themselves
      const txs = await Promise.all(Array.from({ length: WORKERS }, async (_, w) => {
        const tx = store.begin();
        const n = value(await tx.read(2 + (w % COUNTERS)));
        tx.write(2 + (w % COUNTERS), withValue(n + 1));
        tx.write(20 + w, withValue(round));
        return tx;
      }));
      const outcomes = await Promise.allSettled(txs.map((tx) => tx.commit()));
      outcomes.forEach((o, w) => {
        if (o.status === 'fulfilled') wins[w % COUNTERS]!++;
        else expect(o.reason).toMatchObject({ code: 'WALNUT_CONFLICT' });
      });
      maxFrames = Math.max(maxFrames, store.metrics().walFrames);
    }
    // first committer wins: exactly one of the two workers on a counter, every round
    expect(wins).toEqual(new Array<number>(COUNTERS).fill(ROUNDS));
    // Before, the round's own read marks were held while its batch appended: the WAL kept all
    // 60 x 16 frames. Each batch now checkpoints under WRITE once past EVERY frames (nothing
    // else reads) and restarts the WAL.
    expect(maxFrames).toBeLessThan(2 * EVERY);
    expect(store.metrics().wal).toMatchObject({ pinnedBy: null, pinnedCheckpoints: 0 });
    const snap = await store.snapshot();
    for (let c = 0; c < COUNTERS; c++) expect(value(await snap.read(2 + c))).toBe(ROUNDS);
    snap.release();
    await store.close();
  });

  it('a snapshot that sees the whole WAL, all of it copied, moves to the database file: the WAL restarts, it reads the same pages, its transaction still conflicts', async () => {
    const db = path.join(dir, 'moved.db');
    const store = await open(db, { autoCheckpoint: false, walSizeLimit: LIMIT });
    await store.commit([{ pgno: 2, data: withValue(1) }, { pgno: 3, data: withValue(1) }]);
    const snap = await store.snapshot();
    const tx = store.begin();
    expect(value(await tx.read(2))).toBe(1);
    expect((await store.checkpoint('passive')).checkpointedFrames).toBe(2); // their marks are at the end
    await store.commit([{ pgno: 2, data: withValue(2) }]);
    expect(store.metrics().walFrames).toBe(1); // restarted (before: 3, the snapshots' marks held it)
    expect(value(await snap.read(2))).toBe(1);
    expect(value(await snap.read(3))).toBe(1);
    // READ(0) keeps the checkpointer from copying the new frame under it
    expect((await store.checkpoint('passive')).checkpointedFrames).toBe(0);
    expect(value(await snap.read(2))).toBe(1);
    tx.write(2, withValue(3));
    await expectRejectsWalnut(tx.commit(), 'WALNUT_CONFLICT'); // page 2 was committed after its snapshot
    snap.release();
    expect((await store.checkpoint('passive')).checkpointedFrames).toBe(1);
    const after = await store.snapshot();
    expect(value(await after.read(2))).toBe(2);
    after.release();
    await store.close();
  });

  it("an export's snapshot is never moved: it keeps the frames it has not exported yet", async () => {
    const db = path.join(dir, 'export-kept.db');
    const store = await open(db, { autoCheckpoint: false });
    await store.commit([{ pgno: 2, data: withValue(1) }]);
    expect((await store.checkpoint('passive')).checkpointedFrames).toBe(1);
    let release: () => void = () => undefined;
    let reached: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const inSink = new Promise<void>((resolve) => (reached = resolve));
    const handle = store.exportTo({ appendRecord: () => (reached(), gate), flush: async () => undefined });
    await inSink; // the export waits on its sink in the base image, its snapshot at frame 1
    await store.commit([{ pgno: 2, data: withValue(2) }]);
    expect(store.metrics().walFrames).toBe(2); // not restarted over frame 1, which the export has yet to send
    release();
    const stats = await handle.done;
    expect(stats).toMatchObject({ commits: 0, generations: 1 }); // commit 1 is its base image; its generation continues after frame 1
    await store.close();
  });
});

const value = (b: Buffer) => b.readUInt32BE(0);

function withValue(n: number): Buffer {
  const b = Buffer.alloc(4096, 1);
  b.writeUInt32BE(n, 0);
  return b;
}

describe('walSizeLimit', () => {
  it('the first commit after a restart or a truncate leaves the WAL at max(limit, its frames)', async () => {
    const db = path.join(dir, 'limit.db');
    const store = await open(db, { autoCheckpoint: false, walSizeLimit: LIMIT });
    const grow = () => Promise.all(Array.from({ length: 50 }, (_, k) => store.commit([{ pgno: 2 + k, data: page }])));
    await grow();
    expect(fs.statSync(`${db}-wal`).size).toBeGreaterThan(LIMIT);
    expect((await store.checkpoint('restart')).busy).toBe(false);
    await store.commit([{ pgno: 2, data: page }]);
    expect(fs.statSync(`${db}-wal`).size).toBe(LIMIT);
    await grow();
    expect((await store.checkpoint('truncate')).walFrames).toBe(0);
    expect(fs.statSync(`${db}-wal`).size).toBe(0);
    await store.commit([{ pgno: 2, data: page }]); // grows in a 1 MiB chunk, then is cut back
    expect(fs.statSync(`${db}-wal`).size).toBe(LIMIT);
    // a first commit larger than the limit keeps its frames, nothing more
    await grow();
    expect((await store.checkpoint('restart')).busy).toBe(false);
    await store.commit(Array.from({ length: 40 }, (_, k) => ({ pgno: 2 + k, data: page })));
    expect(fs.statSync(`${db}-wal`).size).toBe(32 + 40 * (24 + 4096));
    await store.close();
  });
});
