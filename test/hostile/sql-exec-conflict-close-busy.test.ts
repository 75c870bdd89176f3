// walnut/sql: a statement of db.exec() overtaken while it ran (another connection committed
// during its run) runs again after a turn of the event loop, under the write lease once due
// (Database #againInExec). When close() began during that wait it was not run again, but the
// connection's conflict signal had already been cleared for the run again: SQLite's bare
// SQLITE_BUSY was then read as WALNUT_BUSY "the database stayed busy (another connection held
// it, or commits kept failing); ... retry it", a few milliseconds into close() with a busy
// timeout of seconds (10 of 75 exec() calls beside a python3 insert loop, close() begun 0-4 ms
// after them). Now the conflict stays the statement's error and exec() rejects as run() does:
// WALNUT_CLOSED, reason NotRunAgain, cause the WALNUT_CONFLICT (sql-conflict-close), and nothing
// of it is written.
// Choreography as sql-conflict-lease-wait-close: a python3 process holds WRITE, commits 200 ms
// into the statement's run and takes WRITE again (sqlite-commit-later.py with hold); the run
// ends overtaken, its wait for the lease finds WRITE held; close() begins; python3 commits.
import { execFileSync, spawn } from 'node:child_process';
import * as path from 'node:path';

import { expect, test } from 'vitest';

import { isWalnutError, openDatabase } from '../../lib/sql';
import { HELPERS } from '../helpers/children';
import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';

const sqlite = (file: string, sql: string): string => execFileSync('sqlite3', ['-cmd', '.timeout 10000', file, sql], { encoding: 'utf8' }).trim();
/** One row, after computing for well over a second in SQLite's wasm (longer than BUSY_MS). */
const LONG_INSERT = 'INSERT INTO s SELECT 1 + (SELECT count(*) FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 4500000) SELECT i FROM n))';
/**
 * The busy timeout: shorter than the run, so its first conflict is due for the lease (its time
 * is used up), and the lease's wait for WRITE (python3 holds it) lasts this long: close() must
 * begin within it (at 300 ms a loaded run saw the wait give up first, the run again go on
 * without the lease and its commit's WRITE wait cut by close(): WriteWaitCut).
 */
const BUSY_MS = 1000;

test('an exec() statement overtaken in its run, waiting to run again when close() begins: WALNUT_CLOSED NotRunAgain (cause: the conflict), not WALNUT_BUSY', async () => {
  const file = path.join(tmpDir(), 'exec-conflict-close-busy.db');
  sqlite(file, 'PRAGMA journal_mode=WAL; CREATE TABLE t(w, v); CREATE TABLE s(k INTEGER PRIMARY KEY)');
  const db = await openDatabase(file, { busyTimeout: BUSY_MS, readConnections: 0 });
  const holder = spawn('python3', [path.join(HELPERS, 'sqlite-commit-later.py'), file, '200', "INSERT INTO t VALUES (1, 'python3')", 'hold'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => holder.on('close', () => resolve()));
  try {
    await new Promise<void>((resolve) => holder.stdout!.once('data', () => resolve()));
    holder.stdin!.write('go\n');
    const outcome = db.exec(LONG_INSERT).then(
      () => 'resolved',
      (e: unknown) => e,
    );
    // its run is over (synchronous, in wasm) and overtaken: it now waits for the lease
    await until(() => db.conflictRetries > 0, 20_000);
    const closed = db.close();
    holder.stdin!.write('commit\n'); // WRITE free: the lease is had, after close() began
    const e = await outcome;
    await closed;
    const err = e as { code?: string; reason?: string; cause?: { code?: string; reason?: string } };
    // close() cuts the lease's wait (WriteWaitCut) unless the python3 commit let WRITE go first
    // (NotRunAgain, its cause the conflict): the full suite saw the cut come first. Either is
    // WALNUT_CLOSED; what was wrong was WALNUT_BUSY "retry it" on a closing database.
    expect(isWalnutError(e)).toBe(true);
    expect(err.code, String(e)).toBe('WALNUT_CLOSED');
    expect(['NotRunAgain', 'WriteWaitCut'], String(e)).toContain(err.reason);
    if (err.reason === 'NotRunAgain') {
      expect([err.cause?.code, err.cause?.reason]).toEqual(['WALNUT_CONFLICT', 'OtherWriter']);
      expect((e as Error).message).toMatch(/not run again: close\(\) began/);
    }
  } finally {
    holder.stdin!.end();
    await exited;
  }
  expect(sqlite(file, "SELECT count(*) FROM s; SELECT count(*) FROM t WHERE v = 'python3'; PRAGMA integrity_check")).toBe('0\n2\nok');
});
