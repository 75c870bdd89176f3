// Hostile (break50): a primary whose later base images follow one another with no pause
// (baseEveryMs 1, commits going on): the stream's last message on the base subject is most of
// the time a part of a base still being published. A new replica opens all the same.
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import { openReplica } from '../../lib/replicate/replica';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { blobPrimary } from '../helpers/replicating';
import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';

const dir = tmpDir('walnut-hostile-bases-back-to-back-');
const started: NatsNode[] = [];
afterAll(() => stopNats(started));

describe.skipIf(NATS_SKIP !== null)('bases back to back', () => {
  it('a new replica opens while later bases follow one another', async () => {
    const server = await startNatsServer();
    started.push(server);
    const file = path.join(dir, 'p.db');
    blobPrimary(file, 4000);
    const store = await open(file);
    const r = store.replicateTo({ servers: server.url, stream: 'b2b', baseEveryMs: 1 });
    r.on('error', () => undefined);
    await r.ready;
    let going = true;
    const snap = await store.snapshot();
    const page = Buffer.from(snap.readSync(2));
    snap.release();
    const committer = (async () => {
      while (going) {
        await store.commit([{ pgno: 2, data: page }]);
        await new Promise((res) => setTimeout(res, 2));
      }
    })();
    await until(() => r.metrics().bases >= 3, 60_000, () => r.metrics());
    const retries: string[] = [];
    try {
      const t0 = performance.now();
      const opened = await Promise.race([
        openReplica(path.join(dir, 'r.db'), { servers: server.url, stream: 'b2b', onRetry: (e: Error) => retries.push(e.message) }),
        new Promise<null>((res) => setTimeout(() => res(null), 30_000)),
      ]);
      const ms = performance.now() - t0;
      expect(opened, `no replica in 30 s (${r.metrics().bases} bases meanwhile)`).not.toBeNull();
      await opened!.close();
    } finally {
      going = false;
      await committer;
      await r.stop();
      await store.close();
    }
  });
});
