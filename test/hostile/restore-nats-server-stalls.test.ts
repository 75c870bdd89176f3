// Hostile: the NATS server restarts while restoreFromNats reads the log. The read failed
// (WALNUT_IO "consumer not found", nothing restored), and its end was a pull that came back
// empty after 1 s: a consumer that delivered nothing for a second (a 3-node cluster's node
// behind its leader) ended the restore early, an earlier state than the stream held, stoppedBy
// null, exit 0 (helper-121's cluster runs: 2 restores in 12; not reproduced on one server
// here). Now the end is the stream's last message, asked of the stream before reading, and the
// read waits for it through empty pulls and failed ones (up to 30 s, then WALNUT_IO reason nats).
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import { restoreFromNats } from '../../lib/replicate/restore-nats';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { pageHashes } from '../helpers/page-hashes';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir('walnut-hostile-restore-stall-');
const started: NatsNode[] = [];
afterAll(() => stopNats(started));

describe.skipIf(NATS_SKIP !== null)('restoreFromNats while the server restarts', () => {
  it('reads on once it is back and up to the stream\'s last message: every commit restored (it failed WALNUT_IO consumer not found)', async () => {
    const server = await startNatsServer();
    started.push(server);
    const store = await open(path.join(dir, 'p.db'), { autoCheckpoint: false });
    const r = store.replicateTo({ servers: server.url, stream: 'stall', thread: false });
    await r.ready;
    const COMMITS = 300;
    for (let i = 1; i <= COMMITS; i++) await store.commit([{ pgno: 2 + (i % 7), data: Buffer.alloc(store.pageSize, i & 0xff) }]);
    await r.stop();
    expect(r.metrics().publishedSeq).toBe(COMMITS);
    expect(r.metrics().messages).toBeGreaterThan(3); // a log of several messages: the stall falls between two

    let chunks = 0;
    let stalled = false;
    let restarted: Promise<void> = Promise.resolve();
    const out = path.join(dir, 'restored.db');
    const result = await restoreFromNats(out, {
      servers: server.url,
      stream: 'stall',
      onProgress: () => {
        // after the base image and the first log message: the server stops (cleanly: its storage
        // keeps every message) and starts again 1.5 s later
        if (++chunks === 2 && !stalled) {
          stalled = true;
          restarted = server.stop('SIGTERM').then(() => new Promise((r) => setTimeout(r, 1500))).then(() => server.start());
        }
      },
    });
    expect(stalled).toBe(true);
    await restarted;
    expect(result).toMatchObject({ lastCommitSeq: COMMITS, stoppedBy: null });
    const restored = await open(out);
    expect(await pageHashes(restored)).toEqual(await pageHashes(store));
    await restored.close();
    await store.close();
  }, 60_000);
});
