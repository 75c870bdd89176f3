// Hostile: another connection writes to a replica's file (sqlite3 or python3 run against the
// replica by mistake, a walnut store opened on it). SQLite took such a commit and acknowledged
// it, and the replica's next batch laid the primary's pages over it: the row sqlite3 was told
// was committed vanished without a word (and the pages it wrote that the primary never
// rewrites stayed, a database that is neither the primary's nor sqlite3's). A replica is the
// primary's copy: it holds the WAL write lock while open (as walnut/sql's holdWriteLease), so
// such a write is refused (SQLITE_BUSY, "database is locked"; WALNUT_BUSY for a store) and
// nothing acknowledged is lost; readers (sqlite3, walnut snapshots) read on.
import { execFileSync, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import { openReplica } from '../../lib/replicate/replica';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir('walnut-hostile-replica-foreign-');
const started: NatsNode[] = [];
afterAll(() => stopNats(started));

describe.skipIf(NATS_SKIP !== null)('a replica refuses other writers', () => {
  it('a python3 INSERT into the replica is refused (database is locked), not acknowledged and then overwritten by the next batch; a store opened on it gets WALNUT_BUSY; readers read; the replica equals the primary', async () => {
    const server = await startNatsServer();
    started.push(server);
    const file = path.join(dir, 'p.db');
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, w INTEGER, v BLOB)');
    db.close();
    const store = await open(file);
    const r = store.replicateTo({ servers: server.url, stream: 'foreign' });
    await r.ready;
    let last = { seq: 0, session: '' };
    r.on('published', (p) => (last = p));
    const add = async (w: number): Promise<void> => {
      const s = new Database(file);
      s.prepare('INSERT INTO t(w, v) VALUES (?, randomblob(200))').run(w); // another connection's commit: published as the store's
      s.close();
      await store.commit([]).catch(() => undefined); // nothing: only lets the follow export turn
    };
    for (let i = 0; i < 5; i++) await add(i);
    const replicaPath = path.join(dir, 'r.db');
    const replica = await openReplica(replicaPath, { servers: server.url, stream: 'foreign' });
    await r.stop();
    await replica.waitFor(last.seq, last.session);
    await new Promise((resolve) => setTimeout(resolve, 200)); // the replica idle: no batch of its own holds WRITE now

    const py = spawnSync('python3', ['-c', `
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], timeout=0.3)
try:
    c.execute("INSERT INTO t(w, v) VALUES (-1, x'00')"); c.commit(); print('committed')
except sqlite3.OperationalError as e:
    print('refused', e)
`, replicaPath], { encoding: 'utf8' });
    expect(py.stdout.trim()).toBe('refused database is locked');
    const other = await open(replicaPath, { busyTimeout: 100 });
    await expectRejectsWalnut(other.commit([{ pgno: 2, data: Buffer.alloc(other.pageSize) }]), 'WALNUT_BUSY');
    await other.close();
    // readers read
    expect(execFileSync('sqlite3', [replicaPath, 'SELECT count(*) FROM t; PRAGMA quick_check'], { encoding: 'utf8' }).trim()).toBe('5\nok');
    await replica.close();
    // the lease goes with the replica
    const after = new Database(replicaPath);
    expect(after.prepare('SELECT count(*) AS n FROM t WHERE w >= 0').get()).toEqual({ n: 5 });
    after.close();
    await store.close();
  });
});
