// A statement whose commit walnut lost (another process's commit overtook it at durability:
// WALNUT_CONFLICT; or SQLite backed it out as it ran) left the connection's last_insert_rowid()
// at the rowid of the row that is not there. One caller, awaiting each call:
//   await db.run('INSERT INTO p(k) VALUES (k)');
//   await db.run('INSERT INTO ch(k, pid) VALUES (k, last_insert_rowid())');
// beside a python3 writer: when the second's commit was lost, its run again (#autocommit) read
// its own lost rowid, and ch.pid pointed at the ch row's own id (k), not at its parent; so did
// exec() run again from its first statement, and the caller's own retry after a rejection
// (busyTimeout 0: walnut/sql runs nothing again). Now the rowid is set back before any of them
// (StatementRunner.restoreRowid). The rows are checked as test/helpers/lost-rowid-beside-writer.ts
// says (a child pointing at itself is told apart from one pointing at its parent).
import * as path from 'node:path';

import { expect, test } from 'vitest';

import { openDatabase, type Database } from '../../lib/sql';
import { callsBesideWriter } from '../helpers/exec-beside-writer';
import { CHILD, lines, parentsAndChildrenBesideWriter, sqlite3, untilDone } from '../helpers/lost-rowid-beside-writer';
import { tmpDir } from '../helpers/tmp';

/** How long each test's caller runs beside the writer (ms). */
const RUN_MS = 1500;

/** Rounds beside the writer (each a new database) at most, until a commit was lost and run again (under load one round may see none). */
const MAX_ROUNDS = 5;

test('run() run again after its commit was lost reads the rowid of the statement before it, not its own', async () => {
  let retries = 0;
  for (let round = 0; round < MAX_ROUNDS && retries === 0; round++) {
    retries = await parentsAndChildrenBesideWriter(`run-again-${round}`, {}, async (db, k) => {
      await db.run('INSERT INTO p(k) VALUES (?)', [k]);
      await db.run(CHILD, [k]);
    });
  }
  expect(retries).toBeGreaterThan(0);
}, 40_000);

test('exec() run again from its first statement after its commit was lost reads the rowid of the call before it', async () => {
  let retries = 0;
  for (let round = 0; round < MAX_ROUNDS && retries === 0; round++) {
    retries = await parentsAndChildrenBesideWriter(`exec-again-${round}`, {}, async (db, k) => {
      await db.run('INSERT INTO p(k) VALUES (?)', [k]);
      await db.exec(`INSERT INTO ch(k, pid) VALUES (${k}, last_insert_rowid())`);
    });
  }
  expect(retries).toBeGreaterThan(0);
}, 40_000);

test("the caller's own retry after WALNUT_CONFLICT (busyTimeout 0: nothing run again) reads the rowid of the statement before it", async () => {
  let retried = 0;
  const count = (): void => void retried++;
  for (let round = 0; round < MAX_ROUNDS && retried === 0; round++) {
    await parentsAndChildrenBesideWriter(`caller-retry-${round}`, { busyTimeout: 0 }, async (db, k) => {
      await untilDone(() => db.run('INSERT INTO p(k) VALUES (?)', [k]), count);
      await untilDone(() => db.run(CHILD, [k]), count);
    });
  }
  console.log(`caller-retry: the caller retried ${retried} times`);
  expect(retried).toBeGreaterThan(0);
}, 40_000);

/** Beside a python3 writer, one caller's `logChanges(db, k)`: an UPDATE of group k % 3 (k % 3 + 2 rows), then log(k, changes()). */
async function changesBesideWriter(name: string, logChanges: (db: Database, k: number) => Promise<unknown>): Promise<void> {
  const file = path.join(tmpDir(), `${name}.db`);
  const db = await openDatabase(file, { readConnections: 0, groupCommit: { maxBatchBytes: 1024 } });
  await db.exec('CREATE TABLE t(w, v); CREATE TABLE u(g INT, v INT); CREATE TABLE log(k INTEGER PRIMARY KEY, n INT); INSERT INTO u VALUES (0, 0), (0, 0), (1, 0), (1, 0), (1, 0), (2, 0), (2, 0), (2, 0), (2, 0)');
  const { calls, commits } = await callsBesideWriter(file, 1, RUN_MS, (_, k) => logChanges(db, k));
  await db.close();
  const rejected = calls.filter((c) => c.result !== 'ok');
  console.log(`${name}: ${calls.length} calls, ${rejected.length} rejected, python3 commits ${commits}`);
  expect(rejected.filter((c) => !/^WALNUT_(CONFLICT|BUSY)\//.test(c.result))).toEqual([]);
  // every count logged is the UPDATE's before it (a run again read its own lost INSERT's 1)
  expect(lines(sqlite3(file, "SELECT k || ': n ' || n FROM log WHERE n != k % 3 + 2"))).toEqual([]);
  const logged = new Set(lines(sqlite3(file, 'SELECT k FROM log')).map(Number));
  expect(calls.filter(({ k, result }) => result === 'ok' && !logged.has(k))).toEqual([]);
  expect(commits).toBeGreaterThan(0);
  expect(sqlite3(file, 'PRAGMA integrity_check')).toBe('ok');
}

test('run() reading changes() is not run again after its commit was lost (its count cannot be set back): rejected WALNUT_CONFLICT instead', async () => {
  await changesBesideWriter('run-changes', async (db, k) => {
    await db.run('UPDATE u SET v = v + 1 WHERE g = ?', [k % 3]);
    await db.run('INSERT INTO log(k, n) VALUES (?, changes())', [k]);
  });
}, 20_000);

test("exec() reading changes() never logs a lost statement's count (not run again once a commit of it was lost)", async () => {
  await changesBesideWriter('exec-changes', (db, k) => db.exec(`UPDATE u SET v = v + 1 WHERE g = ${k % 3}; INSERT INTO log(k, n) SELECT ${k}, changes() FROM (SELECT count(*) FROM t)`));
}, 20_000);
