// The stream deleted under a running replication (`nats stream rm`, an operator's mistake). The
// publisher's messages were refused ("jetstream is not enabled": no stream takes the subject)
// and retried for ever, with no 'error' (metrics().lastError only) and the stream never
// created again: the commits after it went nowhere, silently (restoreFromNats: stream not
// found), until 64 MiB of them passed the lag bound. Now a stream found gone is StreamLost: an
// 'error' WALNUT_IO reason StreamLost, and a new session, which creates the stream again with a
// new base image; the restore and the live replica (re-based onto it) equal the primary.
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import type { WalnutError } from '../../lib/errors';
import { open } from '../../lib/open';
import { connectNats } from '../../lib/replicate/nats';
import { openReplica } from '../../lib/replicate/replica';
import { restoreFromNats } from '../../lib/replicate/restore-nats';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { pageHashes } from '../helpers/page-hashes';
import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';

if (NATS_SKIP !== null) console.warn(NATS_SKIP);

const dir = tmpDir();
const started: NatsNode[] = [];
afterAll(() => stopNats(started));

const page = (i: number): Buffer => Buffer.alloc(4096, (i * 37 + 11) & 0xff);

describe.skipIf(NATS_SKIP !== null)('the stream deleted under a running replication', () => {
  for (const thread of [true, false]) {
    it(`${thread ? 'worker thread' : "store's loop"}: StreamLost, the stream created again by a new session; restore and replica equal the primary`, async () => {
      const server = await startNatsServer();
      started.push(server);
      const stream = `gone${thread}`;
      const store = await open(path.join(dir, `p-${thread}.db`));
      const r = store.replicateTo({ servers: server.url, stream, thread, stopTimeoutMs: 30_000 });
      const errors: WalnutError[] = [];
      r.on('error', (e: WalnutError) => errors.push(e));
      await r.ready;
      for (let i = 0; i < 5; i++) await store.commit([{ pgno: 2 + i, data: page(i) }]);
      const replica = await openReplica(path.join(dir, `replica-${thread}.db`), { servers: server.url, stream });
      try {
        await replica.waitFor(5);
        const operator = await connectNats([server.url], () => true, 'operator');
        try {
          await operator.jsm.streams.delete(stream);
        } finally {
          await operator.nc.close();
        }
        for (let i = 5; i < 10; i++) await store.commit([{ pgno: 2 + i, data: page(i) }]);
        await until(() => r.metrics().sessions === 2 && r.metrics().publishedSeq === r.metrics().exportedSeq && r.metrics().publishedSeq >= 0, 15_000, () => ({ metrics: r.metrics(), errors: errors.map((e) => e.message) }));
        expect(errors.map((e) => [e.code, e.reason])).toEqual([['WALNUT_IO', 'StreamLost']]);
        const { publishedSeq, session } = r.metrics();
        const out = path.join(dir, `restored-${thread}.db`);
        expect(await restoreFromNats(out, { servers: server.url, stream })).toMatchObject({ lastCommitSeq: publishedSeq, stoppedBy: null });
        const copy = await open(out);
        expect(await pageHashes(copy)).toEqual(await pageHashes(store));
        await copy.close();
        await Promise.race([replica.waitFor(publishedSeq, session), new Promise((_, reject) => setTimeout(reject, 15_000, new Error(`the replica did not follow: ${JSON.stringify(replica.lag())}`)))]);
        expect(await pageHashes(replica.store)).toEqual(await pageHashes(store));
      } finally {
        await replica.close();
        await r.stop();
        await store.close();
      }
    });
  }
});
