// A statement prepared with db.prepare() runs inside transaction()'s fn as part of that
// transaction, as better-sqlite3's prepared statements do inside db.transaction() (the usual
// `const insert = db.prepare(...); db.transaction(() => rows.forEach((r) => insert.run(r)))`):
// it was refused there (WALNUT_INVALID_ARGUMENT, reason transaction, db's own verbs would
// wait for the transaction). Its writes commit with the transaction and roll back with it.
import * as path from 'node:path';

import Database from 'better-sqlite3';
import { expect, test } from 'vitest';

import { openDatabase } from '../../lib/sql';
import { tmpDir } from '../helpers/tmp';

test("a prepared statement used inside transaction()'s fn is the transaction's, as in better-sqlite3", async () => {
  const db = await openDatabase(path.join(tmpDir(), 'statement-in-tx.db'));
  const native = new Database(':memory:');
  try {
    await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v)');
    native.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v)');
    const insert = await db.prepare('INSERT INTO t(v) VALUES (?)');
    const count = await db.prepare('SELECT count(*) AS n FROM t');
    const all = await db.prepare('SELECT v FROM t ORDER BY id');
    const nInsert = native.prepare('INSERT INTO t(v) VALUES (?)');
    const nCount = native.prepare('SELECT count(*) AS n FROM t');
    const got: unknown[] = [];
    const expected: unknown[] = [];
    got.push(
      await db.transaction(async () => {
        const results = [];
        for (const v of ['a', 'b']) results.push(await insert.run([v]));
        results.push(await count.get(), await all.all());
        return results;
      }),
    );
    expected.push(
      native.transaction(() => {
        const results: unknown[] = ['a', 'b'].map((v) => nInsert.run([v]));
        results.push(nCount.get(), native.prepare('SELECT v FROM t ORDER BY id').all());
        return results;
      })(),
    );
    got.push(
      await db
        .transaction(async () => {
          await insert.run(['rolled back']);
          throw new Error('undo');
        })
        .catch((e: Error) => e.message),
    );
    try {
      native.transaction(() => {
        nInsert.run(['rolled back']);
        throw new Error('undo');
      })();
    } catch (e) {
      expected.push((e as Error).message);
    }
    got.push(await all.all(), await insert.run(['after']));
    expected.push(native.prepare('SELECT v FROM t ORDER BY id').all(), nInsert.run(['after']));
    expect(got).toEqual(expected);
  } finally {
    native.close();
    await db.close();
  }
});
