// A primary idle for longer than its stream's max age (replicateTo({ maxAgeMs }), or an existing
// stream's max_age). Base images were taken only after commits, so the stream dropped its last
// one with everything else: restoreFromNats failed NoBase and a new replica waited for a base
// image (openReplica did not resolve), until the primary's next commit and, past it, its next
// base image (baseEveryMs, 10 min, after the last one). Now, in a stream with a max age, a base
// image is due once the newest is half that age old, commits or not (an idle session's at the
// same commit as the one before, under message ids of its own: the stream would drop it as a
// duplicate); a stream without a max age gets none while the primary is idle.
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { open } from '../../lib/open';
import { openReplica } from '../../lib/replicate/replica';
import { restoreFromNats } from '../../lib/replicate/restore-nats';
import { appliedOrError, NATS_SKIP, startNatsServer, stopNats, untilAgedOut, type NatsNode } from '../helpers/nats';
import { pageHashes } from '../helpers/page-hashes';
import { tmpDir } from '../helpers/tmp';
import { until, WAIT_MS } from '../helpers/until';

if (NATS_SKIP !== null) console.warn(NATS_SKIP);

const dir = tmpDir();
const started: NatsNode[] = [];
afterAll(() => stopNats(started));

const page = (i: number): Buffer => Buffer.alloc(4096, (i * 37 + 11) & 0xff);

describe.skipIf(NATS_SKIP !== null)('a primary idle for longer than its stream\'s max age', () => {
  for (const thread of [true, false]) {
    it(`${thread ? 'worker thread' : "store's loop"}: the stream keeps a base image; a restore and a new replica equal the primary; no base images while idle without a max age`, async () => {
      const server = await startNatsServer();
      started.push(server);
      const aging = await open(path.join(dir, `aging-${thread}.db`));
      const plain = await open(path.join(dir, `plain-${thread}.db`));
      const r = aging.replicateTo({ servers: server.url, stream: 'aging', maxAgeMs: 2000, thread, stopTimeoutMs: 30_000 });
      const rPlain = plain.replicateTo({ servers: server.url, stream: 'plain', thread, stopTimeoutMs: 30_000 });
      const errors: string[] = [];
      for (const h of [r, rPlain]) h.on('error', (e: Error) => errors.push(e.message));
      await Promise.all([r.ready, rPlain.ready]);
      for (let i = 0; i < 5; i++) {
        await aging.commit([{ pgno: 2 + i, data: page(i) }]);
        await plain.commit([{ pgno: 2 + i, data: page(i) }]);
      }
      const live = await openReplica(path.join(dir, `live-${thread}.db`), { servers: server.url, stream: 'aging' });
      await appliedOrError(live, 5, r.metrics().session);
      const basesBefore = rPlain.metrics().bases;
      // idle until the stream dropped every commit's message (the primary idle for longer than
      // the max age) and at least two base images came while idle, in place of a 5 s sleep
      await untilAgedOut(server.url, 'aging', 'walnut.aging.log');
      await until(() => r.metrics().bases >= 3, WAIT_MS, () => r.metrics());
      const restored = await restoreFromNats(path.join(dir, `restored-${thread}.db`), { servers: server.url, stream: 'aging' });
      expect([restored.lastCommitSeq, restored.stoppedBy]).toEqual([5, null]);
      expect(r.metrics().bases).toBeGreaterThanOrEqual(3);
      expect(rPlain.metrics().bases).toBe(basesBefore);
      const copy = await open(path.join(dir, `restored-${thread}.db`));
      expect(await pageHashes(copy)).toEqual(await pageHashes(aging));
      await copy.close();
      const opening = openReplica(path.join(dir, `new-${thread}.db`), { servers: server.url, stream: 'aging' });
      const fresh = await Promise.race([opening, new Promise<null>((res) => setTimeout(res, 8000, null))]);
      if (fresh === null) {
        void opening.then((late) => late.close(), () => undefined);
        expect.fail('openReplica did not resolve within 8 s');
      }
      try {
        await aging.commit([{ pgno: 3, data: page(100) }]);
        for (const replica of [fresh, live]) {
          await appliedOrError(replica, 6, r.metrics().session);
          expect(await pageHashes(replica.store)).toEqual(await pageHashes(aging));
        }
        expect(errors).toEqual([]);
      } finally {
        await fresh.close();
        await live.close();
        await Promise.all([r.stop(), rPlain.stop()]);
        await Promise.all([aging.close(), plain.close()]);
      }
    });
  }
});
