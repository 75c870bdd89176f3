// restoreFromNats over a stream whose log holds a message of no walnut session between the
// primary's own (another client publishing to walnut.<stream>.log; the primary goes on
// publishing after it, and replicas skip it as foreign). The restore took any log message of
// another session for the start of a newer session and stopped there: it restored commit 10 of
// the 15 in the stream, `--until 12` gave commit 10 too, stoppedBy null, exit 0. Now messages
// of another session than the restored base's are skipped (the newest session is the one
// restored, so a later one is never cut short) and the restore reaches the stream's end.
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { open } from '../../lib/open';
import { connectNats } from '../../lib/replicate/nats';
import { restoreFromNats } from '../../lib/replicate/restore-nats';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { pageHashes } from '../helpers/page-hashes';
import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';

if (NATS_SKIP !== null) console.warn(NATS_SKIP);

const dir = tmpDir();
const started: NatsNode[] = [];
afterAll(() => stopNats(started));

const page = (i: number): Buffer => Buffer.alloc(4096, (i * 37 + 11) & 0xff);

describe.skipIf(NATS_SKIP !== null)('restoreFromNats over a log with another client\'s message in it', () => {
  it('skips the message and restores the primary\'s commits after it', async () => {
    const server = await startNatsServer();
    started.push(server);
    const store = await open(path.join(dir, 'p.db'));
    const r = store.replicateTo({ servers: server.url, stream: 'mixed', stopTimeoutMs: 30_000 });
    await r.ready;
    for (let i = 0; i < 10; i++) await store.commit([{ pgno: 2 + i, data: page(i) }]);
    await until(() => r.metrics().publishedSeq >= 10, 10_000, () => r.metrics());
    const link = await connectNats([server.url], () => true, 'test');
    try {
      await link.js.publish('walnut.mixed.log', Buffer.from('not walnut\'s'));
    } finally {
      await link.nc.close();
    }
    for (let i = 0; i < 5; i++) await store.commit([{ pgno: 2 + i, data: page(100 + i) }]);
    await r.stop();
    expect(r.metrics().publishedSeq).toBe(15); // the primary went on past the message

    const whole = await restoreFromNats(path.join(dir, 'whole.db'), { servers: server.url, stream: 'mixed' });
    expect([whole.lastCommitSeq, whole.stoppedBy]).toEqual([15, null]);
    const at12 = await restoreFromNats(path.join(dir, 'at12.db'), { servers: server.url, stream: 'mixed', until: 12 });
    expect([at12.lastCommitSeq, at12.stoppedBy]).toEqual([12, 'until']);
    const restored = await open(path.join(dir, 'whole.db'));
    try {
      expect(await pageHashes(restored)).toEqual(await pageHashes(store));
    } finally {
      await restored.close();
      await store.close();
    }
  }, 60_000);
});
