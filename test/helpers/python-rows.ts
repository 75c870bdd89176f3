// Rows committed by python3's sqlite3, one commit each, for the export --follow tests: a writer
// in another process (SQLite's own), in WAL mode, whose commits a follow must carry.
import { execFileSync } from 'node:child_process';

/** `n` commits of one row (100 random bytes) to table t of `db` (made in WAL mode when missing). */
export function commitRows(db: string, n: number): void {
  execFileSync('python3', ['-c', `
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute('PRAGMA journal_mode=WAL')
c.execute('CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v BLOB)')
for i in range(${n}): c.execute('INSERT INTO t(v) VALUES (randomblob(100))')
c.close()
`, db]);
}
