// walnut/sql refuses a VACUUM that would change the page size; SQLite keeps the size asked for
// by PRAGMA page_size pending on the connection, which walnut/sql shares between callers, so
// every later VACUUM (anyone's) was refused too until someone set the size back by hand.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { openDatabase } from '../../lib/sql';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

describe('VACUUM after a refused page size', () => {
  it('the refusal leaves no pending page size behind: the next VACUUM runs and shrinks the file', async () => {
    const file = path.join(dir, 'vacuum.db');
    const db = await openDatabase(file, { pageSize: 8192 });
    try {
      await db.exec('CREATE TABLE t(v)');
      await db.transaction(async (tx) => {
        for (let i = 0; i < 200; i++) await tx.run('INSERT INTO t VALUES (?)', [Buffer.alloc(4000, i)]);
      });
      await expectRejectsWalnut(db.exec('PRAGMA page_size=4096; VACUUM'), 'WALNUT_INVALID_ARGUMENT', { reason: 'page_size' });
      await db.run('DELETE FROM t WHERE rowid > 10');
      const before = (await db.get('PRAGMA page_count')) as { page_count: number };
      await db.exec('VACUUM');
      const after = (await db.get('PRAGMA page_count')) as { page_count: number };
      expect(after.page_count).toBeLessThan(before.page_count / 4);
      expect(await db.get('PRAGMA page_size')).toEqual({ page_size: 8192 });
      expect(await db.get('SELECT count(*) AS n FROM t')).toEqual({ n: 10 });
    } finally {
      await db.close();
    }
    const s = new Database(file, { readonly: true });
    expect(s.pragma('integrity_check', { simple: true })).toBe('ok');
    expect(s.pragma('page_size', { simple: true })).toBe(8192);
    s.close();
  });
});
