// A statement inside a transaction that fails as it runs with a failure of walnut's (here the
// store closed under the database: WALNUT_CLOSED behind SQLITE_IOERR_READ, on which SQLite rolls
// the whole transaction back) lost every row of the transaction. Inside a transaction the caller
// opened (run('BEGIN')) that set last_insert_rowid() back to before the BEGIN, while
// transaction() left it at the rowid of the rolled-back row (a row that is not there), as it did
// for a transaction() nested in an exec('BEGIN'). One rule now for all three (database.ts
// TransactionRowid): back to before the transaction's BEGIN. A fn that throws its own error
// rolls back leaving the rowid as SQLite leaves it, as a caller's ROLLBACK does (and as
// better-sqlite3's transaction functions do).
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

import { expect, test } from 'vitest';

import { openDatabase, type Database } from '../../lib/sql';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const BEFORE = 3 * 2 ** 32 + 7; // (past 2^32: both halves of the rowid are set back)
const LOST = 200;

type Way = 'transaction' | 'run-begin' | 'nested' | 'fn-throws' | 'run-rollback';

/**
 * A database whose writer last inserted BEFORE, then a transaction opened `way` inserting LOST
 * and then reading `other` (pages the writer never read) after the store was closed, or
 * ending by fn's throw or the caller's ROLLBACK; answers the call's outcome and the rowid after.
 */
async function rowidAfter(way: Way): Promise<{ outcome: string; rowid: unknown }> {
  const file = path.join(dir, `${way}.db`);
  execFileSync('sqlite3', [file, 'PRAGMA journal_mode=WAL; CREATE TABLE p(id INTEGER PRIMARY KEY); CREATE TABLE other(x); WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 2000) INSERT INTO other SELECT randomblob(100) FROM c']);
  const db = await openDatabase(file, { readConnections: 0 });
  try {
    expect((await db.run('INSERT INTO p(id) VALUES (?)', [BEFORE])).lastInsertRowid).toBe(BEFORE);
    const outcome = await lostTransaction(db, way).then(
      () => 'ok',
      (e: { code?: string; message?: string }) => `${e.code ?? e.message}`,
    );
    return { outcome, rowid: (await db.get('SELECT last_insert_rowid() AS id'))?.id };
  } finally {
    await db.close();
  }
}

async function lostTransaction(db: Database, way: Way): Promise<void> {
  const readAfterStoreClosed = async (read: () => Promise<unknown>): Promise<void> => {
    await db.store.close();
    await read(); // (SQLITE_IOERR_READ: SQLite rolls the transaction back)
  };
  if (way === 'run-begin' || way === 'run-rollback') {
    await db.run('BEGIN');
    await db.run('INSERT INTO p(id) VALUES (?)', [LOST]);
    if (way === 'run-rollback') return void (await db.run('ROLLBACK'));
    return readAfterStoreClosed(() => db.get('SELECT count(*) FROM other'));
  }
  if (way === 'nested') await db.exec('BEGIN');
  await db.transaction(async (tx) => {
    expect((await tx.run('INSERT INTO p(id) VALUES (?)', [LOST])).lastInsertRowid).toBe(LOST);
    if (way === 'fn-throws') throw new Error('fn threw');
    await readAfterStoreClosed(() => tx.get('SELECT count(*) FROM other'));
  });
}

test("a statement failing as it runs inside transaction(), SQLite rolling it all back: last_insert_rowid() is set back to before its BEGIN, as inside a transaction the caller opened", async () => {
  expect(await rowidAfter('transaction')).toEqual({ outcome: 'WALNUT_CLOSED', rowid: BEFORE }); // (was LOST)
  expect(await rowidAfter('run-begin')).toEqual({ outcome: 'WALNUT_CLOSED', rowid: BEFORE });
  expect(await rowidAfter('nested')).toEqual({ outcome: 'WALNUT_CLOSED', rowid: BEFORE }); // (was LOST)
});

test("a fn that throws its own error, like the caller's ROLLBACK, leaves last_insert_rowid() as SQLite leaves it", async () => {
  expect(await rowidAfter('fn-throws')).toEqual({ outcome: 'fn threw', rowid: LOST });
  expect(await rowidAfter('run-rollback')).toEqual({ outcome: 'ok', rowid: LOST });
});
