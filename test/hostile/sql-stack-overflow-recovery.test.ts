// SQLite's wasm stack running out (V8's RangeError "Maximum call stack size exceeded" unwinding
// SQLite's frames: sql-deep-statement.test.ts) while a statement RUNS, not only while it is
// prepared: LIKE and GLOB match a pattern recursively, one level per wildcard, so a pattern of
// 24,000 `%a` (within SQLite's LIKE pattern length limit, 50,000) overflows in the step (native
// SQLite matches it). The abandoned frames did not give back their part of Emscripten's shadow
// stack (the stack pointer stayed ~92 KB lower each time), so from the fourth or so overflow on
// the shadow stack ran over the module's static data and every later call of that connection
// failed with a wasm RuntimeError ("table index is out of bounds"), not a WalnutError; a deep
// statement refused while prepared left 2 KB each, and the 252nd broke the connection alike.
// And the abandoned statement was then reset as if it had succeeded: an UPDATE that had changed
// 5 of its 10 rows when it overflowed committed those 5 and rejected (through run(), exec(),
// a caught tx.run() inside transaction()). Asserted: each such call rejects WALNUT_SQL, reason
// StackOverflow, however many times; nothing of the failed statement is written; the database
// goes on (writes, reads on read connections, integrity_check ok; sqlite3 agrees after close).
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { openDatabase } from '../../lib/sql';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const WILDCARDS = 24_000;
const pattern = '%a'.repeat(WILDCARDS) + '%';
const text = 'a'.repeat(WILDCARDS);
// rows 1..5 are updated before row 6's LIKE overflows
const update = (set: string): string => `UPDATE t SET x = ${set} WHERE CASE WHEN id <= 5 THEN 1 ELSE v LIKE '${pattern}' END`;
const deep = `SELECT ${Array.from({ length: 20_000 }, (_, i) => i).join('+')} AS s`;

function cli(file: string, sql: string): string {
  return execFileSync('sqlite3', [file, sql], { encoding: 'utf8' }).trim();
}

describe('walnut/sql: the wasm stack running out while a statement runs', () => {
  it('every verb rejects WALNUT_SQL (StackOverflow) each time, nothing of the failed statement is written, the connections go on', async () => {
    const file = path.join(dir, 'step.db');
    const db = await openDatabase(file);
    try {
      await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, x INTEGER NOT NULL DEFAULT 0)');
      await db.run('WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 10) INSERT INTO t(id, v) SELECT i, ? FROM c', [text]);
      for (let i = 0; i < 8; i++) {
        await expectRejectsWalnut(db.run(update('x + 1')), 'WALNUT_SQL', { reason: 'StackOverflow' });
        await expectRejectsWalnut(db.exec(update('x + 10')), 'WALNUT_SQL', { reason: 'StackOverflow' });
        // a query on a read connection, and on the writer (changes(): writer only)
        await expectRejectsWalnut(db.get('SELECT count(*) AS n FROM t WHERE v LIKE ?', [pattern]), 'WALNUT_SQL', { reason: 'StackOverflow' });
        await expectRejectsWalnut(db.get('SELECT count(*) AS n, changes() AS c FROM t WHERE v GLOB ?', ['*a'.repeat(WILDCARDS) + '*']), 'WALNUT_SQL', { reason: 'StackOverflow' });
        await expectRejectsWalnut(
          db.transaction(async (tx) => {
            await tx.run("INSERT INTO t(id, v) VALUES (100, 'in the transaction')");
            await tx.run(update('x + 100'));
          }),
          'WALNUT_SQL',
          { reason: 'StackOverflow' },
        );
        await db.run('INSERT INTO t(v) VALUES (?)', [`after ${i}`]);
      }
      expect(await db.all('SELECT id FROM t WHERE x <> 0 OR id = 100')).toEqual([]);
      expect(await db.get("SELECT count(*) AS n FROM t WHERE v LIKE 'after %'")).toEqual({ n: 8 });
      expect(await db.get('SELECT count(*) AS n, sum(x) AS s, changes() AS c FROM t')).toEqual({ n: 18, s: 0, c: 1 });
      expect(await db.get('PRAGMA integrity_check')).toEqual({ integrity_check: 'ok' });
      // a LIKE that fits the stack still answers
      expect(await db.get('SELECT count(*) AS n FROM t WHERE v LIKE ?', ['%a'.repeat(1000) + '%'])).toEqual({ n: 10 });
    } finally {
      await db.close();
    }
    expect(cli(file, 'PRAGMA integrity_check; SELECT count(*), sum(x) FROM t')).toBe('ok\n18|0');
  });

  it('a statement too deep to prepare, 300 times over: WALNUT_SQL (StackOverflow) each time, the connection goes on', async () => {
    const file = path.join(dir, 'prepare.db');
    const db = await openDatabase(file, { readConnections: 0 });
    try {
      await db.exec('CREATE TABLE t(x)');
      for (let i = 0; i < 300; i++) await expectRejectsWalnut(db.get(deep), 'WALNUT_SQL', { reason: 'StackOverflow' });
      await db.run('INSERT INTO t VALUES (1)');
      expect(await db.all('SELECT x FROM t')).toEqual([{ x: 1 }]);
      expect(await db.get('PRAGMA integrity_check')).toEqual({ integrity_check: 'ok' });
    } finally {
      await db.close();
    }
  });
});
