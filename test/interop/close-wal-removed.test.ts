// The -wal removed by name (rm) or replaced by another file under open connections, then every
// connection closed. Each connection keeps writing and reading the WAL it opened (as SQLite's
// do); the last closer's checkpoint must copy that WAL's frames, so every acknowledged row
// reaches the database file. Before, the checkpointer's descriptors were opened later, by
// name: the open failed (WALNUT_CANTOPEN) on a removed -wal, or read the stranger's file, and
// the rows in the unlinked WAL were gone. The last close removes the -wal name only while it
// still names the connection's WAL: a file put there by someone else stays as it is.
import * as fs from 'node:fs';
import * as path from 'node:path';

import { expect, it } from 'vitest';

import { open } from '../../lib';
import { openDatabase } from '../../lib/sql';
import { expectNoUnhandledRejections } from '../helpers/outcomes';
import { expectSqliteUnlocked, sqliteIntegrity, sqliteRowCount } from '../helpers/sqlite-db';
import { insertSrcRowsSql, newSrcDatabase } from '../helpers/src-rows';
import { tmpDir } from '../helpers/tmp';

expectNoUnhandledRejections();

const dir = tmpDir();
let n = 0;
const newDatabase = (): Promise<string> => newSrcDatabase(path.join(dir, `wal-removed-${n++}.db`));

for (const lastCloser of ['store', 'sql'] as const) {
  it(`the -wal removed by name under open connections: the last close (${lastCloser}) checkpoints the WAL they wrote, every row there`, async () => {
    const db = await newDatabase();
    const d = await openDatabase(db);
    const store = await open(db);
    for (let k = 0; k < 3; k++) await d.exec(insertSrcRowsSql(`before-${k}`, 1));
    fs.rmSync(`${db}-wal`);
    await d.exec(insertSrcRowsSql('after', 1)); // acknowledged too, into the unlinked WAL
    if (lastCloser === 'store') {
      await d.close();
      await store.close();
    } else {
      await store.close();
      await d.close();
    }
    expect(fs.existsSync(`${db}-wal`)).toBe(false);
    expect(fs.existsSync(`${db}-shm`)).toBe(false);
    expectSqliteUnlocked(db);
    expect(sqliteIntegrity(db)).toEqual(['ok']);
    expect(sqliteRowCount(db, 't')).toBe(4);
  });
}

it('the -wal replaced by another file under open connections: every row reaches the database, the stranger file stays untouched', async () => {
  const db = await newDatabase();
  const d = await openDatabase(db);
  const store = await open(db);
  for (let k = 0; k < 3; k++) await d.exec(insertSrcRowsSql(`before-${k}`, 1));
  const stranger = Buffer.from('not a WAL, and not walnut\'s to remove\n');
  fs.rmSync(`${db}-wal`);
  fs.writeFileSync(`${db}-wal`, stranger);
  await d.exec(insertSrcRowsSql('after', 1));
  await Promise.all([d.close(), store.close()]);
  expect(fs.readFileSync(`${db}-wal`)).toEqual(stranger);
  expectSqliteUnlocked(db);
  expect(sqliteIntegrity(db)).toEqual(['ok']);
  expect(sqliteRowCount(db, 't')).toBe(4);
});
