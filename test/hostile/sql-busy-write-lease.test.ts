// walnut/sql beside a sqlite3 process that takes WRITE again right after each commit (a steady
// writer: WRITE is free only in short gaps). An autocommit statement's commit waits for WRITE
// as SQLite's busy handler does (sleeps growing to 100 ms), so it mostly missed the gaps and
// failed WALNUT_BUSY (reason BusyWrite) once busyTimeout had passed: the lease for overtaken
// writes, whose wait tries the lock in bursts and exists to win against such a writer, was
// taken only after conflicts, never after BusyWrite. Now such a statement runs once more under
// the lease (as one past busyTimeout after a conflict does) and commits; the other process
// goes on after it. Checked: every acknowledged statement present, integrity_check ok.
// How many commit is a rate: the writer's gaps are tens of microseconds. The lease's wait polled
// every millisecond until session 25 (1 of 8 committed beside a CI run of the suite, 8 of 8 on a
// quiet one; 0 of 8 before the lease); now it tries in bursts a few microseconds apart on the
// addon's lock lane (WalnutFile.lockWithin), which a loaded machine can still starve: the
// counts are asserted in `npm run test:scale` (WALNUT_SCALE=1) only; npm test checks that every
// call settles as promised and nothing is lost.
// It no longer guards that fix (measured 2026-12-07, the BusyWrite branch of Database #autocommit
// removed): with WALNUT_SCALE=1 it failed 1 of 4 runs, on leasedRetries only, and at least 7 of
// 8 statements committed in every run: since bf5f2ca a commit's own wait for WRITE blocks in the
// kernel after a few tries (wal-index.ts #waitForWrite) and takes the writer's gaps itself, where
// its sleeps missed them (0 of 8 without the lease when this test was written).
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

import { expect, test } from 'vitest';

import { openDatabase } from '../../lib/sql';
import { startBusyWriter } from '../helpers/busy-writer';
import { tmpDir } from '../helpers/tmp';

const sqlite = (file: string, sql: string): string => execFileSync('sqlite3', ['-cmd', '.timeout 10000', file, sql], { encoding: 'utf8' }).trim();
/** The counts (a rate: header) are asserted under WALNUT_SCALE=1 only. */
const RATES = process.env.WALNUT_SCALE === '1';

test('an autocommit statement whose commit waits past busyTimeout for WRITE beside a steady writer commits under the lease', async () => {
  const file = path.join(tmpDir(), 'busy-write.db');
  sqlite(file, 'PRAGMA journal_mode=WAL; CREATE TABLE t(w, v); CREATE TABLE s(k INTEGER PRIMARY KEY)');
  const db = await openDatabase(file, { busyTimeout: 1000 });
  // (it runs until stopped below: past the calls however long they wait)
  const writer = await startBusyWriter(file, 60);
  const outcomes: string[] = [];
  try {
    for (let k = 0; k < 8; k++) {
      try {
        await db.run('INSERT INTO s(k) VALUES (?)', [k]);
        outcomes.push('ok');
      } catch (e) {
        const { code, reason } = e as { code?: string; reason?: string };
        outcomes.push(`${code ?? String(e)}/${reason}`);
      }
    }
  } finally {
    await writer.stop();
  }
  const before = Number(sqlite(file, 'SELECT count(*) FROM t'));
  if (RATES) expect(db.leasedRetries).toBeGreaterThanOrEqual(1); // it ran under the lease (else this test proves nothing)
  await db.close();
  // (the lease's wait tries in bursts for up to busyTimeout: see the header)
  if (RATES) expect(outcomes.filter((o) => o === 'ok').length, outcomes.join(' ')).toBeGreaterThanOrEqual(7);
  expect(outcomes.every((o) => o === 'ok' || o === 'WALNUT_BUSY/BusyWrite'), outcomes.join(' ')).toBe(true);
  const acknowledged = outcomes.flatMap((o, k) => (o === 'ok' ? [k] : []));
  expect(sqlite(file, 'SELECT group_concat(k) FROM (SELECT k FROM s ORDER BY k)')).toBe(acknowledged.join(','));
  expect(before).toBeGreaterThan(0);
  sqlite(file, "INSERT INTO t VALUES (9, 'after')"); // nothing left locked
  expect(sqlite(file, 'PRAGMA integrity_check')).toBe('ok');
}, 40000);

test('a transaction() its caller runs again after WALNUT_BUSY (BusyWrite) beside a steady writer gets the lease on its third call', async () => {
  const file = path.join(tmpDir(), 'busy-write-tx.db');
  sqlite(file, 'PRAGMA journal_mode=WAL; CREATE TABLE t(w, v); CREATE TABLE c(id INTEGER PRIMARY KEY, n INTEGER NOT NULL); INSERT INTO c VALUES (1, 0)');
  const db = await openDatabase(file, { busyTimeout: 500 });
  const writer = await startBusyWriter(file, 60);
  const outcomes: string[] = [];
  try {
    for (let committed = 0; committed < 2 && outcomes.length < 12; ) {
      try {
        await db.transaction(async (tx) => void (await tx.run('UPDATE c SET n = n + 1 WHERE id = 1')));
        outcomes.push('ok');
        committed++;
      } catch (e) {
        const { code, reason } = e as { code?: string; reason?: string };
        outcomes.push(`${code ?? String(e)}/${reason}`);
      }
    }
  } finally {
    await writer.stop();
  }
  await db.close();
  expect(outcomes.every((o) => o === 'ok' || o === 'WALNUT_BUSY/BusyWrite' || o === 'WALNUT_CONFLICT/OtherWriter'), outcomes.join(' ')).toBe(true);
  // each commit took at most two failed calls before it, and a third under the lease (one more on a loaded machine).
  // The third call after the first commit comes in the lease's pause: it failed 4 runs in 12 with 1 ok and then
  // nine conflicts, each call run without the lease, until it waited for the pause's end (sql-lease-due-in-pause)
  if (RATES) {
    expect(outcomes.filter((o) => o === 'ok').length, outcomes.join(' ')).toBe(2);
    expect(outcomes.length, outcomes.join(' ')).toBeLessThanOrEqual(8);
  }
  expect(sqlite(file, 'SELECT n FROM c')).toBe(String(outcomes.filter((o) => o === 'ok').length));
  expect(sqlite(file, 'PRAGMA integrity_check')).toBe('ok');
}, 40000);
