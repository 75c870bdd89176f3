// Hostile: a NATS server address no client can ever reach — a port past 65535, no host, a
// websocket URL (the node client refuses those) — was taken, and the verb retried it for ever ('error'
// Unreachable "(Invalid URL)" every few seconds from replicateTo, openReplica waiting out its
// connect timeout, restoreFromNats failing only after it). Such an address is now refused up
// front, as an empty one is: WALNUT_INVALID_ARGUMENT, reason servers, naming the address.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import { openReplica } from '../../lib/replicate/replica';
import { restoreFromNats } from '../../lib/replicate/restore-nats';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir('walnut-hostile-nats-servers-');
const BAD = ['nats://127.0.0.1:99999', '127.0.0.1:70000', 'ws://127.0.0.1:4222', 'nats://', 'nats://127.0.0.1:4222,nats://:'];
const GOOD = ['nats://127.0.0.1:4222', 'http://127.0.0.1:4222' /* the client ignores a scheme it does not know */, '127.0.0.1:4222', 'localhost', 'tls://example.com:4443', 'nats://user:secret@127.0.0.1:4222', 'nats://[::1]:4222', ' nats://127.0.0.1:1 , 127.0.0.1:2'];

describe('NATS server addresses no client can reach', () => {
  it.each(BAD)('%s is refused by replicateTo, openReplica and restoreFromNats before anything connects (WALNUT_INVALID_ARGUMENT, servers)', async (servers) => {
    const store = await open(path.join(dir, `p-${BAD.indexOf(servers)}.db`));
    try {
      let thrown: unknown = null;
      try {
        const r = store.replicateTo({ servers, stream: 's' });
        await r.stop();
      } catch (e) {
        thrown = e;
      }
      expect(thrown).toMatchObject({ code: 'WALNUT_INVALID_ARGUMENT', reason: 'servers' });
      await expectRejectsWalnut(openReplica(path.join(dir, `r-${BAD.indexOf(servers)}.db`), { servers, stream: 's', connectTimeoutMs: 60_000 }), 'WALNUT_INVALID_ARGUMENT', { reason: 'servers' });
      await expectRejectsWalnut(restoreFromNats(path.join(dir, `x-${BAD.indexOf(servers)}.db`), { servers, stream: 's' }), 'WALNUT_INVALID_ARGUMENT', { reason: 'servers' });
    } finally {
      await store.close();
    }
  });

  it('addresses a client can use are taken (the check refuses nothing of them)', async () => {
    const { checkServers } = await import('../../lib/replicate/nats');
    for (const servers of GOOD) expect(() => checkServers(servers)).not.toThrow();
  });
});
