// walnut/sql's autocommit statements beside another process's commits, at scale (a WAL past
// 16,000 frames, a python3 sqlite3 writer committing in a loop with a busy timeout): exec() of
// one statement and of two, run() and prepare().run() inserts all resolve, none fails
// WALNUT_CONFLICT, and every row is there exactly once. exec() was not run again by walnut/sql:
// beside such a writer 16 callers saw ~400 WALNUT_CONFLICTs in 7 s from their exec() calls
// alone ("database is locked" in the statement, OtherWriter at the store's conditional commit,
// ChainBroken), while run() was retried within busyTimeout. Now an exec() statement that another
// connection overtook while it ran is stepped again (SQLite's busy handler retries the one
// statement of sqlite3_exec() too), and one whose commit was lost later runs again from that
// statement (exec-progress.ts), never from the start: k is the primary key, so a statement
// applied twice would fail the call on its own row.
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

import { expect, test } from 'vitest';

import { isWalnutError, openDatabase } from '../../lib/sql';
import { HELPERS, startPython } from '../helpers/children';
import { growWal, shmMxFrame, untilWalMoves } from '../helpers/large-wal';
import { tmpDir } from '../helpers/tmp';

const sqlite3 = (file: string, sql: string): string => execFileSync('sqlite3', ['-cmd', '.timeout 10000', file, sql], { encoding: 'utf8' }).trim();

test('autocommit exec() (one and two statements), run() and prepare().run() beside a python3 writer on a 16,000-frame WAL: no WALNUT_CONFLICT, each row once', async () => {
  const file = path.join(tmpDir(), 'exec-autocommit.db');
  const db = await openDatabase(file, { pageSize: 1024, autoCheckpoint: false, readConnections: 0 });
  await db.exec('CREATE TABLE t(w, v); CREATE TABLE s(k INTEGER PRIMARY KEY, via TEXT NOT NULL)');
  await growWal(db.store, 16_000);
  // python3 (SQLite's library: busy timeout, no checkpoints of its own, so the WAL keeps its frames)
  const python = startPython(path.join(HELPERS, 'sqlite-writer.py'), [file, '60', '1', '0', '0', '0', '0', 'NORMAL']);
  const expected = new Map<number, string>();
  const failed: string[] = [];
  try {
    await untilWalMoves(file, shmMxFrame(file));
    const insert = await db.prepare('INSERT INTO s VALUES (?, ?)');
    let next = 0;
    const deadline = Date.now() + 3000;
    await Promise.all(
      Array.from({ length: 16 }, async (_, caller) => {
        while (Date.now() < deadline) {
          const k = next;
          next += 2;
          const via = ['exec', 'exec2', 'run', 'prepared'][caller % 4]!;
          try {
            if (via === 'exec') await db.exec(`INSERT INTO s VALUES (${k}, 'exec')`);
            else if (via === 'exec2') await db.exec(`INSERT INTO s VALUES (${k}, 'exec2'); INSERT INTO s VALUES (${k + 1}, 'exec2')`);
            else if (via === 'run') await db.run('INSERT INTO s VALUES (?, ?)', [k, via]);
            else await insert.run([k, via]);
            expected.set(k, via);
            if (via === 'exec2') expected.set(k + 1, via);
          } catch (e) {
            if (!isWalnutError(e)) throw e;
            failed.push(`${via} ${k}: ${e.code}/${e.reason}: ${e.message}`);
          }
        }
      }),
    );
  } finally {
    python.stop();
  }
  const commits = Number((await python.output).trim());
  const frames = shmMxFrame(file);
  const retries = db.conflictRetries;
  await db.close();
  console.log(`python3 commits ${commits}, walnut/sql rows ${expected.size}, run again ${retries}, WAL frames ${frames}`);
  expect(failed).toEqual([]);
  expect(frames).toBeGreaterThan(16_000);
  // the other process got in between (else nothing was tested)
  expect(commits).toBeGreaterThan(0);
  expect(retries).toBeGreaterThan(0);
  const rows = sqlite3(file, 'SELECT k, via FROM s ORDER BY k').split('\n').filter((l) => l !== '').map((l) => l.split('|'));
  expect(new Map(rows.map(([k, via]) => [Number(k), via!]))).toEqual(expected);
  expect(Number(sqlite3(file, 'SELECT count(*) FROM t'))).toBe(commits);
  expect(sqlite3(file, 'PRAGMA integrity_check')).toBe('ok');
}, 30_000);
