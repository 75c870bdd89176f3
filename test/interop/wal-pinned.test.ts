// A WAL that readers keep from restarting (commit/auto-checkpoint.ts): auto-checkpoints back
// off instead of running (and being waited for) after every commit, store.metrics().wal and the
// walnut:wal event name the holder, and once the reader is gone the next commit restarts the
// WAL and cuts the file back to walSizeLimit. Holders: this store's snapshots, and a
// better-sqlite3 read transaction in another process.
import diagnostics from 'node:diagnostics_channel';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';

import type { Snapshot } from '../../lib/index/snapshot';
import { open, type Store } from '../../lib/commit/store';
import { SqlitePeer } from '../helpers/children';
import { tmpDir } from '../helpers/tmp';

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
  it("a snapshot of this store: checkpoints back off, metrics and an event name it, its release restarts the WAL", async () => {
    const published: unknown[] = [];
    const listener = (m: unknown) => published.push(m);
    diagnostics.subscribe('walnut:wal', listener);
    onTestFinished(() => void diagnostics.unsubscribe('walnut:wal', listener));
    const db = path.join(dir, 'snap.db');
    const store = await open(db, { autoCheckpoint: EVERY, walSizeLimit: LIMIT });
    await commits(store, 150);
    let snap: Snapshot = await store.snapshot();
    const m0 = store.metrics();
    // A reader that keeps up: after every commit it takes a new snapshot, then drops the old
    // one, so it is always in the WAL at its newest frame. Every checkpoint copies everything
    // and still cannot restart the WAL; it must not run (and be waited for) after each commit.
    await commits(store, 600, async () => {
      const next = await store.snapshot();
      snap.release();
      snap = next;
    });
    const m = store.metrics();
    expect(m.walFrames).toBeGreaterThan(600); // held: it could not restart
    expect(m.checkpoints - m0.checkpoints).toBeLessThanOrEqual(600 / EVERY + 2);
    expect(m.checkpointWaits - m0.checkpointWaits).toBeLessThanOrEqual(1);
    expect(m.wal.frames).toBe(m.walFrames);
    expect(m.wal.bytes).toBe(fs.statSync(`${db}-wal`).size);
    expect(m.wal.pinnedBy).toEqual({ snapshots: 1, exports: 0, oldestSnapshotFrame: m.walFrames, connections: [] });
    expect(m.wal.pinnedSinceMs).toBeGreaterThanOrEqual(0);
    expect(m.wal.checkpointBackoff!.nextAtFrames).toBeGreaterThan(m.walFrames);
    expect(m.wal.pinnedCheckpoints).toBeGreaterThan(0);
    const events = walEvents(store);
    expect(events.length).toBeGreaterThan(0);
    expect(events.length).toBeLessThanOrEqual(4); // pinned at ~150..250 frames, again at each doubling
    expect(events[0]).toMatchObject({ state: 'pinned', pinnedBy: { snapshots: 1, connections: [] } });
    const text = store.metrics({ format: 'prometheus' });
    expect(text).toContain('walnut_wal_pinned 1');
    expect(text).toContain('walnut_wal_pinned_snapshots 1');
    await expectRestartAfter(store, db, () => snap.release());
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
