// exec() runs an autocommit text again from its first statement whose commit was lost
// (exec-progress.ts), unless a statement from there on may do what is the connection's and not
// the database file's (transaction control, PRAGMA, ATTACH, a TEMP object). That was told by
// words anywhere in the statement: a 'BEGIN' or 'END' in a string, CASE ... END, a trigger's
// BEGIN ... END body, a column end_at with a comment saying COMMIT: such statements were never
// run again, and beside a python3 writer 15-50% of such exec() calls rejected WALNUT_CONFLICT.
// Now SQLite's tokens are read (sql-text.ts): such calls all resolve (no conflict reaches the
// caller), every row exactly once (k is the primary key: a statement applied twice would fail
// the call on its own row), and the python3 writer's rows are all there. A text with real
// transaction control (BEGIN ... COMMIT, SAVEPOINT ... RELEASE after an autocommit INSERT) is
// still never run again past it: a call rejects only with WALNUT_CONFLICT/WALNUT_BUSY, and each
// of its rows is there at most once (exactly once for a call that resolved).
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

import { expect, test } from 'vitest';

import { openDatabase, type Database } from '../../lib/sql';
import { execBesideWriter, type ExecCall } from '../helpers/exec-beside-writer';
import { tmpDir } from '../helpers/tmp';

const sqlite3 = (file: string, sql: string): string => execFileSync('sqlite3', ['-cmd', '.timeout 10000', file, sql], { encoding: 'utf8' }).trim();

/** Texts whose keywords are not statements', each writing rows k and k + 1 (a string, a comment, names, CASE ... END). */
const WORDY = [
  (k: number): string => `INSERT INTO s(k, via) VALUES (${k}, 'BEGIN; END; COMMIT; ROLLBACK; temp'); INSERT INTO s(k, via) SELECT ${k + 1}, CASE WHEN ${k} % 2 = 0 THEN 'even' ELSE 'odd' END`,
  (k: number): string => `/* BEGIN */ INSERT INTO s(k, via) VALUES (${k}, 'end'); UPDATE s SET end_at = ${k} WHERE k = ${k}; -- COMMIT\nINSERT INTO "s"("k", [via]) VALUES (${k + 1}, 'savepoint')`,
];
/** Texts with real transaction control, each writing rows k and k + 1: never run again past it. */
const CONTROL = [
  (k: number): string => `BEGIN; INSERT INTO s(k, via) VALUES (${k}, 'tx'); INSERT INTO s(k, via) VALUES (${k + 1}, 'tx'); COMMIT`,
  (k: number): string => `INSERT INTO s(k, via) VALUES (${k}, 'sp'); SAVEPOINT p; INSERT INTO s(k, via) VALUES (${k + 1}, 'sp'); RELEASE p`,
];

/** Runs 8 callers' exec() calls of `texts` for `ms` beside a python3 writer; the outcome of each call, the writer's commits, the calls run again. */
async function besidePython(name: string, texts: ((k: number) => string)[], ms: number, tested: (db: Database, calls: ExecCall[]) => boolean): Promise<{ file: string; calls: ExecCall[]; commits: number; retries: number }> {
  const file = path.join(tmpDir(), `${name}.db`);
  const db = await openDatabase(file, { readConnections: 0 });
  await db.exec('CREATE TABLE t(w, v); CREATE TABLE s(k INTEGER PRIMARY KEY, via TEXT NOT NULL, end_at INT)');
  const { calls, commits } = await execBesideWriter(db, file, 8, ms, (caller, k) => texts[caller % texts.length]!(k), 2, (made) => tested(db, made));
  const retries = db.conflictRetries;
  await db.close();
  return { file, calls, commits, retries };
}

/** How many times each k is in s (sqlite3's reading). */
function rowCounts(file: string): Map<number, number> {
  const counts = new Map<number, number>();
  for (const line of sqlite3(file, 'SELECT k FROM s').split('\n')) if (line !== '') counts.set(Number(line), (counts.get(Number(line)) ?? 0) + 1);
  return counts;
}

test("exec() texts with BEGIN/END/COMMIT in strings, comments, names and CASE ... END run again after a lost commit: none rejects, each row once", async () => {
  const { file, calls, commits, retries } = await besidePython('exec-rerun-wordy', WORDY, 1200, (db) => db.conflictRetries > 0); // (1.2 s, was 2.5: on until a run again all the same)
  console.log(`wordy: ${calls.length} calls, ${calls.filter((c) => c.result !== 'ok').length} rejected, run again ${retries}, python3 commits ${commits}`);
  expect(calls.filter((c) => c.result !== 'ok').map((c) => `${c.k}: ${c.result}`)).toEqual([]);
  const rows = rowCounts(file);
  const wrong = calls.flatMap(({ k }) => [k, k + 1].filter((key) => rows.get(key) !== 1).map((key) => `${key}: ${rows.get(key) ?? 0} times`));
  expect(wrong).toEqual([]);
  expect(rows.size).toBe(calls.length * 2);
  // the other process got in between (else nothing was tested), and its rows are all there
  expect(commits).toBeGreaterThan(0);
  expect(retries).toBeGreaterThan(0);
  expect(Number(sqlite3(file, 'SELECT count(*) FROM t'))).toBe(commits);
  expect(sqlite3(file, 'PRAGMA integrity_check')).toBe('ok');
}, 40_000);

test('exec() texts with real transaction control (BEGIN ... COMMIT, SAVEPOINT ... RELEASE) are not run again past it: a rejected call is a conflict, no row twice', async () => {
  const { file, calls, commits } = await besidePython('exec-rerun-control', CONTROL, 1000, (_, made) => made.some((c) => c.result !== 'ok')); // (1 s, was 2: on until a rejection all the same)
  const rejected = calls.filter((c) => c.result !== 'ok');
  console.log(`control: ${calls.length} calls, ${rejected.length} rejected, python3 commits ${commits}`);
  expect(rejected.filter((c) => !/^WALNUT_(CONFLICT|BUSY)\//.test(c.result)).map((c) => `${c.k}: ${c.result}`)).toEqual([]);
  const rows = rowCounts(file);
  const wrong: string[] = [];
  for (const { k, result } of calls) {
    const [a, b] = [rows.get(k) ?? 0, rows.get(k + 1) ?? 0];
    if (result === 'ok' ? a !== 1 || b !== 1 : a > 1 || b > a) wrong.push(`${k} (${result}): ${a} and ${b} times`);
  }
  expect(wrong).toEqual([]);
  // the other process overtook some (else nothing was tested), and its rows are all there
  expect(rejected.length).toBeGreaterThan(0);
  expect(commits).toBeGreaterThan(0);
  expect(Number(sqlite3(file, 'SELECT count(*) FROM t'))).toBe(commits);
  expect(sqlite3(file, 'PRAGMA integrity_check')).toBe('ok');
}, 40_000);
