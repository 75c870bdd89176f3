// walnut/sql: a transaction() its caller runs again, due for the write lease (two calls of the
// same function text failed WALNUT_CONFLICT since one committed) in the pause after a lease was
// given back (150 ms or as long as it was held: other processes' writers get WRITE then). It ran
// without the lease and, beside a steady writer, was overtaken again: a caller retrying at once
// made 9 calls within one pause, each failing (test/hostile/sql-busy-write-lease under
// WALNUT_SCALE: 1 commit of 2 in its 12 calls, 4 runs of 12). Now it waits for the pause's end
// (within busyTimeout) and takes the lease (overtaken-writes.ts takeAfterPause).
// Deterministic: the conflicts are made by a sqlite3 process run from inside the transaction
// function (after its snapshot, before its COMMIT); the leased call holds the lease ~600 ms so
// the pause outlasts the calls made in it; the call due in the pause makes no conflict and is
// checked through db.leasedRetries (it committed without the lease before the fix).
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

import { expect, test } from 'vitest';

import { openDatabase } from '../../lib/sql';
import { tmpDir } from '../helpers/tmp';

const sqlite = (file: string, sql: string): string => execFileSync('sqlite3', ['-cmd', '.timeout 10000', file, sql], { encoding: 'utf8' }).trim();

test('a transaction() due for the write lease in the pause after one was given back waits for the pause to end and takes it', async () => {
  const file = path.join(tmpDir(), 'lease-in-pause.db');
  sqlite(file, 'PRAGMA journal_mode=WAL; CREATE TABLE t(w); CREATE TABLE c(id INTEGER PRIMARY KEY, n INTEGER NOT NULL); INSERT INTO c VALUES (1, 0)');
  const db = await openDatabase(file, { busyTimeout: 5000 });
  // what the function does in its next call: 'overtaken' (another process commits after its
  // snapshot), 'hold' (it keeps the lease ~600 ms: the pause after it lasts as long), 'plain'
  let next: 'overtaken' | 'hold' | 'plain' = 'overtaken';
  const outcomes: string[] = [];
  const call = async (what: typeof next): Promise<void> => {
    next = what;
    try {
      // (one function text for every call: the lease is due per source text)
      await db.transaction(async (tx) => {
        await tx.run('UPDATE c SET n = n + 1 WHERE id = 1');
        if (next === 'overtaken') sqlite(file, 'INSERT INTO t VALUES (1)');
        else if (next === 'hold') await new Promise((resolve) => setTimeout(resolve, 600));
      });
      outcomes.push(`${what}:ok`);
    } catch (e) {
      outcomes.push(`${what}:${(e as { code?: string }).code}/${(e as { reason?: string }).reason}`);
    }
  };
  try {
    await call('overtaken');
    await call('overtaken');
    await call('hold'); // the third call: under the lease, given back as it settles (the pause begins)
    expect(db.leasedRetries, outcomes.join(' ')).toBe(1);
    await call('overtaken'); // two failed calls in the pause: due again
    await call('overtaken');
    await call('plain');
    expect(outcomes).toEqual(['overtaken:WALNUT_CONFLICT/OtherWriter', 'overtaken:WALNUT_CONFLICT/OtherWriter', 'hold:ok', 'overtaken:WALNUT_CONFLICT/OtherWriter', 'overtaken:WALNUT_CONFLICT/OtherWriter', 'plain:ok']);
    // the last call ran under the lease (after the pause), not without it in the pause
    expect(db.leasedRetries, outcomes.join(' ')).toBe(2);
  } finally {
    await db.close();
  }
  expect(sqlite(file, 'SELECT n FROM c')).toBe('2');
  expect(sqlite(file, 'SELECT count(*) FROM t')).toBe('4');
  expect(sqlite(file, 'PRAGMA integrity_check')).toBe('ok');
}, 20000);
