// A replication whose messages may be larger than half of maxLagBytes (a server configured with
// max_payload 8 MB, maxMessageBytes 4 MiB, maxLagBytes 1 MiB: each FRAMES record the export cuts
// is up to half a message, 2 MiB, and a commit of 200 pages is one record of 824 KB). Its queue holding only a WAL_HEADER (which goes out with the
// commit after it, so no acknowledgement will make room) the sink must take the next record
// rather than wait for room: the WAL's commits are published, once.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import type { ReplicationMetrics } from '../../lib/replicate/publisher';
import { freePort, NATS_SKIP, NatsNode, stopNats } from '../helpers/nats';
import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';

const dir = tmpDir('walnut-replicate-large-records-');

describe.skipIf(NATS_SKIP !== null)('replication: records larger than half of maxLagBytes', () => {
  let server: NatsNode;
  beforeAll(async () => {
    const conf = path.join(dir, 'nats.conf');
    fs.writeFileSync(conf, 'max_payload: 8MB\n');
    server = new NatsNode(await freePort(), ['-c', conf], tmpDir('walnut-nats-'));
    await server.start();
  });
  afterAll(async () => {
    await stopNats([server]);
  });

  for (const thread of [false, true]) {
    it(`thread: ${thread}: a WAL of large commits already there and those made after are published`, async () => {
      const store = await open(path.join(dir, `large-${thread}.db`), { pageSize: 4096, autoCheckpoint: false });
      // 3 commits of 200 pages (824 KB each, under the bound: no session is abandoned for one),
      // each one FRAMES record past half the bound (512 KiB)
      for (let t = 0; t < 3; t++) await store.commit(Array.from({ length: 200 }, (_, k) => ({ pgno: 2 + k, data: Buffer.alloc(4096, t + 1) })));
      const r = store.replicateTo({ servers: server.url, stream: `large${thread}`, maxLagBytes: 1 << 20, maxMessageBytes: 4 << 20, thread, delta: false, stopTimeoutMs: 30_000 });
      const lagExceeded: ReplicationMetrics[] = [];
      r.on('lagExceeded', (m: ReplicationMetrics) => lagExceeded.push(m));
      try {
        await r.ready;
        await until(() => r.metrics().publishedSeq >= 3, 30_000, () => r.metrics());
        for (let t = 3; t < 6; t++) await store.commit(Array.from({ length: 200 }, (_, k) => ({ pgno: 2 + k, data: Buffer.alloc(4096, t + 1) })));
        await until(() => r.metrics().publishedSeq >= 6, 30_000, () => r.metrics());
        await r.stop();
        expect(r.metrics()).toMatchObject({ publishedSeq: 6, exportedSeq: 6, duplicates: 0, sessions: 1, lagResets: 0 });
        expect(lagExceeded).toEqual([]);
      } finally {
        await r.stop();
        await store.close();
      }
    }, 120_000);
  }
});
