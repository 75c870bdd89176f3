// A replica whose database was removed while its position file (<db>-replica) stayed: someone
// deleted replica.db (and its -wal/-shm) to start it over, or the rename of its first base
// image was lost. openReplica took the position's state for the file's: open() made a new,
// empty database there and the commits after that state were applied onto it, so the replica
// held the last commits' pages and nothing of the base image (sqlite3 on it: "no such table"),
// without an error, lag() at the primary's commit. Now a position without its database is a
// new replica: built from the newest base image, then the log.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { open } from '../../lib/open';
import { openReplica } from '../../lib/replicate/replica';
import { appliedOrError, NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { pageHashes } from '../helpers/page-hashes';
import { tmpDir } from '../helpers/tmp';

if (NATS_SKIP !== null) console.warn(NATS_SKIP);

const dir = tmpDir();
const started: NatsNode[] = [];
afterAll(() => stopNats(started));

const sqlite3 = (db: string, sql: string): string => {
  const r = spawnSync('sqlite3', [db, sql], { encoding: 'utf8' });
  return `${r.stdout.trim()}${r.stderr.trim()}`;
};

describe.skipIf(NATS_SKIP !== null)('a replica whose database was removed, its position file kept', () => {
  it('is built anew from the newest base image, equal to the primary', async () => {
    const server = await startNatsServer();
    started.push(server);
    const primary = path.join(dir, 'p.db');
    sqlite3(primary, 'PRAGMA journal_mode=WAL; CREATE TABLE t(x); INSERT INTO t VALUES (1), (2), (3);');
    const store = await open(primary);
    const r = store.replicateTo({ servers: server.url, stream: 'removed', stopTimeoutMs: 30_000 });
    await r.ready; // its base image holds the table
    const replicaPath = path.join(dir, 'replica.db');
    const options = { servers: server.url, stream: 'removed' };
    const first = await openReplica(replicaPath, options);
    // pages past the database's end: whole frames in the log, no deltas against the base
    await store.commit([{ pgno: 4, data: Buffer.alloc(4096, 9) }]);
    await store.commit([{ pgno: 3, data: Buffer.alloc(4096, 7) }]);
    await appliedOrError(first, 2, r.metrics().session);
    await first.close();
    for (const f of ['', '-wal', '-shm']) fs.rmSync(replicaPath + f, { force: true });
    expect(fs.existsSync(`${replicaPath}-replica`)).toBe(true);
    const again = await openReplica(replicaPath, options);
    try {
      const errors: string[] = [];
      again.on('error', (e: Error) => errors.push(e.message));
      await store.commit([{ pgno: 5, data: Buffer.alloc(4096, 5) }]);
      await appliedOrError(again, 3, r.metrics().session);
      expect(errors).toEqual([]);
      expect(await pageHashes(again.store)).toEqual(await pageHashes(store));
      expect(sqlite3(replicaPath, 'SELECT count(*) FROM t;')).toBe('3');
    } finally {
      await again.close();
      await r.stop();
      await store.close();
    }
  });
});
