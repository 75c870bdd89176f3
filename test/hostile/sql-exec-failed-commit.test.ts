// walnut/sql: an exec() whose text opens a transaction and fails before it ends (its COMMIT
// refused because another connection committed after its snapshot: WALNUT_CONFLICT) left the
// writer connection inside that transaction (SQLite keeps a transaction open when COMMIT fails
// SQLITE_BUSY). The writer serves every caller: the next caller's run() ran inside it and
// resolved, its row in no commit, and close() rolled it back: an acknowledged write lost. Now a
// failed exec() rolls back the transaction it opened itself (one opened by an earlier call, a
// BEGIN through exec(), stays the caller's to end). A python3 sqlite3 process commits while the
// exec() runs a long statement between its INSERT and its COMMIT (sqlite-commit-later.py).
import { execFileSync, spawn } from 'node:child_process';
import * as path from 'node:path';

import { expect, test } from 'vitest';

import { isWalnutError, openDatabase } from '../../lib/sql';
import { HELPERS } from '../helpers/children';
import { tmpDir } from '../helpers/tmp';

const sqlite = (file: string, sql: string): string => execFileSync('sqlite3', ['-cmd', '.timeout 10000', file, sql], { encoding: 'utf8' }).trim();
/** A statement that computes for a good half second or more, in SQLite's wasm. */
const LONG = 'WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000) SELECT count(*) FROM n';

test('an exec() whose COMMIT fails WALNUT_CONFLICT leaves no transaction open: the next caller\'s write is committed, durable, and survives close()', async () => {
  for (const readConnections of [0, 2]) {
    const file = path.join(tmpDir(), `exec-failed-commit-${readConnections}.db`);
    sqlite(file, 'PRAGMA journal_mode=WAL; CREATE TABLE t(w, v); CREATE TABLE s(k INTEGER PRIMARY KEY)');
    const db = await openDatabase(file, { readConnections });
    await db.run('INSERT INTO s VALUES (0)');
    // (python3's commit must land during LONG: on a machine so slow that it came before the
    // exec() began, that exec() commits, and the round is run again)
    let failed: unknown = null;
    for (let round = 0; round < 3 && failed === null; round++) {
      const peer = spawn('python3', [path.join(HELPERS, 'sqlite-commit-later.py'), file, '50', "INSERT INTO t VALUES (1, 'python3')"], { stdio: ['pipe', 'pipe', 'inherit'] });
      const exited = new Promise<void>((resolve) => peer.on('close', () => resolve()));
      await new Promise<void>((resolve) => peer.stdout!.once('data', () => resolve()));
      // its INSERT runs on a snapshot without python3's commit, which lands during LONG
      peer.stdin!.end('go\n');
      failed = await db.exec(`BEGIN; INSERT INTO s VALUES (1); ${LONG}; COMMIT`).then(
        () => null,
        (e: unknown) => e,
      );
      await exited;
      if (failed === null) await db.run('DELETE FROM s WHERE k = 1');
    }
    expect(isWalnutError(failed, 'WALNUT_CONFLICT'), String(failed)).toBe(true);
    expect(await db.get('SELECT count(*) AS n FROM s WHERE k = 1')).toEqual({ n: 0 }); // rolled back
    await db.run('INSERT INTO s VALUES (2)');
    expect(sqlite(file, 'SELECT group_concat(k) FROM s')).toBe('0,2'); // durable once run() resolved
    await db.close();
    expect(sqlite(file, "SELECT group_concat(k) FROM s; SELECT count(*) > 0 FROM t WHERE v = 'python3'; PRAGMA integrity_check")).toBe('0,2\n1\nok');
  }
}, 60000);
