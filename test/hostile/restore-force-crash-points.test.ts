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
// nothing of the restore left beside it; a sqlite3 that opens it first, before any walnut, finds
// the same (the old database's -wal is checkpointed into it before its companions go aside). The
// restore first registers in the target's marker (.app.db.restore-asides, removed once settled:
// its removal is a crash point too). (A database with a hot -journal is refused since:
// restore-force-hot-journal.test.ts.) And the next restore settles a killed one.
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

import { spawnOutput } from '../helpers/children';
import { buildCrashAtRenameShim } from '../helpers/crash-at-rename-shim';
import { newDatabaseStream } from '../helpers/new-database-stream';
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
    await newDatabaseStream(dir, true);
  });

  /**
   * Kills `walnut restore new.ark app.db --force` before its 1st, 2nd, ... change of a name in the
   * directory until it runs to its end; after each crash `check` reads the database. Returns the
   * states seen and how many points there were.
   */
  async function everyCrashPoint(name: string, make: (db: string) => void, check: (db: string, d: string, n: number) => Promise<string>): Promise<{ seen: string[]; points: number; left: string[] }> {
    const seen = new Set<string>();
    const left: string[] = [];
    let points = 0;
    let finished = false;
    for (let n = 1; n <= 30 && !finished; n++) {
      const d = path.join(dir, `${name}-${n}`);
      fs.mkdirSync(d);
      const db = path.join(d, 'app.db');
      make(db);
      const r = await restoreKilledAt(n, path.join(dir, 'new.ark'), db);
      finished = r.status === 0;
      if (!finished) expect(r.signal, r.stderr).toBe('SIGKILL');
      seen.add(await check(db, d, n));
      left.push(...fs.readdirSync(d).filter((f) => f.includes('.restore-')).map((f) => `crash at ${n}: ${f}`));
      points = n;
    }
    expect(finished).toBe(true); // every step was crashed at, then the restore ran to its end
    return { seen: [...seen].sort(), points, left };
  }

  /** A walnut open settles what the restore left (walnut checkpoint opens the database). */
  const settle = (db: string) => walnut('checkpoint', db);

  it.skipIf(shim.error !== null)(`a WAL database: the old one with every commit, or the new one, to sqlite3 first and after a walnut open${shim.error === null ? '' : ` (${shim.error})`}`, async () => {
    const { seen, points, left } = await everyCrashPoint('wal', oldDatabase, async (db, d, n) => {
      // what a sqlite3 that opens the database first finds (on a copy of the files as the crash
      // left them, so that it changes nothing here)
      const first = path.join(d, 'sqlite3-first');
      fs.mkdirSync(first);
      for (const suffix of ['', '-wal', '-journal']) if (fs.existsSync(`${db}${suffix}`)) fs.copyFileSync(`${db}${suffix}`, path.join(first, `app.db${suffix}`));
      const direct = sqliteReads(path.join(first, 'app.db'));
      fs.rmSync(first, { recursive: true });
      expect(direct.integrity, `crash at ${n}, sqlite3 first`).toBe('ok');
      expect(['old:30', 'new:7'], `crash at ${n}, sqlite3 first`).toContain(direct.rows);
      const settled = await settle(db);
      expect(settled.status, `crash at ${n}: ${settled.stderr}`).toBe(0);
      const reads = sqliteReads(db);
      expect(reads, `crash at ${n}`).toEqual(direct);
      return reads.rows;
    });
    expect(points).toBeGreaterThanOrEqual(4); // (the -wal and -shm of the checkpointed old database, the rename, the end)
    expect(seen).toEqual(['new:7', 'old:30']);
    expect(left).toEqual([]); // nothing of a killed restore stays once the database was opened
  }, 300_000);

  it.skipIf(shim.error !== null)(`the next restore settles a restore killed before its rename, then replaces the database${shim.error === null ? '' : ` (${shim.error})`}`, async () => {
    const d = path.join(dir, 'next');
    fs.mkdirSync(d);
    const db = path.join(d, 'app.db');
    oldDatabase(db);
    const killed = await restoreKilledAt(1, path.join(dir, 'new.ark'), db); // its new file whole, the old database not touched yet
    expect(killed.signal, killed.stderr).toBe('SIGKILL');
    expect(fs.readdirSync(d).filter((f) => f.includes('.restore-')).length).toBe(2); // its temporary file, and the marker that lists it
    const r = await walnut('restore', path.join(dir, 'new.ark'), db, '--force');
    expect(r.status, r.stderr).toBe(0);
    expect(sqliteReads(db)).toEqual({ integrity: 'ok', rows: 'new:7' });
    expect(fs.readdirSync(d).filter((f) => f.includes('.restore-'))).toEqual([]);
  }, 60_000);
});
