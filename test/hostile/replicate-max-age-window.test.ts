// replicateTo({ maxAgeMs }) below the default duplicate window (2 min): the stream it asked for
// had a duplicate window longer than its max age, which nats-server refuses ("duplicates window
// can not be larger then max age"), so the replication retried for ever ('error' WALNUT_IO
// StreamUnavailable every 20 s, `ready` pending, nothing published) for an option the docs offer
// without a word about the window. Now the default window is at most maxAgeMs; a duplicateWindowMs
// given past maxAgeMs, a maxAgeMs below the window's 1 s floor (its window was refused by the
// worker thread: `ready` rejected), and a maxAgeMs or duplicateWindowMs past what the server's
// nanoseconds hold (it was sent as is: refused the same way, for ever), are
// WALNUT_INVALID_ARGUMENT before anything connects.
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { open } from '../../lib/open';
import { connectNats } from '../../lib/replicate/nats';
import { openReplica } from '../../lib/replicate/replica';
import { invalidArgumentReason } from '../helpers/expect-error';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { tmpDir } from '../helpers/tmp';

if (NATS_SKIP !== null) console.warn(NATS_SKIP);

const dir = tmpDir();
const started: NatsNode[] = [];
afterAll(() => stopNats(started));

describe('replicateTo stream limits the server would refuse (no server needed)', () => {
  it('a duplicate window past maxAgeMs, a max age or window past the server\'s int64 nanoseconds: WALNUT_INVALID_ARGUMENT', async () => {
    const store = await open(path.join(dir, 'refused.db'));
    try {
      const servers = 'nats://127.0.0.1:1';
      expect(invalidArgumentReason(() => store.replicateTo({ servers, stream: 'a', maxAgeMs: 4000, duplicateWindowMs: 5000 }))).toBe('duplicateWindowMs');
      expect(invalidArgumentReason(() => store.replicateTo({ servers, stream: 'a', maxAgeMs: Number.MAX_SAFE_INTEGER }))).toBe('maxAgeMs');
      expect(invalidArgumentReason(() => store.replicateTo({ servers, stream: 'a', maxAgeMs: 500 }))).toBe('maxAgeMs'); // below the window's 1 s floor
      expect(invalidArgumentReason(() => store.replicateTo({ servers, stream: 'a', duplicateWindowMs: Number.MAX_SAFE_INTEGER }))).toBe('duplicateWindowMs');
    } finally {
      await store.close();
    }
  });
});

describe.skipIf(NATS_SKIP !== null)('replicateTo with a max age below the default duplicate window', () => {
  it('creates the stream (window = max age), publishes, and a replica follows', async () => {
    const server = await startNatsServer();
    started.push(server);
    const store = await open(path.join(dir, 'p.db'));
    const r = store.replicateTo({ servers: server.url, stream: 'aged', maxAgeMs: 30_000, stopTimeoutMs: 20_000 });
    const errors: Error[] = [];
    r.on('error', (e: Error) => errors.push(e));
    try {
      const late = new Promise<'late'>((resolve) => setTimeout(resolve, 10_000, 'late').unref());
      expect(await Promise.race([r.ready.then(() => 'ready'), late]), String(errors[0])).toBe('ready');
      for (let i = 0; i < 5; i++) await store.commit([{ pgno: 2 + i, data: Buffer.alloc(4096, i + 1) }]);
      const link = await connectNats([server.url], () => true, 'test');
      try {
        const { config } = await link.jsm.streams.info('aged');
        expect([config.max_age, config.duplicate_window]).toEqual([30_000 * 1e6, 30_000 * 1e6]);
      } finally {
        await link.nc.close();
      }
      const replica = await openReplica(path.join(dir, 'replica.db'), { servers: server.url, stream: 'aged' });
      try {
        await replica.waitFor(5);
      } finally {
        await replica.close();
      }
      expect(errors).toEqual([]);
    } finally {
      await r.stop();
      await store.close();
    }
  }, 60_000);
});
