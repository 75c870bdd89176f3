// Replication with a maxLagBytes of 4 GiB or more (the option takes any integer from 1 MiB up to
// Number.MAX_SAFE_INTEGER). The export's sink waits for room while its queue would pass half the
// bound; that half must be half the number the caller gave, not a 32-bit remainder of it: the
// WAL's commits must reach the stream, each once, as with the default bound.
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import type { ReplicationMetrics } from '../../lib/replicate/publisher';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';

const dir = tmpDir('walnut-replicate-max-lag-huge-');
const COMMITS = 200;

describe.skipIf(NATS_SKIP !== null)('replication: maxLagBytes of 4 GiB and more', () => {
  let server: NatsNode;
  beforeAll(async () => {
    server = await startNatsServer();
  });
  afterAll(async () => {
    await stopNats([server]);
  });

  const cases: [string, number, boolean][] = [
    ['2^32', 2 ** 32, false],
    ['2^33 + 4', 2 ** 33 + 4, true],
    ['Number.MAX_SAFE_INTEGER', Number.MAX_SAFE_INTEGER, false],
  ];
  for (const [name, maxLagBytes, thread] of cases) {
    it(`maxLagBytes ${name} (thread: ${thread}): a WAL's commits already there and those made after are all published, once`, async () => {
      const store = await open(path.join(dir, `lag-${maxLagBytes}.db`), { pageSize: 4096, autoCheckpoint: false });
      const data = Buffer.alloc(4096, 7);
      // the WAL the session's first pass reads
      for (let i = 0; i < COMMITS; i++) await store.commit([{ pgno: 2 + (i % 20), data }]);
      const r = store.replicateTo({ servers: server.url, stream: `huge${maxLagBytes}`, maxLagBytes, thread, delta: false, stopTimeoutMs: 30_000 });
      const lagExceeded: ReplicationMetrics[] = [];
      r.on('lagExceeded', (m: ReplicationMetrics) => lagExceeded.push(m));
      try {
        await r.ready;
        // on the build where half the bound was maxLagBytes >>> 1 (0 or 2 here) the first pass
        // waited for room forever behind the queue's WAL_HEADER: publishedSeq stayed 0
        await until(() => r.metrics().publishedSeq >= COMMITS, 30_000, () => r.metrics());
        // follow mode
        for (let i = 0; i < COMMITS; i++) await store.commit([{ pgno: 2 + (i % 20), data }]);
        await until(() => r.metrics().publishedSeq >= 2 * COMMITS, 30_000, () => r.metrics());
        await r.stop();
        expect(r.metrics()).toMatchObject({ publishedSeq: 2 * COMMITS, exportedSeq: 2 * COMMITS, sessions: 1, lagResets: 0, duplicates: 0 });
        expect(lagExceeded).toEqual([]);
      } finally {
        await r.stop();
        await store.close();
      }
    }, 120_000);
  }
});
