// walnut/sql's last_insert_rowid() across the reopen after SQLite's wasm stack ran out while it
// loaded the schema (SchemaStackOverflow: the connection is opened again on a fresh wasm
// instance, lib/sql/connection.ts reopen()). The fresh instance started at 0, where native
// SQLite's connection, never dropped, keeps the value: a caller's `INSERT .. VALUES
// (last_insert_rowid())` after the failure pointed at no row. Now the rowid is carried over:
//  - a failure in autocommit keeps the rowid the last statement left (a transaction()'s
//    committed INSERT's, not the one before its BEGIN), also across a reopen that fails first
//    (the view still there: python3's sqlite3 wrote it, test/helpers/sqlite-deep-schema.py);
//  - a failure inside a transaction the caller opened (BEGIN through exec()) loses the
//    transaction with the instance, its rows with it: the rowid is the one before its BEGIN,
//    never the lost row's (database.ts: last_insert_rowid() names no row that is not there).
// The transaction's failure is SQLite's schema load of a view the transaction creates itself
// (OP_ParseSchema), at a nesting the CREATE's own parse takes but the load inside a step does
// not (about 4,000 links; transaction()'s tx.exec() found no such nesting: its CREATE overflows
// itself from 3,630 on, and 3,620 loads, so its case, the same reopen, is not provoked here).
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { openDatabase, type Database, type Queryable } from '../../lib/sql';
import { spawnOutput } from '../helpers/children';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const helper = path.join(__dirname, '../helpers/sqlite-deep-schema.py');
const schemaOverflow = { reason: 'SchemaStackOverflow', sqliteCode: 11 };
/**
 * Nestings tried for a view that overflows in its schema load, not in its CREATE: about 4,000 in
 * this build, but the window is narrow and moves with how V8 compiled the wasm at that moment (a
 * fresh clone's CI run found none of 3,700-4,300 by hundreds), so every 25 from the middle out.
 */
const DEPTHS = Array.from({ length: 41 }, (_, i) => 4000 + (i % 2 === 0 ? 1 : -1) * Math.ceil(i / 2) * 25);
let n = 0;

/** The helper, awaited (never execFileSync: the store's event loop must run while sqlite3 waits for its locks). */
async function python(...args: string[]): Promise<void> {
  const r = await spawnOutput('python3', [helper, ...args]);
  expect(r.stderr).toBe('');
  expect(r.stdout.trim()).toBe('ok');
}

const lastRowid = async (db: Database): Promise<unknown> => (await db.get('SELECT last_insert_rowid() AS r'))!['r'];

/**
 * A database (t: the rows 1 and 10, last_insert_rowid() 2) on which `inTransaction` (it inserts
 * a row, rowid 3, then creates the view at `depth`) failed SchemaStackOverflow: tried at each
 * depth of DEPTHS on a new database until one whose view overflows in its schema load only (a
 * depth whose CREATE overflows itself, StackOverflow, or goes through is closed, rolled back).
 */
async function overflowedInTransaction(name: string, inTransaction: (db: Database, depth: number) => Promise<unknown>): Promise<Database | null> {
  for (const depth of DEPTHS) {
    const file = path.join(dir, `${name}-${n++}.db`);
    await python('init', file); // t(x): the row 1, rowid 1
    const db = await openDatabase(file, { readConnections: 0 });
    expect((await db.run('INSERT INTO t VALUES (10)')).lastInsertRowid).toBe(2);
    const e = await inTransaction(db, depth).then(() => null, (err: unknown) => err as { reason?: string });
    if (e?.reason === 'SchemaStackOverflow') {
      expect(e).toMatchObject({ code: 'WALNUT_SQL', ...schemaOverflow });
      return db;
    }
    await db.close();
  }
  return null; // the caller skips, saying so: nothing to check on this run
}

const createDeep = (q: Queryable, depth: number) => q.exec(`CREATE VIEW deep AS SELECT x${' COLLATE BINARY'.repeat(depth)} AS y FROM t`);

describe("walnut/sql: last_insert_rowid() across a schema overflow's reopen", () => {
  it('in autocommit: the last statement\'s rowid (a transaction()\'s committed INSERT), kept across a reopen that failed first', async () => {
    const file = path.join(dir, `autocommit-${n++}.db`);
    await python('init', file); // t(x): the row 1, rowid 1
    const db = await openDatabase(file, { readConnections: 0 });
    try {
      expect((await db.run('INSERT INTO t VALUES (10)')).lastInsertRowid).toBe(2);
      expect(await db.transaction((tx) => tx.run('INSERT INTO t VALUES (11)'))).toMatchObject({ lastInsertRowid: 3 });
      await python('deepen', file, '30000');
      await expectRejectsWalnut(db.run('INSERT INTO t VALUES (12)'), 'WALNUT_SQL', schemaOverflow);
      await expectRejectsWalnut(db.get('SELECT last_insert_rowid() AS r'), 'WALNUT_SQL', schemaOverflow); // (its reopen fails too)
      await python('heal', file);
      expect(await lastRowid(db)).toBe(3);
      // what a caller does with it: a row pointing at the last one inserted
      await db.run('INSERT INTO t VALUES (last_insert_rowid() * 100)');
      expect(await db.all('SELECT rowid AS id, x FROM t ORDER BY rowid')).toEqual([
        { id: 1, x: 1 },
        { id: 2, x: 10 },
        { id: 3, x: 11 },
        { id: 4, x: 300 },
      ]);
    } finally {
      await db.close();
    }
  });

  it('in a transaction the caller opened through exec(): the transaction is lost with the instance, the rowid the one before its BEGIN', async (ctx) => {
    const db = await overflowedInTransaction('exec', async (d, depth) => {
      await d.exec('BEGIN');
      expect((await d.run('INSERT INTO t VALUES (20)')).lastInsertRowid).toBe(3);
      await createDeep(d, depth);
    });
    if (db === null) {
      const why = `no nesting of ${DEPTHS[DEPTHS.length - 2]}-${DEPTHS[DEPTHS.length - 1]} overflowed in the schema load only on this run: the case was not provoked`;
      console.warn(why);
      ctx.skip(why);
      return;
    }
    try {
      expect(await lastRowid(db)).toBe(2);
      expect(await db.all('SELECT x FROM t ORDER BY rowid')).toEqual([{ x: 1 }, { x: 10 }]);
    } finally {
      await db.close();
    }
  });
});
