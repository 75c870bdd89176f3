// SQLite's wasm stack running out WHILE SQLITE LOADS THE SCHEMA: python3's sqlite3 (native
// stack) writes a view nested 30,000 COLLATEs deep (SQLite's expression depth limit does not
// count them) before a UNIQUE index on t(x); walnut/sql's next statement reloads the schema and
// overflows at the view. SQLite kept the half it had loaded (no index) and its schema-loading
// flag set, so it never loaded the schema again: an INSERT of a duplicate succeeded, and
// sqlite3's integrity_check then failed ("row 2 missing from index t_x"); a read connection
// went on the same way. Asserted: every call, on the writer and the read connections, in and
// out of a transaction, rejects WALNUT_SQL, reason SchemaStackOverflow, sqliteCode 11
// (SQLITE_CORRUPT, sqlite3's "malformed database schema"); a transaction it hit is rolled
// back; no duplicate is ever written; once the view is dropped the same database answers with
// the whole schema (the UNIQUE index enforced); a database opened with the view in its schema
// is refused the same way; sqlite3's integrity_check stays ok.
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { openDatabase } from '../../lib/sql';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const helper = path.join(__dirname, '../helpers/sqlite-deep-schema.py');
const DEPTH = '30000';
const schemaOverflow = { reason: 'SchemaStackOverflow', sqliteCode: 11 };

function python(...args: string[]): void {
  expect(execFileSync('python3', [helper, ...args], { encoding: 'utf8' }).trim()).toBe('ok');
}

function cli(file: string, sql: string): string {
  return execFileSync('sqlite3', [file, sql], { encoding: 'utf8' }).trim();
}

describe('walnut/sql: the wasm stack running out while SQLite loads the schema', () => {
  for (const readConnections of [0, 2]) {
    it(`every call rejects SchemaStackOverflow, no duplicate is written, the whole schema once healed (readConnections ${readConnections})`, async () => {
      const file = path.join(dir, `reload-${readConnections}.db`);
      python('init', file);
      const db = await openDatabase(file, { readConnections });
      try {
        expect(await db.get('SELECT count(*) AS n FROM t')).toEqual({ n: 1 });
        python('deepen', file, DEPTH);
        // a transaction the overflow hits counts as rolled back: its later calls are not run
        let refused: unknown = null;
        await expectRejectsWalnut(
          db.transaction(async (tx) => {
            await tx.run('INSERT INTO t VALUES (1)').catch(() => undefined);
            await tx.run('INSERT INTO t VALUES (3)').catch((e: unknown) => (refused = e));
          }),
          'WALNUT_SQL',
          schemaOverflow,
        );
        expect(refused).toMatchObject({ code: 'WALNUT_INVALID_ARGUMENT', reason: 'transaction' });
        for (let i = 0; i < 3; i++) {
          await expectRejectsWalnut(db.run('INSERT INTO t VALUES (1)'), 'WALNUT_SQL', schemaOverflow);
          await expectRejectsWalnut(db.get('SELECT count(*) AS n FROM t'), 'WALNUT_SQL', schemaOverflow);
          await expectRejectsWalnut(db.exec('INSERT INTO t VALUES (1)'), 'WALNUT_SQL', schemaOverflow);
          await expectRejectsWalnut(db.transaction((tx) => tx.run('INSERT INTO t VALUES (1)')), 'WALNUT_SQL', schemaOverflow);
        }
        expect(cli(file, 'PRAGMA integrity_check; SELECT count(*) FROM t')).toBe('ok\n1');
        python('heal', file);
        await expectRejectsWalnut(db.run('INSERT INTO t VALUES (1)'), 'WALNUT_SQL', { sqliteCode: 2067 }); // UNIQUE
        await db.run('INSERT INTO t VALUES (2)');
        expect(await db.all('SELECT x FROM t ORDER BY x')).toEqual([{ x: 1 }, { x: 2 }]);
        expect(await db.get('PRAGMA integrity_check')).toEqual({ integrity_check: 'ok' });
      } finally {
        await db.close();
      }
      expect(cli(file, 'PRAGMA integrity_check; SELECT group_concat(x) FROM t')).toBe('ok\n1,2');
    });
  }

  it('a database whose schema holds the entry is refused at open, the same way; opened once healed', async () => {
    const file = path.join(dir, 'open.db');
    python('init', file);
    python('deepen', file, DEPTH);
    await expectRejectsWalnut(openDatabase(file), 'WALNUT_SQL', schemaOverflow);
    python('heal', file);
    const db = await openDatabase(file);
    try {
      await expectRejectsWalnut(db.run('INSERT INTO t VALUES (1)'), 'WALNUT_SQL', { sqliteCode: 2067 });
      expect(await db.get('SELECT count(*) AS n FROM t')).toEqual({ n: 1 });
    } finally {
      await db.close();
    }
    expect(cli(file, 'PRAGMA integrity_check')).toBe('ok');
  });
});
