// openReplica's maxBatchCommits / maxBatchPages: "a batch (one walnut commit) holds at most
// this many primary commits / pages". The limits were checked only once a whole log message
// was read, so a batch took every commit of the message: with maxBatchCommits 1 a replica
// applied batches of 112 commits (16 committers' commits share messages), and the default
// 1,000 took a message's thousands of one-row commits. Now a batch is applied at its limit,
// mid-message; reopened, the replica reads that message again from its first commit and skips
// those applied: each commit applied once, the replica equal to the primary.
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { open } from '../../lib/open';
import { openReplica, type Replica } from '../../lib/replicate/replica';
import { appliedOrError, NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { pageHashes } from '../helpers/page-hashes';
import { tmpDir } from '../helpers/tmp';

if (NATS_SKIP !== null) console.warn(NATS_SKIP);

const dir = tmpDir();
const started: NatsNode[] = [];
afterAll(() => stopNats(started));

const page = (k: number, i: number): Buffer => {
  const b = Buffer.alloc(4096, k);
  b.writeUInt32BE(i, 100 + (i % 7) * 500);
  return b;
};

describe.skipIf(NATS_SKIP !== null)('a replica\'s batch limits', () => {
  it('maxBatchCommits 1 and 5: no batch holds more commits, across messages of many commits and a reopen mid-stream', async () => {
    const server = await startNatsServer();
    started.push(server);
    const store = await open(path.join(dir, 'p.db'));
    const r = store.replicateTo({ servers: server.url, stream: 'limits', stopTimeoutMs: 30_000 });
    await r.ready;
    const largest = new Map<number, number>();
    const applied = new Map<number, number>();
    const watch = (replica: Replica, limit: number): Replica => {
      replica.on('applied', (e: { commits: number }) => {
        largest.set(limit, Math.max(largest.get(limit) ?? 0, e.commits));
        applied.set(limit, (applied.get(limit) ?? 0) + e.commits);
      });
      return replica;
    };
    const paths = { 1: path.join(dir, 'one.db'), 5: path.join(dir, 'five.db') };
    let one = watch(await openReplica(paths[1], { servers: server.url, stream: 'limits', maxBatchCommits: 1 }), 1);
    const five = watch(await openReplica(paths[5], { servers: server.url, stream: 'limits', maxBatchCommits: 5 }), 5);
    const load = (from: number, to: number): Promise<unknown> =>
      Promise.all(Array.from({ length: 16 }, async (_, k) => {
        for (let i = from; i < to; i++) await store.commit([{ pgno: 2 + k, data: page(k, i) }]);
      }));
    await load(0, 50);
    await one.close(); // somewhere mid-stream, maybe mid-message
    await load(50, 100);
    one = watch(await openReplica(paths[1], { servers: server.url, stream: 'limits', maxBatchCommits: 1 }), 1);
    await r.stop();
    const { publishedSeq, session } = r.metrics();
    try {
      for (const replica of [one, five]) {
        await appliedOrError(replica, publishedSeq, session);
        expect(await pageHashes(replica.store)).toEqual(await pageHashes(store));
      }
      expect(r.metrics().messages).toBeLessThan(publishedSeq); // messages held several commits
      expect(largest.get(1)).toBe(1);
      expect(largest.get(5)).toBeLessThanOrEqual(5);
      // each commit applied once (the session's base is commit 0: the WAL was empty)
      expect([applied.get(1), applied.get(5)]).toEqual([publishedSeq, publishedSeq]);
    } finally {
      await one.close();
      await five.close();
      await store.close();
    }
  });
});
