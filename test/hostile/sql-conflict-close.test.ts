// walnut/sql: an autocommit statement (run(), exec()) that another connection's commit overtakes
// while close() is beginning. Once close() began it is not run again (Database #runsAgain), and it
// rejected WALNUT_CONFLICT, OtherWriter: "nothing was written, run it again", on a database that
// was closing, where the caller's run again could only be refused WALNUT_CLOSED. Now it rejects
// WALNUT_CLOSED, reason NotRunAgain, its cause the conflict (#closedNotConflict), and nothing of
// it is written. Choreography: a python3 sqlite3 process holds WRITE with an INSERT and commits
// 200 ms after it is told "go" (sqlite-commit-later.py); in the same synchronous stretch the test
// starts a statement that computes for a good half second in SQLite's wasm (prepared first, so it
// runs within the call) and calls close(): the statement's commit finds the python3 commit after
// its snapshot (a conflict), with close() already begun.
import { execFileSync, spawn } from 'node:child_process';
import * as path from 'node:path';

import { expect, test } from 'vitest';

import { isWalnutError, openDatabase, type Database } from '../../lib/sql';
import { HELPERS } from '../helpers/children';
import { tmpDir } from '../helpers/tmp';

const sqlite = (file: string, sql: string): string => execFileSync('sqlite3', ['-cmd', '.timeout 10000', file, sql], { encoding: 'utf8' }).trim();
/** One row, after computing for a good half second or more in SQLite's wasm. */
const LONG_INSERT = 'INSERT INTO s SELECT 1 + (SELECT count(*) FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1500000) SELECT i FROM n))';

for (const verb of ['run', 'exec'] as const) {
  test(`db.${verb}() overtaken as close() begins: WALNUT_CLOSED NotRunAgain (cause: the WALNUT_CONFLICT), not WALNUT_CONFLICT; nothing of it written`, async () => {
    const file = path.join(tmpDir(), `conflict-close-${verb}.db`);
    sqlite(file, 'PRAGMA journal_mode=WAL; CREATE TABLE t(w, v); CREATE TABLE s(k INTEGER PRIMARY KEY)');
    const db: Database = await openDatabase(file, { readConnections: 0 });
    await db.prepare(LONG_INSERT); // (run() then runs it within the call)
    const holder = spawn('python3', [path.join(HELPERS, 'sqlite-commit-later.py'), file, '200', "INSERT INTO t VALUES (1, 'python3')"], { stdio: ['pipe', 'pipe', 'inherit'] });
    const exited = new Promise<void>((resolve) => holder.on('close', () => resolve()));
    try {
      await new Promise<void>((resolve) => holder.stdout!.once('data', () => resolve()));
      holder.stdin!.write('go\n');
      const outcome = (verb === 'run' ? db.run(LONG_INSERT) : db.exec(LONG_INSERT)).then(
        () => 'resolved',
        (e: unknown) => e,
      );
      const closed = db.close();
      const e = await outcome;
      await closed;
      expect(isWalnutError(e), String(e)).toBe(true);
      const err = e as { code: string; reason?: string; cause?: { code?: string; reason?: string } };
      expect([err.code, err.reason], String(e)).toEqual(['WALNUT_CLOSED', 'NotRunAgain']);
      expect([err.cause?.code, err.cause?.reason]).toEqual(['WALNUT_CONFLICT', 'OtherWriter']);
      expect((e as Error).message).toMatch(/not run again: close\(\) began/);
      expect(db.conflictRetries).toBe(0);
    } finally {
      holder.stdin!.end();
      await exited;
    }
    expect(sqlite(file, "SELECT count(*) FROM s; SELECT count(*) FROM t WHERE v = 'python3'; PRAGMA integrity_check")).toBe('0\n1\nok');
  }, 30_000);
}
