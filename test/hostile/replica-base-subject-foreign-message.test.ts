// A replica whose stream's newest message on walnut.<stream>.base is not walnut's (another
// client published there: no Walnut-Session). The replica took the subject's last message for
// the newest base image: not a final part, so "one being published", waited for, for ever:
// openReplica did not resolve (restoreFromNats, which lists every base image, restored), and
// a live replica's re-base waited the same way. Now a base-subject message without a
// Walnut-Session is looked past: the newest base image is walnut's newest before it. One that
// carried Walnut-Base-Final but no session failed every restoreFromNats and openReplica
// (WALNUT_INVALID_FRAMING HeaderMissing: its body read as a base image); it is left out too.
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { open } from '../../lib/open';
import { connectNats, HEADER } from '../../lib/replicate/nats';
import { openReplica } from '../../lib/replicate/replica';
import { restoreFromNats } from '../../lib/replicate/restore-nats';
import { appliedOrError, NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { pageHashes } from '../helpers/page-hashes';
import { tmpDir } from '../helpers/tmp';

if (NATS_SKIP !== null) console.warn(NATS_SKIP);

const dir = tmpDir();
const started: NatsNode[] = [];
afterAll(() => stopNats(started));

const page = (i: number): Buffer => Buffer.alloc(4096, (i * 37 + 11) & 0xff);

describe.skipIf(NATS_SKIP !== null)('a replica whose base subject ends with another client\'s message', () => {
  it('opens from walnut\'s newest base image before it and follows the primary', async () => {
    const server = await startNatsServer();
    started.push(server);
    const store = await open(path.join(dir, 'p.db'));
    const r = store.replicateTo({ servers: server.url, stream: 'basejunk', stopTimeoutMs: 30_000 });
    await r.ready;
    for (let i = 0; i < 10; i++) await store.commit([{ pgno: 2 + i, data: page(i) }]);
    const link = await connectNats([server.url], () => true, 'test');
    try {
      const h = link.headers();
      h.set(HEADER.BASE_FINAL, '1'); // a final part's header, no session
      await link.js.publish('walnut.basejunk.base', Buffer.from('junk'), { headers: h });
      await link.js.publish('walnut.basejunk.base', Buffer.from('hello'));
    } finally {
      await link.nc.close();
    }
    for (let i = 0; i < 3; i++) await store.commit([{ pgno: 2 + i, data: page(100 + i) }]);
    await r.stop();
    const restored = await restoreFromNats(path.join(dir, 'restored.db'), { servers: server.url, stream: 'basejunk' });
    expect([restored.lastCommitSeq, restored.stoppedBy]).toEqual([13, null]);
    const opening = openReplica(path.join(dir, 'replica.db'), { servers: server.url, stream: 'basejunk' });
    const replica = await Promise.race([opening, new Promise<null>((res) => setTimeout(res, 8000, null))]);
    if (replica === null) {
      void opening.then((late) => late.close(), () => undefined);
      expect.fail('openReplica did not resolve within 8 s');
    }
    try {
      await appliedOrError(replica, r.metrics().publishedSeq, r.metrics().session);
      expect(replica.lag().appliedSeq).toBe(13);
      expect(await pageHashes(replica.store)).toEqual(await pageHashes(store));
    } finally {
      await replica.close();
      await store.close();
    }
  }, 60_000);
});
