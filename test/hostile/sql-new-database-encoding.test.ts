// The page 1 walnut writes into a new (empty) database file leaves the schema format (offset 44)
// and the text encoding (offset 56) at 0, as SQLite's own new database (btree.c newDatabase(),
// then PRAGMA journal_mode=WAL) does: SQLite writes both with the database's first CREATE, and
// only when the schema format is still 0. walnut wrote 4 and 1 (UTF-8), so a `PRAGMA
// encoding='UTF-16le'` before the first table (legal on an empty database) was taken by SQLite,
// which then stored the schema and the rows in UTF-16 under a header saying UTF-8: walnut/sql
// read them back, and sqlite3, better-sqlite3 and python3 failed "malformed database schema (t)"
// on every statement. So too for an empty file that walnut's open() filled and SQLite then used.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect, test } from 'vitest';

import { open } from '../../lib/index';
import { openDatabase } from '../../lib/sql';
import { pythonSqlite } from '../helpers/children';
import { Database as Sqlite } from '../helpers/sqlite';
import { sqliteIntegrity } from '../helpers/sqlite-db';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

/** The header fields SQLite leaves unset in a new database, as read from `file`. */
function unsetFields(file: string): { schemaFormat: number; textEncoding: number } {
  const head = fs.readFileSync(file).subarray(0, 100);
  return { schemaFormat: head.readUInt32BE(44), textEncoding: head.readUInt32BE(56) };
}

/** What native SQLite (better-sqlite3) reads from `file`: its encoding, t's rows, integrity_check. */
function nativeView(file: string): { encoding: unknown; rows: unknown; integrity: string[] } {
  const db = new Sqlite(file, { readonly: true });
  try {
    return { encoding: db.pragma('encoding', { simple: true }), rows: db.prepare('SELECT s FROM t ORDER BY rowid').all(), integrity: sqliteIntegrity(file) };
  } catch (e) {
    return { encoding: null, rows: (e as Error).message, integrity: [] };
  } finally {
    db.close();
  }
}

test('a new database\'s page 1 is SQLite\'s: schema format and text encoding unset, as PRAGMA journal_mode=WAL leaves an empty file', async () => {
  const made = path.join(dir, 'by-sqlite.db');
  fs.writeFileSync(made, '');
  await pythonSqlite(made, "c.execute('PRAGMA journal_mode=WAL')");
  const byWalnut = path.join(dir, 'by-walnut.db');
  fs.writeFileSync(byWalnut, '');
  const store = await open(byWalnut);
  await store.close();
  expect(unsetFields(made)).toEqual({ schemaFormat: 0, textEncoding: 0 });
  expect(unsetFields(byWalnut)).toEqual(unsetFields(made));
});

test.each(['UTF-16le', 'UTF-16be'])("walnut/sql: PRAGMA encoding='%s' before the first table makes a database sqlite3 reads", async (encoding) => {
  const file = path.join(dir, `sql-${encoding}.db`);
  const db = await openDatabase(file);
  await db.exec(`PRAGMA encoding='${encoding}'`);
  await db.exec('CREATE TABLE t(s TEXT)');
  await db.run('INSERT INTO t VALUES (?)', ['ω 🌰']);
  expect(await db.get('PRAGMA encoding')).toEqual({ encoding });
  await db.close();
  expect(nativeView(file)).toEqual({ encoding, rows: [{ s: 'ω 🌰' }], integrity: ['ok'] });
  const again = await openDatabase(file); // and walnut/sql reads what it wrote
  expect(await again.all('SELECT s FROM t')).toEqual([{ s: 'ω 🌰' }]);
  await again.close();
});

test("an empty file walnut's open() filled: python3's sqlite3 sets UTF-16 before its first table and reads it back", async () => {
  const file = path.join(dir, 'filled.db');
  fs.writeFileSync(file, '');
  const store = await open(file, { keepWal: true });
  await store.close();
  const out = await pythonSqlite(file, "c.execute(\"PRAGMA encoding='UTF-16le'\")\nc.execute('CREATE TABLE t(s TEXT)')\nc.execute(\"INSERT INTO t VALUES ('ω')\")");
  expect(out).toBe('');
  expect(nativeView(file)).toEqual({ encoding: 'UTF-16le', rows: [{ s: 'ω' }], integrity: ['ok'] });
});
