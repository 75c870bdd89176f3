// A publisher catching up on a backlog waits in the WAL instead of abandoning its session
// (publisher.ts header): the sink waits for room while the stream acknowledges, and stops waiting
// only once the stream has stalled (a wait of STALLED_MS with nothing stored). A publisher that
// was starved or idle for longer than that had stored nothing for as long, though the stream was
// never asked: that is no stall, and its backlog must still wait in the WAL. Starved for real:
// the worker paused through the inspector (thread: true), or the store's own loop blocked while
// a sqlite3 process writes (thread: false), each for longer than STALLED_MS (3 s).
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import type { ReplicationMetrics } from '../../lib/replicate/publisher';
import { restoreFromNats } from '../../lib/replicate/restore-nats';
import type { ReplicationThread } from '../../lib/replicate/thread';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { pauseWorker, type PausedWorker } from '../helpers/pause-worker';
import { expectRestored, settled } from '../helpers/replication-settled';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir('walnut-replicate-catch-up-');
const HELPERS = path.join(__dirname, '..', 'helpers');
/** Longer than the publisher's STALLED_MS (3,000). */
const STARVED_MS = 4000;

describe.skipIf(NATS_SKIP !== null)('replication: a backlog caught up after the publisher was starved longer than STALLED_MS', () => {
  let server: NatsNode;
  let paused: PausedWorker | null = null;
  beforeAll(async () => {
    server = await startNatsServer();
  });
  afterAll(async () => {
    await paused?.detach().catch(() => undefined);
    await stopNats([server]);
  });

  it('thread: true, the worker paused 4 s while 16.5 MB is committed (maxLagBytes 4 MiB): no session abandoned, nothing lost', async () => {
    const store = await open(path.join(dir, 'paused.db'), { pageSize: 4096 });
    const r = store.replicateTo({ servers: server.url, stream: 'paused', delta: false, maxLagBytes: 4 << 20, stopTimeoutMs: 60_000 });
    const lagExceeded: ReplicationMetrics[] = [];
    r.on('lagExceeded', (m: ReplicationMetrics) => lagExceeded.push(m));
    try {
      await r.ready;
      await store.commit([{ pgno: 2, data: Buffer.alloc(4096, 1) }]);
      await settled(r);
      paused = await pauseWorker((r as ReplicationThread).worker);
      await paused.paused;
      // 16 commits of 250 pages (1 MB each, under half the bound)
      for (let t = 0; t < 16; t++) {
        const data = Buffer.alloc(4096, 20 + t);
        await store.commit(Array.from({ length: 250 }, (_, k) => ({ pgno: 2 + k, data })));
      }
      await new Promise((resolve) => setTimeout(resolve, STARVED_MS));
      await paused.resume();
      const m = await settled(r, 17);
      expect(lagExceeded).toEqual([]);
      expect(m).toMatchObject({ sessions: 1, lagResets: 0, publishedSeq: 17 });
      await r.stop();
      await expectRestored(server.url, 'paused', store, dir);
    } finally {
      await paused?.detach().catch(() => undefined);
      paused = null;
      await r.stop();
      await store.close();
    }
  }, 180_000);

  it('thread: false, the store\'s loop blocked 4 s while a sqlite3 process commits ~3,000 rows (maxLagBytes 1 MiB): no session abandoned, every row in the stream', async () => {
    const db = path.join(dir, 'blocked.db');
    const init = new Database(db);
    init.pragma('page_size = 1024');
    init.exec('CREATE TABLE t(w INTEGER, v BLOB)');
    init.pragma('journal_mode = WAL');
    init.close();
    const store = await open(db);
    const r = store.replicateTo({ servers: server.url, stream: 'blocked', delta: false, thread: false, maxLagBytes: 1 << 20, stopTimeoutMs: 60_000 });
    const lagExceeded: ReplicationMetrics[] = [];
    r.on('lagExceeded', (m: ReplicationMetrics) => lagExceeded.push(m));
    try {
      await r.ready;
      await settled(r);
      // the writer runs while this thread waits for it (spawnSync: the loop does nothing
      // meanwhile; the export's pin keeps the frames in the WAL), then sleeps past STARVED_MS
      const t0 = performance.now();
      const writer = spawnSync('python3', [path.join(HELPERS, 'sqlite-writer.py'), db, '0', '1', '1000', '0', '3000'], { encoding: 'utf8' });
      expect(writer.status, writer.stderr).toBe(0);
      const left = STARVED_MS - (performance.now() - t0);
      if (left > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, left);
      const written = Number(writer.stdout.trim().split('\n')[0]);
      expect(written).toBeGreaterThanOrEqual(3000);
      await settled(r);
      expect(lagExceeded).toEqual([]);
      expect(r.metrics()).toMatchObject({ sessions: 1, lagResets: 0 });
      await r.stop();
      const restored = path.join(dir, 'blocked-restored.db');
      await restoreFromNats(restored, { servers: server.url, stream: 'blocked' });
      const check = new Database(restored, { readonly: true });
      try {
        expect(check.pragma('integrity_check', { simple: true })).toBe('ok');
        expect(check.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: written });
      } finally {
        check.close();
      }
    } finally {
      await r.stop();
      await store.close();
    }
  }, 180_000);
});
