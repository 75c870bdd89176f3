// One database file reached by more than one name, and a companion's name taken over under an
// open connection, in one process. The -wal and -shm are found by the database's real path, so:
//  - a hard link (or the file renamed while open) is another WAL and wal-index for the same pages:
//    an open under a second name while the first is in use is refused (WALNUT_CANTOPEN reason
//    HardLink) and creates nothing beside it; once the first name's connections have closed,
//    the second name opens. Before, both opened: the commits through the link went into its own
//    -wal, invisible to sqlite3 reading the first name, and both checkpointed into the one file.
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
import { expectRejectsWalnut } from '../helpers/expect-error';
import { expectNoUnhandledRejections } from '../helpers/outcomes';
import { expectSqliteUnlocked, sqliteIntegrity, sqliteRowCount } from '../helpers/sqlite-db';
import { insertSrcRowsSql, newSrcDatabase } from '../helpers/src-rows';
import { tmpDir } from '../helpers/tmp';

expectNoUnhandledRejections();

const dir = tmpDir();
let n = 0;
const companions = (db: string): string[] => ['-wal', '-shm'].filter((s) => fs.existsSync(db + s));

const newDatabase = (): Promise<string> => newSrcDatabase(path.join(dir, `names-${n++}.db`));
const insertSql = insertSrcRowsSql;

it('a hard link to a database open in this process is refused (HardLink) and creates nothing; after the first name closes it opens, every row there', async () => {
  const db = await newDatabase();
  const link = path.join(dir, 'hard-link.db');
  fs.linkSync(db, link);
  const first = await openDatabase(db);
  const store = await open(db);
  await first.exec(insertSql('first', 300));
  await expectRejectsWalnut(openDatabase(link), 'WALNUT_CANTOPEN', { reason: 'HardLink' });
  await expectRejectsWalnut(open(link), 'WALNUT_CANTOPEN', { reason: 'HardLink' });
  expect(companions(link)).toEqual([]);
  await first.exec(insertSql('first-again', 300)); // the refused opens changed nothing for it
  await Promise.all([store.close(), first.close()]);
  expect(companions(db)).toEqual([]);

  const second = await openDatabase(link); // its name's turn now
  await second.exec(insertSql('link', 10));
  await second.close();
  expect(companions(link)).toEqual([]);
  expect(sqliteIntegrity(db)).toEqual(['ok']);
  expect(sqliteRowCount(db, 't')).toBe(610);
});

it('a symbolic link, ./name and the plain name are one database: all open together, the last close removes the -wal and -shm, every row there', async () => {
  const db = await newDatabase();
  const link = path.join(dir, 'soft-link.db');
  fs.symlinkSync(db, link);
  const dotted = `${path.dirname(db)}/./${path.basename(db)}`;
  const viaLink = await openDatabase(link);
  const viaDot = await openDatabase(dotted);
  const store = await open(db);
  await viaLink.exec(insertSql('link', 100));
  await viaDot.exec(insertSql('dot', 100));
  await Promise.all([store.close(), viaLink.close(), viaDot.close()]);
  expect(companions(db)).toEqual([]);
  expect(sqliteIntegrity(db)).toEqual(['ok']);
  expect(sqliteRowCount(db, 't')).toBe(200);
});

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
