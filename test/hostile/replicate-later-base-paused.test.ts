// Hostile (break50): a later base image's snapshot is held until its final part is stored
// (publisher.ts #endBase). With the NATS server paused (SIGSTOP) in the middle of its parts:
//  - close() and stop() settle (nothing waits for the part's ack for ever), on the worker thread
//    and on the store's loop;
//  - a python3 writer commits past maxLagBytes meanwhile: the session is abandoned, the snapshot
//    released, and a python3 TRUNCATE checkpoint completes (busy 0, an empty WAL) while the
//    server is still paused; resumed, a new session publishes everything: the stream restores
//    to the primary's pages.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { open, type Store } from '../../lib/commit/store';
import type { ReplicationHandle } from '../../lib/replicate/publisher';
import { runPython } from '../helpers/children';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { pageHashes } from '../helpers/page-hashes';
import { blobPrimary, expectRestoredEqual } from '../helpers/replicating';
import { checkpoints, expectCompleted, PATIENT_MS } from '../helpers/sqlite-checkpointer';
import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';

/** Held by break50's tries (no bug of its own): tens of seconds of outages, run by `npm run test:scale`, not npm test. */
const SCALE = process.env.WALNUT_SCALE === '1';

const dir = tmpDir('walnut-hostile-later-base-paused-');
const started: NatsNode[] = [];
afterAll(() => stopNats(started));

/** Commits (walnut's own) until a later base is in flight, then pauses the server. */
async function pauseInLaterBase(store: Store, r: ReplicationHandle, server: NatsNode): Promise<void> {
  await r.ready;
  await until(() => r.metrics().bases >= 1, 60_000, () => r.metrics());
  const bases = r.metrics().bases;
  const snap = await store.snapshot();
  const page = Buffer.from(snap.readSync(2));
  snap.release();
  for (let i = 0; ; i++) {
    await store.commit([{ pgno: 2, data: page }]);
    const deadline = performance.now() + 50;
    while (performance.now() < deadline) {
      const m = r.metrics();
      if (m.baseHeldBytes > 0 && m.bases === bases) {
        server.pause();
        return;
      }
      await new Promise((res) => setTimeout(res, 1));
    }
    if (i > 2000) throw new Error(`no later base seen in flight: ${JSON.stringify(r.metrics())}`);
  }
}

describe.skipIf(NATS_SKIP !== null || !SCALE)(`a later base with the server paused in its parts${SCALE ? '' : ' (skipped: WALNUT_SCALE=1, npm run test:scale)'}`, () => {
  for (const thread of [false, true]) {
    for (const how of ['close', 'stop'] as const) {
      it(`${thread ? 'worker thread' : "store's loop"}: ${how}() settles`, async () => {
        const server = await startNatsServer();
        started.push(server);
        const file = path.join(dir, `${how}-${thread}.db`);
        blobPrimary(file, 4000); // ~16 MiB: a later base of ~64 parts
        const store = await open(file);
        const r = store.replicateTo({ servers: server.url, stream: `p${how}${thread}`, thread, baseEveryMs: 100, stopTimeoutMs: 2000 });
        r.on('error', () => undefined);
        try {
          await pauseInLaterBase(store, r, server);
          await new Promise((res) => setTimeout(res, 300));
          const t0 = performance.now();
          if (how === 'stop') await r.stop().catch(() => undefined);
          await store.close();
          const ms = performance.now() - t0;
          expect(ms, `${how}() took ${ms.toFixed(0)} ms`).toBeLessThan(10_000);
        } finally {
          server.resume();
        }
      });
    }
  }

  for (const thread of [false, true]) {
    it(`${thread ? 'worker thread' : "store's loop"}: a python3 writer past maxLagBytes, then TRUNCATE, while paused: completes; resumed, the stream restores to the primary`, async () => {
      const server = await startNatsServer();
      started.push(server);
      const file = path.join(dir, `ckpt-${thread}.db`);
      blobPrimary(file, 4000); // ~16 MiB: a later base of ~64 parts
      const store = await open(file);
      const stream = `ckpt${thread}`;
      const r = store.replicateTo({ servers: server.url, stream, thread, baseEveryMs: 100, maxLagBytes: 1 << 20, stopTimeoutMs: 60_000 });
      const errors: string[] = [];
      r.on('error', (e: Error) => errors.push(e.message));
      let resets = 0;
      r.on('lagExceeded', () => resets++);
      try {
        await pauseInLaterBase(store, r, server);
        const script = path.join(dir, 'writer.py');
        fs.writeFileSync(script, `
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], timeout=60, isolation_level=None)
for n in range(600):
    c.execute('INSERT INTO t(v) VALUES (randomblob(8000))')
print(n + 1)
`);
        expect((await runPython(script, [file])).trim()).toBe('600'); // ~5 MiB of WAL
        await until(() => resets > 0, 60_000, () => r.metrics());
        const ck = checkpoints(file, ['TRUNCATE'], 1, 0, PATIENT_MS);
        const run = await ck.run;
        expectCompleted(run);
      } finally {
        server.resume();
      }
      // a commit of walnut's own after the resume, then everything published
      const snap = await store.snapshot();
      const last = { pgno: snap.dbSize, data: Buffer.from(snap.readSync(snap.dbSize)) };
      snap.release();
      await store.commit([last]);
      await r.stop();
      expect(r.metrics().publishedSeq).toBe(r.metrics().exportedSeq);
      const want = await pageHashes(store);
      await store.close();
      const out = path.join(dir, `${stream}-restored.db`);
      await expectRestoredEqual(out, server.url, stream, want);
    });
  }

  for (const thread of [false, true]) {
    it(`${thread ? 'worker thread' : "store's loop"}: python3 commits and checkpoints (PASSIVE, FULL, RESTART, TRUNCATE) while the snapshot is held 2 s: each completes once the base is stored; nothing lost`, async () => {
      const server = await startNatsServer();
      started.push(server);
      const file = path.join(dir, `modes-${thread}.db`);
      blobPrimary(file, 4000); // ~16 MiB: a later base of ~64 parts
      const store = await open(file);
      const stream = `modes${thread}`;
      const r = store.replicateTo({ servers: server.url, stream, thread, baseEveryMs: 100, stopTimeoutMs: 60_000 });
      const errors: string[] = [];
      r.on('error', (e: Error) => errors.push(e.message));
      let run: Awaited<ReturnType<typeof checkpoints>['run']>;
      try {
        await pauseInLaterBase(store, r, server);
        const script = path.join(dir, 'writer-modes.py');
        fs.writeFileSync(script, `
import sqlite3, sys

c = sqlite3.connect(sys.argv[1], timeout=60, isolation_level=None)
for n in range(100):
    c.execute('INSERT INTO t(v) VALUES (randomblob(3000))')
print(n + 1)
`);
        expect((await runPython(script, [file])).trim()).toBe('100');
        const ck = checkpoints(file, ['PASSIVE', 'FULL', 'RESTART', 'TRUNCATE'], 1, 0, PATIENT_MS);
        await new Promise((res) => setTimeout(res, 2000));
        server.resume();
        run = await ck.run;
      } finally {
        server.resume();
      }
      for (const x of run.results.filter((x) => x.mode !== 'PASSIVE')) expect(x, JSON.stringify(run)).toMatchObject({ busy: 0 });
      expect(run.results.at(-1), JSON.stringify(run)).toMatchObject({ mode: 'TRUNCATE', log: 0 });
      const snap = await store.snapshot();
      const last = { pgno: snap.dbSize, data: Buffer.from(snap.readSync(snap.dbSize)) };
      snap.release();
      await store.commit([last]);
      await r.stop();
      expect(r.metrics().publishedSeq).toBe(r.metrics().exportedSeq);
      expect(r.metrics().sessions, JSON.stringify(errors)).toBe(1); // (2 s paused: not abandoned)
      const want = await pageHashes(store);
      await store.close();
      const out = path.join(dir, `${stream}-restored.db`);
      await expectRestoredEqual(out, server.url, stream, want);
    });
  }
});
