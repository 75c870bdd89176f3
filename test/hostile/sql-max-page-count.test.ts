// walnut/sql with option maxPageCount and a user's `PRAGMA max_page_count` through exec() that
// raises SQLite's limit above the store's: a transaction growing the database past the store's
// limit was refused by the store at its commit point, WALNUT_INVALID_ARGUMENT (reason dbSize),
// where the README (and SQLite) promise SQLITE_FULL. Now SQLITE_FULL (WALNUT_SQL, sqliteCode
// 13), that transaction alone failing, the database going on.
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { openDatabase } from '../../lib/sql';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

describe('walnut/sql past the store\'s maxPageCount after PRAGMA max_page_count raised SQLite\'s', () => {
  it('run() and transaction() get SQLITE_FULL; nothing of them is written; the database goes on', async () => {
    const file = path.join(dir, 'raised.db');
    const db = await openDatabase(file, { maxPageCount: 8 });
    let rows = 0;
    try {
      await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, pad BLOB)');
      await db.exec('PRAGMA max_page_count = 100000');
      let refused: unknown = null;
      for (let i = 0; i < 20 && refused === null; i++) {
        await db.run('INSERT INTO t(pad) VALUES (zeroblob(3000))').then(() => rows++, (e: unknown) => (refused = e));
      }
      await expectRejectsWalnut(Promise.reject(refused), 'WALNUT_SQL', { sqliteCode: 13 });
      await expectRejectsWalnut(
        db.transaction(async (tx) => {
          await tx.run('INSERT INTO t(pad) VALUES (zeroblob(10))');
          await tx.run('INSERT INTO t(pad) VALUES (zeroblob(3000))');
        }),
        'WALNUT_SQL',
        { sqliteCode: 13 },
      );
      expect(await db.get('SELECT count(*) AS n FROM t')).toEqual({ n: rows });
      await db.run('DELETE FROM t WHERE id > 1');
      await db.run('INSERT INTO t(pad) VALUES (zeroblob(10))');
      rows = 2;
      expect(await db.get('SELECT count(*) AS n FROM t')).toEqual({ n: rows });
    } finally {
      await db.close();
    }
    expect(execFileSync('sqlite3', [file, 'PRAGMA integrity_check; SELECT count(*) FROM t'], { encoding: 'utf8' })).toBe(`ok\n${rows}\n`);
  });
});
