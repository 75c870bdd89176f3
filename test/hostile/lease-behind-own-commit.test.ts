// store.holdWriteLease() asked for while a commit of the same store already waits for WRITE,
// which a python3 sqlite3 writer holds and lets go only for a few milliseconds at a time. The
// lease's wait tries the lock in bursts (a try every few µs: WalnutFile.lockWithin), made to
// catch such gaps; the commit's wait sleeps as SQLite's busy handler does (up to 100 ms between
// tries) and mostly misses them. But WRITE goes to this store's waiters in the order they asked
// (WalIndex#writeQueue), and only the waiter at the head may try: the lease sat behind the
// sleeping commit and never tried at all, and both failed WALNUT_BUSY (BusyWrite) after the
// busy timeout. Now, while a lease waits in the queue, the waiter at its head tries in bursts
// too: the commit takes WRITE in the writer's gap and commits, then the lease gets it.
// The gap (GAP_MS) is long enough for a burst's thread to be scheduled in it on a loaded
// machine, and short against the commit's 100 ms sleeps (which catch it about 1 time in 20;
// the test asks for ROUNDS rounds in a row).
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

import { expect, test } from 'vitest';

import { open } from '../../lib/index';
import { tmpDir } from '../helpers/tmp';
import { startWriteGap } from '../helpers/write-gap';

const GAP_MS = 5;
const ROUNDS = 3;
const BUSY_TIMEOUT_MS = 3000;
const sqlite = (file: string, sql: string): string => execFileSync('sqlite3', ['-cmd', '.timeout 10000', file, sql], { encoding: 'utf8' }).trim();
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const settled = (p: Promise<unknown>): Promise<string> => p.then(() => 'ok', (e: { code?: string; reason?: string }) => `${e.code}/${e.reason}`);

// A race with 5 ms gaps: it missed once in a fresh-clone CI run beside the whole suite, so it runs
// with the other rate tests (npm run test:scale) only.
// It no longer guards that fix (measured 2026-12-07: with #leaseQueued() false and no wake of the
// head it passed 2 of 2 runs at WALNUT_SCALE=1): since bf5f2ca the waiter at the head of
// #writeQueue, lease or not, waits blocking in the kernel (F_OFD_SETLKW, #waitForWrite) after
// WRITE_WAIT_BLOCKS_AFTER_TRIES tries whenever this connection holds no WRITE (#mayWaitForWrite),
// as here, and so takes WRITE in the writer's gap; the lease only makes those waits
// LEASE_WAIT_SLICE_MS slices. The commit's 100 ms sleeps the bug needed are gone. It stays as a
// check that a commit and a lease queued behind it both get WRITE beside such a writer.
test.skipIf(process.env.WALNUT_SCALE !== '1')('a lease asked for while the store\'s own commit waits for WRITE: the commit gets it in the writer\'s gap, then the lease', async () => {
  const file = path.join(tmpDir(), 'lease-behind-commit.db');
  sqlite(file, 'PRAGMA journal_mode=WAL; CREATE TABLE t(w, v)');
  const { ask, end } = startWriteGap(file);
  const store = await open(file, { busyTimeout: BUSY_TIMEOUT_MS, shareLane: false });
  try {
    const snap = await store.snapshot();
    const dbSize = snap.dbSize;
    snap.release();
    const page = Buffer.alloc(store.pageSize, 3);
    for (let round = 0; round < ROUNDS; round++) {
      expect(await ask('hold')).toBe('ok');
      const commit = settled(store.commit([{ pgno: dbSize + 1, data: page }]));
      await sleep(300); // the commit's wait is in its 100 ms sleeps by now
      const lease = settled(store.holdWriteLease());
      await sleep(50);
      const writerAgain = await ask(`gap ${GAP_MS}`); // 'busy': this store took WRITE in the gap
      const outcomes = { commit: await commit, lease: await lease, writerAgain };
      expect(outcomes, `round ${round}`).toEqual({ commit: 'ok', lease: 'ok', writerAgain: 'busy' });
      store.releaseWriteLease();
      expect(await ask('hold'), 'the writer gets WRITE once the lease is given back').toBe('ok');
      expect(await ask('commit')).toBe('ok');
    }
  } finally {
    end();
    await store.close();
  }
  expect(sqlite(file, 'PRAGMA integrity_check')).toBe('ok');
}, 60_000);
