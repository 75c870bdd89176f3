// walnut/sql whose store was closed under it (`db.store.close()`, a caller reaching for the
// store's verbs): every verb rejects with WALNUT_CLOSED. A query needing a read connection not
// opened yet rejected with wa-sqlite's own SQLiteError ("disk I/O error"), not a WalnutError,
// and the half-opened SQLite connection was never closed.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { openDatabase } from '../../lib/sql';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

describe('walnut/sql after its store was closed under it', () => {
  it('get/all on a read connection not yet opened, and every writer verb, are WALNUT_CLOSED; close() resolves', async () => {
    const db = await openDatabase(path.join(dir, 'closed-under.db'), { readConnections: 2 });
    await db.exec('CREATE TABLE t(v)');
    await db.run('INSERT INTO t VALUES (1)');
    await db.store.close();
    await expectRejectsWalnut(db.get('SELECT count(*) AS c FROM t'), 'WALNUT_CLOSED');
    await expectRejectsWalnut(db.all('SELECT v FROM t'), 'WALNUT_CLOSED');
    await expectRejectsWalnut(db.run('INSERT INTO t VALUES (2)'), 'WALNUT_CLOSED');
    await expectRejectsWalnut(db.exec('INSERT INTO t VALUES (3)'), 'WALNUT_CLOSED');
    await expectRejectsWalnut(db.transaction((tx) => tx.run('INSERT INTO t VALUES (4)')), 'WALNUT_CLOSED');
    await db.close();
    expect(db.open).toBe(false);
    const again = await openDatabase(path.join(dir, 'closed-under.db'));
    try {
      expect(await again.all('SELECT v FROM t')).toEqual([{ v: 1 }]);
    } finally {
      await again.close();
    }
  });
});
