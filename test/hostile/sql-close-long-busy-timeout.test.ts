// walnut/sql: db.close() while a transaction's function runs, on a database opened with a
// busyTimeout of 2^31 ms or more (a caller's "wait for ever": 2 ** 31, Number.MAX_SAFE_INTEGER,
// both accepted by open()). close() waits for the function up to max(2 s, busyTimeout), and that
// wait was a setTimeout past its 2^31 - 1 ms limit, which Node fires after 1 ms (printing a
// TimeoutOverflowWarning): a function that ended 100 ms later was abandoned, its transaction
// rolled back and rejected WALNUT_CLOSED (TransactionAbandoned, "close() waited 2147483648 ms").
// Now the wait is capped at the longest timer: the function ends, its transaction commits.
import * as path from 'node:path';

import { afterAll, expect, test } from 'vitest';

import { openDatabase } from '../../lib/sql';
import { tmpDir } from '../helpers/tmp';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const warnings: string[] = [];
const onWarning = (w: Error): void => void warnings.push(`${w.name}: ${w.message}`);
process.on('warning', onWarning);
afterAll(() => void process.off('warning', onWarning));

for (const busyTimeout of [2 ** 31, Number.MAX_SAFE_INTEGER]) {
  test(`busyTimeout ${busyTimeout}: close() waits for a running transaction's function, which commits`, async () => {
    const file = path.join(tmpDir(), `long-busy-${busyTimeout}.db`);
    const db = await openDatabase(file, { busyTimeout });
    await db.exec('CREATE TABLE t(k INTEGER PRIMARY KEY, v)');
    const outcome = db
      .transaction(async (tx) => {
        await sleep(100);
        await tx.run('INSERT INTO t VALUES (1, ?)', ['inside']);
      })
      .then(() => 'committed', (e: { code?: string; reason?: string }) => `${e.code}/${e.reason}`);
    await sleep(10); // the function is running
    await db.close();
    expect(await outcome).toBe('committed');
    expect(warnings.filter((w) => w.startsWith('TimeoutOverflowWarning'))).toEqual([]);
    const again = await openDatabase(file);
    try {
      expect(await again.all('SELECT k, v FROM t')).toEqual([{ k: 1, v: 'inside' }]);
    } finally {
      await again.close();
    }
  });
}
