// walnut/sql: an exec() whose text ends the transaction its caller opened (a BEGIN through an
// earlier exec()) and opens another, then fails inside that new one (`COMMIT; BEGIN; INSERT ..`
// whose INSERT breaks a constraint: the commit-and-go-on pattern of batched writers). exec()
// rolls back a transaction it opened itself when it fails (ee7fbbf), but it judged that by the
// writer's state at its start only: the writer was in the caller's transaction then, so the new
// transaction the failed exec() opened stayed open on the shared writer. The next caller's run()
// ran inside it and resolved with its row in no commit; close() rolled it back: an acknowledged
// write lost. Now the writer is looked at before each statement, and a transaction opened after
// it was seen in autocommit is the exec()'s own: rolled back, and the next run() commits.
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

import { expect, test } from 'vitest';

import { isWalnutError, openDatabase } from '../../lib/sql';
import { tmpDir } from '../helpers/tmp';

const sqlite = (file: string, sql: string): string => execFileSync('sqlite3', ['-cmd', '.timeout 10000', file, sql], { encoding: 'utf8' }).trim();

test.each([
  ['a constraint after BEGIN', 'COMMIT; BEGIN; INSERT INTO s VALUES (10); INSERT INTO s VALUES (1)'],
  ['a table that is not there, after BEGIN', 'COMMIT; BEGIN; INSERT INTO s VALUES (10); INSERT INTO nosuch VALUES (1)'],
  ['a savepoint opened after the COMMIT', 'COMMIT; SAVEPOINT sp; INSERT INTO s VALUES (10); SELECT nosuch()'],
])('a failed exec() that committed its caller\'s transaction and opened another (%s) leaves no transaction open: the next run() is durable and survives close()', async (_name, text) => {
  for (const readConnections of [0, 2]) {
    const file = path.join(tmpDir(), `exec-reopened-${readConnections}.db`);
    const db = await openDatabase(file, { readConnections });
    await db.exec('CREATE TABLE s(k INTEGER PRIMARY KEY)');
    await db.exec('BEGIN');
    await db.run('INSERT INTO s VALUES (1)');
    const failed = await db.exec(text).then(
      () => null,
      (e: unknown) => e,
    );
    expect(isWalnutError(failed, 'WALNUT_SQL'), String(failed)).toBe(true);
    // its COMMIT committed the caller's transaction; what it did after that is rolled back
    expect(await db.all('SELECT k FROM s ORDER BY k')).toEqual([{ k: 1 }]);
    await db.run('INSERT INTO s VALUES (2)');
    expect(sqlite(file, 'SELECT group_concat(k) FROM s')).toBe('1,2'); // durable once run() resolved
    await db.close();
    expect(sqlite(file, 'SELECT group_concat(k) FROM s; PRAGMA integrity_check')).toBe('1,2\nok');
  }
});

test('a failed exec() inside its caller\'s transaction that opened none leaves that transaction its caller\'s (still open, commits with its COMMIT)', async () => {
  const file = path.join(tmpDir(), 'exec-inside-callers.db');
  const db = await openDatabase(file);
  await db.exec('CREATE TABLE s(k INTEGER PRIMARY KEY)');
  await db.exec('BEGIN');
  await db.run('INSERT INTO s VALUES (1)');
  await expect(db.exec('INSERT INTO s VALUES (3); INSERT INTO s VALUES (1)')).rejects.toMatchObject({ code: 'WALNUT_SQL' });
  await db.run('INSERT INTO s VALUES (2)');
  expect(sqlite(file, 'SELECT count(*) FROM s')).toBe('0'); // nothing committed yet
  await db.exec('COMMIT');
  await db.close();
  expect(sqlite(file, 'SELECT group_concat(k) FROM s; PRAGMA integrity_check')).toBe('1,2,3\nok');
});
