// store.holdWriteLease() beside a python3 sqlite3 writer that holds WRITE for 4 ms per commit
// and takes it again at once (a steady writer: WRITE is free only in the gaps between its
// commits). The wait for WRITE polled with sleeps growing to 100 ms, so it sampled the lock a
// dozen times a second and mostly found it held: 9 of 10 holdWriteLease() calls with
// busyTimeout 1000 failed WALNUT_BUSY, and walnut/sql's lease for an overtaken write (which
// exists to win against such a writer) was often not had (test/hostile/sql-long-write-beside-
// writer failed WALNUT_CONFLICT that way on a loaded machine). Polling every millisecond got
// 6-10 of 10 quiet, 1 of 8 under a CI run. Now the wait tries the lock in bursts on the addon's
// lock lane, a try every few microseconds (WalnutFile.lockWithin): 10 of 10 in 2-8 ms on
// a quiet machine, 9-10 of 10 beside a vitest run. It is still a rate (a loaded machine may not
// run the burst's thread in the writer's gaps), so it runs in `npm run test:scale`
// (WALNUT_SCALE=1) only, not in npm test, and asks for 3 of 10 (the 100 ms sleeps got about 1).
// Since bf5f2ca every wait for WRITE another process holds (a commit's too) blocks in the kernel
// after a few tries, so this no longer tells the lease's wait from any other (measured
// 2026-12-07: with the lease's slices off, #leaseQueued() false, it passed 2 of 2 runs).
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

import { expect, test } from 'vitest';

import { open } from '../../lib/index';
import { startBusyWriter } from '../helpers/busy-writer';
import { tmpDir } from '../helpers/tmp';

const sqlite = (file: string, sql: string): string => execFileSync('sqlite3', ['-cmd', '.timeout 10000', file, sql], { encoding: 'utf8' }).trim();
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

test.skipIf(process.env.WALNUT_SCALE !== '1')('holdWriteLease() beside a writer that takes WRITE again at once: the calls get the lock within busyTimeout (WALNUT_SCALE=1: a rate, see the header)', async () => {
  const file = path.join(tmpDir(), 'busy-writer.db');
  sqlite(file, 'PRAGMA journal_mode=WAL; CREATE TABLE t(w, v)');
  const store = await open(file, { busyTimeout: 1000, shareLane: false });
  try {
    // (it runs until stopped below: past the calls however long they wait)
    const writer = await startBusyWriter(file, 30);
    try {
      const before = Number(sqlite(file, 'SELECT count(*) FROM t'));
      const outcomes: string[] = [];
      for (let i = 0; i < 10; i++) {
        try {
          await store.holdWriteLease();
          outcomes.push('held');
          await sleep(20);
          store.releaseWriteLease();
        } catch (e) {
          outcomes.push((e as { code?: string }).code ?? String(e));
        }
        await sleep(50);
      }
      // (a wait of busyTimeout trying the lock in bursts: see the header)
      expect(outcomes.filter((o) => o === 'held').length, outcomes.join(' ')).toBeGreaterThanOrEqual(3);
      expect(outcomes.every((o) => o === 'held' || o === 'WALNUT_BUSY'), outcomes.join(' ')).toBe(true);
      expect(Number(sqlite(file, 'SELECT count(*) FROM t'))).toBeGreaterThan(before); // it went on between the leases
    } finally {
      await writer.stop();
    }
  } finally {
    await store.close();
  }
  expect(sqlite(file, 'PRAGMA integrity_check')).toBe('ok');
}, 30000);
