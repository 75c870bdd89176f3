// Parent and child rows written by one caller beside a python3 writer (callsBesideWriter), the
// pattern of the test/hostile/sql-lost-*-last-rowid tests: each call k inserts p(k) and then
// ch(k, pid) with pid = last_insert_rowid(). p's ids start past 2^32 (FIRST_PARENT_ID) and ch's
// rowid is k, so a child that read the rowid its own lost insert left (pid = k) is told apart
// from one pointing at its parent. Checked with sqlite3 once the calls are done: every ch row's
// pid is the id of the p row of its k, each k at most once in each table, every call that
// resolved has both rows, the writer's rows all there, integrity ok.
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

import { expect } from 'vitest';

import { isWalnutError, openDatabase, type Database, type DatabaseOptions } from '../../lib/sql';
import { callsBesideWriter } from './exec-beside-writer';
import { tmpDir } from './tmp';

export const sqlite3 = (file: string, sql: string): string => execFileSync('sqlite3', ['-cmd', '.timeout 10000', file, sql], { encoding: 'utf8' }).trim();
export const lines = (text: string): string[] => text.split('\n').filter((l) => l !== '');
/** The child row of call k (bound), pointing at the row inserted last on the connection. */
export const CHILD = 'INSERT INTO ch(k, pid) VALUES (?, last_insert_rowid())';
/** p's first id: past 2^32, so the rowid set back has a high half (the build passes an int64 as two halves). */
export const FIRST_PARENT_ID = 3 * 2 ** 32 + 1_000_000;
/** The tables (t is the python3 writer's), p's first row at FIRST_PARENT_ID - 1. */
export const PARENT_CHILD_SCHEMA = `CREATE TABLE t(w, v); CREATE TABLE p(id INTEGER PRIMARY KEY, k INT); CREATE TABLE ch(k INTEGER PRIMARY KEY, pid INT); INSERT INTO p(id, k) VALUES (${FIRST_PARENT_ID - 1}, -1)`;
/** How long each test's caller runs beside the writer (ms). */
const RUN_MS = 1500;

/**
 * Runs `parentAndChild(db, k)` in a loop of one caller beside a python3 writer; checks the rows
 * (header). `rejections`: the codes a call may reject with (nothing of it written). Its runs again (conflictRetries).
 */
export async function parentsAndChildrenBesideWriter(name: string, options: DatabaseOptions, parentAndChild: (db: Database, k: number) => Promise<unknown>, rejections = /^WALNUT_(CONFLICT|BUSY)\//): Promise<number> {
  const file = path.join(tmpDir(), `${name}.db`);
  // (each commit its own group commit: the child's commit can be lost alone)
  const db = await openDatabase(file, { readConnections: 0, groupCommit: { maxBatchBytes: 1024 }, ...options });
  await db.exec(PARENT_CHILD_SCHEMA);
  const { calls, commits } = await callsBesideWriter(file, 1, RUN_MS, (_, k) => parentAndChild(db, k));
  const retries = db.conflictRetries;
  await db.close();
  const rejected = calls.filter((c) => c.result !== 'ok');
  console.log(`${name}: ${calls.length} calls, ${rejected.length} rejected, run again ${retries}, python3 commits ${commits}`);
  expect(rejected.filter((c) => !rejections.test(c.result))).toEqual([]);
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

/** Runs `call` until it does not fail WALNUT_CONFLICT / WALNUT_BUSY (nothing of it written), as a caller retrying it; `retried` is told of each retry. */
export async function untilDone(call: () => Promise<unknown>, retried: () => void): Promise<void> {
  for (;;) {
    try {
      await call();
      return;
    } catch (e) {
      if (!isWalnutError(e, 'WALNUT_CONFLICT') && !isWalnutError(e, 'WALNUT_BUSY')) throw e;
      retried();
    }
  }
}
