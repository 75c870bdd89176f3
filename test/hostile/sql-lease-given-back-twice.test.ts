// walnut/sql gives back the write lease it took for an overtaken write when the write settles
// (overtaken-writes.ts, store.releaseWriteLease()). Holds are counted per store, so a
// releaseWriteLease() of the user's own that had no hold of its own (a finally after a
// holdWriteLease() that failed, one release too many) gives back walnut/sql's hold instead;
// walnut/sql's own give-back then threw WALNUT_INVALID_ARGUMENT (reason lease) out of the
// transaction() whose commit was durable: a committed transaction rejected, and a caller that
// runs a failed one again applied it twice. Now the give-back of a lease already let go does
// nothing: the call resolves, the row is there once, and another process commits after it.
import { execFile, execFileSync } from 'node:child_process';
import * as path from 'node:path';

import { expect, test } from 'vitest';

import { isWalnutError, openDatabase } from '../../lib/sql';
import { tmpDir } from '../helpers/tmp';

const sqlite = (file: string, sql: string): string => execFileSync('sqlite3', ['-cmd', '.timeout 10000', file, sql], { encoding: 'utf8' }).trim();
/** A sqlite3 commit that does not block this event loop (the committer lets WRITE go in a later turn). */
const sqliteAsync = (file: string, sql: string): Promise<void> =>
  new Promise((resolve, reject) => execFile('sqlite3', ['-cmd', '.timeout 10000', file, sql], (e) => (e ? reject(e) : resolve())));

test('a transaction() under the lease whose hold the user gave back resolves once committed (not WALNUT_INVALID_ARGUMENT)', async () => {
  const file = path.join(tmpDir(), 'given-back.db');
  const db = await openDatabase(file, { busyTimeout: 2000 });
  try {
    await db.exec('CREATE TABLE c(id INTEGER PRIMARY KEY, n INTEGER NOT NULL); INSERT INTO c VALUES (1, 0); CREATE TABLE o(x)');
    // two transaction() calls of one function text overtaken by a sqlite3 commit: the next call
    // of that text takes the lease (conflicts are counted per source text: database.ts)
    let runs = 0;
    const body = (overtake: boolean) => async (tx: Parameters<Parameters<typeof db.transaction>[0]>[0]) => {
      runs++;
      await tx.get('SELECT n FROM c');
      if (overtake) await sqliteAsync(file, 'INSERT INTO o VALUES (1)');
      await tx.run('UPDATE c SET n = n + 1');
      if (!overtake) db.store.releaseWriteLease(); // one release too many (the user holds none): it gives back walnut/sql's
      return 'done';
    };
    for (let i = 0; i < 2; i++) {
      await expect(db.transaction(body(true))).rejects.toSatisfy((e: unknown) => isWalnutError(e, 'WALNUT_CONFLICT'));
    }
    const result = await db.transaction(body(false));
    expect(result).toBe('done');
    expect(runs).toBe(3);
    expect(db.leasedRetries).toBe(1);
    await db.run('INSERT INTO o VALUES (2)');
  } finally {
    await db.close();
  }
  expect(sqlite(file, 'SELECT n FROM c')).toBe('1');
  sqlite(file, 'INSERT INTO o VALUES (3)'); // nothing left locked
  expect(sqlite(file, 'SELECT count(*) FROM o')).toBe('4');
  expect(sqlite(file, 'PRAGMA integrity_check')).toBe('ok');
}, 30000);
