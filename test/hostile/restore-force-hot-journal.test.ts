// Hostile: `walnut restore new.ark app.db --force` over a rollback-journal database whose writer
// was killed mid-transaction (python3's sqlite3, SIGKILLed: its changed pages spilled into
// app.db, the hot app.db-journal the only way back). restore moved the -journal aside with the
// other companions; killed before its rename (an LD_PRELOAD shim SIGKILLs it before its 2nd
// change of a name: the journal aside, the rename not yet), it left app.db without its journal,
// and a sqlite3 that opened app.db first, before any walnut put the journal back, read the
// uncommitted transaction as the database (old:2, doomed:28, integrity ok: of the 30 committed rows).
// walnut cannot play a journal back; sqlite3 can. Now restore --force refuses a database with a
// hot journal (WALNUT_INVALID_ARGUMENT, reason HotJournal, exit 2), before anything is moved,
// telling the user to open it with sqlite3 first; sqlite3 then reads the 30 committed rows, and
// once it has rolled the journal back the restore replaces the database.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { spawnOutput } from '../helpers/children';
import { buildCrashAtRenameShim } from '../helpers/crash-at-rename-shim';
import { newDatabaseStream } from '../helpers/new-database-stream';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
const shim = buildCrashAtRenameShim(dir);

/** 30 rows committed, then a writer SIGKILLed inside a transaction that rewrote them and added 200 ('doomed'), spilled into the file. */
function killedRollbackWriter(db: string): void {
  const r = spawnSync('python3', ['-c', `
import os, signal, sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute('PRAGMA journal_mode=DELETE'); c.execute('PRAGMA cache_size=10')
c.execute('CREATE TABLE t(id INTEGER PRIMARY KEY, who TEXT, v BLOB)')
for i in range(30): c.execute("INSERT INTO t(who, v) VALUES ('old', randomblob(3000))")
c.execute('BEGIN')
c.execute("UPDATE t SET who = 'doomed', v = randomblob(3000)")
for i in range(200): c.execute("INSERT INTO t(who, v) VALUES ('doomed', randomblob(3000))")
os.kill(os.getpid(), signal.SIGKILL)
`, db]);
  expect(r.signal).toBe('SIGKILL');
  expect(fs.statSync(`${db}-journal`).size).toBeGreaterThan(512);
}

/** What sqlite3 reads in `db` (rolling a hot journal back, as any connection does). */
const sqliteReads = (db: string): string => execFileSync('sqlite3', [db, "SELECT who || ':' || count(*) FROM t GROUP BY who; PRAGMA integrity_check"], { encoding: 'utf8' }).trim();

describe.skipIf(shim.error !== null)('walnut restore --force over a database with a hot rollback journal', () => {
  it('refuses (HotJournal) before moving anything; after sqlite3 rolled it back, restores', async () => {
    const ark = await newDatabaseStream(dir, true);
    const db = path.join(dir, 'app.db');
    killedRollbackWriter(db);
    const journal = fs.readFileSync(`${db}-journal`);

    // killed where the journal would be aside and the rename not yet made
    const child = spawn(process.execPath, [bin, 'restore', ark, db, '--force'], {
      env: { ...process.env, LD_PRELOAD: shim.path, CRASH_DIR: dir, CRASH_AT: '2' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const [status, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.once('close', (s, sig) => resolve([s, sig])));
    expect(signal, stderr).toBeNull();
    expect(status, stderr).toBe(2);
    expect(stderr).toMatch(/WALNUT_INVALID_ARGUMENT.*hot rollback journal.*open it with sqlite3 first/);
    expect(fs.readFileSync(`${db}-journal`).equals(journal)).toBe(true); // in place, untouched
    expect(fs.readdirSync(dir).filter((f) => f.includes('.restore-'))).toEqual([]);

    // sqlite3 opening it first rolls the transaction back: the 30 committed rows
    expect(sqliteReads(db)).toBe('old:30\nok');
    const r = await spawnOutput(process.execPath, [bin, 'restore', ark, db, '--force']);
    expect(r.status, r.stderr).toBe(0);
    expect(sqliteReads(db)).toBe('new:7\nok');
    expect(fs.existsSync(`${db}-journal`)).toBe(false);
  }, 60_000);
});
