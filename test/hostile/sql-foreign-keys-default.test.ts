// walnut/sql enforces foreign keys unless told otherwise, as better-sqlite3 does (it is built
// with SQLITE_DEFAULT_FOREIGN_KEYS=1): SQLite in wasm left them off, so code moved from
// better-sqlite3 silently stored orphan rows and an ON DELETE CASCADE cascaded nothing.
// `PRAGMA foreign_keys=OFF` through exec() still turns them off. Compared with better-sqlite3.
import * as path from 'node:path';

import Database from 'better-sqlite3';
import { expect, test } from 'vitest';

import { openDatabase } from '../../lib/sql';
import { WalnutError } from '../../lib/errors';
import { tmpDir } from '../helpers/tmp';

const SCHEMA = ['CREATE TABLE p(id INTEGER PRIMARY KEY)', 'CREATE TABLE c(id INTEGER PRIMARY KEY, pid INTEGER REFERENCES p(id) ON DELETE CASCADE)', 'INSERT INTO p VALUES (1), (2)', 'INSERT INTO c(pid) VALUES (1), (2), (2)'];
const STEPS = ['INSERT INTO c(pid) VALUES (3)', 'DELETE FROM p WHERE id = 2', 'PRAGMA foreign_keys = OFF', 'INSERT INTO c(pid) VALUES (4)', 'DELETE FROM p WHERE id = 1'];

test('foreign keys are enforced by default, as in better-sqlite3', async () => {
  const db = await openDatabase(path.join(tmpDir(), 'foreign-keys.db'));
  const native = new Database(':memory:');
  try {
    const got: unknown[] = [];
    const expected: unknown[] = [];
    for (const sql of SCHEMA) {
      await db.exec(sql);
      native.exec(sql);
    }
    got.push(await db.get('PRAGMA foreign_keys'));
    expected.push(native.prepare('PRAGMA foreign_keys').get());
    for (const sql of STEPS) {
      got.push([sql, await db.exec(sql).then(() => 'ok', (e: unknown) => (e instanceof WalnutError ? `${e.code} ${e.sqliteCode}` : String(e))), await db.all('SELECT pid FROM c ORDER BY id')]);
      let outcome = 'ok';
      try {
        native.exec(sql);
      } catch (e) {
        outcome = `WALNUT_SQL ${(e as { code: string }).code === 'SQLITE_CONSTRAINT_FOREIGNKEY' ? 787 : (e as { code: string }).code}`;
      }
      expected.push([sql, outcome, native.prepare('SELECT pid FROM c ORDER BY id').all()]);
    }
    expect(got).toEqual(expected);
  } finally {
    native.close();
    await db.close();
  }
});
