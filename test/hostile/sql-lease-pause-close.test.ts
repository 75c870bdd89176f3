// walnut/sql: db.close() while a transaction() due for the write lease waits, holding the writer,
// for the pause after a lease was given back (overtaken-writes.ts takeAfterPause: the pause lasts
// as long as the lease was held, up to busyTimeout). close() waits for the writer's calls, so it
// waited out the rest of the pause (seconds here; 604 ms measured beside a busy writer), and every
// later call on the writer with it. Now close() ends the pause wait at once (OvertakenWrites.cut):
// close() settles within CLOSE_MS_AT_MOST, far less than the pause; the waiting call runs without
// the lease and commits (it was called before close()); the database holds every commit.
// Choreography of test/hostile/sql-lease-due-in-pause: the conflicts are made by a sqlite3 process
// run from inside the transaction function (awaited: run synchronously it blocked the event loop
// while walnut still held WRITE from the call before, which it lets go only as the loop turns, and
// sqlite3 waited out its timeout); the leased call holds the lease HOLD_MS.
import { execFile, execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';

import { expect, test } from 'vitest';

import { openDatabase } from '../../lib/sql';
import { tmpDir } from '../helpers/tmp';

/** The leased call's hold, and so the pause after it. */
const HOLD_MS = 4_500;
/** Generous: a loaded 2-core machine; a close() that waits out the pause takes most of HOLD_MS. */
const CLOSE_MS_AT_MOST = 2_000;

const sqlite = (file: string, sql: string): string => execFileSync('sqlite3', ['-cmd', '.timeout 10000', file, sql], { encoding: 'utf8' }).trim();
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
/** sqlite3 commits a row, the event loop turning meanwhile (header comment). */
const otherProcessCommits = (file: string): Promise<unknown> => promisify(execFile)('sqlite3', ['-cmd', '.timeout 10000', file, 'INSERT INTO t VALUES (1)']);

test('db.close() while a transaction() waits for the lease\'s pause to end: close() settles at once, the call commits without the lease', async () => {
  const file = path.join(tmpDir(), 'lease-pause-close.db');
  sqlite(file, 'PRAGMA journal_mode=WAL; CREATE TABLE t(w); CREATE TABLE c(id INTEGER PRIMARY KEY, n INTEGER NOT NULL); INSERT INTO c VALUES (1, 0)');
  const db = await openDatabase(file, { busyTimeout: 20_000 });
  let next: 'overtaken' | 'hold' | 'plain' = 'overtaken';
  const call = async (what: typeof next): Promise<string> => {
    next = what;
    try {
      // (one function text for every call: the lease is due per source text)
      await db.transaction(async (tx) => {
        await tx.run('UPDATE c SET n = n + 1 WHERE id = 1');
        if (next === 'overtaken') await otherProcessCommits(file);
        else if (next === 'hold') await sleep(HOLD_MS);
      });
      return `${what}:ok`;
    } catch (e) {
      return `${what}:${(e as { code?: string }).code}/${(e as { reason?: string }).reason}`;
    }
  };
  let closeMs = Infinity;
  try {
    const outcomes = [await call('overtaken'), await call('overtaken'), await call('hold')]; // the third under the lease: the pause begins as it settles
    outcomes.push(await call('overtaken'), await call('overtaken')); // in the pause: due again
    expect(outcomes).toEqual(['overtaken:WALNUT_CONFLICT/OtherWriter', 'overtaken:WALNUT_CONFLICT/OtherWriter', 'hold:ok', 'overtaken:WALNUT_CONFLICT/OtherWriter', 'overtaken:WALNUT_CONFLICT/OtherWriter']);
    expect(db.leasedRetries).toBe(1);
    const waiting = call('plain'); // waits for the pause's end, holding the writer
    await sleep(100);
    const t0 = performance.now();
    await db.close();
    closeMs = performance.now() - t0;
    expect(await waiting).toBe('plain:ok');
    expect(db.leasedRetries).toBe(1); // it ran without the lease
  } finally {
    await db.close();
  }
  expect(closeMs, `close() took ${closeMs.toFixed(0)} ms`).toBeLessThan(CLOSE_MS_AT_MOST);
  expect(sqlite(file, 'SELECT n FROM c')).toBe('2');
  expect(sqlite(file, 'SELECT count(*) FROM t')).toBe('4');
  expect(sqlite(file, 'PRAGMA integrity_check')).toBe('ok');
});
