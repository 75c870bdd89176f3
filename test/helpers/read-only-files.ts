// What the read-only tests share: a WAL-mode database whose rows are only in its -wal, and the
// sha256 of a database file and its -wal, by which they check that nothing was written.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { openDatabase } from '../../lib/sql';

let made = 0;

/** A WAL-mode database in `dir`: its table in the file, 5 rows only in its -wal (no connection left open). */
export async function walDatabaseIn(dir: string): Promise<string> {
  const file = path.join(dir, `ro${made++}.db`);
  const db = await openDatabase(file, { keepWal: true });
  await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)');
  await db.store.checkpoint('passive');
  for (let i = 0; i < 5; i++) await db.run('INSERT INTO t(v) VALUES (?)', [`row ${i}`]);
  await db.close();
  return file;
}

/** The sha256 of `file` and of its -wal ('absent' for one that is not there). */
export function fileAndWalSha256(file: string): { db: string; wal: string } {
  const hash = (f: string): string => (fs.existsSync(f) ? createHash('sha256').update(fs.readFileSync(f)).digest('hex') : 'absent');
  return { db: hash(file), wal: hash(`${file}-wal`) };
}
