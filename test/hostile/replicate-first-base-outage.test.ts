// Hostile (break50): the NATS server SIGKILLed and started again, or SIGSTOPped and resumed, in
// the middle of a session's first base image (its window of 8 MiB full: the export waiting for
// room), with a python3 writer committing all along; then stop(): every commit published, and
// the stream restores to the primary's pages. On the worker thread and on the store's loop.
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import { pythonSqlite } from '../helpers/children';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { pageHashes } from '../helpers/page-hashes';
import { blobPrimary, expectRestoredEqual } from '../helpers/replicating';
import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';

/** Held by break50's tries (no bug of its own): tens of seconds of outages, run by `npm run test:scale`, not npm test. */
const SCALE = process.env.WALNUT_SCALE === '1';

const dir = tmpDir('walnut-hostile-first-base-outage-');
const started: NatsNode[] = [];
afterAll(() => stopNats(started));

describe.skipIf(NATS_SKIP !== null || !SCALE)(`the server down in a first base${SCALE ? '' : ' (skipped: WALNUT_SCALE=1, npm run test:scale)'}`, () => {
  for (const thread of [false, true]) {
    for (const how of ['kill', 'pause'] as const) {
      it(`${thread ? 'worker thread' : "store's loop"}: ${how} in the first base's parts, a python3 writer going on`, async () => {
        const server = await startNatsServer();
        started.push(server);
        const file = path.join(dir, `${how}-${thread}.db`);
        blobPrimary(file, 8000);
        const store = await open(file);
        const stream = `fb${how}${thread}`;
        const r = store.replicateTo({ servers: server.url, stream, thread, stopTimeoutMs: 60_000 });
        const errors: string[] = [];
        r.on('error', (e: Error) => errors.push(e.message));
        const writer = pythonSqlite(file, `
import time

for n in range(300):
    c.execute('INSERT INTO t(v) VALUES (randomblob(500))')
    time.sleep(0.005)
print(n + 1)
`);
        await until(() => r.metrics().messages >= 4, 60_000, () => r.metrics());
        expect(r.metrics().bases).toBe(0);
        if (how === 'kill') {
          await server.stop();
          await new Promise((res) => setTimeout(res, 500));
          await server.start();
        } else {
          server.pause();
          await new Promise((res) => setTimeout(res, 2500));
          server.resume();
        }
        expect((await writer).trim()).toBe('300');
        await store.commit([{ pgno: 1, data: Buffer.from((await store.snapshot().then((s) => { const p = s.readSync(1); s.release(); return p; }))) }]);
        await r.stop();
        expect(r.metrics().publishedSeq).toBe(r.metrics().exportedSeq);
        const want = await pageHashes(store);
        await store.close();
        const out = path.join(dir, `${stream}-restored.db`);
        await expectRestoredEqual(out, server.url, stream, want);
      });
    }
  }
});
