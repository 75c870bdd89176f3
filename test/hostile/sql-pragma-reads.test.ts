// A per-connection setting made through exec() is the writer's (README), and a read of it must
// answer the writer's value: `PRAGMA foreign_keys` and the other PRAGMA queries went to a read
// connection, which answered its own default (foreign_keys 0 right after `PRAGMA
// foreign_keys=ON`, while the writer enforced them; cache_size -2000 after -1234). And a
// setting that changes what a query answers (case_sensitive_like) was the writer's only: `'a'
// LIKE 'A'` answered 1 on a read connection after `PRAGMA case_sensitive_like=1`, 0 with
// readConnections 0. Now PRAGMA statements (and pragma_* functions) run on the writer, and once
// the writer ran case_sensitive_like every read does. Compared with better-sqlite3 (one
// connection) for readConnections 0 and 2.
import * as path from 'node:path';

import Database from 'better-sqlite3';
import { expect, test } from 'vitest';

import { openDatabase, type SqlValue } from '../../lib/sql';
import { tmpDir } from '../helpers/tmp';

const SETTINGS = ['PRAGMA foreign_keys = ON', 'PRAGMA cache_size = -1234', 'PRAGMA recursive_triggers = 1', 'PRAGMA automatic_index = 0', 'PRAGMA case_sensitive_like = 1'];
const QUERIES: [string, SqlValue[]][] = [
  ['PRAGMA foreign_keys', []],
  ['SELECT * FROM pragma_foreign_keys', []],
  ['PRAGMA main.cache_size', []],
  ['PRAGMA recursive_triggers', []],
  ['PRAGMA automatic_index', []],
  ["SELECT 'a' LIKE 'A' AS x", []],
  ['SELECT v FROM t WHERE v LIKE ? ORDER BY v', ['A%']],
];

test.each([0, 2])('per-connection settings read back as one SQLite connection answers them (readConnections %i)', async (readConnections) => {
  const db = await openDatabase(path.join(tmpDir(), `pragma-reads-${readConnections}.db`), { readConnections });
  const native = new Database(':memory:');
  try {
    for (const sql of ['CREATE TABLE t(v)', "INSERT INTO t VALUES ('Ab'), ('ab'), ('AB')"]) {
      await db.exec(sql);
      native.exec(sql);
    }
    // the reads once before the settings: read connections open and prepare them
    for (const [sql, params] of QUERIES) await db.all(sql, params);
    for (const sql of SETTINGS) {
      await db.exec(sql);
      native.exec(sql);
    }
    const got: unknown[] = [];
    const expected: unknown[] = [];
    for (const [sql, params] of QUERIES) {
      // concurrently too: each may go to another read connection
      got.push([sql, ...(await Promise.all([db.all(sql, params), db.get(sql, params)]))]);
      expected.push([sql, native.prepare(sql).all(params), native.prepare(sql).get(params)]);
    }
    expect(got).toEqual(expected);
  } finally {
    native.close();
    await db.close();
  }
});
