// walnut/sql's exec() runs every statement of its text, as sqlite3_exec() (and better-sqlite3's
// exec(), the sqlite3 shell) do, also past empty statements (`;;`, or `;` after a comment) and
// comments. exec() prepares its statements itself from the rest of the text since it waits for
// read locks as a step does (StatementRunner #prepareNext, test/hostile/sql-open-read-locks-busy);
// this checks that walk against better-sqlite3 (it passed with wa-sqlite's statements() too:
// SQLite's prepare skips empty statements itself).
import * as path from 'node:path';

import Database from 'better-sqlite3';
import { expect, test } from 'vitest';

import { openDatabase } from '../../lib/sql';
import { tmpDir } from '../helpers/tmp';

const SCRIPTS = [
  'CREATE TABLE a(x);; CREATE TABLE b(x)',
  'CREATE TABLE a(x); ; INSERT INTO a VALUES (1);;;INSERT INTO a VALUES (2)',
  'CREATE TABLE a(x); -- a comment\n; INSERT INTO a VALUES (1); /* another */ ; INSERT INTO a VALUES (2);',
];

test('exec() runs the statements after an empty statement, as better-sqlite3 does', async () => {
  for (const [i, sql] of SCRIPTS.entries()) {
    const dir = tmpDir();
    const reference = new Database(path.join(dir, `reference-${i}.db`));
    reference.exec(sql);
    const expected = reference.prepare("SELECT name, (SELECT count(*) FROM sqlite_master) AS n FROM sqlite_master WHERE type = 'table' ORDER BY name").all();
    const rows = expected.some((r) => (r as { name: string }).name === 'a') ? reference.prepare('SELECT x FROM a ORDER BY x').all() : [];
    reference.close();
    const db = await openDatabase(path.join(dir, `walnut-${i}.db`));
    await db.exec(sql);
    expect(await db.all("SELECT name, (SELECT count(*) FROM sqlite_master) AS n FROM sqlite_master WHERE type = 'table' ORDER BY name"), sql).toEqual(expected);
    expect(await db.all('SELECT x FROM a ORDER BY x'), sql).toEqual(rows);
    await db.close();
  }
});
