// store.close() while a holdWriteLease() waits for WRITE, which a python3 sqlite3 process holds.
// close() waits for the calls already running (commit/close-gate.ts), and the lease's wait was
// one of them: close() took the rest of the busy timeout (4 s of 5 here) while the wait went on
// trying the lock in bursts on a thread of its own for a lease that close() would only let go,
// and a second holdWriteLease() joined to the first then started a wait of its own. Now close()
// cuts the waits short: every holdWriteLease() still waiting rejects WALNUT_CLOSED at once, close()
// goes on, and the lock is left to the other process (whose next writer gets it at once).
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

import { expect, test } from 'vitest';

import { open } from '../../lib/index';
import { tmpDir } from '../helpers/tmp';
import { startWriteGap } from '../helpers/write-gap';

const BUSY_TIMEOUT_MS = 20_000; // a close() that waits for the lease's wait takes most of it
/** Half the busy timeout: a close() that did not wait for the lease's wait may take seconds on a loaded machine, one that did takes the rest of the 20 s. */
const CLOSE_MS_AT_MOST = BUSY_TIMEOUT_MS / 2;
const sqlite = (file: string, sql: string): string => execFileSync('sqlite3', ['-cmd', '.timeout 10000', file, sql], { encoding: 'utf8' }).trim();
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const settled = (p: Promise<unknown>): Promise<string> => p.then(() => 'held', (e: { code?: string }) => e.code ?? String(e));

test('close() while holdWriteLease() waits for a lock another process holds: the waits reject WALNUT_CLOSED at once, close() goes on', async () => {
  const file = path.join(tmpDir(), 'lease-cut.db');
  sqlite(file, 'PRAGMA journal_mode=WAL; CREATE TABLE t(w, v)');
  const { ask, end } = startWriteGap(file);
  try {
    for (const callers of [1, 2]) {
      expect(await ask('hold')).toBe('ok');
      const store = await open(file, { busyTimeout: BUSY_TIMEOUT_MS, shareLane: false });
      const leases = Array.from({ length: callers }, () => settled(store.holdWriteLease()));
      await sleep(300); // well into the wait: bursts on the lock lane
      const t0 = performance.now();
      await store.close();
      const closeMs = performance.now() - t0;
      expect(closeMs, `${callers} waiting: close() took ${closeMs.toFixed(0)} ms`).toBeLessThan(CLOSE_MS_AT_MOST);
      expect(await Promise.all(leases)).toEqual(Array(callers).fill('WALNUT_CLOSED'));
      expect(await ask('commit')).toBe('ok');
      expect(await ask('hold'), 'nothing of the closed store keeps WRITE').toBe('ok');
      expect(await ask('commit')).toBe('ok');
    }
  } finally {
    end();
  }
  expect(sqlite(file, 'PRAGMA integrity_check')).toBe('ok');
}, 120_000);
