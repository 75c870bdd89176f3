// db.get() of a statement that writes (UPDATE/INSERT ... RETURNING) outside a transaction: its
// autocommit commit comes when the statement ends, after the row get() returns. On walnut/sql
// that commit can fail (another connection committed during the statement: SQLite backs it out,
// the VFS's last check); a get() that stops at the first row and resets the statement never
// sees that failure, and acknowledges a write that was rolled back. Real parts: a python3
// sqlite3 process commits in the middle of the statement's synchronous run.
import { execFileSync, spawn } from 'node:child_process';
import * as path from 'node:path';

import { expect, test } from 'vitest';

import { openDatabase, type Database } from '../../lib/sql';
import { HELPERS } from '../helpers/children';
import { tmpDir } from '../helpers/tmp';

/** Adds 0, in one synchronous run of ~1 s (a recursive count). */
const SLOW_ZERO = '(WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 2000000) SELECT count(*) - 2000000 FROM r)';

/** Starts sqlite-commit-later.py, then on "ready" tells it to commit in 250 ms and makes `call`: its outcome, once the process ended. */
async function overtaken<T>(file: string, call: () => Promise<T>): Promise<PromiseSettledResult<T>> {
  const peer = spawn('python3', [path.join(HELPERS, 'sqlite-commit-later.py'), file, '250', 'INSERT INTO o VALUES (1)'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<number | null>((resolve) => peer.on('close', resolve));
  const { made } = await new Promise<{ made: Promise<T> }>((resolve, reject) => {
    peer.on('close', () => reject(new Error('sqlite-commit-later.py ended before it was ready')));
    peer.stdout!.once('data', () => {
      peer.stdin!.end('go\n'); // its 250 ms start now, as the call's run does
      resolve({ made: call() });
    });
  });
  const [outcome] = await Promise.allSettled([made]);
  expect(await exited).toBe(0);
  return outcome!;
}

async function counterDb(file: string, busyTimeout: number): Promise<Database> {
  // readConnections 0: the get runs on the writer as it is called (no read connection to open
  // first, while the sqlite3 commit's 250 ms run out)
  const db = await openDatabase(file, { busyTimeout, readConnections: 0 });
  await db.exec('CREATE TABLE c(id INTEGER PRIMARY KEY, n INTEGER NOT NULL); INSERT INTO c VALUES (1, 0); CREATE TABLE o(x)');
  return db;
}

test.each([
  ['run again (busyTimeout 5000): the row it returns is the one committed', 5000],
  ['busyTimeout 0: WALNUT_CONFLICT, nothing written', 0],
])('db.get(UPDATE ... RETURNING) whose commit a sqlite3 commit overtook: %s', async (_, busyTimeout) => {
  const file = path.join(tmpDir(), 'get-returning.db');
  const db = await counterDb(file, busyTimeout);
  let outcome: PromiseSettledResult<unknown>;
  try {
    outcome = await overtaken(file, () => db.get(`UPDATE c SET n = n + 1 + ${SLOW_ZERO} WHERE id = 1 RETURNING n`));
    const n = ((await db.get('SELECT n FROM c WHERE id = 1')) as { n: number }).n;
    if (busyTimeout === 0) {
      expect(outcome).toMatchObject({ status: 'rejected', reason: { code: 'WALNUT_CONFLICT' } });
      expect(n).toBe(0);
    } else {
      expect(outcome).toEqual({ status: 'fulfilled', value: { n: 1 } });
      expect(n).toBe(1); // acknowledged: applied, once
      expect(db.conflictRetries).toBeGreaterThan(0); // the sqlite3 commit did overtake it
    }
  } finally {
    await db.close();
  }
  expect(execFileSync('sqlite3', [file, 'SELECT n FROM c; SELECT count(*) FROM o; PRAGMA integrity_check'], { encoding: 'utf8' }).trim()).toBe(`${busyTimeout === 0 ? 0 : 1}\n1\nok`);
});
