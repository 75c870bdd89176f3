// walnut/sql parameters a caller can get wrong: every refusal is a WalnutError before the
// statement runs. A Uint8Array whose ArrayBuffer was transferred to a worker (detached) threw
// wa-sqlite's TypeError ("Cannot perform Construct on a detached ArrayBuffer"). An empty
// Uint8Array was bound as NULL (wa-sqlite passes sqlite3_malloc(0), a null pointer), where
// better-sqlite3 binds an empty blob: the row read back null instead of an empty Buffer.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { openDatabase } from '../../lib/sql';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

describe('walnut/sql parameters', () => {
  it('a detached Uint8Array is WALNUT_INVALID_ARGUMENT (reason params); an empty one is an empty blob, not NULL', async () => {
    const db = await openDatabase(path.join(dir, 'params.db'));
    try {
      await db.exec('CREATE TABLE t(v)');
      const buffer = new ArrayBuffer(16);
      const view = new Uint8Array(buffer, 4, 8);
      structuredClone(buffer, { transfer: [buffer] }); // detaches it, as postMessage(…, [buffer]) does
      await expectRejectsWalnut(db.run('INSERT INTO t VALUES (?)', [view]), 'WALNUT_INVALID_ARGUMENT', { reason: 'params' });
      await expectRejectsWalnut(db.get('SELECT ? AS v', { v: view } as never), 'WALNUT_INVALID_ARGUMENT', { reason: 'params' });
      await expectRejectsWalnut(db.transaction((tx) => tx.run('INSERT INTO t VALUES (?)', [view])), 'WALNUT_INVALID_ARGUMENT', { reason: 'params' });
      await db.run('INSERT INTO t VALUES (?)', [new Uint8Array(0)]);
      await db.run('INSERT INTO t VALUES (?)', [new Uint8Array(new SharedArrayBuffer(8), 2, 3).fill(7)]);
      expect(await db.all('SELECT typeof(v) AS type, hex(v) AS hex FROM t')).toEqual([
        { type: 'blob', hex: '' },
        { type: 'blob', hex: '070707' },
      ]);
      // read back as Buffers, the empty one too (better-sqlite3 gives the same)
      expect(await db.all('SELECT v FROM t')).toEqual([{ v: Buffer.alloc(0) }, { v: Buffer.from([7, 7, 7]) }]);
      expect(await db.get('SELECT ? IS NULL AS null_, length(?) AS n', [Buffer.alloc(0), Buffer.alloc(0)])).toEqual({ null_: 0, n: 0 });
    } finally {
      await db.close();
    }
  });
});
