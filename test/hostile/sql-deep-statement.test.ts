// A statement nested deeper than SQLite's stack in wasm can take (wa-sqlite is built with
// SQLITE_MAX_EXPR_DEPTH=0: no "expression tree is too large" refusal, so a long chain of
// `+` recurses until the wasm stack runs out): the call rejected with a RangeError ("Maximum
// call stack size exceeded"), not a WalnutError, and the statement SQLite had half-built stayed
// allocated, so close() rejected with wa-sqlite's SQLiteError ("unable to close due to
// unfinalized statements"). Now the call is WALNUT_SQL (reason StackOverflow), the connection
// goes on, a transaction around it rolls back, and close() resolves.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { openDatabase } from '../../lib/sql';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const deep = `SELECT ${Array.from({ length: 20_000 }, (_, i) => i).join('+')} AS s`;

describe('walnut/sql: a statement too deep for the wasm stack', () => {
  for (const readConnections of [0, 2]) {
    it(`is WALNUT_SQL (StackOverflow) from every verb; the database goes on and closes (readConnections ${readConnections})`, async () => {
      const db = await openDatabase(path.join(dir, `deep-${readConnections}.db`), { readConnections });
      try {
        await db.exec('CREATE TABLE t(x)');
        await db.run('INSERT INTO t VALUES (1)');
        await expectRejectsWalnut(db.get(deep), 'WALNUT_SQL', { reason: 'StackOverflow' });
        await expectRejectsWalnut(db.all(deep), 'WALNUT_SQL', { reason: 'StackOverflow' });
        await expectRejectsWalnut(db.run(`INSERT INTO t ${deep}`), 'WALNUT_SQL', { reason: 'StackOverflow' });
        await expectRejectsWalnut(db.exec(`INSERT INTO t VALUES (2); INSERT INTO t ${deep}`), 'WALNUT_SQL', { reason: 'StackOverflow' });
        await expectRejectsWalnut(db.prepare(deep), 'WALNUT_SQL', { reason: 'StackOverflow' });
        await expectRejectsWalnut(
          db.transaction(async (tx) => {
            await tx.run('INSERT INTO t VALUES (3)');
            await tx.get(deep);
          }),
          'WALNUT_SQL',
          { reason: 'StackOverflow' },
        );
        await db.run('INSERT INTO t VALUES (4)');
        // exec's first statement ran before the deep one (as SQLite's exec does); the transaction rolled back
        expect(await db.all('SELECT x FROM t ORDER BY x')).toEqual([{ x: 1 }, { x: 2 }, { x: 4 }]);
        expect(await db.get('PRAGMA integrity_check')).toEqual({ integrity_check: 'ok' });
      } finally {
        await db.close();
      }
    });
  }
});
