// Replication's bound on the backlog ahead of its export (metrics().exportBehindBytes: WAL frames
// committed and not yet read by the follow export, plus, with the worker thread, records handed to
// it and not yet taken). The worker is starved for real: paused through the inspector
// (test/helpers/pause-worker.ts), so that it takes nothing while commits go on. Past maxLagBytes
// of such a backlog 'exportBehind' fires once (again only after it fell below half), the metrics
// say so, commits never wait, no session is abandoned, nothing is lost (every commit is in the
// stream once the worker runs again, restored page for page), and stop() / close() racing it
// publish everything and emit nothing after 'end'.
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { open, type Store } from '../../lib/commit/store';
import { restoreFromNats } from '../../lib/replicate/restore-nats';
import type { ReplicationHandle, ReplicationMetrics } from '../../lib/replicate/publisher';
import type { ReplicationThread } from '../../lib/replicate/thread';
import { runPython } from '../helpers/children';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { pauseWorker, type PausedWorker } from '../helpers/pause-worker';
import { expectRestored, settled } from '../helpers/replication-settled';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';

const dir = tmpDir('walnut-replicate-behind-');
const HELPERS = path.join(__dirname, '..', 'helpers');
const FRAME = 24 + 4096;
/** Pages per transaction: a commit of 4 MiB of frames (a WAL read's worth, thread.ts hands it over in one piece). */
const PAGES = 1000;

/** `count` transactions of `pages` pages each (PAGES), from page 2 on, each byte pattern `fill`. */
async function bigCommits(store: Store, count: number, fill: number, pages = PAGES): Promise<void> {
  for (let t = 0; t < count; t++) {
    const data = Buffer.alloc(4096, (fill + t) & 0xff);
    await store.commit(Array.from({ length: pages }, (_, k) => ({ pgno: 2 + k, data })));
  }
}

describe.skipIf(NATS_SKIP !== null)('replication: the backlog ahead of the export (exportBehindBytes) and its bound', () => {
  let server: NatsNode;
  const paused: PausedWorker[] = [];
  beforeAll(async () => {
    server = await startNatsServer();
  });
  afterAll(async () => {
    await resumeAll();
    await stopNats([server]);
  });

  /** Resumes and lets go of every worker paused (each test's finally: an inspector session per test). */
  async function resumeAll(): Promise<void> {
    for (const p of paused.splice(0)) await p.detach().catch(() => undefined);
  }

  async function pause(r: ReplicationHandle): Promise<PausedWorker> {
    const p = await pauseWorker((r as ReplicationThread).worker);
    paused.push(p);
    await p.paused;
    return p;
  }

  it('with the worker paused, the records handed to it are counted once: exportBehindBytes is the frames committed since, not those and the hand-over again', async () => {
    // no checkpoint restarts the WAL meanwhile: the hand-over's frames stay in the export's generation
    const store = await open(path.join(dir, 'twice.db'), { pageSize: 4096, autoCheckpoint: false });
    const r = store.replicateTo({ servers: server.url, stream: 'twice', delta: false, maxLagBytes: 1 << 30, stopTimeoutMs: 60_000 });
    try {
      await r.ready;
      await bigCommits(store, 1, 1);
      const before = await settled(r, 1);
      const p = await pause(r);
      // 12.4 MB of frames in one transaction, which the worker takes none of: a pass of three
      // WAL reads (4 MiB each), of which the export hands over two (8 MiB unanswered) and waits
      // in the sink. (A backlog a starved worker left in the WAL is such a pass of many reads.)
      await bigCommits(store, 1, 10, 3 * PAGES);
      const committed = 3 * PAGES * FRAME;
      await new Promise((resolve) => setTimeout(resolve, 500));
      const readings = Array.from({ length: 20 }, () => r.metrics().exportBehindBytes);
      // records are the frames and a little framing (FRAMES of ~100 frames, COMMIT_META): at most 1% more
      for (const behind of readings) {
        expect(behind).toBeGreaterThanOrEqual(committed);
        expect(behind).toBeLessThanOrEqual(committed * 1.01);
      }
      await p.resume();
      const m = await settled(r, before.publishedSeq + 1);
      expect(m.publishedSeq).toBe(before.publishedSeq + 1);
      expect(m.exportBehindPeakBytes).toBeLessThanOrEqual(committed * 1.01);
      await r.stop();
      await expectRestored(server.url, 'twice', store, dir);
    } finally {
      await resumeAll(); // a failed expectation must not leave stop() waiting for a paused worker
      await r.stop();
      await store.close();
    }
  }, 180_000);

  it("past maxLagBytes 'exportBehind' fires once per crossing, with the metrics; commits never wait, no session is abandoned, nothing is lost", async () => {
    const store = await open(path.join(dir, 'bound.db'), { pageSize: 4096 });
    const r = store.replicateTo({ servers: server.url, stream: 'bound', delta: false, maxLagBytes: 4 << 20, stopTimeoutMs: 60_000 });
    const events: ReplicationMetrics[] = [];
    const lagExceeded: unknown[] = [];
    r.on('exportBehind', (m: ReplicationMetrics) => events.push(m));
    r.on('lagExceeded', (m) => lagExceeded.push(m));
    try {
      await r.ready;
      await bigCommits(store, 1, 1);
      await settled(r, 1);
      expect(r.metrics()).toMatchObject({ exportBehindExceeded: 0 });
      for (let round = 1; round <= 2; round++) {
        const p = await pause(r);
        // 16.5 MB, past the 4 MiB bound, in commits of 1 MB (each under half the bound: a commit
        // larger goes into the queue whole); every one durable while the worker is paused: commits
        // never wait for the publisher
        await bigCommits(store, 16, 20 * round, PAGES / 4);
        await until(() => events.length === round, 30_000, () => r.metrics());
        // the worker has not run meanwhile: the commits did not wait for it, the store's thread told it
        const m = events[round - 1]!;
        expect(m.exportBehindBytes).toBeGreaterThan(4 << 20);
        expect(m.exportBehindExceeded).toBe(round);
        expect(r.metrics()).toMatchObject({ exportBehindExceeded: round, sessions: 1, lagResets: 0 });
        expect(r.metrics().exportBehindPeakBytes).toBeGreaterThan(4 << 20);
        // a hovering backlog is one event: readings go on over the bound, no second event
        await new Promise((resolve) => setTimeout(resolve, 300));
        expect(events.length).toBe(round);
        await p.resume();
        await settled(r, 1 + 16 * round);
      }
      expect(events.length).toBe(2);
      expect(lagExceeded).toEqual([]);
      await r.stop();
      expect(r.metrics()).toMatchObject({ publishedSeq: 33, exportedSeq: 33, sessions: 1, lagResets: 0, exportBehindExceeded: 2, exportBehindBytes: 0 });
      await expectRestored(server.url, 'bound', store, dir);
    } finally {
      await resumeAll(); // a failed expectation must not leave stop() waiting for a paused worker
      await r.stop();
      await store.close();
    }
  }, 240_000);

  it('a sqlite3 process writes 16,000+ frames (4+ wal-index segments) while the worker is paused: counted, the event fires, every row reaches the stream', async () => {
    const db = path.join(dir, 'sqlite.db');
    const init = new Database(db);
    init.pragma('page_size = 1024');
    init.exec('CREATE TABLE t(w INTEGER, v BLOB)');
    init.pragma('journal_mode = WAL');
    init.close();
    const store = await open(db);
    const r = store.replicateTo({ servers: server.url, stream: 'sqlite', delta: false, maxLagBytes: 4 << 20, stopTimeoutMs: 60_000 });
    const events: ReplicationMetrics[] = [];
    r.on('exportBehind', (m: ReplicationMetrics) => events.push(m));
    try {
      await r.ready;
      const start = await settled(r, 0);
      const p = await pause(r);
      // 4-8 KB blobs, 1 KiB pages: 3,000 commits make 16,000+ frames (the export's pin keeps the
      // WAL); synchronous NORMAL: the writer only fills the WAL (3,000 fsyncs were most of this test's time)
      const out = await runPython(path.join(HELPERS, 'sqlite-writer.py'), [db, '0', '1', '1000', '0', '3000', '0', 'NORMAL']);
      const written = Number(out.trim().split('\n')[0]);
      expect(written).toBeGreaterThanOrEqual(3000);
      await until(() => events.length === 1, 30_000, () => r.metrics());
      await until(() => r.metrics().exportBehindBytes >= 16_000 * (24 + 1024), 30_000, () => r.metrics());
      await p.resume();
      const m = await settled(r, start.publishedSeq + written);
      expect(m.publishedSeq).toBe(start.publishedSeq + written);
      expect(m).toMatchObject({ sessions: 1, lagResets: 0, exportBehindExceeded: 1 });
      await r.stop();
      const restored = path.join(dir, 'sqlite-restored.db');
      await restoreFromNats(restored, { servers: server.url, stream: 'sqlite' });
      const check = new Database(restored, { readonly: true });
      try {
        expect(check.pragma('integrity_check', { simple: true })).toBe('ok');
        expect(check.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: written });
      } finally {
        check.close();
      }
    } finally {
      await resumeAll(); // a failed expectation must not leave stop() waiting for a paused worker
      await r.stop();
      await store.close();
    }
  }, 240_000);

  for (const [how, delayMs] of [['stop', 0], ['stop', 60], ['close', 0], ['close', 60]] as const) {
    it(`${how}() racing the event and the metric (worker resumed ${delayMs} ms after): everything committed is published, nothing is emitted after 'end', metrics() still answers`, async () => {
      const stream = `race-${how}-${delayMs}`;
      const store = await open(path.join(dir, `${stream}.db`), { pageSize: 4096 });
      const r = store.replicateTo({ servers: server.url, stream, delta: false, maxLagBytes: 1 << 20, stopTimeoutMs: 60_000 });
      let ended = false;
      const late: string[] = [];
      const unhandled: unknown[] = [];
      const onUnhandled = (e: unknown): number => unhandled.push(e);
      process.on('unhandledRejection', onUnhandled);
      r.on('exportBehind', () => {
        if (ended) late.push('exportBehind');
      });
      r.on('end', () => (ended = true));
      r.on('lagExceeded', () => late.push('lagExceeded (the session abandoned)'));
      // metrics() read as fast as timers run, across the end
      const readings: number[] = [];
      const poll = setInterval(() => readings.push(r.metrics().exportBehindBytes), 1);
      try {
        await r.ready;
        await bigCommits(store, 1, 1, PAGES / 10); // under the 1 MiB bound (a larger commit abandons the session by itself)
        await settled(r, 1);
        const p = await pause(r);
        const committing = bigCommits(store, 10, 50, PAGES / 10); // 4.1 MB in commits of 412 KB: the 1 MiB bound is crossed as they go in
        await until(() => r.metrics().exportBehindBytes > 1 << 20, 30_000, () => r.metrics());
        await committing; // while the worker is paused: commits never wait for it
        const ending = how === 'stop' ? r.stop() : store.close();
        await new Promise((resolve) => setTimeout(resolve, delayMs));
        await p.resume();
        await ending;
        await r.stop();
        await new Promise((resolve) => setTimeout(resolve, 200)); // a watch left running would fire here
        expect(late).toEqual([]);
        expect(unhandled).toEqual([]);
        const m = r.metrics();
        expect({ ...m, late, unhandled }).toMatchObject({ publishedSeq: 11, exportedSeq: 11, exportBehindBytes: 0, sessions: 1, lagResets: 0, late: [], unhandled: [] });
        expect(m.lastError).toBeNull();
        expect(readings.every((v) => Number.isInteger(v) && v >= 0)).toBe(true);
        if (how === 'close') {
          const again = await open(path.join(dir, `${stream}.db`));
          try {
            await expectRestored(server.url, stream, again, dir);
          } finally {
            await again.close();
          }
        } else await expectRestored(server.url, stream, store, dir);
      } finally {
        await resumeAll();
        clearInterval(poll);
        process.off('unhandledRejection', onUnhandled);
        await r.stop();
        await store.close().catch(() => undefined);
      }
    }, 180_000);
  }
});
