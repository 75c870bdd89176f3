// walnut/sql runs an autocommit exec() again from its first statement whose commit was lost
// (exec-progress.ts); what the caller is told must match what is in the database. Two ways it
// did not, both beside a better-sqlite3 process committing back to back (sqlite-ticker.js), a
// statement's commit lost at its durability (another process's commit came first):
//  - tables of the connection's own (a TEMP table, one of an attached ':memory:' database) keep
//    what a statement wrote when its commit of the database file is lost, and a statement may
//    write them without naming TEMP: exec("INSERT a; <slow>; INSERT INTO scratch ..; INSERT b")
//    put its scratch row there 3 times for 1 a (every round), and once the text was no longer
//    run again, once for no a (the scratch insert opens no view of the database, so nothing
//    stopped it after a was lost) while the call rejected saying the statements after did not run;
//  - a statement's own failure after an earlier statement's commit was lost was the call's:
//    exec("INSERT c; INSERT d; INSERT <duplicate key>") rejected with the constraint (the
//    statements before it stay) while c and d were lost: about 7% of such calls;
//  - run() of one statement that a TEMP trigger follows was run again once its commit was lost
//    (SQLite had committed the trigger's TEMP row): the row 2-5 times for one row of the database.
// Checked with sqlite3 after: every scratch/side row once per durable a, a call rejected with its
// constraint has c and d, each once, and a trigger's row is there at most once.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { expect, test } from 'vitest';

import { openDatabase, type Database } from '../../lib/sql';
import { startTicker } from '../helpers/ticker';
import { tmpDir } from '../helpers/tmp';

const sqlite3 = (file: string, sql: string): string => execFileSync('sqlite3', ['-cmd', '.timeout 5000', file, sql], { encoding: 'utf8' }).trim();
const outcome = (p: Promise<unknown>): Promise<string> => p.then(() => 'ok', (e: { code?: string; reason?: string }) => `${e.code}/${e.reason}`);

/** A statement that computes for some milliseconds and commits nothing: the commit before it is settled by its end. */
const SLOW = 'WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 100000) SELECT count(*) FROM c';

/**
 * How long a test's rounds go on past their 1 s while nothing was overtaken yet (a loaded
 * machine's ticker may not have got in: at 15 s, one full run beside two other builds overtook
 * nothing). A quiet machine is overtaken within the first second.
 */
const ROUNDS_BOUND_MS = 60_000;

/** Runs `rounds` while a sqlite-ticker.js process commits into `ext` (stopped once they end, at most ROUNDS_BOUND_MS); its commit count. */
async function besideTicker(file: string, rounds: () => Promise<void>): Promise<number> {
  const stopFile = `${file}.stop-ticker`;
  const ticker = await startTicker(file, ROUNDS_BOUND_MS + 1000, stopFile);
  try {
    await rounds();
  } finally {
    fs.writeFileSync(stopFile, '');
  }
  const { code, stderr } = await ticker.exited;
  expect(code, stderr).toBe(0);
  return ticker.commits;
}

/** Column x of `table` as the connection `db` sees it (its TEMP and attached tables too). */
async function xs(db: Database, table: string): Promise<string[]> {
  return (await db.all(`SELECT x FROM ${table}`)).map((r) => String(r.x));
}

/** Column x of log, read by sqlite3. */
const logOf = (file: string): string[] => sqlite3(file, 'SELECT x FROM log').split('\n');
const count = (rows: string[], x: string): number => rows.filter((r) => r === x).length;

async function closed(db: Database): Promise<void> {
  if (db.open) await db.close();
}

/** One call: its key and 'ok' or its failure (`code/reason`). */
interface Call {
  k: number;
  result: string;
}

/**
 * `callers` callers each making `call(caller, k)` in a loop (k taken in turn) for 1 s (was 1.9:
 * the guard below, not the length, makes sure something was tested), and on
 * while `overtaken` says the other process has not got in yet (at most ROUNDS_BOUND_MS); each
 * call's outcome is pushed to `calls` as it settles.
 */
async function callsBesideTicker(calls: Call[], callers: number, call: (caller: number, k: number) => Promise<unknown>, overtaken: () => boolean): Promise<void> {
  const [end, bound] = [Date.now() + 1000, Date.now() + ROUNDS_BOUND_MS];
  let next = 0;
  await Promise.all(
    Array.from({ length: callers }, async (_, caller) => {
      while (Date.now() < end || (!overtaken() && Date.now() < bound)) {
        const k = next++;
        calls.push({ k, result: await outcome(call(caller, k)) });
      }
    }),
  );
}

test('exec() on a connection with a TEMP table and an attached one: their rows once per durable statement before them, none after a lost one', async () => {
  const file = path.join(tmpDir(), 'exec-own-tables.db');
  const db = await openDatabase(file);
  const rounds: Call[] = [];
  let scratch: string[] = [];
  let side: string[] = [];
  try {
    await db.exec('CREATE TABLE ext(v); CREATE TABLE log(x)');
    await db.exec("CREATE TEMP TABLE scratch(x); ATTACH ':memory:' AS aux; CREATE TABLE aux.side(x)");
    const commits = await besideTicker(file, () =>
      callsBesideTicker(
        rounds,
        1,
        (_, k) => db.exec(`INSERT INTO log VALUES ('a${k}'); ${SLOW}; INSERT INTO scratch VALUES ('${k}'); INSERT INTO side VALUES ('${k}'); INSERT INTO log VALUES ('b${k}')`),
        () => db.conflictRetries + rounds.filter((r) => r.result !== 'ok').length > 0,
      ),
    );
    expect(commits).toBeGreaterThan(0);
    scratch = await xs(db, 'scratch');
    side = await xs(db, 'side');
  } finally {
    await closed(db);
  }
  const log = logOf(file);
  const wrong: string[] = [];
  for (const { k, result } of rounds) {
    const a = count(log, `a${k}`);
    if (a > 1 || count(log, `b${k}`) > a || (result === 'ok' && count(log, `b${k}`) !== 1)) wrong.push(`${k} (${result}): a ${a} b ${count(log, `b${k}`)} times`);
    if (count(scratch, String(k)) !== a || count(side, String(k)) !== a) wrong.push(`${k} (${result}): scratch ${count(scratch, String(k))}, side ${count(side, String(k))} times for a ${a} times`);
  }
  expect(wrong).toEqual([]);
  expect(rounds.length).toBeGreaterThan(0);
  expect(sqlite3(file, 'PRAGMA integrity_check')).toBe('ok');
});

test("exec()'s constraint failure after its earlier statements' commit was lost is not the call's: they run again, or it rejects WALNUT_CONFLICT", async () => {
  const file = path.join(tmpDir(), 'exec-constraint-after-lost.db');
  const db = await openDatabase(file);
  const calls: Call[] = [];
  try {
    await db.exec('CREATE TABLE ext(v); CREATE TABLE log(x); CREATE TABLE u(k INTEGER PRIMARY KEY); INSERT INTO u VALUES (1)');
    await besideTicker(file, () =>
      callsBesideTicker(
        calls,
        4,
        (_, k) => db.exec(`INSERT INTO log VALUES ('c${k}'); INSERT INTO log VALUES ('d${k}') RETURNING x; INSERT INTO u VALUES (1); INSERT INTO log VALUES ('e${k}')`),
        () => db.conflictRetries + calls.filter((c) => !c.result.startsWith('WALNUT_SQL')).length > 0,
      ),
    );
  } finally {
    await closed(db);
  }
  const log = logOf(file);
  const wrong: string[] = [];
  for (const { k, result } of calls) {
    if (result === 'ok' || count(log, `e${k}`) !== 0) wrong.push(`${k}: ${result}, e ${count(log, `e${k}`)} times`);
    if (result.startsWith('WALNUT_SQL') ? count(log, `c${k}`) !== 1 || count(log, `d${k}`) !== 1 : count(log, `c${k}`) > 1 || count(log, `d${k}`) > count(log, `c${k}`)) wrong.push(`${k}: ${result}, c ${count(log, `c${k}`)} d ${count(log, `d${k}`)} times`);
  }
  expect(wrong).toEqual([]);
  // the other process's commits overtook some (else nothing was tested)
  expect(db.conflictRetries + calls.filter((c) => !c.result.startsWith('WALNUT_SQL')).length).toBeGreaterThan(0);
  expect(sqlite3(file, 'PRAGMA integrity_check')).toBe('ok');
});

test('run() and exec() of one statement that a TEMP trigger follows are not run again once their commit was lost: the trigger\'s row at most once', async () => {
  const file = path.join(tmpDir(), 'run-temp-trigger.db');
  const db = await openDatabase(file);
  const calls: Call[] = [];
  let scratch: string[] = [];
  try {
    await db.exec('CREATE TABLE ext(v); CREATE TABLE log(x)');
    await db.exec('CREATE TEMP TABLE scratch(x); CREATE TEMP TRIGGER copy AFTER INSERT ON log BEGIN INSERT INTO scratch VALUES (new.x); END');
    // (a statement that computes for a while between its view and its commit: overtaken often)
    const insert = `INSERT INTO log SELECT ? WHERE (${SLOW.replace('100000', '20000')}) > 0`;
    await besideTicker(file, () =>
      callsBesideTicker(
        calls,
        4,
        (caller, k) => (caller % 2 === 0 ? db.run(insert, [`r${k}`]) : db.exec(insert.replace('?', `'r${k}'`))),
        () => db.conflictRetries + calls.filter((c) => c.result !== 'ok').length > 0,
      ),
    );
    scratch = await xs(db, 'scratch');
  } finally {
    await closed(db);
  }
  const log = logOf(file);
  const wrong: string[] = [];
  for (const { k, result } of calls) {
    const [l, s] = [count(log, `r${k}`), count(scratch, `r${k}`)];
    // (a failed call's trigger row may stay: SQLite committed it before the database's commit was lost)
    if (result === 'ok' ? l !== 1 || s !== 1 : l !== 0 || s > 1) wrong.push(`r${k} (${result}): log ${l}, scratch ${s} times`);
  }
  expect(wrong).toEqual([]);
  expect(db.conflictRetries + calls.filter((c) => c.result !== 'ok').length).toBeGreaterThan(0);
});
