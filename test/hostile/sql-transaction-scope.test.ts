// walnut/sql's transaction scope (README, walnut/sql: "a callback fn scheduled that runs after the
// transaction ended may use them"): the scope marks one transaction's fn, not the database. A
// callback that a finished transaction's fn scheduled and that runs while a LATER transaction's
// fn runs is outside both: its db.run waits for the later transaction and then runs (it was
// refused, WALNUT_INVALID_ARGUMENT reason transaction, as if it were inside the later one).
// Calls from inside the running fn are still refused.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { openDatabase } from '../../lib/sql';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

describe('walnut/sql transaction scope: a finished transaction\'s callback during the next transaction', () => {
  it('runs after the next transaction (not refused as inside it); calls from the running fn are refused', async () => {
    const db = await openDatabase(path.join(dir, 'scope.db'));
    try {
      await db.exec('CREATE TABLE t(x)');
      let open!: () => void;
      const gate = new Promise<void>((resolve) => (open = resolve));
      let late!: Promise<unknown>;
      await db.transaction(async (tx) => {
        late = gate.then(() => db.run('INSERT INTO t VALUES (2)')); // scheduled by fn, runs after this transaction
        await tx.run('INSERT INTO t VALUES (1)');
      });
      const lateSettled = late.then(
        () => 'ran',
        (e: unknown) => e,
      );
      await db.transaction(async (tx) => {
        open(); // the callback of the first transaction runs now, while this fn runs
        await gate;
        await new Promise((resolve) => setImmediate(resolve));
        await expectRejectsWalnut(db.run('INSERT INTO t VALUES (0)'), 'WALNUT_INVALID_ARGUMENT'); // this fn's own call
        await tx.run('INSERT INTO t VALUES (3)');
      });
      expect(await lateSettled).toBe('ran');
      expect(await db.all('SELECT x FROM t ORDER BY rowid')).toEqual([{ x: 1 }, { x: 3 }, { x: 2 }]);
    } finally {
      await db.close();
    }
  });

  it("db.close() called from inside fn is refused (WALNUT_INVALID_ARGUMENT, reason transaction), not a hang (it waited for the transaction that waited for it)", async () => {
    const db = await openDatabase(path.join(dir, 'close-inside.db'));
    try {
      await db.exec('CREATE TABLE t(x)');
      const result = await db.transaction(async (tx) => {
        await tx.run('INSERT INTO t VALUES (1)');
        await expectRejectsWalnut(db.close(), 'WALNUT_INVALID_ARGUMENT', { reason: 'transaction' });
        return 'committed';
      });
      expect(result).toBe('committed');
      expect(await db.all('SELECT x FROM t')).toEqual([{ x: 1 }]);
    } finally {
      await db.close();
    }
  });
});
