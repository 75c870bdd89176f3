// restore() over a database that a rollback-journal writer left a hot -journal beside (killed
// mid-transaction, its changed pages already in the file): the restore renamed its file over
// the database and left the -journal there, so the next SQLite connection played the old
// database's journal back over the restored file (it ties no journal to its database): the
// restored rows were gone, integrity_check failed ("Rowid out of order", a freelist page
// 218103808) and the file grew back to the old database's size. The same for a database that
// is gone but whose hot -journal is still there. Now the -journal is one of the companions a
// restore removes (durably, before the rename), and a missing database whose hot -journal is
// still there is refused without force (WALNUT_INVALID_ARGUMENT, reason StaleCompanion), as one
// whose -wal has frames is. (Since restore-force-hot-journal, a database with a hot -journal is
// refused even with force until SQLite has rolled it back: the force case opens it first.)
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { restore } from '../../lib/export/restore';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { streamOf } from '../helpers/export-stream';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

/** A rollback-journal database whose writer died mid-transaction: its -journal is hot. */
function killedRollbackWriter(db: string): void {
  const script = `
import sqlite3, os, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute('pragma journal_mode=delete'); c.execute('pragma cache_size=10')
c.execute('create table old(k integer primary key, v blob)')
c.execute('begin'); [c.execute('insert into old values(?, randomblob(3000))', (i,)) for i in range(300)]; c.execute('commit')
c.execute('begin'); c.execute('update old set v = randomblob(3000)')
os.kill(os.getpid(), 9)
`;
  const r = spawnSync('python3', ['-c', script, db]);
  expect(r.signal).toBe('SIGKILL');
  expect(fs.statSync(`${db}-journal`).size).toBeGreaterThan(512); // hot: the old pages of a spilled update
}

/** What SQLite (better-sqlite3) reads in `db`: integrity_check and the rows of t. */
function readBack(db: string): { check: string; rows: unknown[] } {
  const d = new Database(db);
  try {
    const check = (d.pragma('integrity_check') as { integrity_check: string }[]).map((r) => r.integrity_check).join('; ');
    return { check, rows: d.prepare('SELECT a FROM t ORDER BY a').all() };
  } finally {
    d.close();
  }
}

describe('restore beside a hot rollback journal', () => {
  it('replacing the database (force, once SQLite rolled its journal back) leaves no -journal: SQLite reads exactly the restored rows', async () => {
    const source = path.join(dir, 'source.db');
    const s = new Database(source);
    s.pragma('journal_mode = WAL');
    s.exec("CREATE TABLE t(a); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500) INSERT INTO t SELECT printf('%0200d', i) FROM n");
    s.close();
    const stream = await streamOf(source);
    const expected = readBack(source).rows;

    const target = path.join(dir, 'app.db');
    killedRollbackWriter(target);
    // (since restore-force-hot-journal: refused until SQLite has rolled that transaction back)
    await expectRejectsWalnut(restore(Buffer.from(stream), target, { force: true }), 'WALNUT_INVALID_ARGUMENT', { reason: 'HotJournal' });
    expect(fs.statSync(`${target}-journal`).size).toBeGreaterThan(512);
    const rolledBack = new Database(target);
    expect(rolledBack.prepare('SELECT count(*) AS n FROM old').get()).toEqual({ n: 300 });
    rolledBack.close();
    const r = await restore(Buffer.from(stream), target, { force: true });
    expect(r.stoppedBy).toBeNull();
    expect(fs.existsSync(`${target}-journal`)).toBe(false);
    expect(readBack(target)).toEqual({ check: 'ok', rows: expected });

    // a database that is gone, its hot -journal still there: refused without force, nothing created
    const gone = path.join(dir, 'gone.db');
    killedRollbackWriter(gone);
    fs.rmSync(gone);
    await expectRejectsWalnut(restore(Buffer.from(stream), gone), 'WALNUT_INVALID_ARGUMENT', { reason: 'StaleCompanion', path: `${fs.realpathSync(dir)}/gone.db-journal` });
    expect(fs.existsSync(gone)).toBe(false);
    await restore(Buffer.from(stream), gone, { force: true });
    expect(fs.existsSync(`${gone}-journal`)).toBe(false);
    expect(readBack(gone)).toEqual({ check: 'ok', rows: expected });

    // a -journal that is not hot (PERSIST mode's zeroed header: its first byte 0) is no reason to refuse
    const persisted = path.join(dir, 'persisted.db');
    fs.writeFileSync(`${persisted}-journal`, Buffer.alloc(512));
    await restore(Buffer.from(stream), persisted);
    expect(fs.existsSync(`${persisted}-journal`)).toBe(false);
    expect(readBack(persisted)).toEqual({ check: 'ok', rows: expected });
  }, 20_000);
});
