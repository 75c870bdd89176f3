// A stream whose retention holds less than one base image (maxBytes below the database's size):
// the stream drops a base image's first parts while its last ones are stored, so it never holds
// a whole one. The publisher said nothing (lastError null, every message acknowledged) while
// openReplica waited for a whole base image for ever and restoreFromNats failed NoBase. Now the
// publisher checks, once a base image's last part is stored, that the stream still holds its
// first, and says so once: an 'error' WALNUT_IO reason RetentionTooSmall (metrics().lastError).
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import type { WalnutError } from '../../lib/errors';
import { open } from '../../lib/open';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';

if (NATS_SKIP !== null) console.warn(NATS_SKIP);

const dir = tmpDir();
const started: NatsNode[] = [];
afterAll(() => stopNats(started));

describe.skipIf(NATS_SKIP !== null)('a stream whose maxBytes holds less than one base image', () => {
  for (const thread of [true, false]) {
    it(`the publisher says so once: 'error' WALNUT_IO RetentionTooSmall (thread: ${thread})`, async () => {
      const server = await startNatsServer();
      started.push(server);
      const store = await open(path.join(dir, `p-${thread}.db`));
      // 1.2 MB of pages, a stream of 200 KB, base parts of 64 KiB
      await store.commit(Array.from({ length: 300 }, (_, k) => ({ pgno: 2 + k, data: Buffer.alloc(4096, (k * 7 + 1) & 0xff) })));
      const r = store.replicateTo({ servers: server.url, stream: `small${thread ? 't' : 'l'}`, maxBytes: 200_000, maxMessageBytes: 65_536, thread });
      const errors: WalnutError[] = [];
      r.on('error', (e: WalnutError) => errors.push(e));
      try {
        await r.ready;
        for (let i = 0; i < 5; i++) await store.commit([{ pgno: 2 + i, data: Buffer.alloc(4096, i + 100) }]);
        await until(() => errors.length > 0, 15_000, () => r.metrics());
        await new Promise((res) => setTimeout(res, 300));
        expect(errors.map((e) => `${e.code} ${e.reason}`)).toEqual(['WALNUT_IO RetentionTooSmall']);
        expect(r.metrics().lastError).toMatch(/RetentionTooSmall|retention/);
      } finally {
        await r.stop();
        await store.close();
      }
    }, 60_000);
  }
});
