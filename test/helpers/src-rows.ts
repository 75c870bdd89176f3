// Databases of table t(src TEXT, i INTEGER) for the close tests: which connection inserted a row
// (src) and its number (i), so sqlite3 can count each connection's rows afterwards.
import { openDatabase } from '../../lib/sql';

/** Creates `file` with table t(src, i) through walnut/sql and closes it (no -wal left). */
export async function newSrcDatabase(file: string): Promise<string> {
  const d = await openDatabase(file);
  await d.exec('CREATE TABLE t(src TEXT, i INTEGER)');
  await d.close();
  return file;
}

/** SQL that inserts `rows` rows (src, 1..rows) into t. */
export function insertSrcRowsSql(src: string, rows: number): string {
  return `WITH RECURSIVE s(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM s WHERE v < ${rows}) INSERT INTO t(src, i) SELECT '${src}', v FROM s`;
}
