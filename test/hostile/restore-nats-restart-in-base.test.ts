// Hostile: the NATS server restarts while restoreFromNats reads the base image's parts (one
// direct get per part, before the log's consumer). A part asked while the server was down timed
// out and failed the whole restore (WALNUT_IO "reading the export stream failed: timeout",
// nothing restored; breaker2: `walnut restore --nats` of a 126 MB base, the server killed 0.7 s
// and 1.5 s in and back 2 s later, exit 2 each time), where the README says the restore waits
// through a server restart (and the log read after the base did: restore-nats-server-stalls).
// Now a part is asked again for up to 30 s, as the log read waits (and so are the stream's last
// messages and the log's consumer, asked before and after the parts: on a quick machine the
// parts are all read before the kill lands, and the log's consumer was asked once). The server is killed once the
// restore's temporary file exists (it pulls the base's parts from then on) and less than half of
// the base has come out of the stream (onProgress: its parts go to restore one at a time, as they
// are read; the base was its first chunk, whole, when it was held in memory), and started again 1 s later.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import { restoreFromNats } from '../../lib/replicate/restore-nats';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { pageHashes } from '../helpers/page-hashes';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir('walnut-hostile-restore-restart-base-');
const started: NatsNode[] = [];
afterAll(() => stopNats(started));

describe.skipIf(NATS_SKIP !== null)('restoreFromNats while the server restarts in the base image', () => {
  it('asks for the part again once the server is back: the whole state restored (it failed WALNUT_IO timeout)', async () => {
    const server = await startNatsServer();
    started.push(server);
    const store = await open(path.join(dir, 'p.db'), { autoCheckpoint: false });
    // 16 MiB in 64 KiB messages: a base image of ~256 parts, read one request each
    const PAGES = 4096;
    for (let first = 2; first <= PAGES; first += 1024) {
      const pages = Array.from({ length: Math.min(1024, PAGES - first + 1) }, (_, i) => ({ pgno: first + i, data: Buffer.alloc(store.pageSize, (first + i) & 0xff) }));
      await store.commit(pages, { dbSize: first + pages.length - 1 });
    }
    const r = store.replicateTo({ servers: server.url, stream: 'restartbase', maxMessageBytes: 64 << 10, thread: false });
    await r.ready;
    for (let i = 1; i <= 5; i++) await store.commit([{ pgno: 2 + i, data: Buffer.alloc(store.pageSize, 0x80 + i) }]);
    await r.stop();
    const { publishedSeq, exportedSeq } = r.metrics();
    expect(publishedSeq).toBe(exportedSeq);

    const sub = fs.mkdtempSync(path.join(dir, 'target-'));
    const out = path.join(sub, 'restored.db');
    let progress = 0;
    let progressAtStop = -1;
    let restarted: Promise<void> | null = null;
    const watch = setInterval(() => {
      if (restarted === null && fs.readdirSync(sub).some((n) => /^\.restored\.db\.restore-[0-9a-f]+$/.test(n))) {
        progressAtStop = progress;
        restarted = server.stop().then(() => new Promise((res) => setTimeout(res, 1000))).then(() => server.start());
      }
    }, 1);
    try {
      const result = await restoreFromNats(out, { servers: server.url, stream: 'restartbase', onProgress: (bytes: number) => void (progress = bytes) });
      expect(restarted).not.toBeNull();
      expect(progressAtStop).toBeGreaterThanOrEqual(0);
      expect(progressAtStop).toBeLessThan((PAGES * store.pageSize) / 2); // killed while the base image's parts were read
      expect(result).toMatchObject({ lastCommitSeq: publishedSeq, stoppedBy: null });
    } finally {
      clearInterval(watch);
      await restarted;
    }
    const restored = await open(out);
    expect(await pageHashes(restored)).toEqual(await pageHashes(store));
    await restored.close();
    await store.close();
  }, 60_000);
});
