// Inside db.transaction(fn), statements that end or nest the transaction are transaction()'s
// own: a COMMIT sent through tx committed the writes and then made transaction() reject (its own
// COMMIT found no transaction), so the caller was told "failed" about committed rows. So did
// one behind empty statements (`;COMMIT`: SQLite skips them and runs the COMMIT), which the check
// of the text's first word let through; `;ROLLBACK` left fn running in autocommit, its later
// writes committed one by one while transaction() rejected.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { openDatabase } from '../../lib/sql';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

describe('transaction control inside transaction()', () => {
  it('COMMIT / END / ROLLBACK / BEGIN through tx are refused before they run; the transaction rolls back whole', async () => {
    const file = path.join(dir, 'control.db');
    const db = await openDatabase(file, { readConnections: 0 });
    try {
      await db.exec('CREATE TABLE t(v)');
      const statements = [
        (tx: Queryable) => tx.exec('COMMIT'),
        (tx: Queryable) => tx.exec("INSERT INTO t VALUES ('same exec'); COMMIT"),
        (tx: Queryable) => tx.exec('  /* why */ -- not\n end transaction'),
        (tx: Queryable) => tx.run('ROLLBACK'),
        (tx: Queryable) => tx.all('rollback transaction'),
        (tx: Queryable) => tx.get('BEGIN'),
        (tx: Queryable) => tx.run(';COMMIT'),
        (tx: Queryable) => tx.get(' ; -- empty\n ;ROLLBACK'),
        (tx: Queryable) => tx.all('/* x */;;begin'),
      ];
      for (const [i, statement] of statements.entries()) {
        await expectRejectsWalnut(
          db.transaction(async (tx) => {
            await tx.run('INSERT INTO t VALUES (?)', [`row ${i}`]);
            await statement(tx);
          }),
          'WALNUT_INVALID_ARGUMENT',
          { reason: 'transaction' },
        );
      }
      // savepoints nest, ROLLBACK TO one is allowed, and a transaction that uses them commits
      await db.transaction(async (tx) => {
        await tx.exec("SAVEPOINT a; INSERT INTO t VALUES ('dropped'); ROLLBACK TO a; ROLLBACK TRANSACTION TO SAVEPOINT a; RELEASE a");
        await tx.run("INSERT INTO t VALUES ('kept')");
      });
      // the connection is usable, outside a transaction, and holds exactly the committed row
      await db.exec("BEGIN; INSERT INTO t VALUES ('outside'); COMMIT");
      expect(await db.all('SELECT v FROM t ORDER BY rowid')).toEqual([{ v: 'kept' }, { v: 'outside' }]);
    } finally {
      await db.close();
    }
    const s = new Database(file, { readonly: true });
    expect(s.prepare('SELECT v FROM t ORDER BY rowid').pluck().all()).toEqual(['kept', 'outside']);
    s.close();
  });
});

type Queryable = Parameters<Parameters<Awaited<ReturnType<typeof openDatabase>>['transaction']>[0]>[0];
