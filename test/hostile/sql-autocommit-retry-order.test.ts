// walnut/sql runs an autocommit statement again when another connection's commit overtook it
// (WALNUT_CONFLICT, Database #autocommit). Calls on the writer take it in call order: a
// statement run again must still come before the calls made after it, or a caller's
// INSERT-then-UPDATE (both made without awaiting the first) applies the UPDATE to nothing and
// then the INSERT, both acknowledged. Real parts: a python3 sqlite3 process commits in the
// middle of a walnut/sql statement's synchronous run (the conflict found at its own commit).
import { execFileSync, spawn } from 'node:child_process';
import * as path from 'node:path';

import { expect, test } from 'vitest';

import { openDatabase } from '../../lib/sql';
import { HELPERS } from '../helpers/children';
import { tmpDir } from '../helpers/tmp';

/** One autocommit statement whose synchronous run takes ~1 s (a recursive count adding 0). */
const SLOW_ZERO = '(WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 2000000) SELECT count(*) - 2000000 FROM r)';

test('an autocommit statement run again after a sqlite3 commit overtook it in its own run still comes before the calls made after it: INSERT then UPDATE, the UPDATE finds the row', async () => {
  const file = path.join(tmpDir(), 'retry-order.db');
  const db = await openDatabase(file);
  try {
    await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT NOT NULL); CREATE TABLE o(x)');
    // the sqlite3 commit lands 250 ms into the INSERT's synchronous run (told "go" as it begins)
    const peer = spawn('python3', [path.join(HELPERS, 'sqlite-commit-later.py'), file, '250', 'INSERT INTO o VALUES (1)'], { stdio: ['pipe', 'pipe', 'inherit'] });
    const exited = new Promise<number | null>((resolve) => peer.on('close', resolve));
    const calls = await new Promise<[Promise<unknown>, Promise<{ changes: number }>]>((resolve, reject) => {
      peer.on('close', () => reject(new Error('sqlite-commit-later.py ended before it was ready')));
      peer.stdout!.once('data', () => {
        peer.stdin!.end('go\n');
        const insert = db.run(`INSERT INTO t VALUES (1, 'inserted' || ${SLOW_ZERO})`);
        const update = db.run("UPDATE t SET v = 'updated' WHERE id = 1");
        resolve([insert, update]);
      });
    });
    const [inserted, updated] = await Promise.all(calls);
    expect(await exited).toBe(0);
    expect(db.conflictRetries).toBeGreaterThan(0); // the sqlite3 commit did overtake the INSERT
    expect(inserted).toMatchObject({ changes: 1 });
    expect(updated.changes).toBe(1); // in call order: after the INSERT
    expect(await db.all('SELECT id, v FROM t')).toEqual([{ id: 1, v: 'updated' }]);
  } finally {
    await db.close();
  }
  expect(execFileSync('sqlite3', [file, 'SELECT v FROM t; SELECT count(*) FROM o; PRAGMA integrity_check'], { encoding: 'utf8' }).trim()).toBe('updated\n1\nok');
});
