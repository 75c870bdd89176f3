// replica.waitFor(seq, session) for a session the replica is not at yet. Such a wait was due at
// the replica's next batch, whatever session that batch was of: a waitFor(seq, newSession) made
// while the replica was still applying the old session's last commits (the primary restarted, the
// replica behind) resolved at the next of them, before the replica had the new session's commit
// (a reader then read the state without it). Now a wait for another session is due once the
// replica moves on to another session (it never goes back to an older one), or at once for a
// session it was at and left.
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

const page = (i: number): Buffer => Buffer.alloc(4096, (i * 13 + 5) & 0xff);

describe.skipIf(NATS_SKIP !== null)('replica.waitFor of another session', () => {
  it('is not resolved by batches of the session the replica is at; it is once the replica moves on; a session left is resolved at once', async () => {
    const server = await startNatsServer();
    started.push(server);
    const store = await open(path.join(dir, 'p.db'));
    const r1 = store.replicateTo({ servers: server.url, stream: 'waits', stopTimeoutMs: 30_000 });
    await r1.ready;
    for (let i = 0; i < 5; i++) await store.commit([{ pgno: 2 + i, data: page(i) }]);
    const replica = await openReplica(path.join(dir, 'replica.db'), { servers: server.url, stream: 'waits' });
    try {
      const a = r1.metrics().session!;
      await appliedOrError(replica, 5, a);
      // a session the replica is not at (as the next one of the primary would be): pending
      let settled = false;
      const other = replica.waitFor(1, 'not-yet-begun').then(() => (settled = true));
      for (let i = 5; i < 10; i++) await store.commit([{ pgno: 2 + i, data: page(i) }]);
      await appliedOrError(replica, 10, a);
      await new Promise((res) => setTimeout(res, 100));
      expect(settled, 'a batch of the session the replica is at resolved a wait for another session').toBe(false);
      // the primary's next session: the replica moves on to it, the wait is due
      await r1.stop();
      const r2 = store.replicateTo({ servers: server.url, stream: 'waits', stopTimeoutMs: 30_000 });
      await r2.ready;
      await store.commit([{ pgno: 2, data: page(100) }]);
      await r2.stop();
      await appliedOrError(replica, r2.metrics().publishedSeq, r2.metrics().session);
      await other;
      expect(settled).toBe(true);
      // the session it left: at once, whatever seq
      await replica.waitFor(1_000_000, a);
      expect(await pageHashes(replica.store)).toEqual(await pageHashes(store));
    } finally {
      await replica.close();
      await store.close();
    }
  }, 60_000);
});
