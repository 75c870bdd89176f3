// Hostile (break50): base images of one page (a database walnut creates, and one SQLite made in
// WAL mode with no table), later bases after every commit (baseEveryMs 1), on both threads: a
// replica applies every commit and restoreFromNats restores, with no error anywhere.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import { openReplica } from '../../lib/replicate/replica';
import { restoreFromNats } from '../../lib/replicate/restore-nats';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { pageHashes } from '../helpers/page-hashes';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir('walnut-hostile-one-page-bases-');
const started: NatsNode[] = [];
afterAll(() => stopNats(started));

describe.skipIf(NATS_SKIP !== null)('one-page base images', () => {
  for (const kind of ['walnut', 'sqlite'] as const) {
    for (const thread of [false, true]) {
      it(`${kind}-made, ${thread ? 'worker thread' : "store's loop"}`, async () => {
        const server = await startNatsServer();
        started.push(server);
        const file = path.join(dir, `${kind}-${thread}.db`);
        if (kind === 'sqlite') {
          const db = new Database(file);
          db.pragma('journal_mode = WAL');
          db.close();
          expect(fs.statSync(file).size).toBe(4096);
        }
        const store = await open(file);
        const stream = `one${kind}${thread}`;
        const r = store.replicateTo({ servers: server.url, stream, thread, baseEveryMs: 1 });
        const errors: string[] = [];
        r.on('error', (e: Error) => errors.push(e.message));
        await r.ready;
        const replica = await openReplica(path.join(dir, `${stream}-r.db`), { servers: server.url, stream });
        replica.on('error', (e: Error) => errors.push(`replica: ${e.message}`));
        try {
          for (let i = 0; i < 20; i++) {
            const snap = await store.snapshot();
            expect(snap.dbSize).toBe(1);
            const page = Buffer.from(snap.readSync(1));
            snap.release();
            await store.commit([{ pgno: 1, data: page }]);
            await new Promise((res) => setTimeout(res, 10));
          }
          await r.stop();
          expect(r.metrics().bases).toBeGreaterThan(2);
          await replica.waitFor(r.metrics().publishedSeq, r.metrics().session);
          expect(await pageHashes(replica.store)).toEqual(await pageHashes(store));
        } finally {
          await replica.close();
          await store.close();
        }
        const out = path.join(dir, `${stream}-restored.db`);
        await restoreFromNats(out, { servers: server.url, stream });
        expect(fs.statSync(out).size).toBe(4096);
        expect(errors).toEqual([]);
      });
    }
  }
});
