// A write made through get()/all() (INSERT ... RETURNING, or any statement that changes
// something) keeps its place in call order, as run() does and as one SQLite connection
// (better-sqlite3) applies them. With read connections (the default), get()/all() of a SQL text
// seen for the first time went to a read connection to be prepared there, an await away, and
// came back to the writer when it turned out to write: queued behind the calls made after it.
// `db.all('INSERT ... RETURNING id')` then `db.run('DELETE FROM t')`, not awaited in between,
// deleted first and inserted after (the row stayed); `db.get('CREATE TABLE x ...')` then
// `db.run('INSERT INTO x ...')` failed "no such table: x". Now a statement that may write (by
// its first word, and a WITH naming INSERT/UPDATE/DELETE/REPLACE) goes to the writer at once.
import * as path from 'node:path';

import Database from 'better-sqlite3';
import { expect, test } from 'vitest';

import { openDatabase } from '../../lib/sql';
import { tmpDir } from '../helpers/tmp';

/** [verb, sql] in call order; each new SQL text (the first use of each is the case). */
const CALLS: ['run' | 'get' | 'all', string][] = [
  ['all', "INSERT INTO t(v) VALUES ('a') RETURNING id"],
  ['run', 'DELETE FROM t'],
  ['get', "INSERT INTO t(v) VALUES ('b') RETURNING id, v"],
  ['run', "UPDATE t SET v = 'b updated'"],
  ['get', 'CREATE TABLE x(a)'],
  ['run', 'INSERT INTO x VALUES (1)'],
  ['all', "WITH n(v) AS (VALUES ('c')) INSERT INTO t(v) SELECT v FROM n RETURNING v"],
  ['run', "UPDATE t SET v = v || '!' WHERE v = 'c'"],
  ['get', 'DROP TABLE x'],
  ['run', 'CREATE TABLE x(b)'],
];

test.each([0, 2])('writes through get()/all() apply in call order (readConnections %i)', async (readConnections) => {
  const db = await openDatabase(path.join(tmpDir(), `write-get-order-${readConnections}.db`), { readConnections });
  const native = new Database(':memory:');
  try {
    await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v)');
    native.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v)');
    // all made at once, none awaited before the next is made
    const calls = CALLS.map(([verb, sql]) => db[verb](sql).then((r) => r, (e: unknown) => `error: ${(e as Error).message}`));
    const got = await Promise.all(calls);
    const expected = CALLS.map(([verb, sql]) => {
      try {
        const stmt = native.prepare(sql);
        return verb === 'run' ? stmt.run() : stmt.reader ? stmt[verb]() : (stmt.run(), verb === 'get' ? undefined : []);
      } catch (e) {
        return `error: ${(e as Error).message}`;
      }
    });
    expect(got).toEqual(expected);
    expect(await db.all('SELECT * FROM t ORDER BY id')).toEqual(native.prepare('SELECT * FROM t ORDER BY id').all());
    expect(await db.all('PRAGMA table_info(x)')).toEqual(native.prepare('PRAGMA table_info(x)').all());
  } finally {
    native.close();
    await db.close();
  }
});
