// Hostile: `walnut restore app.ark app.db --force` killed at every step of replacing app.db.
// restore removed the old database's -wal, -shm, -journal and -wal-fec and synced the directory,
// then renamed its new file over app.db: a crash between the two left the OLD database without
// its -wal, so every commit not checkpointed was lost, and the new database was not in place
// either. Now the companions are renamed aside under names tied to restore's temporary file, the
// new file renamed in, and only then the asides removed; the next open (or restore) of app.db
// puts back the asides of a restore that died before its rename (its temporary file still there)
// and removes those of one that died after. An LD_PRELOAD shim SIGKILLs the restore just before
// its Nth rename/link/unlink in the directory, for every N until it runs to its end; after each
// crash a walnut open of app.db (walnut checkpoint) and sqlite3 must find either the old database
// with all 30 of its commits (20 of them only in its -wal) or the new one, integrity ok, and
// nothing of the restore left beside it. Also: the next restore settles a killed one; and an aside
// never goes back over a -wal that sqlite3 made after the crash (the limit: until walnut settles
// it, sqlite3 sees the old database without its -wal's commits; README).
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

import { spawnOutput } from '../helpers/children';
import { buildCrashAtRenameShim } from '../helpers/crash-at-rename-shim';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
const walnut = (...args: string[]) => spawnOutput(process.execPath, [bin, ...args]);
const shim = buildCrashAtRenameShim(dir);

/**
 * The old database, written by python3's sqlite3: 10 rows checkpointed into the file, 20 more
 * commits only in its -wal (the process ends without closing: -wal and -shm stay, as a crash
 * or an application still running would leave them).
 */
function oldDatabase(db: string): void {
  const py = `
import os, sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute('PRAGMA journal_mode=WAL')
c.execute('PRAGMA wal_autocheckpoint=0')
c.execute('CREATE TABLE t(id INTEGER PRIMARY KEY, who TEXT, v BLOB)')
for i in range(10): c.execute("INSERT INTO t(who, v) VALUES ('old', randomblob(3000))")
c.execute('PRAGMA wal_checkpoint(TRUNCATE)')
for i in range(20): c.execute("INSERT INTO t(who, v) VALUES ('old', randomblob(3000))")
os._exit(0)
`;
  execFileSync('python3', ['-c', py, db]);
  expect(fs.statSync(`${db}-wal`).size).toBeGreaterThan(20 * 3000);
}

/** What sqlite3 reads in `db`: integrity_check and the rows per writer. */
function sqliteReads(db: string): { integrity: string; rows: string } {
  const integrity = execFileSync('sqlite3', [db, 'PRAGMA integrity_check'], { encoding: 'utf8' }).trim();
  const rows = execFileSync('sqlite3', [db, "SELECT who || ':' || count(*) FROM t GROUP BY who"], { encoding: 'utf8' }).trim();
  return { integrity, rows };
}

function restoreKilledAt(n: number, ark: string, db: string): Promise<{ status: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  const child = spawn(process.execPath, [bin, 'restore', ark, db, '--force'], {
    env: { ...process.env, LD_PRELOAD: shim.path, CRASH_DIR: path.dirname(db), CRASH_AT: String(n) },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.once('close', (status, signal) => resolve({ status, signal, stderr })));
}

describe('walnut restore --force killed at each step of the replacement', () => {
  // the new database's stream: 7 rows of its own
  beforeAll(async () => {
    if (shim.error !== null) return;
    const source = path.join(dir, 'new.db');
    const writer = new Database(source);
    writer.pragma('journal_mode = WAL');
    writer.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, who TEXT, v BLOB)');
    for (let i = 0; i < 7; i++) writer.prepare("INSERT INTO t(who, v) VALUES ('new', randomblob(500))").run();
    writer.close();
    const ark = path.join(dir, 'new.ark');
    expect((await walnut('export', source, '-o', ark)).status).toBe(0);
  });

  it.skipIf(shim.error !== null)(`leaves the old database with every commit, or the new one, never a -wal of one beside the other${shim.error === null ? '' : ` (${shim.error})`}`, async () => {
    const ark = path.join(dir, 'new.ark');
    const seen = new Set<string>();
    const left: string[] = [];
    let points = 0;
    let finished = false;
    for (let n = 1; n <= 30 && !finished; n++) {
      const d = path.join(dir, `at-${n}`);
      fs.mkdirSync(d);
      const db = path.join(d, 'app.db');
      oldDatabase(db);
      const r = await restoreKilledAt(n, ark, db);
      finished = r.status === 0;
      if (!finished) expect(r.signal, r.stderr).toBe('SIGKILL');
      // a walnut open settles what the restore left (walnut checkpoint: it opens the database)
      const settled = await walnut('checkpoint', db);
      expect(settled.status, `crash at ${n}: ${settled.stderr}`).toBe(0);
      const reads = sqliteReads(db);
      expect(reads.integrity, `crash at ${n}`).toBe('ok');
      expect(['old:30', 'new:7'], `crash at ${n}`).toContain(reads.rows);
      seen.add(reads.rows);
      left.push(...fs.readdirSync(d).filter((f) => f.includes('.restore-')).map((f) => `crash at ${n}: ${f}`));
      points = n;
    }
    expect(finished).toBe(true); // every step was crashed at, then the restore ran to its end
    expect(points).toBeGreaterThanOrEqual(5); // (-wal and -shm aside, the rename, their removal, the end)
    expect(left).toEqual([]); // nothing of a killed restore stays once the database was opened
    expect([...seen].sort()).toEqual(['new:7', 'old:30']);
  }, 300_000);

  it.skipIf(shim.error !== null)(`the next restore settles a restore killed before its rename, then replaces the database${shim.error === null ? '' : ` (${shim.error})`}`, async () => {
    const d = path.join(dir, 'next');
    fs.mkdirSync(d);
    const db = path.join(d, 'app.db');
    oldDatabase(db);
    const ark = path.join(dir, 'new.ark');
    const killed = await restoreKilledAt(2, ark, db); // the -wal aside, the -shm not yet
    expect(killed.signal, killed.stderr).toBe('SIGKILL');
    expect(fs.existsSync(`${db}-wal`)).toBe(false);
    const r = await walnut('restore', ark, db, '--force');
    expect(r.status, r.stderr).toBe(0);
    expect(sqliteReads(db)).toEqual({ integrity: 'ok', rows: 'new:7' });
    expect(fs.readdirSync(d).filter((f) => f.includes('.restore-'))).toEqual([]);
  }, 60_000);
  it.skipIf(shim.error !== null)(`never puts an aside back over a -wal sqlite3 made after the crash: both stay${shim.error === null ? '' : ` (${shim.error})`}`, async () => {
    const d = path.join(dir, 'reopened');
    fs.mkdirSync(d);
    const db = path.join(d, 'app.db');
    oldDatabase(db);
    const killed = await restoreKilledAt(2, path.join(dir, 'new.ark'), db); // the -wal aside, the -shm not yet
    expect(killed.signal, killed.stderr).toBe('SIGKILL');
    // sqlite3 first: it sees the 10 checkpointed rows only, and its commit makes a new -wal
    // (kept open by python3's os._exit, as a running application would)
    execFileSync('python3', ['-c', "import os, sqlite3, sys\nc = sqlite3.connect(sys.argv[1], isolation_level=None)\nc.execute(\"INSERT INTO t(who, v) VALUES ('later', x'00')\")\nos._exit(0)", db]);
    const aside = fs.readdirSync(d).filter((f) => f.endsWith('-wal') && f.includes('.restore-'));
    expect(aside).toHaveLength(1);
    const asideBytes = fs.readFileSync(path.join(d, aside[0]!));
    const settled = await walnut('checkpoint', db);
    expect(settled.status, settled.stderr).toBe(0);
    expect(fs.readFileSync(path.join(d, aside[0]!)).equals(asideBytes)).toBe(true); // the old commits, untouched
    expect(fs.readdirSync(d).filter((f) => /^\.app\.db\.restore-[0-9a-f]{12}$/.test(f))).toHaveLength(1); // its temporary file too
    expect(sqliteReads(db)).toEqual({ integrity: 'ok', rows: 'later:1\nold:10' });
  }, 60_000);
});
