// stop() of a replication whose session's first pass waits for room in its queue (a WAL larger
// than half of maxLagBytes, the NATS server gone or wedged, so nothing is acknowledged) resolves
// once stopTimeoutMs has passed, saying which commits were not stored (lastError, StopTimeout),
// and the store closes after it: the export's sink must not go on waiting for room that the
// publisher, given up at the deadline, will never make.
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';

const dir = tmpDir('walnut-replicate-stop-first-pass-');

/** `p` settled within `ms`, or an error naming `what` (the test's own bound on a hang, not a timing). */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} still pending after ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

describe.skipIf(NATS_SKIP !== null)('replication: stop() while the first pass waits for room', () => {
  let server: NatsNode;
  beforeAll(async () => {
    server = await startNatsServer();
  });
  afterAll(async () => {
    server.resume();
    await stopNats([server]);
  });

  for (const [how, thread] of [['killed', false], ['wedged (SIGSTOP)', false], ['killed', true]] as const) {
    it(`server ${how}, thread: ${thread}: stop() resolves past stopTimeoutMs with StopTimeout, and close() after it`, async () => {
      if (!server.running) await server.start();
      const store = await open(path.join(dir, `${how.slice(0, 6)}-${thread}.db`), { pageSize: 4096, autoCheckpoint: false });
      // 8 MB of WAL, 16 times half the smallest bound (512 KiB): the first pass waits for room
      for (let i = 0; i < 20; i++) await store.commit(Array.from({ length: 100 }, (_, k) => ({ pgno: 2 + k, data: Buffer.alloc(4096, i + 1) })));
      const r = store.replicateTo({ servers: server.url, stream: `first${how.slice(0, 6)}${thread}`, maxLagBytes: 1 << 20, thread, delta: false, stopTimeoutMs: 1000 });
      try {
        await r.ready;
        if (how === 'killed') await server.stop();
        else server.pause();
        // the session has queued what it may and waits for acknowledgements that do not come
        await until(() => r.metrics().lagBytes > 0, 20_000, () => r.metrics());
        await new Promise((resolve) => setTimeout(resolve, 300));
        expect(r.metrics().publishedSeq).toBeLessThan(20);
        await within(r.stop(), 30_000, 'stop()');
        expect(r.metrics().lastError).toMatch(/StopTimeout|stopTimeoutMs/);
        await within(store.close(), 30_000, 'close()');
      } finally {
        server.resume();
        await within(r.stop(), 30_000, 'stop() (finally)').catch(() => undefined);
        await within(store.close(), 30_000, 'close() (finally)').catch(() => undefined);
      }
    }, 120_000);
  }
});
