// A replication's stop() called during close() (right after it, as a signal handler does) waits
// until close() has settled the store's commits, and its stopTimeoutMs counts from there, as it
// does for the stop() close() makes itself: with the server answering, every commit close()
// acknowledged is in the stream, however long close() took to settle them past stopTimeoutMs.
// Its deadline ran from the call: close() alone published every commit, close() with a stop()
// beside it left out those settled after stopTimeoutMs (StopTimeout), the server healthy.
// Also walnut/sql: db.close() waits out a transaction whose fn never ends (CLOSE_WAITS_FOR_FN_MS,
// 2 s), far past stopTimeoutMs, before its store's close() settles the commits queued behind it.
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import { restoreFromNats } from '../../lib/replicate/restore-nats';
import { isWalnutError, openDatabase } from '../../lib/sql';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

if (NATS_SKIP !== null) console.warn(NATS_SKIP);

const dir = tmpDir('walnut-replicate-stop-during-close-deadline-');
const STOP_TIMEOUT_MS = 100; // far less than close() takes to settle what is queued

describe.skipIf(NATS_SKIP !== null)('stop() during close(): its deadline counts once close() has settled the commits', () => {
  let server: NatsNode;
  beforeAll(async () => {
    server = await startNatsServer();
  });
  afterAll(() => stopNats([server]));

  let n = 0;
  for (const thread of [false, true]) {
    it(`thread: ${thread}: 200 commits settled by close() one batch at a time, stop() beside it: all in the stream, no StopTimeout`, async () => {
      const file = path.join(dir, `store${n}.db`);
      const stream = `store${n++}`;
      const store = await open(file, { pageSize: 1024, groupCommit: { maxBatchBytes: 1 } }); // a batch (and sync) per commit
      await store.commit([{ pgno: 2, data: Buffer.alloc(1024, 1) }]);
      const r = store.replicateTo({ servers: server.url, stream, thread, stopTimeoutMs: STOP_TIMEOUT_MS });
      const errors: string[] = [];
      r.on('error', (e) => errors.push(String(e)));
      await r.ready;
      let acked = 0;
      const commits = Array.from({ length: 200 }, (_, i) => store.commit(Array.from({ length: 50 }, (_, k) => ({ pgno: 2 + k, data: Buffer.alloc(1024, (i % 250) + 2) }))).then(() => void acked++));
      await new Promise((resolve) => setImmediate(resolve)); // the committer took the first of them
      await Promise.all([store.close(), r.stop(), ...commits]);
      expect(acked).toBe(200);
      expect(errors).toEqual([]);
      const restored = await restoreFromNats(path.join(dir, `${stream}-restored.db`), { servers: server.url, stream });
      expect(restored.lastCommitSeq).toBe(1 + acked);
    }, 60_000);
  }

  it('walnut/sql: db.close() waits out a transaction whose fn never ends, stop() beside it: every transaction it acknowledged is in the stream', async () => {
    const file = path.join(dir, `sql${n}.db`);
    const stream = `sql${n++}`;
    const db = await openDatabase(file, { busyTimeout: 100 });
    await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)');
    const r = db.store.replicateTo({ servers: server.url, stream, thread: false, stopTimeoutMs: STOP_TIMEOUT_MS });
    const errors: string[] = [];
    r.on('error', (e) => errors.push(String(e)));
    await r.ready;
    let acked = 0;
    const stuck = db
      .transaction(async (tx) => {
        await tx.run('INSERT INTO t(v) VALUES (randomblob(3000))');
        await new Promise(() => undefined); // never ends: close() rolls it back after its wait
      })
      .then(
        () => 'committed',
        (e: unknown) => (isWalnutError(e, 'WALNUT_CLOSED') ? 'closed' : String(e)),
      );
    const queued = Array.from({ length: 20 }, () => db.run('INSERT INTO t(v) VALUES (randomblob(3000))').then(() => void acked++));
    await new Promise((resolve) => setImmediate(resolve));
    await Promise.all([db.close(), r.stop(), ...queued]);
    expect(await stuck).toBe('closed');
    expect(acked).toBe(20);
    expect(errors).toEqual([]);
    const restoredFile = path.join(dir, `${stream}-restored.db`);
    await restoreFromNats(restoredFile, { servers: server.url, stream });
    const restored = new Database(restoredFile, { readonly: true, fileMustExist: true });
    try {
      expect((restored.prepare('SELECT count(*) AS c FROM t').get() as { c: number }).c).toBe(acked);
    } finally {
      restored.close();
    }
  }, 60_000);
});
