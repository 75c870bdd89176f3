// A live replica meeting another client's message on walnut.<stream>.log (`nats pub`, no
// Walnut-Session) skips it, as it skips an overtaken primary's, but said "another walnut
// primary (session ) publishes to the JetStream stream" (WALNUT_CONFLICT OtherPrimary) for a
// primary that does not exist, and, told once, said nothing of a real other primary after it.
// Now such a message is told as another client's (reason ForeignMessage, once), apart from
// OtherPrimary; the replica goes on applying the primary's commits.
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import type { WalnutError } from '../../lib/errors';
import { open } from '../../lib/open';
import { connectNats } from '../../lib/replicate/nats';
import { openReplica } from '../../lib/replicate/replica';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { pageHashes } from '../helpers/page-hashes';
import { tmpDir } from '../helpers/tmp';

if (NATS_SKIP !== null) console.warn(NATS_SKIP);

const dir = tmpDir();
const started: NatsNode[] = [];
afterAll(() => stopNats(started));

const page = (i: number): Buffer => Buffer.alloc(4096, (i * 37 + 11) & 0xff);

describe.skipIf(NATS_SKIP !== null)('a live replica meeting another client\'s log message', () => {
  it('skips it and tells it as another client\'s, not as another primary', async () => {
    const server = await startNatsServer();
    started.push(server);
    const store = await open(path.join(dir, 'p.db'));
    const r = store.replicateTo({ servers: server.url, stream: 'chatter', stopTimeoutMs: 30_000 });
    await r.ready;
    await store.commit([{ pgno: 2, data: page(1) }]);
    const replica = await openReplica(path.join(dir, 'replica.db'), { servers: server.url, stream: 'chatter' });
    const errors: WalnutError[] = [];
    replica.on('error', (e: WalnutError) => errors.push(e));
    try {
      await replica.waitFor(1);
      const other = await connectNats([server.url], () => true, 'another client');
      try {
        for (let i = 0; i < 2; i++) await other.js.publish('walnut.chatter.log', Buffer.from('hello'));
      } finally {
        await other.nc.close();
      }
      for (let i = 2; i <= 4; i++) await store.commit([{ pgno: 2 + i, data: page(i) }]);
      await replica.waitFor(4);
      expect(replica.lag().foreignMessages).toBe(2);
      expect(errors.map((e) => [e.code, e.reason])).toEqual([['WALNUT_CONFLICT', 'ForeignMessage']]);
      expect(errors[0]!.message).not.toMatch(/walnut primary \(session \)/);
      expect(await pageHashes(replica.store)).toEqual(await pageHashes(store));
    } finally {
      await replica.close();
      await r.stop();
      await store.close();
    }
  });
});
