// walnut/sql: an autocommit statement overtaken while it runs (another connection committed
// during its run: the conflict is met at its commit's last check, inside the run) with its time
// used up waits for the write lease holding the writer, to run again under it (#conflictedInRun).
// When close() began during that wait, it ran again anyway once the wait ended, and committed:
// README says a statement waiting for the lease to run again when close() begins is not run
// again (a0df01c made that so for the wait outside the writer, after a commit that waited out
// WRITE; this wait, inside the run, was left out). Now it is not run again: it rejects
// WALNUT_CLOSED, reason NotRunAgain, its cause its run's error (WALNUT_CONFLICT, OtherWriter),
// saying it was not run again because close() began (it rejected that WALNUT_CONFLICT itself,
// "retry it", on a closing database: test/hostile/sql-conflict-close), and nothing of it is written. Choreography: a python3 process holds WRITE with an INSERT,
// commits 200 ms into the statement's run (about a second of SQLite in wasm) and takes WRITE
// again at once (sqlite-commit-later.py with hold); the statement's run ends overtaken, its wait for
// the lease finds WRITE held; close() begins; the python3 process commits. Its 200 ms start when
// it is told "go", in the synchronous stretch that starts the statement: counted from its
// "ready" instead, a loaded machine saw "ready" late, the commit came before the run, and the
// run was never overtaken (its WRITE wait was what failed: conflictRetries 0).
import { execFileSync, spawn } from 'node:child_process';
import * as path from 'node:path';

import { expect, test } from 'vitest';

import { isWalnutError, openDatabase } from '../../lib/sql';
import { HELPERS } from '../helpers/children';
import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';

const sqlite = (file: string, sql: string): string => execFileSync('sqlite3', ['-cmd', '.timeout 10000', file, sql], { encoding: 'utf8' }).trim();
/** One row, after computing for a second and a half or more in SQLite's wasm (longer than the busy timeout below). */
const LONG_INSERT = 'INSERT INTO s SELECT 1 + (SELECT count(*) FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 4500000) SELECT i FROM n))';

test('a statement overtaken in its run and waiting for the write lease when close() begins is not run again: it rejects WALNUT_CLOSED NotRunAgain (cause: the conflict) saying so; nothing of it is written', async () => {
  const file = path.join(tmpDir(), 'conflict-lease-wait-close.db');
  sqlite(file, 'PRAGMA journal_mode=WAL; CREATE TABLE t(w, v); CREATE TABLE s(k INTEGER PRIMARY KEY)');
  // busyTimeout shorter than the run: its first conflict is due for the lease (its time is used
  // up). 1 s, not 300 ms: the lease's wait lasts that long, and a loaded machine took longer than
  // 300 ms from the conflict to close() (the wait ended first: not the scene)
  const db = await openDatabase(file, { busyTimeout: 1000 });
  const holder = spawn('python3', [path.join(HELPERS, 'sqlite-commit-later.py'), file, '200', "INSERT INTO t VALUES (1, 'python3')", 'hold'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => holder.on('close', () => resolve()));
  try {
    await new Promise<void>((resolve) => holder.stdout!.once('data', () => resolve()));
    holder.stdin!.write('go\n');
    const outcome = db.run(LONG_INSERT).then(
      () => 'resolved',
      (e: unknown) => e,
    );
    // its run is over (synchronous, in wasm) and overtaken: it now waits for the lease
    await until(() => db.conflictRetries > 0, 20_000);
    expect(db.conflictRetries).toBe(1);
    const closed = db.close();
    holder.stdin!.write('commit\n'); // WRITE free: the lease is had, after close() began
    const e = await outcome;
    await closed;
    // close() cuts the lease's wait (WriteWaitCut) unless the python3 commit let WRITE go first:
    // then the lease is had and the statement is not run again (NotRunAgain, its cause the
    // conflict). Either way WALNUT_CLOSED, and nothing of it written (checked below); before the
    // fix it ran again and committed. One in ~5 quiet runs the cut came first.
    expect(isWalnutError(e, 'WALNUT_CLOSED') && (e.reason === 'NotRunAgain' || e.reason === 'WriteWaitCut'), String(e)).toBe(true);
    if ((e as { reason?: string }).reason === 'NotRunAgain') {
      expect(isWalnutError((e as Error).cause, 'WALNUT_CONFLICT'), String((e as Error).cause)).toBe(true);
      expect((e as Error).message).toMatch(/not run again: close\(\) began/);
    }
  } finally {
    holder.stdin!.end();
    await exited;
  }
  expect(sqlite(file, "SELECT count(*) FROM s; SELECT count(*) FROM t WHERE v = 'python3'; PRAGMA integrity_check")).toBe('0\n2\nok');
});
