// Interop (break50): later base images read from a snapshot of a WAL past 16,000 frames (4+
// wal-index segments) that a python3 sqlite3 writer grows meanwhile (wal_autocheckpoint off,
// transactions of 200 rows and single rows, a DELETE and regrowth), baseEveryMs 50, on the
// store's loop and the worker thread: every later base's pages come from the right frame (the
// stream restores to the primary's pages, integrity_check ok), and a replica equals the primary.
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import { openReplica } from '../../lib/replicate/replica';
import { pythonSqlite } from '../helpers/children';
import { shmMxFrame } from '../helpers/large-wal';
import { appliedOrError, NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { pageHashes } from '../helpers/page-hashes';
import { expectRestoredEqual } from '../helpers/replicating';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir('walnut-interop-later-base-large-wal-');
const started: NatsNode[] = [];
afterAll(() => stopNats(started));

describe.skipIf(NATS_SKIP !== null)('later bases over a WAL of 16,000+ frames', () => {
  for (const thread of [false, true]) {
    it(`${thread ? 'worker thread' : "store's loop"}: restore and replica equal the primary`, async () => {
      const server = await startNatsServer();
      started.push(server);
      const file = path.join(dir, `p-${thread}.db`);
      const db = new Database(file);
      db.pragma('page_size = 1024');
      db.pragma('journal_mode = WAL');
      db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)');
      db.close();
      const store = await open(file, { autoCheckpoint: false });
      const stream = `lw${thread}`;
      const r = store.replicateTo({ servers: server.url, stream, thread, baseEveryMs: 50 });
      const errors: string[] = [];
      r.on('error', (e: Error) => errors.push(e.message));
      await r.ready;
      const replica = await openReplica(path.join(dir, `r-${thread}.db`), { servers: server.url, stream });
      try {
        expect(await pythonSqlite(file, `
c.execute('PRAGMA wal_autocheckpoint=0')
for k in range(64):
    c.execute('BEGIN')
    for i in range(200):
        c.execute('INSERT INTO t(v) VALUES (randomblob(600))')
    c.execute('COMMIT')
    for i in range(20):
        c.execute('UPDATE t SET v = randomblob(600) WHERE id = ?', (1 + (k * 37 + i * 101) % (200 * (k + 1)),))
    if k == 25:
        c.execute('DELETE FROM t WHERE id % 2 = 0')
print('done')
`)).toBe('done');
        expect(shmMxFrame(file)).toBeGreaterThan(16_000);
        const snap = await store.snapshot();
        await store.commit([{ pgno: 1, data: Buffer.from(snap.readSync(1)) }]);
        snap.release();
        await r.stop();
        expect(errors).toEqual([]);
        expect(r.metrics().bases).toBeGreaterThan(3);
        await appliedOrError(replica, r.metrics().publishedSeq, r.metrics().session);
        const want = await pageHashes(store);
        expect(await pageHashes(replica.store)).toEqual(want);
        const out = path.join(dir, `${stream}-restored.db`);
        await expectRestoredEqual(out, server.url, stream, want);
        const rdb = new Database(out, { readonly: true });
        expect(rdb.pragma('integrity_check', { simple: true })).toBe('ok');
        rdb.close();
      } finally {
        await replica.close();
        await store.close();
      }
    });
  }
});
