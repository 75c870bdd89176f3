// A WALNUT_SQL error's sqliteCode is SQLite's extended result code, as the README says and as
// better-sqlite3's error codes name them (SQLITE_CONSTRAINT_UNIQUE, _NOTNULL, _CHECK, ...): it
// was the primary code alone (19 for every constraint), so a caller could not tell a
// duplicate key from a NOT NULL or CHECK failure without parsing the message. Each statement
// fails through walnut/sql (run, tx.run, exec, get of a RETURNING, a transaction's COMMIT) and
// better-sqlite3, and the codes are compared.
import * as path from 'node:path';

import Database from 'better-sqlite3';
import { expect, test } from 'vitest';

import { openDatabase } from '../../lib/sql';
import { WalnutError } from '../../lib/errors';
import { tmpDir } from '../helpers/tmp';

/** better-sqlite3's code names for the result codes met here. */
const CODES: Record<string, number> = {
  SQLITE_ERROR: 1,
  SQLITE_TOOBIG: 18,
  SQLITE_CONSTRAINT_CHECK: 275,
  SQLITE_CONSTRAINT_FOREIGNKEY: 787,
  SQLITE_CONSTRAINT_NOTNULL: 1299,
  SQLITE_CONSTRAINT_PRIMARYKEY: 1555,
  SQLITE_CONSTRAINT_TRIGGER: 1811,
  SQLITE_CONSTRAINT_UNIQUE: 2067,
};

const SETUP = [
  "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT UNIQUE NOT NULL CHECK (v <> 'bad'))",
  'CREATE TABLE k(a, b, PRIMARY KEY (a, b))',
  "INSERT INTO t(v) VALUES ('a')",
  'INSERT INTO k VALUES (1, 2)',
  'CREATE TABLE p(id INTEGER PRIMARY KEY)',
  'CREATE TABLE c(pid REFERENCES p(id) DEFERRABLE INITIALLY DEFERRED)',
  "CREATE TABLE g(x); CREATE TRIGGER g_no BEFORE INSERT ON g BEGIN SELECT RAISE(ABORT, 'no'); END",
];
const FAILING = [
  "INSERT INTO t(v) VALUES ('a')",
  'INSERT INTO t(v) VALUES (NULL)',
  "INSERT INTO t(v) VALUES ('bad')",
  "INSERT INTO t(id, v) VALUES (1, 'z')",
  'INSERT INTO k VALUES (1, 2)',
  'INSERT INTO g VALUES (1)',
  "UPDATE t SET v = 'bad' RETURNING id",
  'SELECT nope FROM t',
  'SELECT zeroblob(2000000000)',
];

function nativeCode(native: Database.Database, sql: string): number | string {
  try {
    native.exec(sql);
  } catch (e) {
    const code = (e as { code: string }).code;
    return CODES[code] ?? code;
  }
  return 'no error';
}

function walnutCode(e: unknown): number | string {
  if (!(e instanceof WalnutError)) return `not a WalnutError: ${String(e)}`;
  return e.code === 'WALNUT_SQL' ? (e.sqliteCode ?? 'no sqliteCode') : e.code;
}

test("WALNUT_SQL's sqliteCode is SQLite's extended result code, as better-sqlite3 reports it", async () => {
  const db = await openDatabase(path.join(tmpDir(), 'extended-codes.db'));
  const native = new Database(':memory:');
  native.pragma('foreign_keys = ON');
  await db.exec('PRAGMA foreign_keys = ON');
  try {
    for (const sql of SETUP) {
      await db.exec(sql);
      native.exec(sql);
    }
    const got: unknown[] = [];
    const expected: unknown[] = [];
    for (const sql of FAILING) {
      const want = nativeCode(native, sql);
      const verbs = sql.includes('RETURNING') || sql.startsWith('SELECT') ? ['get', 'exec', 'tx'] : ['run', 'exec', 'tx'];
      for (const verb of verbs) {
        expected.push([verb, sql, want]);
        const call =
          verb === 'exec' ? db.exec(sql) : verb === 'get' ? db.get(sql) : verb === 'run' ? db.run(sql) : db.transaction((tx) => (sql.startsWith('SELECT') || sql.includes('RETURNING') ? tx.get(sql) : tx.run(sql)) as Promise<unknown>);
        got.push([verb, sql, await call.then(() => 'no error', walnutCode)]);
      }
    }
    // a deferred foreign key fails at the COMMIT transaction() runs
    native.exec('BEGIN');
    native.exec('INSERT INTO c VALUES (7)');
    expected.push(['commit', nativeCode(native, 'COMMIT')]);
    native.exec('ROLLBACK');
    got.push(['commit', await db.transaction((tx) => tx.run('INSERT INTO c VALUES (7)')).then(() => 'no error', walnutCode)]);
    expect(got).toEqual(expected);
    // nothing of the failed statements was written
    expect(await db.all('SELECT v FROM t')).toEqual([{ v: 'a' }]);
    expect(await db.get('SELECT count(*) AS n FROM c')).toEqual({ n: 0 });
  } finally {
    native.close();
    await db.close();
  }
});
