// walnut/sql's contract for exec() beside other writers (README, walnut/sql: "Retryable"):
// exec() is never run again by walnut/sql from its start (the earlier statements may have
// committed: running the text again would apply them twice), and a statement is run again only
// within busyTimeout (test/hostile/sql-exec-autocommit-retry); past it a failure reaches its caller
// (WALNUT_CONFLICT or WALNUT_BUSY, nothing of the failing statement written), and the caller's
// third call of the same SQL text after two such failures runs holding the write lease
// (Database #retriedByCaller). Checked beside a python3 sqlite3 process that holds WRITE until
// told (deterministic) and beside one that takes WRITE back to back (test/helpers/busy-writer.ts):
// no statement is applied twice, and a call that rejected applied at most its statements before
// the failing one.
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

import { expect, test } from 'vitest';

import { openDatabase } from '../../lib/sql';
import { holdWrite, startBusyWriter } from '../helpers/busy-writer';
import { tmpDir } from '../helpers/tmp';

const sqlite = (file: string, sql: string): string => execFileSync('sqlite3', ['-cmd', '.timeout 10000', file, sql], { encoding: 'utf8' }).trim();
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const outcome = (p: Promise<unknown>): Promise<string> =>
  p.then(
    () => 'ok',
    (e: { code?: string; reason?: string }) => `${e.code}/${e.reason}`,
  );

test('exec() whose commit waits out WRITE fails WALNUT_BUSY (BusyWrite) and is not run again; the third call of its text takes the lease and commits', async () => {
  const file = path.join(tmpDir(), 'exec-not-run-again.db');
  sqlite(file, 'PRAGMA journal_mode=WAL; CREATE TABLE t(w, v); CREATE TABLE s(k INTEGER PRIMARY KEY, n INTEGER NOT NULL)');
  const db = await openDatabase(file, { busyTimeout: 500 });
  const holder = await holdWrite(file);
  const sql = 'INSERT INTO s(k, n) VALUES (1, 1) ON CONFLICT(k) DO UPDATE SET n = n + 1; INSERT INTO s(k, n) VALUES (2, 1) ON CONFLICT(k) DO UPDATE SET n = n + 1';
  const outcomes: string[] = [];
  try {
    outcomes.push(await outcome(db.exec(sql)));
    outcomes.push(await outcome(db.exec(sql)));
    expect(db.conflictRetries + db.leasedRetries).toBe(0); // not run again by walnut/sql
    const third = outcome(db.exec(sql)); // waits for the lease (WRITE held by python3)
    await sleep(100);
    holder.commit();
    outcomes.push(await third);
  } finally {
    await holder.stop();
  }
  expect(outcomes).toEqual(['WALNUT_BUSY/BusyWrite', 'WALNUT_BUSY/BusyWrite', 'ok']);
  expect(db.leasedRetries).toBe(1);
  await db.close();
  expect(sqlite(file, 'SELECT group_concat(k || ":" || n) FROM (SELECT * FROM s ORDER BY k)')).toBe('1:1,2:1'); // once each
  expect(sqlite(file, 'PRAGMA integrity_check')).toBe('ok');
}, 30000);

test("exec() whose first statement's commit waits out WRITE while its second fails its own constraint fails WALNUT_BUSY (BusyWrite), as when the second succeeds, not WALNUT_CONFLICT", async () => {
  // (the second statement's constraint is not the call's: its first statement was lost, ExecProgress.failure;
  // the loss is reported as the call's later statements report it, lost-commits.ts laterStatementsFailure: it
  // was WALNUT_CONFLICT ChainBroken here and WALNUT_BUSY BusyWrite when the second statement committed)
  const file = path.join(tmpDir(), 'exec-busy-then-constraint.db');
  sqlite(file, 'PRAGMA journal_mode=WAL; CREATE TABLE t(w, v); CREATE TABLE s(k INTEGER PRIMARY KEY, n INTEGER NOT NULL); INSERT INTO s VALUES (100, 0)');
  const db = await openDatabase(file, { busyTimeout: 300 });
  const holder = await holdWrite(file);
  const outcomes: string[] = [];
  try {
    outcomes.push(await outcome(db.exec('INSERT INTO s VALUES (1, 1); INSERT INTO s VALUES (100, 1)'))); // (k 100 is there: a constraint)
    outcomes.push(await outcome(db.exec('INSERT INTO s VALUES (2, 1); INSERT INTO s VALUES (3, 1)')));
  } finally {
    await holder.stop();
  }
  expect(outcomes).toEqual(['WALNUT_BUSY/BusyWrite', 'WALNUT_BUSY/BusyWrite']);
  await db.close();
  expect(sqlite(file, 'SELECT group_concat(k || ":" || n) FROM (SELECT * FROM s ORDER BY k)')).toBe('100:0'); // nothing of either call
  expect(sqlite(file, 'PRAGMA integrity_check')).toBe('ok');
}, 30000);

test('exec() of two statements beside a back-to-back sqlite3 writer: a call that resolved applied both, one that rejected neither or its first only; none is run again', async () => {
  const file = path.join(tmpDir(), 'exec-busy-writer.db');
  sqlite(file, 'PRAGMA journal_mode=WAL; CREATE TABLE t(w, v); CREATE TABLE s(k INTEGER PRIMARY KEY, n INTEGER NOT NULL)');
  const db = await openDatabase(file, { busyTimeout: 500 });
  const writer = await startBusyWriter(file, 60);
  const outcomes: string[] = [];
  try {
    for (let call = 0; call < 8; call++) outcomes.push(await outcome(db.exec(`INSERT INTO s VALUES (${2 * call}, 1); INSERT INTO s VALUES (${2 * call + 1}, 1)`)));
  } finally {
    await writer.stop();
  }
  await db.close();
  console.log(`exec beside a back-to-back writer: ${outcomes.join(' ')}`);
  expect(outcomes.every((o) => o === 'ok' || o === 'WALNUT_BUSY/BusyWrite' || o === 'WALNUT_CONFLICT/OtherWriter' || o === 'WALNUT_CONFLICT/ChainBroken'), outcomes.join(' ')).toBe(true);
  // a call that resolved wrote both statements; one that rejected wrote neither, or its first
  // only (exec() is not one transaction: the second's commit may fail after the first's), and
  // nothing is written twice (k is the primary key: a call run again would fail on its own row)
  const rows = sqlite(file, 'SELECT group_concat(k) FROM (SELECT k FROM s ORDER BY k)').split(',').filter((k) => k !== '').map(Number);
  outcomes.forEach((o, call) => {
    const written = [2 * call, 2 * call + 1].filter((k) => rows.includes(k));
    if (o === 'ok') expect(written, `call ${call}`).toEqual([2 * call, 2 * call + 1]);
    else expect([[], [2 * call]], `call ${call}`).toContainEqual(written);
  });
  expect(sqlite(file, 'PRAGMA integrity_check')).toBe('ok');
}, 60000);
