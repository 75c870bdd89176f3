// walnut/sql's openDatabase() with open()'s option shareLane: its store is always opened with
// shareLane: false (every commit is conditional on its transaction's snapshot, which a shared
// commit lane cannot check), and any value the caller passed was dropped without a word:
// shareLane: true (asking for the lane it does not get), 'yes', 0, a Symbol all opened the
// database, where open() refuses a value that is not a boolean. Now anything but false (or
// leaving it out) is WALNUT_INVALID_ARGUMENT, reason shareLane, before any file is made;
// shareLane: false opens as before.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect, test } from 'vitest';

import { openDatabase } from '../../lib/sql';
import { tmpDir } from '../helpers/tmp';

test('openDatabase refuses shareLane other than false, before making any file; false opens', async () => {
  const dir = tmpDir();
  const file = path.join(dir, 'lane.db');
  for (const shareLane of [true, 'yes', 0, Symbol('lane')]) {
    await expect(openDatabase(file, { shareLane } as never)).rejects.toMatchObject({ name: 'WalnutError', code: 'WALNUT_INVALID_ARGUMENT', reason: 'shareLane' });
  }
  expect(fs.readdirSync(dir)).toEqual([]);
  const db = await openDatabase(file, { shareLane: false });
  try {
    await db.exec('CREATE TABLE t(x)');
    expect(await db.run('INSERT INTO t VALUES (1)')).toMatchObject({ changes: 1 });
  } finally {
    await db.close();
  }
});
