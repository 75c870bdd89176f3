// A primary's SQLite writer that keeps every commit in the WAL (its checkpoints off, the WAL
// restarted empty before the first), for the replication tests of a primary restarted beside
// it; and what a reader of a replica sees.
import { Database } from './sqlite';

/** A better-sqlite3 connection on `file` in WAL mode, its auto-checkpoint off, holding `createSql`'s tables. */
export function walKeepingWriter(file: string, createSql: string): InstanceType<typeof Database> {
  const writer = new Database(file);
  writer.pragma('journal_mode = WAL');
  writer.pragma('wal_autocheckpoint = 0'); // the WAL keeps every commit (no checkpoint of SQLite's)
  writer.exec(createSql);
  writer.pragma('wal_checkpoint(TRUNCATE)');
  return writer;
}

/** Rows of table t and the integrity check as a reader (better-sqlite3, read-only) sees them now. */
export function readerSees(file: string): { rows: number; integrity: string } {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const rows = (db.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n;
    return { rows, integrity: db.pragma('integrity_check', { simple: true }) as string };
  } finally {
    db.close();
  }
}
