// SQLite's own RESTART and TRUNCATE checkpoints (python3's sqlite3, busy timeout 5 s) beside a
// follow export of the store (exportTo follow, replicateTo on the store's loop or a worker) while the store
// commits: a caught-up follower's pin rests on READ(0) (WalIndex.settleFollowPin), so such a
// checkpoint is not held up by it. Before, each waited out its 5 s holding WRITE (every writer
// stalled with it) and returned busy with the WAL not restarted. Asserted: each returns not busy,
// well within its busy timeout, a TRUNCATE with the WAL cut to 0 frames; the stream restores to
// (or the replica equals) the primary page for page, with every commit once. Also with the pin on
// READ(0): a python3 writer appending (its frames reach the stream; the pin goes back to a slot so
// checkpoints copy them), the store's own commit and checkpoint, another follow export joining,
// and a WAL of 16,000+ frames (4+ -shm segments) written by python3 beside the store's commits.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { open, type Store } from '../../lib/commit/store';
import { restore } from '../../lib/export/restore';
import { SHM_LOCK } from '../../lib/format/shm-header';
import { WalnutFile } from '../../lib/io/file';
import { openReplica } from '../../lib/replicate/replica';
import { HELPERS, runPython } from '../helpers/children';
import { newWriterDb, snapshotTaken } from '../helpers/export-stream';
import { segmentEnd, shmMxFrame } from '../helpers/large-wal';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { pageHashes } from '../helpers/page-hashes';
import { checkpoints, type CheckpointRun } from '../helpers/sqlite-checkpointer';
import { tmpDir } from '../helpers/tmp';
import { until, WAIT_MS } from '../helpers/until';

if (NATS_SKIP !== null) console.warn(NATS_SKIP);

const dir = tmpDir('walnut-read0-pin-');
const started: NatsNode[] = [];
afterAll(() => stopNats(started));

/** The checkpointer's busy timeout, and the bound asserted: far from it (a held-up one takes all of it). */
const BUSY_MS = 5000;
const PROMPT_MS = 3000;

const newDb = (name: string, pageSize = 4096): string => newWriterDb(dir, name, pageSize);

/** `n` committers of one page each (pages 3.., each commit's bytes its own), until stop(); `pauseMs` after each commit. */
function committers(store: Store, n: number, pageSize = 4096, pauseMs = 0): { stop: () => Promise<number> } {
  let stop = false;
  let acked = 0;
  const runs = Array.from({ length: n }, async (_, w) => {
    for (let i = 0; !stop; i++) {
      const data = Buffer.alloc(pageSize, (w * 31 + i) & 0xff);
      data.writeUInt32BE(w, 0);
      data.writeUInt32BE(i, 4);
      await store.commit([{ pgno: 3 + ((w * 7 + i) % 300), data }]);
      acked++;
      if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
    }
  });
  return {
    stop: async () => {
      stop = true;
      await Promise.all(runs);
      return acked;
    },
  };
}

function expectPrompt(run: CheckpointRun): void {
  for (const r of run.results) {
    const note = JSON.stringify(run.results);
    expect(r.busy, note).toBe(0);
    expect(r.ms, note).toBeLessThan(PROMPT_MS);
    if (r.mode === 'TRUNCATE') expect(r, note).toMatchObject({ log: 0, checkpointed: 0 });
    else expect(r.checkpointed, note).toBe(r.log);
  }
}

/** Restores the stream file and compares it with the store's newest state, page for page. */
async function expectRestoresTo(ark: string, store: Store, commits: number): Promise<void> {
  const restored = `${ark}.restored.db`;
  const r = await restore(fs.createReadStream(ark), restored);
  expect(r).toMatchObject({ commits, stoppedBy: null });
  const copy = await open(restored);
  try {
    expect(await pageHashes(copy)).toEqual(await pageHashes(store));
  } finally {
    await copy.close();
  }
}

/**
 * Which read locks other descriptors hold on the -shm (this test's store's among them: OFD locks
 * of another descriptor of this process are reported too): READ(0)'s holder and the held slots.
 */
function readLocks(db: string): { read0: boolean; slots: number[] } {
  const shm = WalnutFile.openSync(`${db}-shm`);
  try {
    const held = (i: number): boolean => shm.lockHolder(SHM_LOCK.READ(i), 1, 'exclusive') !== null;
    return { read0: held(0), slots: [1, 2, 3, 4].filter(held) };
  } finally {
    shm.closeSync();
  }
}

/** A python3 sqlite3 transaction of `rows` rows of `bytes`-byte blobs (wal_autocheckpoint off). */
const pythonFill = (db: string, rows: number, bytes: number): Promise<string> => runPython(path.join(HELPERS, 'sqlite-fill.py'), [db, String(rows), String(bytes)]);

describe("python3's RESTART and TRUNCATE checkpoints beside a follow export of the store", () => {
  it('64 committers, TRUNCATE and RESTART (busy timeout 5 s) in turn: each returns not busy within 3 s; the stream restores to the primary, every commit once', async () => {
    const src = newDb('export64');
    const store = await open(src);
    const ark = path.join(dir, 'export64.ark');
    const sink = await WalnutFile.open(ark, { create: true, truncate: true });
    const handle = store.exportTo(sink, { follow: true });
    await snapshotTaken(ark);
    const load = committers(store, 64);
    const run = await checkpoints(src, ['TRUNCATE', 'RESTART'], 3, 100, BUSY_MS).run;
    const acked = await load.stop();
    const stats = await handle.stop();
    await sink.close();
    expectPrompt(run);
    expect(stats.commits).toBe(acked);
    expect(stats.generations).toBeGreaterThan(3); // each TRUNCATE restarted the WAL under the export
    await expectRestoresTo(ark, store, acked);
    await store.close();
  });
});

describe.skipIf(NATS_SKIP !== null)("python3's TRUNCATE checkpoints beside replicateTo", () => {
  it.each([false, true])('thread %s: 64 committers, TRUNCATE (busy timeout 5 s) three times: each returns not busy within 3 s, the replica equals the primary', async (thread) => {
    const server = await startNatsServer();
    started.push(server);
    const stream = `read0-${thread}`;
    const src = newDb(stream);
    const store = await open(src);
    const r = store.replicateTo({ servers: server.url, stream, thread });
    const errors: string[] = [];
    r.on('error', (e) => errors.push(String(e)));
    await r.ready;
    const load = committers(store, 64);
    const run = await checkpoints(src, ['TRUNCATE'], 3, 100, BUSY_MS).run;
    await load.stop();
    await r.stop();
    const m = r.metrics();
    const replica = await openReplica(path.join(dir, `${stream}-replica.db`), { servers: server.url, stream });
    await replica.waitFor(m.publishedSeq, m.session);
    expectPrompt(run);
    expect(errors).toEqual([]);
    expect(replica.lag()).toMatchObject({ appliedSeq: m.publishedSeq, rebases: 0 });
    expect(await pageHashes(replica.store)).toEqual(await pageHashes(store));
    await replica.close();
    await store.close();
  });
});

describe('the follow pin on READ(0) (after a python3 TRUNCATE), then frames past nBackfill', () => {
  /** A store following its own export (pollMs), python3 rows in, then a python3 TRUNCATE: the pin rests on READ(0). */
  async function pinOnRead0(name: string, pollMs: number) {
    const src = newDb(name);
    const store = await open(src);
    const ark = path.join(dir, `${name}.ark`);
    const sink = await WalnutFile.open(ark, { create: true, truncate: true });
    const handle = store.exportTo(sink, { follow: true, pollMs });
    await snapshotTaken(ark);
    await pythonFill(src, 10, 3000);
    const run = await checkpoints(src, ['TRUNCATE'], 1, 0, BUSY_MS).run;
    expectPrompt(run);
    // every frame read and copied, the WAL empty: the pin stays on READ(0), no slot held
    expect(readLocks(src)).toEqual({ read0: true, slots: [] });
    return { src, store, ark, sink, handle };
  }

  it('a python3 writer appends: the pin goes back to a slot, a python3 FULL checkpoint then copies every frame at once; the stream restores to the primary', async () => {
    const { src, store, ark, sink, handle } = await pinOnRead0('foreign-append', 5);
    await pythonFill(src, 20, 3000);
    // (on READ(0) it would keep every checkpoint from copying: a FULL one waited out its busy timeout)
    await until(() => !readLocks(src).read0, WAIT_MS, () => `the pin is still on READ(0): ${JSON.stringify(readLocks(src))}`);
    expect(readLocks(src).slots).toHaveLength(1);
    const full = await checkpoints(src, ['FULL'], 1, 0, BUSY_MS).run;
    expectPrompt(full);
    expect(full.results[0]!.log).toBeGreaterThan(20);
    const stats = await handle.stop();
    await sink.close();
    expect(stats.commits).toBe(2); // the two python3 transactions, each once
    await expectRestoresTo(ark, store, 2);
    await store.close();
  });

  it('another follow export joining: the pin goes back to a slot (READ(0) is kept for followers known to have every frame); both streams restore to the primary', async () => {
    const { src, store, ark, sink, handle } = await pinOnRead0('join', 5);
    const ark2 = path.join(dir, 'join-2.ark');
    const sink2 = await WalnutFile.open(ark2, { create: true, truncate: true });
    const handle2 = store.exportTo(sink2, { follow: true, pollMs: 5 });
    await snapshotTaken(ark2);
    // its snapshot's slot goes once it follows: the pin on a slot then, READ(0) let go (nothing
    // else moves it now: no frame comes, no checkpoint waits)
    await until(() => {
      const locks = readLocks(src);
      return !locks.read0 && locks.slots.length === 1;
    }, WAIT_MS, () => `the pin did not leave READ(0): ${JSON.stringify(readLocks(src))}`);
    await pythonFill(src, 5, 3000);
    const [stats, stats2] = await Promise.all([handle.stop(), handle2.stop()]);
    await Promise.all([sink.close(), sink2.close()]);
    expect(stats.commits).toBe(2);
    expect(stats2.commits).toBe(1); // the first python3 transaction is in its base image
    await expectRestoresTo(ark, store, 2);
    await expectRestoresTo(ark2, store, 1);
    await store.close();
  });

  it("the store's own checkpoint with the pin on READ(0) and python3's frames past nBackfill: it takes the pin back to a slot and copies every frame", async () => {
    // pollMs 500: the follower's own timer (which also moves the pin back) is not what runs here
    const { src, store, ark, sink, handle } = await pinOnRead0('own-checkpoint', 500);
    await pythonFill(src, 20, 3000);
    expect(readLocks(src)).toEqual({ read0: true, slots: [] }); // still on READ(0) as the checkpoint begins
    const r = await store.checkpoint('passive'); // passive: a READ(0) it cannot take is no wait, nothing is copied
    expect(r.walFrames).toBeGreaterThan(20);
    expect(r).toMatchObject({ busy: false, checkpointedFrames: r.walFrames });
    expect(readLocks(src)).toMatchObject({ read0: false, slots: [expect.any(Number)] });
    await store.commit([{ pgno: 2, data: Buffer.alloc(4096, 9) }]); // the store's own commit after it, into the stream too
    const stats = await handle.stop();
    await sink.close();
    expect(stats.commits).toBe(3);
    await expectRestoresTo(ark, store, 3);
    await store.close();
  });

  it("the store's own commit with the pin on READ(0): the pin is back on a slot before its frames, a python3 PASSIVE checkpoint right after copies them all", async () => {
    const { src, store, ark, sink, handle } = await pinOnRead0('own-commit', 500);
    await store.commit([{ pgno: 2, data: Buffer.alloc(4096, 9) }]);
    expect(readLocks(src)).toMatchObject({ read0: false, slots: [expect.any(Number)] });
    const passive = await checkpoints(src, ['PASSIVE'], 1, 0, BUSY_MS).run;
    expect(passive.results[0]).toMatchObject({ busy: 0, log: 1, checkpointed: 1 });
    const stats = await handle.stop();
    await sink.close();
    expect(stats.commits).toBe(2);
    await expectRestoresTo(ark, store, 2);
    await store.close();
  });

  it("a WAL of 16,000+ frames (4+ -shm segments, 512-byte pages) written by python3 beside 8 committers, then TRUNCATE and RESTART: prompt, not busy; the stream restores to the primary", async () => {
    const src = newDb('segments', 512);
    const store = await open(src, { autoCheckpoint: false }); // python3's TRUNCATE copies the whole WAL, then waits for the follower to have read it
    const ark = path.join(dir, 'segments.ark');
    const sink = await WalnutFile.open(ark, { create: true, truncate: true });
    const handle = store.exportTo(sink, { follow: true });
    await snapshotTaken(ark);
    // pausing: python3's BEGIN IMMEDIATE polls for WRITE, and beside committers at full speed it
    // may find no gap within its 10 s (SQLite's writers beside walnut's full load: README)
    const load = committers(store, 8, 512, 2);
    await pythonFill(src, 17_000, 300);
    expect(shmMxFrame(src)).toBeGreaterThan(segmentEnd(3)); // nothing restarts it but the checkpoints below
    const run = await checkpoints(src, ['TRUNCATE', 'RESTART'], 2, 50, BUSY_MS).run;
    const acked = await load.stop();
    const stats = await handle.stop();
    await sink.close();
    expectPrompt(run);
    expect(stats.commits).toBe(acked + 1);
    await expectRestoresTo(ark, store, acked + 1);
    await store.close();
  });
});
