// replicateTo whose server answers but refuses to create the stream: `replicas: 3` (walnut
// replicate --replicas 3) against a single server that is not in a cluster ("replicas > 1 not
// supported in non-clustered mode"). The publisher retried the creation forever without a word:
// no 'error', metrics().lastError null, `walnut replicate` printing empty metrics, `ready`
// pending. Servers that do not answer at all were already reported (reason Unreachable); now a
// stream the server will not create or show is reported the same way: an 'error' WALNUT_IO
// reason StreamUnavailable naming the stream and the server's answer, at the first failed
// attempt and about every 20 s after, while it keeps retrying (a cluster may yet elect a leader
// or get its nodes back).
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { WalnutError } from '../../lib/errors';
import { open } from '../../lib/open';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';

if (NATS_SKIP !== null) console.warn(NATS_SKIP);

const dir = tmpDir();
const started: NatsNode[] = [];
afterAll(() => stopNats(started));

describe.skipIf(NATS_SKIP !== null)('replicateTo when the server refuses the stream', () => {
  it('says so (an \'error\' WALNUT_IO reason StreamUnavailable, metrics().lastError) while it keeps retrying, on a worker thread and on the store\'s loop', async () => {
    const server = await startNatsServer();
    started.push(server);
    for (const thread of [true, false]) {
      const store = await open(path.join(dir, `p-${thread}.db`));
      const r = store.replicateTo({ servers: server.url, stream: `r3${thread}`, replicas: 3, thread, stopTimeoutMs: 300 });
      const errors: WalnutError[] = [];
      r.on('error', (e: WalnutError) => errors.push(e));
      void r.ready.catch(() => undefined);
      await store.commit([{ pgno: 2, data: Buffer.alloc(4096, 1) }]);
      const told = await until(() => errors.length > 0, 10_000).then(() => true, () => false);
      expect(told, `no error, metrics ${JSON.stringify(r.metrics())}`).toBe(true);
      expect(errors[0]).toBeInstanceOf(WalnutError);
      expect(errors[0]).toMatchObject({ code: 'WALNUT_IO', reason: 'StreamUnavailable' });
      expect(errors[0]!.message).toContain(`r3${thread}`);
      expect(errors[0]!.message).toMatch(/replicas/);
      await until(() => r.metrics().lastError !== null, 10_000);
      expect(r.metrics().lastError).toMatch(/^WALNUT_IO: /);
      expect(r.metrics().sessions).toBe(0);
      await store.close();
    }
  }, 60_000);
});
