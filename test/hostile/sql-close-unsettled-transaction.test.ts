// walnut/sql: db.close() while a transaction's function is running and never ends (it awaits a
// promise nothing settles: a lost callback, a request that never answers). The transaction held
// the writer connection, close() waits for the writer, so close() never returned and the
// process kept the database open for good. Now close() waits CLOSE_WAITS_FOR_FN_MS (2 s, at
// least busyTimeout) for the function, then rolls the transaction back: transaction() rejects
// WALNUT_CLOSED (reason TransactionAbandoned), nothing the function wrote is committed, the
// function's later statements are refused, and close() ends. A function that ends within the
// wait commits as before. sqlite3 then reads the file with integrity ok.
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

import { expect, test } from 'vitest';

import { isWalnutError, openDatabase, type Queryable } from '../../lib/sql';
import { tmpDir } from '../helpers/tmp';

const sqlite = (file: string, sql: string): string => execFileSync('sqlite3', ['-cmd', '.timeout 10000', file, sql], { encoding: 'utf8' }).trim();
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

test('close() rolls back a transaction whose function never ends, after waiting for it, and returns', async () => {
  const file = path.join(tmpDir(), 'close-unsettled.db');
  const db = await openDatabase(file, { busyTimeout: 500 });
  await db.exec('CREATE TABLE t(k INTEGER PRIMARY KEY, v)');
  await db.run('INSERT INTO t VALUES (1, ?)', ['before']);
  let wrote = false;
  let txOfFn: Queryable | null = null;
  const outcome = db.transaction(async (tx) => {
    txOfFn = tx;
    await tx.run('INSERT INTO t VALUES (2, ?)', ['inside']);
    wrote = true;
    await new Promise(() => undefined); // never settles
  }).then(
    () => 'committed',
    (e: unknown) => e,
  );
  for (let i = 0; i < 500 && !wrote; i++) await sleep(10);
  expect(wrote).toBe(true);
  const started = performance.now();
  const closed = db.close().then(() => 'closed');
  const first = await Promise.race([closed, sleep(15_000).then(() => 'still waiting after 15 s')]);
  expect(first).toBe('closed');
  const waited = performance.now() - started;
  expect(waited).toBeGreaterThanOrEqual(1900); // it waited for the function (2 s) before giving up on it
  const e = await outcome;
  expect(isWalnutError(e, 'WALNUT_CLOSED')).toBe(true);
  expect((e as { reason?: string }).reason).toBe('TransactionAbandoned');
  // the function goes on: what it calls now is refused, nothing reaches the file
  await expect(txOfFn!.run('INSERT INTO t VALUES (3, ?)', ['after'])).rejects.toMatchObject({ code: expect.stringMatching(/^WALNUT_/) });
  expect(sqlite(file, 'SELECT group_concat(k) FROM t; PRAGMA integrity_check;')).toBe('1\nok');
});

test('a transaction whose function ends within close()\'s wait commits, and close() returns after it', async () => {
  const file = path.join(tmpDir(), 'close-settling.db');
  const db = await openDatabase(file, { busyTimeout: 500 });
  await db.exec('CREATE TABLE t(k INTEGER PRIMARY KEY, v)');
  let wrote = false;
  const outcome = db.transaction(async (tx) => {
    await tx.run('INSERT INTO t VALUES (1, ?)', ['inside']);
    wrote = true;
    await sleep(300); // ends well within close()'s wait
    await tx.run('INSERT INTO t VALUES (2, ?)', ['inside, later']);
    return 'done';
  });
  for (let i = 0; i < 500 && !wrote; i++) await sleep(10);
  await db.close();
  await expect(outcome).resolves.toBe('done');
  expect(sqlite(file, 'SELECT group_concat(k) FROM t; PRAGMA integrity_check;')).toBe('1,2\nok');
});
