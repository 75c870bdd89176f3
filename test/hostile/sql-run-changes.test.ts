// run()'s `changes` is the rows the statement itself inserted, updated or deleted, as
// better-sqlite3 reports it: 0 for a statement that changes no rows (CREATE TABLE, a SELECT, a
// PRAGMA, VACUUM). It was SQLite's sqlite3_changes() alone, which only an INSERT, UPDATE or
// DELETE sets: `run('CREATE TABLE ...')` after an insert of three rows answered changes 3, and
// a transaction's tx.run('SELECT ...') the count of the last write before it. Each statement
// runs through walnut/sql and better-sqlite3 and the results are compared.
import * as path from 'node:path';

import Database from 'better-sqlite3';
import { expect, test } from 'vitest';

import { openDatabase } from '../../lib/sql';
import { tmpDir } from '../helpers/tmp';

const STATEMENTS = [
  'CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT UNIQUE)',
  "INSERT INTO t(v) VALUES ('a'), ('b'), ('c')",
  'CREATE TABLE u(x)',
  'SELECT 1',
  "INSERT INTO t(v) VALUES ('d')",
  'PRAGMA user_version = 3',
  "UPDATE t SET v = v || '!' WHERE v <> 'd'",
  'CREATE INDEX u_x ON u(x)',
  "INSERT OR IGNORE INTO t(v) VALUES ('d')",
  'DELETE FROM t WHERE id > 2',
  'VACUUM',
  'DROP INDEX u_x',
  "INSERT INTO t(v) VALUES ('e') ON CONFLICT(v) DO NOTHING",
  'ANALYZE',
];

test('run() answers changes as better-sqlite3 does, 0 for a statement that changes no rows', async () => {
  const db = await openDatabase(path.join(tmpDir(), 'run-changes.db'));
  const native = new Database(':memory:');
  try {
    const got: unknown[] = [];
    const expected: unknown[] = [];
    for (const sql of STATEMENTS) {
      got.push([sql, (await db.run(sql)).changes]);
      expected.push([sql, native.prepare(sql).run().changes]);
    }
    // inside a transaction too (tx.run)
    await db.transaction(async (tx) => {
      got.push(['tx insert', (await tx.run("INSERT INTO t(v) VALUES ('f'), ('g')")).changes]);
      got.push(['tx select', (await tx.run('SELECT count(*) FROM t')).changes]);
      got.push(['tx create', (await tx.run('CREATE TABLE w(y)')).changes]);
    });
    native.prepare('BEGIN').run();
    expected.push(['tx insert', native.prepare("INSERT INTO t(v) VALUES ('f'), ('g')").run().changes]);
    expected.push(['tx select', native.prepare('SELECT count(*) FROM t').run().changes]);
    expected.push(['tx create', native.prepare('CREATE TABLE w(y)').run().changes]);
    native.prepare('COMMIT').run();
    expect(got).toEqual(expected);
  } finally {
    native.close();
    await db.close();
  }
});
