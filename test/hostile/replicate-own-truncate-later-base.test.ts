// Hostile (break50): the store's own TRUNCATE checkpoint while a later base image's snapshot is
// held (the server SIGSTOPped in the base's parts; the WAL holds 1,000 pages the snapshot reads
// from it, pattern 0xaa). On the store's loop the checkpoint completes at once (its own snapshot,
// caught up, moved to READ(0): checkpoint/execute.ts) and a commit of the same pages (0xbb) goes
// over the WAL's first frames; on the worker thread (another connection) it waits for the base.
// Either way the base restores (until its commit) with every one of those pages 0xaa.
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { open } from '../../lib/commit/store';
import { restoreFromNats } from '../../lib/replicate/restore-nats';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { blobPrimary } from '../helpers/replicating';
import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';

const dir = tmpDir('walnut-hostile-own-truncate-later-base-');
const started: NatsNode[] = [];
afterAll(() => stopNats(started));

describe.skipIf(NATS_SKIP !== null)('the store\'s own TRUNCATE beside a later base', () => {
  for (const thread of [false, true]) {
    it(`${thread ? 'worker thread' : "store's loop"}: the base keeps the pages it read from the WAL`, async () => {
      const server = await startNatsServer();
      started.push(server);
      const file = path.join(dir, `p${thread}.db`);
      blobPrimary(file, 4000);
      const store = await open(file, { autoCheckpoint: false });
      const ps = store.pageSize;
      const stream = `ot${thread}`;
      const r = store.replicateTo({ servers: server.url, stream, thread, baseEveryMs: 100 });
      r.on('error', () => undefined);
      const baseSeqs: number[] = [];
      r.on('base', (b: { seq: number }) => baseSeqs.push(b.seq));
      await r.ready;
      await until(() => r.metrics().bases >= 1, 60_000, () => r.metrics());
      const pattern = (fill: number): { pgno: number; data: Buffer }[] =>
        Array.from({ length: 1000 }, (_, i) => {
          const data = Buffer.alloc(ps, fill);
          data.writeUInt32BE(3000 + i, 0);
          return { pgno: 3000 + i, data };
        });
      await store.commit(pattern(0xaa));
      // commits until a later base is in flight, then the server paused
      const bases = r.metrics().bases;
      const snap0 = await store.snapshot();
      const page2 = Buffer.from(snap0.readSync(2));
      snap0.release();
      let paused = false;
      for (let i = 0; i < 3000 && !paused; i++) {
        await store.commit([{ pgno: 2, data: page2 }]);
        const deadline = performance.now() + 50;
        while (performance.now() < deadline) {
          const m = r.metrics();
          if (m.baseHeldBytes > 0 && m.bases === bases) {
            server.pause();
            paused = true;
            break;
          }
          await new Promise((res) => setTimeout(res, 1));
        }
      }
      expect(paused).toBe(true);
      let settledBefore = false;
      try {
        const ck = store.checkpoint('truncate').then(
          (x) => JSON.stringify(x),
          (e: { code?: string; reason?: string }) => `${e.code}/${e.reason}`,
        );
        // on the store's loop it completes without the server (a wait for the held snapshot
        // would last as long as the pause): 20 s is no speed bound, a loaded run took past 1.5 s
        const res = await Promise.race([ck, new Promise<string>((resolve) => setTimeout(() => resolve('pending'), thread ? 1500 : 20_000))]);
        settledBefore = res !== 'pending';
        if (!thread) expect(JSON.parse(res)).toMatchObject({ busy: false, walFrames: 0 });
        if (settledBefore) await store.commit(pattern(0xbb)); // written over the WAL's first frames
      } finally {
        server.resume();
      }
      await until(() => r.metrics().bases > bases, 60_000, () => r.metrics());
      await r.stop();
      const seq = baseSeqs[baseSeqs.length - 1]!;
      const out = path.join(dir, `r${thread}.db`);
      await restoreFromNats(out, { servers: server.url, stream, until: seq });
      const restored = await open(out, { readOnly: true });
      const snap = await restored.snapshot();
      let wrong = 0;
      for (let i = 0; i < 1000; i++) if (snap.readSync(3000 + i)[100] !== 0xaa) wrong++;
      snap.release();
      await restored.close();
      await store.close();
      expect(wrong, `settled before the resume: ${settledBefore}`).toBe(0);
    });
  }
});
