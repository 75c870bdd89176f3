// verify() on a database whose only lock is on the database file itself: a rollback-journal
// database (no -shm) being written by a sqlite3 process, or a WAL database that a sqlite3
// connection holds in locking_mode=EXCLUSIVE (its wal-index in heap memory, no -shm). verify
// took no lock at all there (its locks are the -shm's), so it read pages while the writer was
// rewriting them and reported a healthy database corrupt: key-order, page-range and page-count
// findings in a third of its runs beside a sqlite3 writer updating rows. It now holds SHARED
// on the database file as SQLite's readers do (a writer's commit waits for it, as for any
// reader), and a database held EXCLUSIVE by another connection is WALNUT_BUSY after the busy
// timeout, as sqlite3's own integrity_check says "database is locked".
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { verify } from '../../lib/index';
import { runPython } from '../helpers/children';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { Database } from '../helpers/sqlite';
import { sqliteIntegrity } from '../helpers/sqlite-db';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const ROWS = 20_000;

describe('verify beside a sqlite3 writer that locks only the database file', () => {
  it('rollback-journal database being updated: no finding in any run, and the writer goes on committing', async () => {
    const file = path.join(dir, 'rollback.db');
    const db = new Database(file);
    db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT, v BLOB); CREATE INDEX t_k ON t(k)');
    db.prepare(`WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < ${ROWS}) INSERT INTO t(k, v) SELECT i, randomblob(300) FROM c`).run();
    db.close();

    const writer = runPython(path.join(__dirname, '../helpers/sqlite-rollback-writer.py'), [file, '3', String(ROWS)]);
    let runs = 0;
    let done = false;
    void writer.finally(() => (done = true));
    const findings: string[] = [];
    while (!done) {
      const r = await verify(file, 1 + (runs % 5), { busyTimeout: 30_000 });
      runs++;
      if (!r.ok) findings.push(...r.issues.slice(0, 2).map((i) => `L${r.level} ${i.kind}: ${i.message}`));
      await new Promise((resolve) => setImmediate(resolve)); // the writer's exit is an I/O event
    }
    const commits = Number((await writer).trim());
    expect(findings).toEqual([]);
    expect(runs).toBeGreaterThan(5);
    expect(commits).toBeGreaterThan(5);
    expect(sqliteIntegrity(file)).toEqual(['ok']);
  });

  it('WAL database held in locking_mode=EXCLUSIVE by a sqlite3 connection: WALNUT_BUSY, nothing read', async () => {
    const file = path.join(dir, 'exclusive.db');
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE t(v)');
    db.close();
    const holder = spawn('python3', ['-c', `
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute('PRAGMA locking_mode=EXCLUSIVE')
c.execute('PRAGMA wal_autocheckpoint=0')
for i in range(20): c.execute('INSERT INTO t VALUES (randomblob(2000))')
print('ready', flush=True)
sys.stdin.read()
`, file], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve, reject) => {
        holder.stdout.once('data', () => resolve());
        holder.once('exit', (code) => reject(new Error(`holder exited ${code}`)));
      });
      await expectRejectsWalnut(verify(file, 5, { busyTimeout: 300 }), 'WALNUT_BUSY');
    } finally {
      holder.stdin.end();
      await new Promise((resolve) => holder.once('exit', resolve));
    }
    expect((await verify(file, 5)).issues).toEqual([]);
  });
});
