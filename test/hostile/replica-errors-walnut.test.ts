// What a replica reports while it retries is a WalnutError with a stable code. After its NATS
// server was killed and restarted (or a cluster lost its stream leader), the replica's reads
// failed with the NATS client's own errors ("timeout", JetStream API errors), which it emitted
// as they were: plain Errors, no code (`walnut replica` printed "walnut replica: timeout", ten
// times in a 3-node cluster whose leader was killed). Now they are WALNUT_IO reason nats, the
// client's error as cause, and the replica goes on as before (it catches up).
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { WalnutError } from '../../lib/errors';
import { open } from '../../lib/open';
import { openReplica } from '../../lib/replicate/replica';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { pageHashes } from '../helpers/page-hashes';
import { tmpDir } from '../helpers/tmp';

if (NATS_SKIP !== null) console.warn(NATS_SKIP);

const dir = tmpDir();
const started: NatsNode[] = [];
afterAll(() => stopNats(started));

describe.skipIf(NATS_SKIP !== null)('a replica\'s errors while it retries', () => {
  it('are WalnutErrors (WALNUT_IO reason nats) across a server killed, wedged and restarted; the replica catches up', async () => {
    const server = await startNatsServer();
    started.push(server);
    const store = await open(path.join(dir, 'p.db'));
    const r = store.replicateTo({ servers: server.url, stream: 'errs', stopTimeoutMs: 60_000 });
    r.on('error', () => undefined);
    await r.ready;
    for (let i = 0; i < 5; i++) await store.commit([{ pgno: 2 + i, data: Buffer.alloc(4096, i + 1) }]);
    const replica = await openReplica(path.join(dir, 'replica.db'), { servers: server.url, stream: 'errs' });
    const errors: unknown[] = [];
    replica.on('error', (e: unknown) => errors.push(e));
    try {
      for (let round = 0; round < 3; round++) {
        await server.stop('SIGKILL');
        await server.start();
        await new Promise((res) => setTimeout(res, 300));
        server.pause(); // wedged right after the client came back: its requests time out
        await new Promise((res) => setTimeout(res, 2500));
        await server.stop('SIGKILL');
        await server.start();
        await store.commit([{ pgno: 2, data: Buffer.alloc(4096, 100 + round) }]);
        await new Promise((res) => setTimeout(res, 1500));
      }
      await r.stop();
      await replica.waitFor(r.metrics().publishedSeq, r.metrics().session);
      console.log(`replica errors: ${errors.length} ${[...new Set(errors.map((e) => String(e)))].join(' | ')}`);
      for (const e of errors) {
        expect(e, String(e)).toBeInstanceOf(WalnutError);
        expect(e).toMatchObject({ code: 'WALNUT_IO', reason: 'nats' });
      }
      expect(errors.length).toBeGreaterThan(0);
      expect(await pageHashes(replica.store)).toEqual(await pageHashes(store));
    } finally {
      await replica.close();
      await store.close();
    }
  }, 90_000);
});
