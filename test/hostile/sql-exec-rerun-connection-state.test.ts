// exec() runs an autocommit text again from its first statement whose commit was lost
// (exec-progress.ts). When statements of the call before that one stay, the text run again
// must not call last_insert_rowid(), changes() or total_changes(): their answer is what the
// connection's last statements left, and in the run again that was the lost statement itself
// or another caller's. exec("INSERT INTO p ..; INSERT INTO ch(k, pid, n) VALUES (k,
// last_insert_rowid(), changes())") beside a python3 writer, each commit its own group commit
// (so the INSERT INTO p can stay while the INSERT INTO ch is lost): 1-2 calls of about 40 per
// run resolved with a ch row pointing at its own rowid (no p row, or another call's) and n 0.
// Now such a text is not run again (the call rejects WALNUT_CONFLICT, its p row there, no ch
// row); run again from the call's first statement it still is (most calls resolve).
// Checked with sqlite3: every ch row points at its call's p row with n = 1, each row at most once.
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

import { expect, test } from 'vitest';

import { openDatabase } from '../../lib/sql';
import { execBesideWriter } from '../helpers/exec-beside-writer';
import { tmpDir } from '../helpers/tmp';

const sqlite3 = (file: string, sql: string): string => execFileSync('sqlite3', ['-cmd', '.timeout 10000', file, sql], { encoding: 'utf8' }).trim();
const lines = (text: string): string[] => text.split('\n').filter((l) => l !== '');

test("exec() is not run again from a statement reading last_insert_rowid()/changes() once statements before it stay: each child row points at its call's parent", async () => {
  const file = path.join(tmpDir(), 'exec-rerun-connection-state.db');
  // (each commit its own group commit: a call's commits can then be lost one by one)
  const db = await openDatabase(file, { readConnections: 0, groupCommit: { maxBatchBytes: 1024 } });
  await db.exec('CREATE TABLE t(w, v); CREATE TABLE p(id INTEGER PRIMARY KEY, k INT); CREATE TABLE ch(k INTEGER PRIMARY KEY, pid INT, n INT)');
  const text = (k: number): string => `INSERT INTO p(k) VALUES (${k}); INSERT INTO ch(k, pid, n) SELECT ${k}, last_insert_rowid(), changes() FROM (SELECT count(*) FROM t)`;
  const { calls, commits } = await execBesideWriter(db, file, 6, 3000, (_, k) => text(k));
  const retries = db.conflictRetries;
  await db.close();
  const rejected = calls.filter((c) => c.result !== 'ok');
  console.log(`${calls.length} calls, ${rejected.length} rejected, run again ${retries}, python3 commits ${commits}`);
  expect(rejected.filter((c) => !/^WALNUT_(CONFLICT|BUSY)\//.test(c.result))).toEqual([]);
  // no child row built on another statement's rowid
  expect(lines(sqlite3(file, "SELECT ch.k || ': pid ' || ch.pid || ', parent of ' || ifnull(p.k, 'none') || ', n ' || ch.n FROM ch LEFT JOIN p ON p.id = ch.pid WHERE p.k IS NOT ch.k OR ch.n != 1"))).toEqual([]);
  const parents = lines(sqlite3(file, 'SELECT k FROM p')).map(Number);
  const children = new Set(lines(sqlite3(file, 'SELECT k FROM ch')).map(Number));
  expect(parents.length).toBe(new Set(parents).size);
  const wrong = calls.filter(({ k, result }) => (result === 'ok' ? !children.has(k) || !parents.includes(k) : false));
  expect(wrong).toEqual([]);
  // the other process got in between (else nothing was tested), most calls ran again and resolved
  expect(retries).toBeGreaterThan(0);
  expect(rejected.length).toBeLessThan(calls.length / 2);
  expect(Number(sqlite3(file, 'SELECT count(*) FROM t'))).toBe(commits);
  expect(sqlite3(file, 'PRAGMA integrity_check')).toBe('ok');
}, 20_000);
