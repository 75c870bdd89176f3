// A replication's stop() called during close() (right after it, as a signal handler does) is
// made once close() has settled the store's commits, and its stopTimeoutMs counts from there, as
// for the stop() close() makes itself: with the server answering, every commit close()
// acknowledged is in the stream however long close() took to settle them. Here walnut/sql's
// db.close() waits out a transaction whose fn never ends (CLOSE_WAITS_FOR_FN_MS, 2 s) before the
// 20 queued behind it commit. Its deadline ran from the call: those 20 were left out (StopTimeout)
// with the server healthy, where close() alone published them all. (replicate-stop-tail has
// the same race with stopTimeoutMs past close()'s settling.)
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { restoreFromNats } from '../../lib/replicate/restore-nats';
import { isWalnutError, openDatabase } from '../../lib/sql';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { sqliteRowCount } from '../helpers/sqlite-db';
import { tmpDir } from '../helpers/tmp';

if (NATS_SKIP !== null) console.warn(NATS_SKIP);

const dir = tmpDir('walnut-replicate-stop-during-close-deadline-');
// less than close() waits for the stuck transaction (2 s) before the queued ones commit, and ample
// for publishing those 20 once they have
const STOP_TIMEOUT_MS = 1000;

describe.skipIf(NATS_SKIP !== null)('stop() during close(): its deadline counts once close() has settled the commits', () => {
  let server: NatsNode;
  beforeAll(async () => {
    server = await startNatsServer();
  });
  afterAll(() => stopNats([server]));

  let n = 0;
  for (const thread of [false, true]) {
    it(`walnut/sql, thread: ${thread}: db.close() waits out a transaction whose fn never ends, stop() beside it: every transaction it acknowledged is in the stream`, async () => {
      const file = path.join(dir, `sql${n}.db`);
      const stream = `sql${n++}`;
      const db = await openDatabase(file, { busyTimeout: 100 });
      await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)');
      const r = db.store.replicateTo({ servers: server.url, stream, thread, stopTimeoutMs: STOP_TIMEOUT_MS });
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
      expect(sqliteRowCount(restoredFile, 't')).toBe(acked);
    }, 60_000);
  }
});
