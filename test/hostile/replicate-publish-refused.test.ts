// A stream that refuses the publisher's messages: an existing stream with discard 'new' and a
// max_bytes the log fills ("maximum bytes exceeded"). The publisher retried them for ever, as
// it should, but without a word (metrics().lastError only): the replication stalled, silently,
// until stop() said StopTimeout. Now the refusal is told as an unreachable server is: an
// 'error' WALNUT_IO reason PublishRefused naming the server's answer, at the first refusal and
// about every 20 s while it lasts; once the stream takes messages again, everything committed
// is published, in order, once.
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import type { WalnutError } from '../../lib/errors';
import { open } from '../../lib/open';
import { connectNats } from '../../lib/replicate/nats';
import { restoreFromNats } from '../../lib/replicate/restore-nats';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { pageHashes } from '../helpers/page-hashes';
import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';

if (NATS_SKIP !== null) console.warn(NATS_SKIP);

const dir = tmpDir();
const started: NatsNode[] = [];
afterAll(() => stopNats(started));

describe.skipIf(NATS_SKIP !== null)('a stream that refuses the publisher\'s messages', () => {
  it('a full stream with discard new: one PublishRefused error while it lasts, then everything published', async () => {
    const server = await startNatsServer();
    started.push(server);
    const operator = await connectNats([server.url], () => true, 'operator');
    const config = { name: 'full', subjects: ['walnut.full.>'], storage: 'file' as never, max_bytes: 200 << 10, discard: 'new' as never };
    await operator.jsm.streams.add(config);
    const store = await open(path.join(dir, 'p.db'));
    const r = store.replicateTo({ servers: server.url, stream: 'full', stopTimeoutMs: 30_000 });
    const errors: WalnutError[] = [];
    r.on('error', (e: WalnutError) => errors.push(e));
    try {
      await r.ready;
      for (let i = 0; i < 100; i++) await store.commit([{ pgno: 2 + (i % 30), data: Buffer.alloc(4096, i) }]);
      await until(() => errors.length > 0, 10_000, () => r.metrics());
      expect(errors.map((e) => [e.code, e.reason])).toEqual([['WALNUT_IO', 'PublishRefused']]);
      expect(errors[0]!.message).toMatch(/maximum bytes exceeded/);
      expect(r.metrics().publishedSeq).toBeLessThan(100);
      await new Promise((res) => setTimeout(res, 2000)); // retried meanwhile, told once
      expect(errors).toHaveLength(1);
      await operator.jsm.streams.update('full', { ...config, max_bytes: -1 } as never);
      await until(() => r.metrics().publishedSeq === 100, 15_000, () => r.metrics());
      await r.stop();
      expect(errors).toHaveLength(1);
      const out = path.join(dir, 'restored.db');
      expect(await restoreFromNats(out, { servers: server.url, stream: 'full' })).toMatchObject({ lastCommitSeq: 100, stoppedBy: null });
      const copy = await open(out);
      expect(await pageHashes(copy)).toEqual(await pageHashes(store));
      await copy.close();
    } finally {
      await operator.nc.close();
      await r.stop();
      await store.close();
    }
  });
});
