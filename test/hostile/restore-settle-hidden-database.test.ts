// Hostile: a walnut open of app.db beside another tool's hidden database named as restore names
// its temporary files, `.app.db.restore-<12 hex>`, with a -wal of its own (SQLite names it
// `.app.db.restore-<hex>-wal`, as restore named its asides). Every open settles what dead
// restores left (io/restore-asides.ts): it took that file for a dead restore's (its byte 0 not
// locked: SQLite never locks it) and that -wal for an aside, linked it over app.db's -wal, and
// removed the hidden database: `walnut checkpoint app.db` then wrote the other database's page 1
// into app.db (sqlite3 saw the table `other` and lost `t`), and the other database was gone.
// Now asides are named `.app.db.restore-<hex>.aside-wal` (never a companion name SQLite gives),
// and a file at a temporary name with a -wal, -shm or -journal of its own is a database someone
// opened there: left alone. The same holds for a dead restore's file opened with sqlite3.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { spawnOutput } from '../helpers/children';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
const sqlite = (db: string, sql: string): string => execFileSync('sqlite3', [db, sql], { encoding: 'utf8' }).trim();

describe('a walnut open beside a hidden database named like a restore\'s temporary file', () => {
  it('moves and removes nothing of it, and app.db stays its own', async () => {
    const db = path.join(dir, 'app.db');
    const hidden = path.join(dir, '.app.db.restore-0123456789ab');
    execFileSync('python3', ['-c', `
import os, sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute('PRAGMA journal_mode=WAL')
c.execute('CREATE TABLE t(x)')
c.execute("INSERT INTO t VALUES ('app')")
c.close()
c = sqlite3.connect(sys.argv[2], isolation_level=None)
c.execute('PRAGMA journal_mode=WAL'); c.execute('PRAGMA wal_autocheckpoint=0')
c.execute('CREATE TABLE other(y)')
for i in range(3): c.execute("INSERT INTO other VALUES ('precious')")
os._exit(0)
`, db, hidden]);
    const before = fs.readdirSync(dir).sort();
    expect(before).toEqual(['.app.db.restore-0123456789ab', '.app.db.restore-0123456789ab-shm', '.app.db.restore-0123456789ab-wal', 'app.db']);

    const r = await spawnOutput(process.execPath, [bin, 'checkpoint', db]);
    expect(r.status, r.stderr).toBe(0);

    // the hidden database and its -wal, where they were; app.db its own
    expect(fs.readdirSync(dir).filter((n) => n.startsWith('.')).sort()).toEqual(before.filter((n) => n.startsWith('.')));
    expect(sqlite(db, "SELECT group_concat(x) FROM t; PRAGMA integrity_check")).toBe('app\nok');
    expect(sqlite(db, "SELECT count(*) FROM sqlite_master WHERE name = 'other'")).toBe('0');
    expect(sqlite(hidden, 'SELECT count(*) FROM other; PRAGMA integrity_check')).toBe('3\nok');
  }, 60_000);
});
