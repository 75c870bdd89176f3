// A replica opened with another stream than the one it follows (a typo in --stream, a config
// pointing two services' replicas at one path). It resumed, took the other stream's session for a
// new session of its own primary and re-based onto it: the replica of database A became a copy of
// database B without a word, A's state gone. Now its position file names its stream, and a replica
// of another stream is refused (WALNUT_INVALID_ARGUMENT reason OtherStream), its files untouched;
// opened with its own stream it resumes as before.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { open } from '../../lib/open';
import { openReplica } from '../../lib/replicate/replica';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { appliedOrError, NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { pageHashes } from '../helpers/page-hashes';
import { tmpDir } from '../helpers/tmp';

if (NATS_SKIP !== null) console.warn(NATS_SKIP);

const dir = tmpDir();
const started: NatsNode[] = [];
afterAll(() => stopNats(started));

function page(i: number): Buffer {
  return Buffer.alloc(4096, i);
}

describe.skipIf(NATS_SKIP !== null)('a replica opened with another stream', () => {
  it('is refused with WALNUT_INVALID_ARGUMENT reason OtherStream, its files untouched; with its own stream it resumes', async () => {
    const server = await startNatsServer();
    started.push(server);
    const a = await open(path.join(dir, 'a.db'));
    const b = await open(path.join(dir, 'b.db'));
    const ra = a.replicateTo({ servers: server.url, stream: 'A', stopTimeoutMs: 30_000 });
    const rb = b.replicateTo({ servers: server.url, stream: 'B', stopTimeoutMs: 30_000 });
    try {
      for (let i = 0; i < 4; i++) await a.commit([{ pgno: 2 + i, data: page(1) }]);
      await b.commit([{ pgno: 2, data: page(2) }]);
      await Promise.all([ra.ready, rb.ready]);
      const replicaPath = path.join(dir, 'replica.db');
      const first = await openReplica(replicaPath, { servers: server.url, stream: 'A' });
      await ra.stop();
      await appliedOrError(first, ra.metrics().publishedSeq, ra.metrics().session);
      const hashes = await pageHashes(first.store);
      expect(hashes).toEqual(await pageHashes(a));
      await first.close();
      const before = fs.readFileSync(`${replicaPath}-replica`);
      await expectRejectsWalnut(openReplica(replicaPath, { servers: server.url, stream: 'B' }), 'WALNUT_INVALID_ARGUMENT', { reason: 'OtherStream' });
      expect(fs.readFileSync(`${replicaPath}-replica`).equals(before)).toBe(true);
      const again = await openReplica(replicaPath, { servers: server.url, stream: 'A' });
      try {
        expect(await pageHashes(again.store)).toEqual(hashes);
        expect(again.lag().rebases).toBe(0);
      } finally {
        await again.close();
      }
    } finally {
      await rb.stop();
      await a.close();
      await b.close();
    }
  }, 60_000);
});
