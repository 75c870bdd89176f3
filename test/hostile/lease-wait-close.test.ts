// store.holdWriteLease()'s wait for WRITE tries the lock in bursts on the addon's lock lane
// (wal-index.ts #spinForWrite: WalnutFile.lockWithin, a try every few microseconds), so that it
// finds the gaps of a writer that takes WRITE again at once. While a burst is in flight the
// descriptor may take WRITE for this connection without its knowing: nothing else of the
// connection may try WRITE then, and a close() must let go of what the burst took. Here, beside
// such a python3 writer, leases are asked for and the store closed at random moments of the wait:
// every call settles (held, WALNUT_BUSY or WALNUT_CLOSED), the writer goes on committing after
// every close (no WRITE left behind), and the database is intact.
// Correctness only: how often the lease is had is a rate (test/hostile/lease-beside-busy-writer,
// npm run test:scale).
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

import { expect, test } from 'vitest';

import { open } from '../../lib/index';
import { startBusyWriter } from '../helpers/busy-writer';
import { tmpDir } from '../helpers/tmp';

const sqlite = (file: string, sql: string): string => execFileSync('sqlite3', ['-cmd', '.timeout 10000', file, sql], { encoding: 'utf8' }).trim();
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const rows = (file: string): number => Number(sqlite(file, 'SELECT count(*) FROM t'));

test('holdWriteLease() beside a writer that takes WRITE back to back, the store closed at random moments of the wait: all settle, no WRITE left behind', async () => {
  const file = path.join(tmpDir(), 'lease-close.db');
  sqlite(file, 'PRAGMA journal_mode=WAL; CREATE TABLE t(w, v)');
  const writer = await startBusyWriter(file, 60);
  const outcomes: string[] = [];
  const writerCommitsAfter = async (count: number, round: number): Promise<void> => {
    for (let i = 0; i < 400 && rows(file) === count; i++) await sleep(5);
    expect(rows(file), `round ${round}: the writer commits again (${outcomes.join(' ')})`).toBeGreaterThan(count);
  };
  try {
    for (let round = 0; round < 12; round++) {
      const store = await open(file, { busyTimeout: 400, shareLane: false });
      const lease = store.holdWriteLease().then(
        () => 'held',
        (e: { code?: string }) => e.code ?? String(e),
      );
      if (round % 2 === 0) {
        // held: the writer is kept out, and back in once the lease is given back (before close)
        const outcome = await lease;
        outcomes.push(outcome);
        if (outcome === 'held') {
          const held = rows(file);
          await sleep(30);
          expect(rows(file), `round ${round}: nobody else commits under the lease`).toBe(held);
          store.releaseWriteLease();
          await writerCommitsAfter(held, round);
        }
        await store.close();
      } else {
        await sleep((round * 7) % 25); // 0..24 ms into the wait (or the hold)
        const closed = store.close();
        outcomes.push(await lease);
        await closed;
      }
      await writerCommitsAfter(rows(file), round); // WRITE went with the store
    }
  } finally {
    await writer.stop();
  }
  expect(outcomes.every((o) => o === 'held' || o === 'WALNUT_BUSY' || o === 'WALNUT_CLOSED'), outcomes.join(' ')).toBe(true);
  expect(sqlite(file, 'PRAGMA integrity_check')).toBe('ok');
  sqlite(file, "INSERT INTO t VALUES (0, 'last')"); // anybody can write once it all ended
}, 60_000);
