// A replica and a primary that began a new session and then made no commit. A new session
// (`walnut replicate` restarted, or the lag bound passed: in a 3-node cluster whose stream
// leader was killed under 64 committers the session was abandoned and the next one's base image
// carried 56,000 commits) publishes its base image first and its log only with the next commit.
// The replica learnt of a new session only from a log message of it, so while the primary stayed
// idle the replica stayed at the old session's last commit, without the commits the new base
// image carries (here: those made while no replication ran), for as long as the primary was
// idle; waitFor() of the new session never resolved. Now a replica whose reading is idle looks
// at the newest base image too, and re-bases onto a newer session's.
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { open } from '../../lib/open';
import { openReplica } from '../../lib/replicate/replica';
import { appliedOrError, NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { pageHashes } from '../helpers/page-hashes';
import { tmpDir } from '../helpers/tmp';

if (NATS_SKIP !== null) console.warn(NATS_SKIP);

const dir = tmpDir();
const started: NatsNode[] = [];
afterAll(() => stopNats(started));

function page(i: number): Buffer {
  return Buffer.from(Array.from({ length: 4096 }, (_, k) => (i * 31 + k * 7) & 0xff));
}

describe.skipIf(NATS_SKIP !== null)('a replica and an idle primary in a new session', () => {
  it('re-bases onto the new session\'s base image without waiting for a log message of it', async () => {
    const server = await startNatsServer();
    started.push(server);
    const store = await open(path.join(dir, 'p.db'));
    const r1 = store.replicateTo({ servers: server.url, stream: 'idle', stopTimeoutMs: 30_000 });
    await r1.ready;
    for (let i = 0; i < 5; i++) await store.commit([{ pgno: 2 + i, data: page(i) }]);
    await r1.stop();
    const replica = await openReplica(path.join(dir, 'replica.db'), { servers: server.url, stream: 'idle' });
    try {
      await appliedOrError(replica, r1.metrics().publishedSeq, r1.metrics().session);
      // commits while nothing replicates, then a new session (its base carries them), then nothing
      for (let i = 5; i < 10; i++) await store.commit([{ pgno: 2 + i, data: page(i) }]);
      await store.checkpoint('truncate'); // all in the database file: the new session's base holds them, its log nothing
      const r2 = store.replicateTo({ servers: server.url, stream: 'idle', stopTimeoutMs: 30_000 });
      await r2.ready;
      await r2.stop();
      const m = r2.metrics();
      expect(m.session).not.toBe(r1.metrics().session);
      const reached = appliedOrError(replica, m.publishedSeq, m.session).then(() => true);
      const late = new Promise<false>((resolve) => setTimeout(resolve, 15_000, false).unref());
      expect(await Promise.race([reached, late]), JSON.stringify(replica.lag())).toBe(true);
      expect(replica.lag().rebases).toBe(1);
      expect(await pageHashes(replica.store)).toEqual(await pageHashes(store));
    } finally {
      await replica.close();
      await store.close();
    }
  }, 60_000);
});
