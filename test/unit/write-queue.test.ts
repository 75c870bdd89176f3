// In-process waiters for SQLite's WAL write lock (WRITE) are served in the order they came, and
// the first is woken as soon as WRITE is let go in this process: before, each polled on its own
// busy-handler schedule (sleeps growing to 100 ms), so a waiter that came later, still on short
// sleeps, overtook one that had waited longer.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { WalIndex } from '../../lib/wal-index/wal-index';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A WAL database made by SQLite, opened as a connection whose busy timeout is `busyTimeout`. */
function walDatabase(name: string, busyTimeout: number): Promise<WalIndex> {
  const db = path.join(dir, name);
  const setup = new Database(db);
  setup.pragma('journal_mode = WAL');
  setup.exec('CREATE TABLE t(x)');
  setup.close();
  return WalIndex.open(db, { busyTimeout });
}

describe('WRITE waiters in one process', () => {
  it('get WRITE in the order they asked for it, whatever their sleeps had grown to', async () => {
    const index = await walDatabase('q.db', 10_000);
    try {
      expect(index.tryBeginWrite()).toBe(true);
      const order: string[] = [];
      const waiter = async (name: string) => {
        await index.beginWriteRun();
        order.push(name);
        await new Promise((resolve) => setImmediate(resolve)); // holds it for a turn
        index.endWrite();
      };
      const waiting = [waiter('first')]; // its sleeps grow to 100 ms while WRITE stays held
      await sleep(400);
      for (const name of ['second', 'third', 'fourth']) {
        waiting.push(waiter(name));
        await sleep(15);
      }
      expect(index.writeWanted).toBe(true);
      index.endWrite();
      await Promise.all(waiting);
      expect(order).toEqual(['first', 'second', 'third', 'fourth']);
      expect(index.writeWanted).toBe(false);
    } finally {
      await index.close();
    }
  });

  it('a waiter that gives up (busy timeout) hands the turn to the next one', async () => {
    const index = await walDatabase('r.db', 1000);
    try {
      expect(index.tryBeginWrite()).toBe(true);
      const first = index.beginWriteRun().then(() => 'got', (e) => e.code);
      await sleep(900);
      const second = index.beginWriteRun().then(() => 'got', (e) => e.code); // its timeout ends ~900 ms after the first's
      expect(await first).toBe('WALNUT_BUSY'); // WRITE still held: its busy timeout ran out
      index.endWrite();
      expect(await second).toBe('got');
      index.endWrite();
    } finally {
      await index.close();
    }
  });
});
