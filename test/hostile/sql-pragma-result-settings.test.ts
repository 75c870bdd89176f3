// Per-connection settings other than case_sensitive_like that change what a query answers were
// still the writer's only: after exec('PRAGMA full_column_names=1; PRAGMA short_column_names=0')
// a read connection named the columns `a` where the writer (and better-sqlite3) names them
// `t.a`, and after PRAGMA reverse_unordered_selects=1 a read connection returned the rows of an
// unordered scan in the other order. As with case_sensitive_like, once the writer ran one of
// these settings every read runs there. Compared with better-sqlite3 (one connection) for
// readConnections 0 and 2.
import * as path from 'node:path';

import Database from 'better-sqlite3';
import { expect, test } from 'vitest';

import { openDatabase } from '../../lib/sql';
import { tmpDir } from '../helpers/tmp';

const SETTINGS = ['PRAGMA full_column_names = 1; PRAGMA short_column_names = 0', 'PRAGMA reverse_unordered_selects = 1'];
const QUERIES = ['SELECT a, b FROM t ORDER BY a', 'SELECT t.b FROM t ORDER BY b', 'SELECT b FROM t'];

test.each([0, 2])('column naming and scan order settings read back as one SQLite connection answers them (readConnections %i)', async (readConnections) => {
  const db = await openDatabase(path.join(tmpDir(), `pragma-result-${readConnections}.db`), { readConnections });
  const native = new Database(':memory:');
  try {
    for (const sql of ['CREATE TABLE t(a INTEGER PRIMARY KEY, b)', "INSERT INTO t(b) VALUES ('x'), ('y'), ('z')"]) {
      await db.exec(sql);
      native.exec(sql);
    }
    for (const sql of QUERIES) await db.all(sql); // read connections open and prepare them first
    for (const sql of SETTINGS) {
      await db.exec(sql);
      native.exec(sql);
    }
    const got: unknown[] = [];
    const expected: unknown[] = [];
    for (const sql of QUERIES) {
      got.push([sql, ...(await Promise.all([db.all(sql), db.get(sql)]))]);
      expected.push([sql, native.prepare(sql).all(), native.prepare(sql).get()]);
    }
    expect(got).toEqual(expected);
  } finally {
    native.close();
    await db.close();
  }
});
