// Hostile: a live replica's close() while its re-base fetches the primary's new base image part
// by part (replica.ts #baseChunks) and the NATS server is paused (SIGSTOP: it answers nothing).
// close() waited for the part's fetch, which ends only at the JetStream API's timeout (5 s):
// 4.8 s here. A fetch now races close() (WALNUT_CLOSED), so close() settles well within half
// that timeout (a bound against waiting it out, not a speed check: the cut close takes ~30 ms).
// Opened again with the server back, the replica re-bases and equals the primary.
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import { openReplica } from '../../lib/replicate/replica';
import { appliedOrError, NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { pageHashes } from '../helpers/page-hashes';
import { blobPrimary } from '../helpers/replicating';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';

const dir = tmpDir('walnut-hostile-replica-close-in-paused-base-');
const started: NatsNode[] = [];
afterAll(() => stopNats(started));

/** Half the JetStream API timeout a fetch waits out (see the header). */
const CLOSE_MS_AT_MOST = 2500;

describe.skipIf(NATS_SKIP !== null)('a replica closed in a re-base, the server paused', () => {
  it('close() does not wait for the part being fetched; reopened, equal to the primary', async () => {
    const server = await startNatsServer();
    started.push(server);
    const file = path.join(dir, 'p.db');
    blobPrimary(file, 8000); // ~32 MiB
    let store = await open(file);
    let r = store.replicateTo({ servers: server.url, stream: 'rc' });
    await r.ready;
    await until(() => r.metrics().bases >= 1, 60_000, () => r.metrics());
    const rfile = path.join(dir, 'r.db');
    let replica = await openReplica(rfile, { servers: server.url, stream: 'rc' });
    replica.on('error', () => undefined);
    await r.stop();
    await store.close();
    // commits the stream never sees, then a new session: the replica re-bases onto its base
    const w = new Database(file);
    w.exec('UPDATE t SET v = randomblob(3500) WHERE id % 2 = 0');
    w.close();
    store = await open(file);
    r = store.replicateTo({ servers: server.url, stream: 'rc' });
    await r.ready;
    await until(() => r.metrics().bases >= 1, 60_000, () => r.metrics());
    await new Promise((res) => setTimeout(res, 200)); // the replica's watchdog finds the new session; its re-base reads
    server.pause();
    let ms: number;
    try {
      await new Promise((res) => setTimeout(res, 300)); // (a fetch under way)
      const t0 = performance.now();
      await replica.close();
      ms = performance.now() - t0;
    } finally {
      server.resume();
    }
    expect(ms, `close() took ${ms.toFixed(0)} ms`).toBeLessThan(CLOSE_MS_AT_MOST);
    replica = await openReplica(rfile, { servers: server.url, stream: 'rc' });
    try {
      await appliedOrError(replica, r.metrics().publishedSeq, r.metrics().session);
      expect(await pageHashes(replica.store)).toEqual(await pageHashes(store));
    } finally {
      await replica.close();
      await r.stop();
      await store.close();
    }
  });
});
