// A replica whose own store refuses what the primary committed: openReplica's `open` options
// (walnut open()'s) with a maxPageCount below the primary's database size. Each try of the batch
// met the same refusal (WALNUT_INVALID_ARGUMENT reason dbSize) and the replica retried it for
// ever: an 'error' about 5 times a second, waitFor() pending, `walnut replica` printing a lag
// that never moved. Now the refusal stops the replica for good, as its store's other failures
// do (a full disk): one 'error', waitFor() rejects with it, later calls too; close() resolves.
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { WalnutError } from '../../lib/errors';
import { open } from '../../lib/open';
import { openReplica } from '../../lib/replicate/replica';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { tmpDir } from '../helpers/tmp';

if (NATS_SKIP !== null) console.warn(NATS_SKIP);

const dir = tmpDir();
const started: NatsNode[] = [];
afterAll(() => stopNats(started));

const page = (i: number): Buffer => Buffer.alloc(4096, (i * 37 + 11) & 0xff);

describe.skipIf(NATS_SKIP !== null)('a replica whose store refuses the primary\'s commits', () => {
  it('stops for good with the refusal: one error, waitFor rejects with it', async () => {
    const server = await startNatsServer();
    started.push(server);
    const store = await open(path.join(dir, 'p.db'));
    const r = store.replicateTo({ servers: server.url, stream: 'small', stopTimeoutMs: 30_000 });
    await r.ready;
    await store.commit([{ pgno: 2, data: page(2) }]);
    const replica = await openReplica(path.join(dir, 'replica.db'), { servers: server.url, stream: 'small', open: { maxPageCount: 3 } });
    try {
      const errors: WalnutError[] = [];
      replica.on('error', (e: WalnutError) => errors.push(e));
      await replica.waitFor(1);
      const waiting = replica.waitFor(3).then(() => null, (e: unknown) => e);
      await store.commit([{ pgno: 3, data: page(3) }, { pgno: 4, data: page(4) }, { pgno: 5, data: page(5) }]); // 5 pages: past the replica's 3
      await store.commit([{ pgno: 2, data: page(20) }]);
      const settled = await Promise.race([waiting, new Promise((res) => setTimeout(res, 5000, 'pending'))]);
      expect(settled).toBeInstanceOf(WalnutError);
      expect(settled).toMatchObject({ code: 'WALNUT_INVALID_ARGUMENT', reason: 'dbSize' });
      await new Promise((res) => setTimeout(res, 1000)); // it does not try again
      expect(errors.map((e) => e.code)).toEqual(['WALNUT_INVALID_ARGUMENT']);
      await expect(replica.waitFor(4)).rejects.toBe(settled);
      expect(replica.lag().appliedSeq).toBe(1);
    } finally {
      await replica.close();
      await r.stop();
      await store.close();
    }
  });
});
