// The "old databases" the restore tests restore over. oldWalDatabase: made by python3's sqlite3
// in WAL mode, 10 rows of ('old', 3,000 random bytes) checkpointed into the file and 20 more only
// in its -wal; the process ends without closing (os._exit), so the -wal and -shm stay as a killed
// writer leaves them and nothing is checkpointed at close. oneRowOldDatabase: SQLite
// (better-sqlite3) in WAL mode, t(id, who) with one row ('old'), closed (no -wal left).
import { execFileSync } from 'node:child_process';

import { Database } from './sqlite';

export function oneRowOldDatabase(db: string): void {
  const c = new Database(db);
  c.pragma('journal_mode = WAL');
  c.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, who TEXT); INSERT INTO t(who) VALUES ('old')");
  c.close();
}

export function oldWalDatabase(db: string): void {
  execFileSync('python3', ['-c', `
import os, sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute('PRAGMA journal_mode=WAL'); c.execute('PRAGMA wal_autocheckpoint=0')
c.execute('CREATE TABLE t(id INTEGER PRIMARY KEY, who TEXT, v BLOB)')
for i in range(10): c.execute("INSERT INTO t(who, v) VALUES ('old', randomblob(3000))")
c.execute('PRAGMA wal_checkpoint(TRUNCATE)')
for i in range(20): c.execute("INSERT INTO t(who, v) VALUES ('old', randomblob(3000))")
os._exit(0)
`, db]);
}
