// A live replica whose primary's page size changed (sqlite3: journal_mode DELETE, page_size,
// VACUUM, WAL again; here another database of another page size replicating to the stream as a
// new session). Its file cannot take the new pages: it stops for good, as a replica whose store
// refuses a batch does, but now says why and what to do (WALNUT_INVALID_ARGUMENT reason
// PageSizeChanged, naming both sizes and the files to remove). It said its store's "page 1 has
// 1024 bytes; the page size is 4096". Opened anew at another path it follows the new primary.
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { WalnutError } from '../../lib/errors';
import { open } from '../../lib/open';
import { openReplica } from '../../lib/replicate/replica';
import { appliedOrError, NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { pageHashes } from '../helpers/page-hashes';
import { tmpDir } from '../helpers/tmp';

if (NATS_SKIP !== null) console.warn(NATS_SKIP);

const dir = tmpDir();
const started: NatsNode[] = [];
afterAll(() => stopNats(started));

describe.skipIf(NATS_SKIP !== null)('a live replica whose primary\'s page size changed', () => {
  it('stops with WALNUT_INVALID_ARGUMENT reason PageSizeChanged, naming both sizes; a new replica follows the new primary', async () => {
    const server = await startNatsServer();
    started.push(server);
    const before = await open(path.join(dir, 'p4096.db'));
    const r1 = before.replicateTo({ servers: server.url, stream: 'pages', stopTimeoutMs: 30_000 });
    await before.commit([{ pgno: 2, data: Buffer.alloc(4096, 7) }]);
    await r1.ready;
    await r1.stop();
    await before.close();
    const replica = await openReplica(path.join(dir, 'replica.db'), { servers: server.url, stream: 'pages' });
    const after = await open(path.join(dir, 'p1024.db'), { pageSize: 1024 });
    try {
      await appliedOrError(replica, r1.metrics().publishedSeq, r1.metrics().session);
      const stopped = new Promise<unknown>((resolve) => replica.once('error', resolve));
      await after.commit([{ pgno: 2, data: Buffer.alloc(1024, 9) }]);
      const r2 = after.replicateTo({ servers: server.url, stream: 'pages', stopTimeoutMs: 30_000 });
      await r2.ready;
      await r2.stop();
      const e = await stopped;
      expect(e).toBeInstanceOf(WalnutError);
      expect((e as WalnutError).code).toBe('WALNUT_INVALID_ARGUMENT');
      expect((e as WalnutError).reason).toBe('PageSizeChanged');
      expect((e as Error).message).toMatch(/page size is now 1024 bytes .*the replica's 4096/);
      await expect(replica.waitFor(r2.metrics().publishedSeq, r2.metrics().session)).rejects.toBe(e);
      const fresh = await openReplica(path.join(dir, 'fresh.db'), { servers: server.url, stream: 'pages' });
      try {
        await appliedOrError(fresh, r2.metrics().publishedSeq, r2.metrics().session);
        expect(await pageHashes(fresh.store)).toEqual(await pageHashes(after));
      } finally {
        await fresh.close();
      }
    } finally {
      await replica.close();
      await after.close();
    }
  }, 60_000);
});
