// db.prepare() called from inside transaction()'s fn prepares the statement through that
// transaction (which holds the writer), as better-sqlite3's db.prepare() works inside
// db.transaction() (`db.transaction(() => { const insert = db.prepare(...); ... })`): it was
// refused (WALNUT_INVALID_ARGUMENT, reason transaction: db's own verbs wait for the
// transaction), so such code moved from better-sqlite3 failed although a statement prepared
// before the transaction runs there (test/hostile/sql-statement-in-transaction). A bad SQL text
// still rejects db.prepare() (WALNUT_SQL), and the statement runs after the transaction too.
import * as path from 'node:path';

import Database from 'better-sqlite3';
import { expect, test } from 'vitest';

import { openDatabase } from '../../lib/sql';
import { tmpDir } from '../helpers/tmp';

test.each([0, 2])("db.prepare() inside transaction()'s fn prepares through the transaction, as in better-sqlite3 (readConnections %i)", async (readConnections) => {
  const db = await openDatabase(path.join(tmpDir(), `prepare-in-tx-${readConnections}.db`), { readConnections });
  const native = new Database(':memory:');
  try {
    await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v)');
    native.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v)');
    const got = await db.transaction(async () => {
      const insert = await db.prepare('INSERT INTO t(v) VALUES (?)');
      const results: unknown[] = [await insert.run(['a']), await insert.run(['b'])];
      const bad = await db.prepare('SELEC nothing').catch((e: { code?: string; sqliteCode?: number }) => [e.code, e.sqliteCode]);
      results.push(bad, await (await db.prepare('SELECT v FROM t ORDER BY id')).all());
      return results;
    });
    const expected = native.transaction(() => {
      const insert = native.prepare('INSERT INTO t(v) VALUES (?)');
      const results: unknown[] = [insert.run(['a']), insert.run(['b'])];
      results.push(['WALNUT_SQL', 1], native.prepare('SELECT v FROM t ORDER BY id').all());
      return results;
    })();
    expect(got).toEqual(expected);
    // outside the transaction, the statement runs through the database as any other
    const later = await db.transaction(async () => db.prepare('SELECT count(*) AS n FROM t'));
    expect(await later.get()).toEqual({ n: 2 });
  } finally {
    native.close();
    await db.close();
  }
});
