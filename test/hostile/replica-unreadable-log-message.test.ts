// A replica whose stream holds a log message it cannot read: one that names the primary's session
// (Walnut-Session, Walnut-First-Commit) but whose body is not walnut's records (garbage
// published by another client on walnut.<stream>.log; a newer walnut's record kind would read
// the same). The replica re-based onto the newest base image, read the log from there, met the
// same message again and re-based again, for ever: ~2,000 'error' events (WALNUT_INVALID_FRAMING)
// and as many whole-database commits in 10 s, waitFor() never due. Now the first failure
// re-bases as before (a replay may read it), and the same message failing again after that
// re-base keeps the replica where it is (one 'error' WALNUT_CORRUPT reason Unreadable) until
// the primary publishes a base image past that state, onto which it re-bases and follows.
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { WalnutError } from '../../lib/errors';
import { open } from '../../lib/open';
import { connectNats, HEADER } from '../../lib/replicate/nats';
import { openReplica } from '../../lib/replicate/replica';
import { appliedOrError, NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { pageHashes } from '../helpers/page-hashes';
import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';

if (NATS_SKIP !== null) console.warn(NATS_SKIP);

const dir = tmpDir();
const started: NatsNode[] = [];
afterAll(() => stopNats(started));

const page = (i: number): Buffer => Buffer.alloc(4096, (i * 37 + 11) & 0xff);

describe.skipIf(NATS_SKIP !== null)('a replica meeting a log message it cannot read', () => {
  it('re-bases once, then stays (one Unreadable error) until a newer base image, and follows that', async () => {
    const server = await startNatsServer();
    started.push(server);
    const store = await open(path.join(dir, 'p.db'));
    const r = store.replicateTo({ servers: server.url, stream: 'junk', baseEveryCommits: 20, stopTimeoutMs: 30_000 });
    await r.ready;
    await store.commit(Array.from({ length: 50 }, (_, k) => ({ pgno: 2 + k, data: page(k) })));
    for (let i = 0; i < 5; i++) await store.commit([{ pgno: 2 + i, data: page(100 + i) }]);
    await until(() => r.metrics().publishedSeq >= 6, 10_000, () => r.metrics());
    // another client's message on the log subject, naming the primary's session and next commit
    const link = await connectNats([server.url], () => true, 'test');
    try {
      const h = link.headers();
      h.set(HEADER.SESSION, r.metrics().session!);
      h.set(HEADER.FIRST_COMMIT, String(r.metrics().publishedSeq + 1));
      await link.js.publish('walnut.junk.log', Buffer.from('ARKHEXP1 not walnut records'), { headers: h });
    } finally {
      await link.nc.close();
    }
    for (let i = 0; i < 5; i++) await store.commit([{ pgno: 10 + i, data: page(200 + i) }]);
    await until(() => r.metrics().publishedSeq >= 11, 10_000, () => r.metrics());

    const replica = await openReplica(path.join(dir, 'replica.db'), { servers: server.url, stream: 'junk' });
    const errors: unknown[] = [];
    replica.on('error', (e: unknown) => errors.push(e));
    try {
      await until(() => errors.length >= 2, 15_000, () => replica.lag());
      await new Promise((res) => setTimeout(res, 2000));
      for (const e of errors) expect(e).toBeInstanceOf(WalnutError);
      const told = errors.map((e) => `${(e as WalnutError).code} ${(e as WalnutError).reason ?? ''}`);
      expect(told, JSON.stringify(replica.lag())).toEqual(['WALNUT_INVALID_FRAMING LengthExceedsMax', 'WALNUT_CORRUPT Unreadable']);
      expect(replica.lag().rebases).toBe(1);
      // the primary's next base image is past the message: the replica re-bases onto it and follows
      const bases = r.metrics().bases;
      for (let i = 0; i < 2000 && r.metrics().bases === bases; i++) await store.commit([{ pgno: 2 + (i % 50), data: page(1000 + i) }]);
      for (let i = 0; i < 5; i++) await store.commit([{ pgno: 30 + i, data: page(3000 + i) }]);
      await r.stop();
      await appliedOrError(replica, r.metrics().publishedSeq, r.metrics().session);
      expect(replica.lag().rebases).toBe(2);
      expect(await pageHashes(replica.store)).toEqual(await pageHashes(store));
    } finally {
      await replica.close();
      await store.close();
    }
  }, 60_000);
});
