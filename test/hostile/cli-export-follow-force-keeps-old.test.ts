// Hostile: `walnut export app.db -o app.ark --follow --force` over an existing backup. --follow
// --force truncated the old FILE when it started ("no end to wait for"), so a follow export that
// failed at once (a busy database, a full disk) or was killed in its first second destroyed the
// user's previous backup, leaving a cut stream that does not restore. It now writes the stream to
// a new file beside FILE and renames it over FILE once the stream holds the database's state as
// of the start (the base image and the WAL's commits then: the stream's 'caughtUp'), synced; the
// follow then goes on in FILE. Before that point a SIGKILL, SIGTERM or failure leaves FILE byte
// for byte as it was (a SIGKILL leaves the new file, which the next export to FILE removes);
// after it, FILE restores to a database sqlite3 reads with integrity ok. Also at scale: a WAL of
// 16,500 frames (5 -shm segments) with a python3 sqlite3 writer beside the follow. And where
// the rename fails (the directory made immutable meanwhile: WALNUT_IO, exit 2, FILE as it was;
// it was taken for an interrupted follow's end, exit 0) or no rename can replace FILE (a mount
// point: written in place once the base is in, the follow going on in it).
import { spawn, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open } from '../../lib/index';
import { DB_LOCK } from '../../lib/format/db-header';
import { holdLock, HELPERS, release, spawnOutput, startPython } from '../helpers/children';
import { commitsInStreamFile } from '../helpers/export-stream';
import { growWal, shmMxFrame, untilWalMoves } from '../helpers/large-wal';
import { immutableSkip, MOUNT_SKIP, smallTmpfs } from '../helpers/small-fs';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';
import { until, WAIT_MS } from '../helpers/until';

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
const walnut = (...args: string[]) => spawnOutput(process.execPath, [bin, ...args]);

/** A WAL database sqlite3 made: t(w, v) with `rows` rows of 4 KB blobs (`rows` 6,000: ~24 MiB, an export that takes a while). */
function database(name: string, rows: number): string {
  const file = path.join(dir, name);
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, w INTEGER, v BLOB)');
  const insert = db.prepare('INSERT INTO t(w, v) VALUES (0, randomblob(4000))');
  db.transaction(() => {
    for (let i = 0; i < rows; i++) insert.run();
  })();
  db.close();
  return file;
}

/** A real old backup of `db` at FILE (a one-shot export), and its bytes. */
async function oldBackup(db: string, name: string): Promise<{ ark: string; old: Buffer; ino: number }> {
  const ark = path.join(path.dirname(db), name);
  const r = await walnut('export', db, '-o', ark);
  expect(r.status, r.stderr).toBe(0);
  return { ark, old: fs.readFileSync(ark), ino: fs.statSync(ark).ino };
}

const leftovers = (d: string): string[] => fs.readdirSync(d).filter((f) => f.includes('walnut-export'));

function follow(db: string, ark: string): { child: ChildProcess; exited: Promise<{ status: number | null; signal: NodeJS.Signals | null }>; stderr: () => string } {
  const child = spawn(process.execPath, [bin, 'export', db, '-o', ark, '--follow', '--force'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<{ status: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('close', (status, signal) => resolve({ status, signal })));
  return { child, exited, stderr: () => stderr };
}

/**
 * Stops the follow export (SIGSTOP) once its new file beside FILE has bytes: it is writing its
 * base image then. True when FILE was still the old one at that moment (the base of ~24 MiB
 * not in yet: nearly always), so that what follows happens before the new file's rename.
 */
async function stopInsideBase(d: string, child: ChildProcess, oldIno: number, ark: string): Promise<boolean> {
  await until(() => {
    const partial = leftovers(d)[0];
    return partial !== undefined && (fs.statSync(path.join(d, partial), { throwIfNoEntry: false })?.size ?? 0) > 0;
  }, WAIT_MS);
  child.kill('SIGSTOP');
  return fs.statSync(ark).ino === oldIno;
}

/** `sqlite3 DB 'PRAGMA integrity_check'` and the row count, from the sqlite3 command. */
function sqliteReads(db: string): { integrity: string; rows: number } {
  const integrity = execFileSync('sqlite3', [db, 'PRAGMA integrity_check'], { encoding: 'utf8' }).trim();
  const rows = Number(execFileSync('sqlite3', [db, 'SELECT count(*) FROM t'], { encoding: 'utf8' }).trim());
  return { integrity, rows };
}

describe('walnut export --follow --force over an existing backup', () => {
  it('SIGKILLed inside its base image: FILE byte-identical; the next export to FILE removes the new file it left', async () => {
    const d = path.join(dir, 'kill');
    fs.mkdirSync(d);
    const db = database('kill/big.db', 6000);
    const { ark, old, ino } = await oldBackup(db, 'big.ark');
    const f = follow(db, ark);
    const inside = await stopInsideBase(d, f.child, ino, ark);
    f.child.kill('SIGKILL');
    expect((await f.exited).signal).toBe('SIGKILL');
    expect(inside).toBe(true); // (FILE was still the old one when the export was stopped)
    expect(fs.readFileSync(ark).equals(old)).toBe(true);
    expect(leftovers(d)).toHaveLength(1); // a SIGKILL leaves it: nothing of the export runs any more
    // the next --force export of FILE takes the dead export's lock: its file goes
    const r = await walnut('export', db, '-o', ark, '--force');
    expect(r.status, r.stderr).toBe(0);
    expect(leftovers(d)).toEqual([]);
  }, 120_000);

  it('SIGTERMed inside its base image: FILE byte-identical, no new file left, ended by the signal', async () => {
    const d = path.join(dir, 'term');
    fs.mkdirSync(d);
    const db = database('term/big.db', 6000);
    const { ark, old, ino } = await oldBackup(db, 'big.ark');
    const f = follow(db, ark);
    const inside = await stopInsideBase(d, f.child, ino, ark);
    f.child.kill('SIGTERM');
    f.child.kill('SIGCONT');
    const r = await f.exited;
    expect(inside).toBe(true);
    expect(r.signal, f.stderr()).toBe('SIGTERM'); // no backup was made: not the follow's normal end (exit 0)
    expect(fs.readFileSync(ark).equals(old)).toBe(true);
    expect(leftovers(d)).toEqual([]);
  }, 120_000);

  it('SIGTERMed while it waits for a busy database: FILE byte-identical, no new file left', async () => {
    const d = path.join(dir, 'busy-term');
    fs.mkdirSync(d);
    const db = database('busy-term/a.db', 50);
    const { ark, old } = await oldBackup(db, 'a.ark');
    // a SQLite-style lock on the database's SHARED range (another process's EXCLUSIVE): the
    // export waits for it (busyTimeout) before it reads a page
    const holder = await holdLock(db, DB_LOCK.SHARED_FIRST, DB_LOCK.SHARED_SIZE, 'exclusive', 'classic');
    try {
      const f = follow(db, ark);
      await until(() => leftovers(d).length === 1, WAIT_MS); // its new file exists: the export has begun
      f.child.kill('SIGTERM');
      const r = await f.exited;
      expect(r.signal, f.stderr()).toBe('SIGTERM');
    } finally {
      await release(holder);
    }
    expect(fs.readFileSync(ark).equals(old)).toBe(true);
    expect(leftovers(d)).toEqual([]);
  }, 60_000);

  it('failing at once (the database stays busy): WALNUT_BUSY, exit 2, FILE byte-identical, no new file left', async () => {
    const d = path.join(dir, 'busy');
    fs.mkdirSync(d);
    const db = database('busy/a.db', 50);
    const { ark, old } = await oldBackup(db, 'a.ark');
    const holder = await holdLock(db, DB_LOCK.SHARED_FIRST, DB_LOCK.SHARED_SIZE, 'exclusive', 'classic');
    let r: Awaited<ReturnType<typeof walnut>>;
    try {
      r = await walnut('export', db, '-o', ark, '--follow', '--force', '--busy-timeout', '500'); // fails after the busy timeout
    } finally {
      await release(holder);
    }
    expect(r.stderr).toMatch(/^walnut: WALNUT_BUSY: /);
    expect(r.status).toBe(2);
    expect(fs.readFileSync(ark).equals(old)).toBe(true);
    expect(leftovers(d)).toEqual([]);
  }, 60_000);

  it.skipIf(MOUNT_SKIP !== null)(`failing inside its base image (a full disk): WALNUT_FULL, exit 2, FILE byte-identical, nothing else left${MOUNT_SKIP === null ? '' : ` (${MOUNT_SKIP})`}`, async () => {
    const small = database('full-small.db', 10);
    const big = database('full-big.db', 1000); // ~4 MiB
    const disk = smallTmpfs('2m');
    const ark = path.join(disk, 'app.ark');
    expect((await walnut('export', small, '-o', ark)).status).toBe(0);
    const old = fs.readFileSync(ark);
    const r = await walnut('export', big, '-o', ark, '--follow', '--force');
    expect(r.stderr).toMatch(/^walnut: WALNUT_FULL/);
    expect(r.status).toBe(2);
    expect(fs.readFileSync(ark).equals(old)).toBe(true);
    expect(fs.readdirSync(disk)).toEqual(['app.ark']);
  }, 60_000);

  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    it(`once its base is in, FILE is the follow's stream: after ${signal}, walnut restore gives a database sqlite3 reads with integrity ok and every commit`, async () => {
      const d = path.join(dir, `after-${signal}`);
      fs.mkdirSync(d);
      const db = database(`after-${signal}/a.db`, 200);
      const { ark, ino } = await oldBackup(db, 'a.ark');
      const writer = new Database(db);
      const insert = writer.prepare('INSERT INTO t(w, v) VALUES (1, randomblob(3000))');
      for (let i = 0; i < 20; i++) insert.run(); // before the export: in its first pass
      const f = follow(db, ark);
      try {
        await until(() => fs.statSync(ark).ino !== ino, WAIT_MS, () => ({ stderr: f.stderr() })); // renamed over FILE
        expect(leftovers(d)).toEqual([]);
        for (let i = 0; i < 30; i++) insert.run(); // followed: 50 commits after the base (the db file, checkpointed by the old backup's export)
        await until(() => commitsInStreamFile(ark) >= 50, WAIT_MS, () => ({ commits: commitsInStreamFile(ark), stderr: f.stderr() }));
      } finally {
        writer.close();
        f.child.kill(signal);
      }
      const r = await f.exited;
      if (signal === 'SIGTERM') expect([r.status, r.signal], f.stderr()).toEqual([0, null]);
      const restored = path.join(d, 'restored.db');
      const back = await walnut('restore', ark, restored, '--json');
      expect(back.status, back.stderr).toBe(0);
      expect(sqliteReads(restored)).toEqual({ integrity: 'ok', rows: 250 });
    }, 120_000);
  }

  const IMMUTABLE_SKIP = immutableSkip(dir);
  it.skipIf(IMMUTABLE_SKIP !== null)(`failing to rename its new file over FILE (the directory made immutable meanwhile): WALNUT_IO, exit 2, FILE byte-identical${IMMUTABLE_SKIP === null ? '' : ` (${IMMUTABLE_SKIP})`}`, async () => {
    const d = path.join(dir, 'immutable');
    fs.mkdirSync(d);
    const db = database('immutable/big.db', 6000);
    const { ark, old, ino } = await oldBackup(db, 'big.ark');
    const f = follow(db, ark);
    const inside = await stopInsideBase(d, f.child, ino, ark);
    execFileSync('chattr', ['+i', d]);
    let r: { status: number | null; signal: NodeJS.Signals | null };
    try {
      f.child.kill('SIGCONT');
      r = await f.exited;
    } finally {
      execFileSync('chattr', ['-i', d]);
    }
    expect(inside).toBe(true);
    // (the failure was taken for the premature close of an interrupted follow: exit 0, no backup made)
    expect(f.stderr()).toMatch(/^walnut: WALNUT_IO: cannot replace .*big\.ark by the new export beside it \(the old .* is as it was\)/);
    expect([r.status, r.signal]).toEqual([2, null]);
    expect(fs.readFileSync(ark).equals(old)).toBe(true);
    // its new file could not be removed either: the next --force export of FILE does it
    expect((await walnut('export', db, '-o', ark, '--force')).status).toBe(0);
    expect(leftovers(d)).toEqual([]);
  }, 120_000);

  it.skipIf(MOUNT_SKIP !== null)(`over a FILE that is a mount point (no rename replaces it): once the base is in, FILE is written in place and the follow goes on in it${MOUNT_SKIP === null ? '' : ` (${MOUNT_SKIP})`}`, async () => {
    const d = path.join(dir, 'bind');
    fs.mkdirSync(d);
    const db = database('bind/m.db', 50);
    const real = path.join(d, 'real.ark');
    const ark = path.join(d, 'bound.ark');
    fs.writeFileSync(real, 'old backup');
    fs.writeFileSync(ark, '');
    execFileSync('mount', ['--bind', real, ark]);
    try {
      const f = follow(db, ark);
      try {
        await until(() => commitsInStreamFile(ark) === 0 && fs.readFileSync(ark).subarray(0, 8).toString() === 'ARKHEXP1', WAIT_MS, () => ({ stderr: f.stderr() }));
        const writer = new Database(db);
        const insert = writer.prepare('INSERT INTO t(w, v) VALUES (1, randomblob(3000))');
        for (let i = 0; i < 10; i++) insert.run();
        writer.close(); // (its close checkpoints: the follow has them all the same)
        await until(() => commitsInStreamFile(ark) >= 10, WAIT_MS, () => ({ commits: commitsInStreamFile(ark), stderr: f.stderr() }));
      } finally {
        f.child.kill('SIGTERM');
      }
      const r = await f.exited;
      expect([r.status, r.signal], f.stderr()).toEqual([0, null]);
    } finally {
      execFileSync('umount', [ark]);
    }
    expect(leftovers(d)).toEqual([]);
    const restored = path.join(d, 'restored.db');
    const back = await walnut('restore', real, restored); // what the mount showed
    expect(back.status, back.stderr).toBe(0);
    expect(sqliteReads(restored)).toEqual({ integrity: 'ok', rows: 60 });
  }, 120_000);

  it('at scale: a WAL of 16,500 frames (5 -shm segments), a python3 sqlite3 writer beside the follow; FILE restores to every commit, integrity ok', async () => {
    const d = path.join(dir, 'scale');
    fs.mkdirSync(d);
    const db = database('scale/s.db', 100);
    const { ark, old, ino } = await oldBackup(db, 's.ark');
    const store = await open(db, { autoCheckpoint: false });
    try {
      await growWal(store, 16_500); // the same pages committed again: 16,500 frames in the WAL
      const before = shmMxFrame(db);
      expect(before).toBeGreaterThanOrEqual(16_500);
      const f = follow(db, ark);
      const writer = startPython(path.join(HELPERS, 'sqlite-writer.py'), [db, '3', '7', '200', '0', '200']); // >= 200 commits, w = 7
      try {
        await untilWalMoves(db, before);
        await until(() => fs.statSync(ark).ino !== ino, WAIT_MS, () => ({ stderr: f.stderr() }));
        expect(fs.readFileSync(ark).equals(old)).toBe(false);
        writer.stop(); // the follow's file is in place: the writer ends once it has made its 200 (not 3 s)
        const commits = Number((await writer.output).trim());
        expect(commits).toBeGreaterThanOrEqual(200);
        const rows = Number(execFileSync('sqlite3', [db, 'SELECT count(*) FROM t'], { encoding: 'utf8' }).trim());
        expect(rows).toBe(100 + commits);
      } finally {
        f.child.kill('SIGTERM'); // its last pass takes every commit made before it
      }
      const r = await f.exited;
      expect([r.status, r.signal], f.stderr()).toEqual([0, null]);
      expect(leftovers(d)).toEqual([]);
    } finally {
      await store.close();
    }
    const restored = path.join(d, 'restored.db');
    const back = await walnut('restore', ark, restored);
    expect(back.status, back.stderr).toBe(0);
    const reads = sqliteReads(restored);
    expect(reads.integrity).toBe('ok');
    expect(reads.rows).toBe(Number(execFileSync('sqlite3', [db, 'SELECT count(*) FROM t'], { encoding: 'utf8' }).trim()));
  }, 300_000);
});
