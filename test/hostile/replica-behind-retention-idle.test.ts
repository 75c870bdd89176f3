// A replica closed while the stream's retention (maxAgeMs) dropped the log it needs, reopened
// while the primary is idle: the stream holds a base image past the replica's state (an idle
// primary's, replicate-max-age-idle) and no log message at all. The replica read on from its
// position, got nothing, and stayed behind without a word (at commit 5 of 10) until the
// primary's next commit showed the gap. Now its watchdog sees a base image of its session past
// its state with nothing in the log from where it reads, and re-bases onto it.
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { open } from '../../lib/open';
import { openReplica } from '../../lib/replicate/replica';
import { appliedOrError, NATS_SKIP, startNatsServer, stopNats, untilAgedOut, type NatsNode } from '../helpers/nats';
import { pageHashes } from '../helpers/page-hashes';
import { tmpDir } from '../helpers/tmp';

if (NATS_SKIP !== null) console.warn(NATS_SKIP);

const dir = tmpDir();
const started: NatsNode[] = [];
afterAll(() => stopNats(started));

const page = (i: number): Buffer => Buffer.alloc(4096, (i * 37 + 11) & 0xff);

describe.skipIf(NATS_SKIP !== null)('a replica behind a log its stream aged out, the primary idle', () => {
  it('re-bases onto the newest base image past its state', async () => {
    const server = await startNatsServer();
    started.push(server);
    const store = await open(path.join(dir, 'p.db'));
    const r = store.replicateTo({ servers: server.url, stream: 'aged', maxAgeMs: 2000, stopTimeoutMs: 30_000 });
    await r.ready;
    for (let i = 0; i < 5; i++) await store.commit([{ pgno: 2 + i, data: page(i) }]);
    const replicaPath = path.join(dir, 'replica.db');
    const first = await openReplica(replicaPath, { servers: server.url, stream: 'aged' });
    await appliedOrError(first, 5, r.metrics().session);
    await first.close();
    for (let i = 5; i < 10; i++) await store.commit([{ pgno: 2 + i, data: page(i) }]);
    await untilAgedOut(server.url, 'aged', 'walnut.aged.log'); // idle: the log of commits 6..10 ages out (waited for, not slept 5 s)
    const again = await openReplica(replicaPath, { servers: server.url, stream: 'aged' });
    try {
      const reached = await Promise.race([appliedOrError(again, 10, r.metrics().session).then(() => true), new Promise((res) => setTimeout(res, 8000, false))]);
      expect(reached, JSON.stringify(again.lag())).toBe(true);
      expect(again.lag().rebases).toBe(1);
      expect(await pageHashes(again.store)).toEqual(await pageHashes(store));
    } finally {
      await again.close();
      await r.stop();
      await store.close();
    }
  });
});
