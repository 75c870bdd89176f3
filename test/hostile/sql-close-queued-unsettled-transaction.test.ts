// walnut/sql: db.close() while transactions called before it are still queued for the writer,
// behind a running one, and their functions never end (they await a promise nothing settles).
// close() waited 2 s (at least busyTimeout) for the function running when it began, then rolled
// that transaction back; the next queued transaction's function then started, was never waited
// for, and close() never returned (still waiting after 15 s). Now each transaction's function
// that runs during close() gets the same wait, counted from when close() began or when the
// function started, whichever is later: both reject WALNUT_CLOSED (TransactionAbandoned),
// nothing of them is committed, and close() returns. A queued function that ends within its
// own wait (though past 2 s after close() began) still commits.
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

import { expect, test } from 'vitest';

import { openDatabase } from '../../lib/sql';
import { tmpDir } from '../helpers/tmp';

const sqlite = (file: string, sql: string): string => execFileSync('sqlite3', ['-cmd', '.timeout 10000', file, sql], { encoding: 'utf8' }).trim();
/** close()'s wait for a transaction's function, from when close() began or the function started (lib/sql/database.ts). */
const CLOSE_WAITS_FOR_FN_MS = 2000;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const outcomeOf = (p: Promise<unknown>): Promise<string> =>
  p.then(
    (v) => `resolved ${String(v)}`,
    (e: { code?: string; reason?: string }) => `${e.code} ${e.reason}`,
  );

test('close() rolls back each queued transaction whose function never ends, one after the other, and returns', async () => {
  const file = path.join(tmpDir(), 'close-queued-unsettled.db');
  const db = await openDatabase(file, { busyTimeout: 500 });
  await db.exec('CREATE TABLE t(k INTEGER PRIMARY KEY, v)');
  await db.run('INSERT INTO t VALUES (0, ?)', ['before']);
  const started: number[] = [];
  const outcomes = [1, 2].map((k) =>
    outcomeOf(
      db.transaction(async (tx) => {
        started.push(k);
        await tx.run('INSERT INTO t VALUES (?, ?)', [k, 'inside']);
        await new Promise(() => undefined); // never settles
      }),
    ),
  );
  for (let i = 0; i < 500 && started.length === 0; i++) await sleep(10);
  expect(started).toEqual([1]); // the second is queued behind the first
  const closed = db.close().then(() => 'closed');
  const first = await Promise.race([closed, sleep(15_000).then(() => 'still waiting after 15 s')]);
  expect(first).toBe('closed');
  expect(started).toEqual([1, 2]);
  expect(await Promise.all(outcomes)).toEqual(['WALNUT_CLOSED TransactionAbandoned', 'WALNUT_CLOSED TransactionAbandoned']);
  expect(sqlite(file, 'SELECT group_concat(k) FROM t; PRAGMA integrity_check;')).toBe('0\nok');
}, 30_000);

test('a queued transaction whose function ends within its own wait commits, though that is past 2 s after close() began', async () => {
  // Timed from when close() began, not by sleeps from each function's start (which left the
  // first function 0.5 s of its wait): the first ends 1 s after close() began (1 s before its
  // wait runs out), the second, started then, ends just past 2 s after close() began (~1 s
  // before its own wait, from its start, runs out).
  const file = path.join(tmpDir(), 'close-queued-settling.db');
  const db = await openDatabase(file, { busyTimeout: 500 });
  await db.exec('CREATE TABLE t(k INTEGER PRIMARY KEY, v)');
  let firstRunning = false;
  let closeBegan: number | null = null;
  let secondEnded = 0;
  const sinceCloseBegan = async (ms: number): Promise<void> => {
    while (closeBegan === null) await sleep(5);
    await sleep(closeBegan + ms - performance.now());
  };
  const first = db.transaction(async (tx) => {
    firstRunning = true;
    await tx.run('INSERT INTO t VALUES (1, ?)', ['first']);
    await sinceCloseBegan(1000);
    return 'first';
  });
  const second = db.transaction(async (tx) => {
    await tx.run('INSERT INTO t VALUES (2, ?)', ['second']);
    await sinceCloseBegan(CLOSE_WAITS_FOR_FN_MS + 50); // (a timer may fire a millisecond early)
    secondEnded = performance.now();
    return 'second';
  });
  for (let i = 0; i < 500 && !firstRunning; i++) await sleep(10);
  closeBegan = performance.now();
  await db.close();
  expect(await outcomeOf(first)).toBe('resolved first');
  expect(await outcomeOf(second)).toBe('resolved second');
  expect(secondEnded - closeBegan).toBeGreaterThan(CLOSE_WAITS_FOR_FN_MS); // the premise: past close()'s own wait
  expect(sqlite(file, 'SELECT group_concat(k) FROM t; PRAGMA integrity_check;')).toBe('1,2\nok');
}, 30_000);
