// One database file reached by more than one name, and a companion's name taken over under an
// open connection, in one process. The -wal and -shm are found by the database's real path, so:
//  - a symbolic link and ./a.db vs a.db resolve to the same real path: the same WAL, allowed.
//  - the -shm replaced by a directory under the last connection: its close() removes what it
//    can and still closes every descriptor. Before, rm's raw ERR_FS_EISDIR escaped close() and
//    the database file's SHARED and EXCLUSIVE stayed held: sqlite3 got "database is locked".
// Afterwards sqlite3 finds the database whole with every acknowledged row and no lock left.
import * as fs from 'node:fs';
import * as path from 'node:path';

import { expect, it } from 'vitest';

import { open } from '../../lib';
import { openDatabase } from '../../lib/sql';
import { expectNoUnhandledRejections } from '../helpers/outcomes';
import { expectSqliteUnlocked, sqliteIntegrity, sqliteRowCount } from '../helpers/sqlite-db';
import { tmpDir } from '../helpers/tmp';

expectNoUnhandledRejections();

const dir = tmpDir();
let n = 0;
const companions = (db: string): string[] => ['-wal', '-shm'].filter((s) => fs.existsSync(db + s));

/** A new database with table t(src, i), created by walnut/sql (and closed: no -wal left). */
async function newDatabase(): Promise<string> {
  const db = path.join(dir, `names-${n++}.db`);
  const d = await openDatabase(db);
  await d.exec('CREATE TABLE t(src TEXT, i INTEGER)');
  await d.close();
  return db;
}

const insertSql = (src: string, rows: number): string =>
  `WITH RECURSIVE s(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM s WHERE v < ${rows}) INSERT INTO t(src, i) SELECT '${src}', v FROM s`;

it('the -shm replaced by a directory under two connections closing at once: both closes resolve, no lock left, every row there', async () => {
  const db = await newDatabase();
  const d = await openDatabase(db);
  const store = await open(db);
  await d.exec(insertSql('sql', 300));
  fs.rmSync(`${db}-shm`);
  fs.mkdirSync(`${db}-shm`);
  await Promise.all([d.close(), store.close()]);
  expect(fs.statSync(`${db}-shm`).isDirectory()).toBe(true); // not ours to remove
  fs.rmdirSync(`${db}-shm`);
  expectSqliteUnlocked(db);
  expect(sqliteIntegrity(db)).toEqual(['ok']);
  expect(sqliteRowCount(db, 't')).toBe(300);
});
