// transaction() called while the writer is in a transaction its callers opened through exec()
// (BEGIN) nests as a savepoint, as better-sqlite3's transaction functions do when
// db.inTransaction: it failed WALNUT_SQL "cannot start a transaction within a transaction"
// (its BEGIN IMMEDIATE). Its work is the outer transaction's (committed by its COMMIT, undone by
// its ROLLBACK); a throw in fn undoes fn's work only. Compared with better-sqlite3.
import * as path from 'node:path';

import Database from 'better-sqlite3';
import { expect, test } from 'vitest';

import { openDatabase } from '../../lib/sql';
import { tmpDir } from '../helpers/tmp';

test('transaction() inside an exec() BEGIN nests as a savepoint, as in better-sqlite3', async () => {
  const db = await openDatabase(path.join(tmpDir(), 'tx-in-begin.db'));
  const native = new Database(':memory:');
  const outcome = (p: Promise<unknown>): Promise<unknown> => p.then((v) => ['ok', v], (e: unknown) => ['error', (e as Error).message]);
  const nativeOutcome = (fn: () => unknown): unknown => {
    try {
      return ['ok', fn()];
    } catch (e) {
      return ['error', (e as Error).message];
    }
  };
  try {
    const got: unknown[] = [];
    const expected: unknown[] = [];
    await db.exec('CREATE TABLE t(v)');
    native.exec('CREATE TABLE t(v)');
    for (const end of ['COMMIT', 'ROLLBACK']) {
      await db.exec(`BEGIN; INSERT INTO t VALUES ('outer ${end}')`);
      native.exec(`BEGIN; INSERT INTO t VALUES ('outer ${end}')`);
      got.push(await outcome(db.transaction(async (tx) => (await tx.run(`INSERT INTO t VALUES ('kept ${end}')`)).changes)));
      expected.push(nativeOutcome(() => native.transaction(() => native.prepare(`INSERT INTO t VALUES ('kept ${end}')`).run().changes)()));
      got.push(
        await outcome(
          db.transaction(async (tx) => {
            await tx.run(`INSERT INTO t VALUES ('undone ${end}')`);
            throw new Error('fn threw');
          }),
        ),
      );
      expected.push(
        nativeOutcome(() =>
          native.transaction(() => {
            native.prepare(`INSERT INTO t VALUES ('undone ${end}')`).run();
            throw new Error('fn threw');
          })(),
        ),
      );
      got.push(await db.all('SELECT v FROM t ORDER BY rowid'));
      expected.push(native.prepare('SELECT v FROM t ORDER BY rowid').all());
      await db.exec(end);
      native.exec(end);
      got.push(await db.all('SELECT v FROM t ORDER BY rowid'));
      expected.push(native.prepare('SELECT v FROM t ORDER BY rowid').all());
    }
    expect(got).toEqual(expected);
  } finally {
    native.close();
    await db.close();
  }
});
