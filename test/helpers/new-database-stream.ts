// The stream of "the new database" that the restore --force tests put over an old one: 7 rows of
// its own (who = 'new'), written by SQLite (better-sqlite3, WAL mode) and exported by the walnut
// CLI, so each test tells the new database from the old one by its rows alone.
import * as path from 'node:path';

import { spawnOutput } from './children';
import { Database } from './sqlite';

const WALNUT = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');

/** DIR/new.ark: the export of DIR/new.db, 7 rows 'new' (each with a 500-byte blob when `blobs`). */
export async function newDatabaseStream(dir: string, blobs: boolean): Promise<string> {
  const source = path.join(dir, 'new.db');
  const writer = new Database(source);
  writer.pragma('journal_mode = WAL');
  writer.exec(blobs ? 'CREATE TABLE t(id INTEGER PRIMARY KEY, who TEXT, v BLOB)' : 'CREATE TABLE t(id INTEGER PRIMARY KEY, who TEXT)');
  const insert = writer.prepare(blobs ? "INSERT INTO t(who, v) VALUES ('new', randomblob(500))" : "INSERT INTO t(who) VALUES ('new')");
  for (let i = 0; i < 7; i++) insert.run();
  writer.close();
  const ark = path.join(dir, 'new.ark');
  const r = await spawnOutput(process.execPath, [WALNUT, 'export', source, '-o', ark]);
  if (r.status !== 0) throw new Error(`walnut export ${source} failed (${r.status}): ${r.stderr}`);
  return ark;
}
