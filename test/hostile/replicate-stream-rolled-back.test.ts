// A JetStream stream that loses messages it acknowledged. In a 3-node cluster (R=3) under 64
// committers, a node killed (-9) and restarted, then the stream leader killed, then the new
// leader killed: a node that had not caught up became leader and the stream went on from its
// last message, ~1,500 acknowledged messages gone (nats-server 2.9; the stream's last_seq fell
// from 2,043 to 540). The publisher's next message was refused ("wrong last msg ID": it named
// the last one stored), and its resync found an earlier message of its own as the stream's
// last and re-anchored its chain there: the session went on publishing over the hole, its
// base images and commits 27,182..53,190 gone from the stream, with no error. Replicas then
// took the current session for another primary's (the newest complete base image was the old
// session's) and re-based back onto that old base (a state 160,000 rows older); a restore
// could not rebuild the session.
// Simulated here with one server: its storage put back to an earlier copy (the tail it had
// acknowledged lost, as on that leader). Now the publisher says so (an 'error' WALNUT_IO
// reason StreamLost) and begins a new session from a base image, so the stream again restores
// to the primary's state and a new replica equals it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import type { WalnutError } from '../../lib/errors';
import { open } from '../../lib/open';
import { openReplica } from '../../lib/replicate/replica';
import { restoreFromNats } from '../../lib/replicate/restore-nats';
import { appliedOrError, NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { pageHashes } from '../helpers/page-hashes';
import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';

if (NATS_SKIP !== null) console.warn(NATS_SKIP);

const started: NatsNode[] = [];
afterAll(() => stopNats(started));

function page(i: number): Buffer {
  return Buffer.from(Array.from({ length: 4096 }, (_, k) => (i * 31 + k * 7 + ((k * k) >> 4)) & 0xff));
}

describe.skipIf(NATS_SKIP !== null)('a stream that lost messages it acknowledged', () => {
  it.each([false, true])('the publisher says so and begins a new session with a base image: the stream restores to the primary\'s state, a new replica equals it (thread %s)', async (thread) => {
    const dir = tmpDir();
    const server = await startNatsServer();
    started.push(server);
    const store = await open(path.join(dir, 'p.db'));
    const r = store.replicateTo({ servers: server.url, stream: 'lost', stopTimeoutMs: 30_000, thread });
    const errors: WalnutError[] = [];
    r.on('error', (e: WalnutError) => errors.push(e));
    await r.ready;
    const published = (seq: number): Promise<void> => until(() => r.metrics().publishedSeq >= seq, 60_000, () => r.metrics());
    let i = 0;
    for (; i < 10; i++) await store.commit([{ pgno: 2 + (i % 6), data: page(i) }]);
    await published(i); // commit i is seq i (the base is 0); metrics().exportedSeq on a worker thread may be 50 ms old
    const session = r.metrics().session;
    // the server's storage as it is now, kept aside
    await server.stop('SIGTERM');
    const earlier = path.join(dir, 'earlier');
    fs.cpSync(server.storeDir, earlier, { recursive: true });
    await server.start();
    for (; i < 20; i++) await store.commit([{ pgno: 2 + (i % 6), data: page(i) }]);
    await published(i); // commit i is seq i (the base is 0); metrics().exportedSeq on a worker thread may be 50 ms old
    // the server comes back without the last ten commits' messages it acknowledged
    await server.stop('SIGKILL');
    fs.rmSync(server.storeDir, { recursive: true });
    fs.cpSync(earlier, server.storeDir, { recursive: true });
    await server.start();
    for (; i < 25; i++) await store.commit([{ pgno: 2 + (i % 6), data: page(i) }]);
    await until(() => r.metrics().session !== session && r.metrics().publishedSeq >= r.metrics().exportedSeq, 60_000, () => ({ metrics: r.metrics(), errors: errors.map(String) }));
    expect(errors.map((e) => e.reason)).toContain('StreamLost');
    await r.stop();
    const restored = path.join(dir, 'restored.db');
    await restoreFromNats(restored, { servers: server.url, stream: 'lost' });
    const again = await open(restored);
    expect(await pageHashes(again)).toEqual(await pageHashes(store));
    await again.close();
    const replica = await openReplica(path.join(dir, 'replica.db'), { servers: server.url, stream: 'lost' });
    try {
      await appliedOrError(replica, r.metrics().publishedSeq, r.metrics().session);
      expect(await pageHashes(replica.store)).toEqual(await pageHashes(store));
    } finally {
      await replica.close();
      await store.close();
    }
  }, 90_000);

  it('a replica of the newer session does not re-base back onto the older session\'s base image the rolled-back stream has as its newest; it follows the primary\'s next session', async () => {
    const dir = tmpDir();
    const server = await startNatsServer();
    started.push(server);
    const store = await open(path.join(dir, 'p.db'));
    const r1 = store.replicateTo({ servers: server.url, stream: 'back', stopTimeoutMs: 30_000 });
    await r1.ready;
    let i = 0;
    for (; i < 5; i++) await store.commit([{ pgno: 2 + (i % 6), data: page(i) }]);
    await r1.stop();
    const older = r1.metrics().session!;
    await server.stop('SIGTERM');
    const earlier = path.join(dir, 'earlier');
    fs.cpSync(server.storeDir, earlier, { recursive: true }); // holds session `older` only
    await server.start();
    const r2 = store.replicateTo({ servers: server.url, stream: 'back', stopTimeoutMs: 30_000, thread: false }); // metrics() current (a worker's may be 50 ms old)
    r2.on('error', () => undefined);
    await r2.ready;
    for (; i < 15; i++) await store.commit([{ pgno: 2 + (i % 6), data: page(i) }]);
    await until(() => r2.metrics().publishedSeq >= r2.metrics().exportedSeq, 60_000, () => r2.metrics());
    const replica = await openReplica(path.join(dir, 'replica.db'), { servers: server.url, stream: 'back' });
    const rebases: string[] = [];
    replica.on('rebase', (e: { session: string }) => rebases.push(e.session));
    replica.on('error', () => undefined);
    const looks: { reread: boolean; rebase: string | null }[] = [];
    replica.on('watchdog', (e: { reread: boolean; rebase: string | null }) => looks.push(e));
    try {
      await appliedOrError(replica, r2.metrics().publishedSeq, r2.metrics().session);
      const rows = await pageHashes(replica.store);
      await server.stop('SIGKILL');
      fs.rmSync(server.storeDir, { recursive: true });
      fs.cpSync(earlier, server.storeDir, { recursive: true });
      await server.start();
      // the replica reconnects and looks at the stream while it is idle (its watchdog, 1.5 s
      // after the last message read): waited for, where the test slept 4 s; a look whose reads
      // failed (the server down) is not told, so the look waited for is at the rolled-back stream
      const looked = looks.length;
      await until(() => looks.slice(looked).some((l) => !l.reread), 60_000, () => ({ looks, lag: replica.lag() }));
      expect(looks.slice(looked).map((l) => l.rebase).filter((why) => why !== null)).toEqual([]);
      expect(rebases).not.toContain(older);
      expect(await pageHashes(replica.store)).toEqual(rows);
      for (; i < 20; i++) await store.commit([{ pgno: 2 + (i % 6), data: page(i) }]);
      await until(() => r2.metrics().session !== r1.metrics().session && r2.metrics().sessions === 2 && r2.metrics().publishedSeq >= r2.metrics().exportedSeq, 30_000, () => r2.metrics());
      await r2.stop();
      await appliedOrError(replica, r2.metrics().publishedSeq, r2.metrics().session);
      expect(rebases).not.toContain(older);
      expect(await pageHashes(replica.store)).toEqual(await pageHashes(store));
    } finally {
      await replica.close();
      await store.close();
    }
  }, 90_000);
});
