// The replication worker's own connection (base images, checkpoints: replicate/worker.ts) never
// commits, and it is no member of the store's commit lane (commit/lane.ts). As a member it made
// the store's lane leader not alone: a native gather, take and rest per batch, its idle watch,
// for commits that never come (measured, 64 committers: an idle member of the lane cost the
// leader's thread +17% CPU per commit and 8% of its commits/s; bench/README.md "#22 session 31").
// Here: with replication running on a worker thread (base image taken, commits published), the
// store's lane counts one member, the store; a store of the file the caller opens in the same
// thread still joins it (members 2), and every commit is published in order.
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { open } from '../../lib/open';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';

const dir = tmpDir();

describe.skipIf(NATS_SKIP !== null)("the replication worker's connection and the store's commit lane", () => {
  let server: NatsNode;
  beforeAll(async () => {
    server = await startNatsServer();
  });
  afterAll(() => stopNats([server]));

  it('is not a member: the lane counts the store alone while the worker replicates; a store the caller opens still joins', async () => {
    const file = path.join(dir, 'lane.db');
    const store = await open(file);
    try {
      const r = store.replicateTo({ servers: server.url, stream: 'lane' });
      await r.ready;
      const page = Buffer.alloc(store.pageSize, 5);
      const committers = 16;
      const each = 20;
      await Promise.all(Array.from({ length: committers }, async (_, w) => {
        for (let i = 0; i < each; i++) await store.commit([{ pgno: 2 + ((w * 31 + i) % 50), data: page }]);
      }));
      await until(() => r.metrics().publishedSeq >= committers * each, undefined, () => r.metrics());
      expect(r.metrics().bases).toBeGreaterThanOrEqual(1); // the worker's connection read its base image
      expect(store.metrics().lane?.members).toBe(1);
      // a second store of the file in this thread shares the lane as before
      const other = await open(file);
      try {
        expect(store.metrics().lane?.members).toBe(2);
        await other.commit([{ pgno: 60, data: page }]);
        await until(() => r.metrics().publishedSeq >= committers * each + 1, undefined, () => r.metrics());
      } finally {
        await other.close();
      }
      expect(store.metrics().lane?.members).toBe(1);
      await r.stop();
      expect(r.metrics().publishedSeq).toBe(committers * each + 1);
    } finally {
      await store.close();
    }
  });
});
