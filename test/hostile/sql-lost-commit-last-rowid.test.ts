// A statement whose commit walnut lost (another process's commit overtook it at durability:
// WALNUT_CONFLICT; or SQLite backed it out as it ran) left the connection's last_insert_rowid()
// at the rowid of the row that is not there. One caller, awaiting each call:
//   await db.run('INSERT INTO p(k) VALUES (k)');
//   await db.run('INSERT INTO ch(k, pid) VALUES (k, last_insert_rowid())');
// beside a python3 writer: when the second's commit was lost, its run again (#autocommit) read
// its own lost rowid, and ch.pid pointed at the ch row's own id (k), not at its parent; so did
// exec() run again from its first statement, and the caller's own retry after a rejection
// (busyTimeout 0: walnut/sql runs nothing again). Now the rowid is set back before any of them
// (StatementRunner.restoreRowid). p's ids start past 2^32 (FIRST_PARENT_ID) and ch's rowid is
// k, so a child pointing at itself is told apart from one pointing at its parent.
// Checked with sqlite3: every ch row's pid is the id of the p row of its k, each k at most once
// in each table, every call that resolved has both rows, integrity ok.
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

import { expect, test } from 'vitest';

import { isWalnutError, openDatabase, type Database, type DatabaseOptions } from '../../lib/sql';
import { callsBesideWriter } from '../helpers/exec-beside-writer';
import { tmpDir } from '../helpers/tmp';

const sqlite3 = (file: string, sql: string): string => execFileSync('sqlite3', ['-cmd', '.timeout 10000', file, sql], { encoding: 'utf8' }).trim();
const lines = (text: string): string[] => text.split('\n').filter((l) => l !== '');
const CHILD = 'INSERT INTO ch(k, pid) VALUES (?, last_insert_rowid())';
/** p's first id: past 2^32, so the rowid set back has a high half (the build passes an int64 as two halves). */
const FIRST_PARENT_ID = 3 * 2 ** 32 + 1_000_000;
/** How long each test's caller runs beside the writer (ms). */
const RUN_MS = 1500;

/** Runs `parentAndChild(db, k)` in a loop of one caller beside a python3 writer; checks the rows. Its runs again (conflictRetries). */
async function besideWriter(name: string, options: DatabaseOptions, parentAndChild: (db: Database, k: number) => Promise<unknown>): Promise<number> {
  const file = path.join(tmpDir(), `${name}.db`);
  // (each commit its own group commit: the child's commit can be lost alone)
  const db = await openDatabase(file, { readConnections: 0, groupCommit: { maxBatchBytes: 1024 }, ...options });
  await db.exec(`CREATE TABLE t(w, v); CREATE TABLE p(id INTEGER PRIMARY KEY, k INT); CREATE TABLE ch(k INTEGER PRIMARY KEY, pid INT); INSERT INTO p(id, k) VALUES (${FIRST_PARENT_ID - 1}, -1)`);
  const { calls, commits } = await callsBesideWriter(file, 1, RUN_MS, (_, k) => parentAndChild(db, k));
  const retries = db.conflictRetries;
  await db.close();
  const rejected = calls.filter((c) => c.result !== 'ok');
  console.log(`${name}: ${calls.length} calls, ${rejected.length} rejected, run again ${retries}, python3 commits ${commits}`);
  expect(rejected.filter((c) => !/^WALNUT_(CONFLICT|BUSY)\//.test(c.result))).toEqual([]);
  // no child pointing at anything but its own parent (at itself: pid = k)
  expect(lines(sqlite3(file, "SELECT ch.k || ': pid ' || ch.pid || ', parent of ' || ifnull(p.k, 'none') FROM ch LEFT JOIN p ON p.id = ch.pid WHERE p.k IS NOT ch.k"))).toEqual([]);
  const parents = lines(sqlite3(file, 'SELECT k FROM p WHERE k >= 0')).map(Number);
  expect(parents.length).toBe(new Set(parents).size);
  const children = new Set(lines(sqlite3(file, 'SELECT k FROM ch')).map(Number));
  expect(calls.filter(({ k, result }) => result === 'ok' && (!children.has(k) || !parents.includes(k)))).toEqual([]);
  // the other process got in between (else nothing was tested)
  expect(commits).toBeGreaterThan(0);
  expect(Number(sqlite3(file, 'SELECT count(*) FROM t'))).toBe(commits);
  expect(sqlite3(file, 'PRAGMA integrity_check')).toBe('ok');
  return retries;
}

test('run() run again after its commit was lost reads the rowid of the statement before it, not its own', async () => {
  const retries = await besideWriter('run-again', {}, async (db, k) => {
    await db.run('INSERT INTO p(k) VALUES (?)', [k]);
    await db.run(CHILD, [k]);
  });
  expect(retries).toBeGreaterThan(0);
}, 20_000);

test('exec() run again from its first statement after its commit was lost reads the rowid of the call before it', async () => {
  const retries = await besideWriter('exec-again', {}, async (db, k) => {
    await db.run('INSERT INTO p(k) VALUES (?)', [k]);
    await db.exec(`INSERT INTO ch(k, pid) VALUES (${k}, last_insert_rowid())`);
  });
  expect(retries).toBeGreaterThan(0);
}, 20_000);

test("the caller's own retry after WALNUT_CONFLICT (busyTimeout 0: nothing run again) reads the rowid of the statement before it", async () => {
  let retried = 0;
  /** Runs `call` until it does not fail WALNUT_CONFLICT / WALNUT_BUSY (nothing of it written). */
  const untilDone = async (call: () => Promise<unknown>): Promise<void> => {
    for (;;) {
      try {
        await call();
        return;
      } catch (e) {
        if (!isWalnutError(e, 'WALNUT_CONFLICT') && !isWalnutError(e, 'WALNUT_BUSY')) throw e;
        retried++;
      }
    }
  };
  await besideWriter('caller-retry', { busyTimeout: 0 }, async (db, k) => {
    await untilDone(() => db.run('INSERT INTO p(k) VALUES (?)', [k]));
    await untilDone(() => db.run(CHILD, [k]));
  });
  console.log(`caller-retry: the caller retried ${retried} times`);
  expect(retried).toBeGreaterThan(0);
}, 20_000);

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
