// walnut/sql: db.close() while a transaction's function is running waits for it CLOSE_WAITS_FOR_FN_MS
// (2 s) or busyTimeout, whichever is longer, on a timer. A busyTimeout past 2^31 - 1 ms (taken by
// open(): a whole number of ms >= 0) overflowed that timer, which Node then fires after 1 ms (with
// a TimeoutOverflowWarning): close() rolled back at once a transaction whose function was a
// moment from its end (WALNUT_CLOSED TransactionAbandoned), where busyTimeout 5000 waited and
// committed it. Now the wait is at most the longest timer (about 24.8 days): the function ends,
// the transaction commits, close() returns, no warning.
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

import { afterEach, beforeEach, expect, test } from 'vitest';

import { openDatabase } from '../../lib/sql';
import { tmpDir } from '../helpers/tmp';

const sqlite = (file: string, sql: string): string => execFileSync('sqlite3', ['-cmd', '.timeout 10000', file, sql], { encoding: 'utf8' }).trim();
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const warnings: string[] = [];
const onWarning = (w: Error): void => void warnings.push(`${w.name}: ${w.message}`);
beforeEach(() => void process.on('warning', onWarning));
afterEach(() => void process.off('warning', onWarning));

for (const busyTimeout of [2 ** 31, Number.MAX_SAFE_INTEGER]) {
  test(`busyTimeout ${busyTimeout}: close() waits for the running transaction's function, which commits`, async () => {
    const file = path.join(tmpDir(), `close-busy-${busyTimeout}.db`);
    const db = await openDatabase(file, { busyTimeout });
    await db.exec('CREATE TABLE t(k INTEGER PRIMARY KEY, v)');
    const outcome = db.transaction(async (tx) => {
      await sleep(300);
      await tx.run('INSERT INTO t VALUES (1, ?)', ['inside']);
    }).then(
      () => 'committed',
      (e: unknown) => `${(e as { code?: string }).code}/${(e as { reason?: string }).reason}`,
    );
    await sleep(20); // the function is running
    await db.close();
    expect(await outcome).toBe('committed');
    expect(sqlite(file, 'SELECT v FROM t; PRAGMA integrity_check;')).toBe('inside\nok');
    await sleep(0); // (a warning is emitted on the next tick)
    expect(warnings.filter((w) => w.startsWith('TimeoutOverflowWarning'))).toEqual([]);
  });
}
