// Hostile: a settle of restores left by walnut before the marker (io/restore-asides.ts
// legacySettle: since the marker only a restore lists the directory for them, so the settler here
// is `walnut restore` to the same target, refused once it has settled: the database exists)
// races a LIVE `restore --force` of walnut before the marker in another process (its files made
// by hand here, no marker). The settle listed the directory and
// opened the restore's temporary file `.app.db.restore-<hex>` just before the restore renamed it
// over app.db; it then tried the temporary file's lock just after the restore released it (the
// restore keeps it until after its rename). The lock was won, so the restore was taken for dead:
// its asides (the REPLACED database's -wal and -shm) were linked back to app.db-wal and
// app.db-shm, beside the NEW database, and sqlite3 replayed the old -wal's frames over it (old
// rows, or a corrupt file). Now a lock won on a file no longer at its temporary name is the
// new database's: nothing is put back, and the asides, whose temporary file is gone, are removed.
// An LD_PRELOAD shim (test/helpers/pause-at-lock-shim.c) holds the open between its open() and
// its lock of the temporary file while the test does the restore's rename and ends its lock.
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { holdLock, release } from '../helpers/children';
import { buildPauseAtLockShim } from '../helpers/pause-at-lock-shim';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
const shim = buildPauseAtLockShim(dir);

const python = (script: string, ...args: string[]): string => execFileSync('python3', ['-c', script, ...args], { encoding: 'utf8' });

/** Rows of the database by `who`, as python3's sqlite3 reads it, and its integrity check. */
function readBySqlite(db: string): { rows: Record<string, number>; integrity: string } {
  const out = python(
    `
import json, sqlite3, sys
c = sqlite3.connect(sys.argv[1])
try:
    rows = dict(c.execute('SELECT who, count(*) FROM t GROUP BY who').fetchall())
    integrity = c.execute('PRAGMA integrity_check').fetchone()[0]
except sqlite3.DatabaseError as e:
    rows, integrity = {}, str(e)
print(json.dumps({'rows': rows, 'integrity': integrity}))
`,
    db,
  );
  return JSON.parse(out) as { rows: Record<string, number>; integrity: string };
}

async function waitFor(file: string, ms: number): Promise<void> {
  for (const end = Date.now() + ms; !fs.existsSync(file); ) {
    if (Date.now() > end) throw new Error(`${file} did not appear within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe.skipIf(shim.error !== null)('an open settling restores beside a live restore --force', () => {
  it('never puts the replaced database\'s asides back beside the new database its restore renamed in', async () => {
    const db = path.join(dir, 'app.db');
    const tmp = path.join(dir, '.app.db.restore-0123456789ab');
    // the old database: 10 rows in the file, 20 commits only in its -wal (left by a process that ended without closing)
    python(
      `
import os, sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute('PRAGMA journal_mode=WAL'); c.execute('PRAGMA wal_autocheckpoint=0')
c.execute('CREATE TABLE t(id INTEGER PRIMARY KEY, who TEXT, v BLOB)')
for i in range(10): c.execute("INSERT INTO t(who, v) VALUES ('old', randomblob(3000))")
c.execute('PRAGMA wal_checkpoint(TRUNCATE)')
for i in range(20): c.execute("UPDATE t SET v = randomblob(3000), who = 'old-wal' WHERE id = ?", (i % 10 + 1,))
os._exit(0)
`,
      db,
    );
    // the restore's new database, whole in its temporary file (a WAL database closed cleanly: no -wal)
    python(
      `
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute('PRAGMA journal_mode=WAL')
c.execute('CREATE TABLE t(id INTEGER PRIMARY KEY, who TEXT, v BLOB)')
for i in range(7): c.execute("INSERT INTO t(who, v) VALUES ('new', randomblob(3000))")
c.close()
`,
      tmp,
    );
    // the restore is alive (its lock on byte 0) and has moved the old companions aside (its step 1)
    const restoreLock = await holdLock(tmp, 0, 1, 'exclusive');
    fs.renameSync(`${db}-wal`, `${tmp}.aside-wal`);
    fs.renameSync(`${db}-shm`, `${tmp}.aside-shm`);
    const oldWal = fs.readFileSync(`${tmp}.aside-wal`);
    expect(oldWal.length).toBeGreaterThan(20 * 3000);

    // a walnut restore to app.db (settling, then refused: app.db exists), held between its open() of the temporary file and its lock of it
    const ready = path.join(dir, 'ready');
    const go = path.join(dir, 'go');
    const ark = path.join(dir, 'any.ark');
    fs.writeFileSync(ark, 'not read: refused before');
    const opener = spawn(process.execPath, [bin, 'restore', ark, db], {
      env: { ...process.env, LD_PRELOAD: shim.path, PAUSE_LOCK_NAME: '.app.db.restore-0123456789ab', PAUSE_LOCK_READY: ready, PAUSE_LOCK_GO: go },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    opener.stderr.on('data', (d) => (stderr += d));
    const ended = new Promise<number | null>((resolve) => opener.on('close', (code) => resolve(code)));
    await waitFor(ready, 30_000);

    // the restore renames its file over app.db (step 2), then its lock goes with its descriptor
    fs.renameSync(tmp, db);
    await release(restoreLock);
    fs.writeFileSync(go, '');
    const code = await ended;
    expect(stderr).not.toMatch(/WALNUT_CORRUPT/);
    expect(stderr).toMatch(/exists; pass force/);
    expect(code).toBe(2);

    // the new database alone: no old -wal beside it, its 7 rows, intact
    const wal = fs.readFileSync(`${db}-wal`, { flag: 'a+' });
    expect(wal.includes(oldWal.subarray(32, 32 + 4096))).toBe(false);
    expect(readBySqlite(db)).toEqual({ rows: { new: 7 }, integrity: 'ok' });
    // the replaced database's asides are removed (their temporary file is gone)
    expect(fs.readdirSync(dir).filter((n) => n.startsWith('.app.db.restore-'))).toEqual([]);
  }, 60_000);
});
