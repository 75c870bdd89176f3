// A statement transaction()'s fn did not wait for (called through tx, not awaited, still running
// when fn resolved). transaction() lets it finish before COMMIT, but its failure was swallowed:
// no rejection reached anyone (not even an unhandled one: transaction() itself waited on it) and
// the transaction committed without it. A transfer written with a forgotten `await` committed its
// debit while its credit failed, and transaction() resolved. Its failure is now the
// transaction's: it rolls back and transaction() rejects with that error. A statement fn waited
// for stays fn's to handle (a failure it caught does not stop the commit).
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

import { describe, expect, it } from 'vitest';

import { openDatabase } from '../../lib/sql';
import { tmpDir } from '../helpers/tmp';

describe('transaction() and the statements its fn did not wait for', () => {
  it("one that fails rolls the transaction back and is transaction()'s rejection; ones that succeed commit; a failure fn caught does not stop the commit", async () => {
    const file = path.join(tmpDir(), 'unawaited.db');
    const db = await openDatabase(file, { readConnections: 0 });
    let unhandled = 0;
    const onUnhandled = (): void => void unhandled++;
    process.on('unhandledRejection', onUnhandled);
    try {
      await db.exec('CREATE TABLE acct(id INTEGER PRIMARY KEY, bal INTEGER NOT NULL CHECK (bal >= 0)); INSERT INTO acct VALUES (1, 100), (2, 0)');
      // the credit fails (no such column), the debit was made: all or nothing
      await expect(
        db.transaction((tx) => {
          void tx.run('UPDATE acct SET bal = bal - 60 WHERE id = 1');
          void tx.run('UPDATE acct SET balance = bal + 60 WHERE id = 2');
          return Promise.resolve('done');
        }),
      ).rejects.toMatchObject({ code: 'WALNUT_SQL', message: expect.stringMatching(/no such column: balance/) });
      expect(await db.all('SELECT bal FROM acct ORDER BY id')).toEqual([{ bal: 100 }, { bal: 0 }]);
      // a CHECK failure of a statement not waited for, after fn's own awaited one
      await expect(
        db.transaction(async (tx) => {
          await tx.run('UPDATE acct SET bal = bal + 1 WHERE id = 2');
          void tx.run('UPDATE acct SET bal = bal - 500 WHERE id = 1');
        }),
      ).rejects.toMatchObject({ code: 'WALNUT_SQL', sqliteCode: 275, message: expect.stringMatching(/CHECK constraint failed/) });
      expect(await db.all('SELECT bal FROM acct ORDER BY id')).toEqual([{ bal: 100 }, { bal: 0 }]);
      // not waited for and successful: part of the commit
      expect(
        await db.transaction((tx) => {
          void tx.run('UPDATE acct SET bal = bal - 10 WHERE id = 1');
          void tx.exec('UPDATE acct SET bal = bal + 10 WHERE id = 2');
          return Promise.resolve(7);
        }),
      ).toBe(7);
      // a failure fn waited for and caught: fn's to handle, the rest commits
      await db.transaction(async (tx) => {
        await tx.run('UPDATE acct SET bal = bal - 500 WHERE id = 1').catch(() => undefined);
        await tx.run('UPDATE acct SET bal = bal - 5 WHERE id = 1');
        await tx.run('UPDATE acct SET bal = bal + 5 WHERE id = 2');
      });
      expect(await db.all('SELECT bal FROM acct ORDER BY id')).toEqual([{ bal: 85 }, { bal: 15 }]);
      await db.close();
    } finally {
      process.off('unhandledRejection', onUnhandled);
      if (db.open) await db.close().catch(() => undefined);
    }
    expect(unhandled).toBe(0);
    expect(execFileSync('sqlite3', [file, "SELECT group_concat(bal) FROM acct; PRAGMA integrity_check"], { encoding: 'utf8' }).trim()).toBe('85,15\nok');
  }, 30_000);
});
