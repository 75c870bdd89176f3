// Inside db.transaction(fn), a statement can fail with an error on which SQLite rolls the whole
// transaction back itself and returns to autocommit: SQLITE_FULL of a statement without a
// statement journal (a one-row INSERT past max_page_count), SQLITE_INTERRUPT (a run stopped for
// running out of wasm stack: sql-stack-overflow-recovery), SQLITE_IOERR, SQLITE_NOMEM. When fn
// caught that error and went on, its next statements ran in autocommit, each committed at once:
// fn then threw ("roll everything back") or returned, transaction() rejected ("cannot commit -
// no transaction is active"), and the rows fn wrote after the failure were in the database (as
// better-sqlite3, whose transaction functions run the same way, leaves them). Now the
// transaction stays ended: tx's later calls reject WALNUT_INVALID_ARGUMENT (reason
// transaction) without running, and transaction() rejects with the failure that rolled it back
// (or fn's own error, when fn threw); nothing of it is written.
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { openDatabase } from '../../lib/sql';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

function cli(file: string, sql: string): string {
  return execFileSync('sqlite3', [file, sql], { encoding: 'utf8' }).trim();
}

describe('transaction(): SQLite rolled the transaction back under fn', () => {
  it('SQLITE_FULL caught by fn: its later statements are refused, transaction() rejects with the SQLITE_FULL, nothing of it is written', async () => {
    const file = path.join(dir, 'full.db');
    const db = await openDatabase(file, { maxPageCount: 40 });
    try {
      await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v)');
      await db.run("INSERT INTO t(v) VALUES ('before')");
      for (const end of ['returns', 'throws'] as const) {
        const refused: unknown[] = [];
        const outcome = await db
          .transaction(async (tx) => {
            await tx.run("INSERT INTO t(v) VALUES ('first')");
            await expectRejectsWalnut(tx.run('INSERT INTO t(v) VALUES (?)', [Buffer.alloc(400_000)]), 'WALNUT_SQL', { sqliteCode: 13 });
            for (const call of [() => tx.run("INSERT INTO t(v) VALUES ('after')"), () => tx.exec("INSERT INTO t(v) VALUES ('after exec')"), () => tx.get('SELECT count(*) AS n FROM t')]) {
              refused.push(await call().then(() => 'ran', (err: unknown) => err));
            }
            if (end === 'throws') throw new Error('roll it all back');
            return 'done';
          })
          .then(() => 'resolved', (err: unknown) => err);
        // fn's own error when it threw, else the SQLITE_FULL that rolled the transaction back
        if (end === 'throws') expect(outcome).toMatchObject({ message: 'roll it all back' });
        else expect(outcome).toMatchObject({ code: 'WALNUT_SQL', sqliteCode: 13, message: expect.stringMatching(/full/) });
        for (const r of refused) expect(r).toMatchObject({ code: 'WALNUT_INVALID_ARGUMENT', reason: 'transaction' });
        expect(await db.all('SELECT v FROM t ORDER BY id')).toEqual([{ v: 'before' }]);
      }
      // the writer is usable, in autocommit
      await db.transaction(async (tx) => tx.run("INSERT INTO t(v) VALUES ('next')"));
      await db.run("INSERT INTO t(v) VALUES ('last')");
    } finally {
      await db.close();
    }
    expect(cli(file, 'PRAGMA integrity_check; SELECT group_concat(v) FROM t')).toBe('ok\nbefore,next,last');
  });

  it('a run stopped for running out of wasm stack (SQLITE_INTERRUPT rolls back) caught by fn: the same', async () => {
    const file = path.join(dir, 'interrupt.db');
    const db = await openDatabase(file);
    const pattern = '%a'.repeat(24_000) + '%';
    try {
      await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)');
      await db.run('INSERT INTO t(v) VALUES (?)', ['a'.repeat(24_000)]);
      let after: unknown = null;
      await expectRejectsWalnut(
        db.transaction(async (tx) => {
          await tx.run("INSERT INTO t(v) VALUES ('first')");
          await expectRejectsWalnut(tx.run('DELETE FROM t WHERE v LIKE ?', [pattern]), 'WALNUT_SQL', { reason: 'StackOverflow' });
          after = await tx.run("INSERT INTO t(v) VALUES ('after')").catch((err: unknown) => err);
        }),
        'WALNUT_SQL',
        { reason: 'StackOverflow' },
      );
      expect(after).toMatchObject({ code: 'WALNUT_INVALID_ARGUMENT', reason: 'transaction' });
      expect(await db.get('SELECT count(*) AS n FROM t')).toEqual({ n: 1 });
    } finally {
      await db.close();
    }
    expect(cli(file, 'PRAGMA integrity_check; SELECT count(*) FROM t')).toBe('ok\n1');
  });
});
