// walnut/sql's openDatabase() (and a read connection's open, and exec()'s next statement) beside
// a connection that takes the read locks again and again. SQLite reads the database header as
// it opens; on walnut's VFS that read needs a view (a read mark), and when none can be had at
// once the VFS answers SQLITE_BUSY with a wait for one. wa-sqlite's open_v2 (and the prepare of
// exec()'s statements) waited once and gave up at the second SQLITE_BUSY: the mark, had by the
// wait, was taken again before the retry, and the open failed WALNUT_BUSY within milliseconds
// (9-10 of 20 opens beside this helper) where python3's sqlite3 opened and read 20 of 20 (worst
// 1 s). Now the open is tried again until busyTimeout has passed, and the view the wait took is
// handed to the retry (CommitPipeline.whenViewPossible): no open fails WALNUT_BUSY before its
// busy timeout. The helper holds the locks 75% of the time (300 us, then 100 us free): with the
// fix undone (dist/ edited) 4 to 9 of the 10 opens fail within ms, in each of 8 runs. It held
// them 92% of the time (25 us free), which shows the bug as well but made each open wait 1-2 s
// (20 s of this test on a loaded machine): the store's wait for a read mark sleeps up to 100 ms
// between tries and misses most free windows. How many open within busyTimeout is a rate (at
// 92%: 27 of 30 within 3 s in three runs, python3's sqlite3, whose read retries start at
// microseconds, 20 of 20 within 1 s): at least 8 of 10, asserted under WALNUT_SCALE=1 only.
import { execFileSync, spawn } from 'node:child_process';
import * as path from 'node:path';

import { expect, test } from 'vitest';

import { openDatabase } from '../../lib/sql';
import { HELPERS } from '../helpers/children';
import { tmpDir } from '../helpers/tmp';

const sqlite = (file: string, sql: string): string => execFileSync('sqlite3', ['-cmd', '.timeout 10000', file, sql], { encoding: 'utf8' }).trim();
const RATES = process.env.WALNUT_SCALE === '1';
const BUSY_TIMEOUT = 3000;

test('openDatabase(), a read connection and exec() beside a read-lock thrasher: nothing fails WALNUT_BUSY before busyTimeout', async () => {
  const file = path.join(tmpDir(), 'read-locks-busy.db');
  sqlite(file, 'PRAGMA journal_mode=WAL; CREATE TABLE s(k INTEGER PRIMARY KEY, v)');
  // a database kept open: its -shm stays, and a commit in the WAL needs a read mark to be seen
  const keep = await openDatabase(file);
  await keep.run('INSERT INTO s VALUES (0, 0)');
  const thrasher = spawn(process.execPath, [path.join(HELPERS, 'read-lock-thrasher.js'), `${file}-shm`, '300', '100', '120'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => thrasher.on('close', () => resolve()));
  const outcomes: string[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      thrasher.stdout!.once('data', () => resolve());
      thrasher.once('close', (code) => reject(new Error(`the thrasher exited (${code}) before its first cycle`)));
    });
    for (let i = 1; i <= 10; i++) {
      const t0 = performance.now();
      try {
        const db = await openDatabase(file, { busyTimeout: BUSY_TIMEOUT });
        try {
          await db.exec(`CREATE TABLE IF NOT EXISTS u${i}(x); INSERT INTO u${i} VALUES (${i})`);
          expect(await db.get('SELECT count(*) AS n FROM s')).toEqual({ n: 1 }); // a read connection opened
        } finally {
          await db.close();
        }
        outcomes.push('ok');
      } catch (e) {
        const { code, reason, sqliteCode } = e as { code?: string; reason?: string; sqliteCode?: number };
        const ms = Math.round(performance.now() - t0);
        // busy, as SQLite is, only once the busy timeout has passed
        outcomes.push(code === 'WALNUT_BUSY' && ms >= BUSY_TIMEOUT ? 'busy past timeout' : `${code}/${reason}/${sqliteCode} after ${ms} ms: ${(e as Error).message}`);
      }
    }
  } finally {
    thrasher.kill();
    await exited;
    await keep.close();
  }
  console.log(`opens beside the read-lock thrasher: ${outcomes.join(', ')}`);
  expect(outcomes.filter((o) => o !== 'ok' && o !== 'busy past timeout')).toEqual([]);
  if (RATES) expect(outcomes.filter((o) => o === 'ok').length, outcomes.join(', ')).toBeGreaterThanOrEqual(8);
  expect(sqlite(file, 'PRAGMA integrity_check')).toBe('ok');
}, 120000);
