// Hostile: `walnut inspect` and `walnut verify` after a `walnut restore --force` was killed. They
// neither settled nor mentioned what the restore left (its temporary file, the old database's
// companions aside under its name), so they reported on a state the next walnut open changes
// (here: no -journal beside app.db, when the open puts it back). Now both report each unsettled
// restore, changing nothing: inspect a `restores` entry (its temporary file, whether the new
// file was renamed in, the asides, what the next open does), verify a level-1 finding
// 'unsettled-restore' (exit 1). Two crash points: killed before its rename, the old database's
// -journal aside (an LD_PRELOAD shim SIGKILLs it before its 2nd change of a name); and killed
// just after its temporary file was created, before anything else (a pause shim holds it before
// its lock of that file). After each, inspect and verify change no file, and the next walnut
// open settles it all (nothing of the restore left, the old rows read by sqlite3).
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

import { spawnOutput } from '../helpers/children';
import { buildCrashAtRenameShim } from '../helpers/crash-at-rename-shim';
import { newDatabaseStream } from '../helpers/new-database-stream';
import { buildPauseAtLockShim } from '../helpers/pause-at-lock-shim';
import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
const walnut = (...args: string[]) => spawnOutput(process.execPath, [bin, ...args]);
const crashShim = buildCrashAtRenameShim(dir);
const pauseShim = buildPauseAtLockShim(dir);

/** A rollback-journal database in PERSIST mode: 30 rows, its -journal kept (zeroed header: not hot). */
function persistDatabase(db: string): void {
  execFileSync('python3', ['-c', `
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute('PRAGMA journal_mode=PERSIST')
c.execute('CREATE TABLE t(id INTEGER PRIMARY KEY, who TEXT, v BLOB)')
for i in range(30): c.execute("INSERT INTO t(who, v) VALUES ('old', randomblob(3000))")
c.close()
`, db]);
  expect(fs.existsSync(`${db}-journal`)).toBe(true);
}

/** Every file of `d`: name, size, mtime, bytes' first 64 (what a read-only verb must not change). */
function snapshot(d: string): string[] {
  return fs.readdirSync(d).sort().map((f) => {
    const st = fs.statSync(path.join(d, f));
    return `${f} ${st.size} ${st.mtimeMs} ${fs.readFileSync(path.join(d, f)).subarray(0, 64).toString('hex')}`;
  });
}

async function readOnlyReports(db: string, text: boolean): Promise<{ inspected: { restores: { temporary: string; live: boolean; renamed: boolean; asides: string[]; settle: string }[] }; text: string; verified: { ok: boolean; issues: { kind: string; message: string }[] }; verifyStatus: number | null; verifyText: string }> {
  const before = snapshot(path.dirname(db));
  const inspect = await walnut('inspect', db, '--json');
  expect(inspect.status, inspect.stderr).toBe(0);
  const [inspectText, verify, verifyText] = await Promise.all([
    text ? walnut('inspect', db) : null,
    walnut('verify', db, '--level', '1', '--json'),
    text ? walnut('verify', db, '--level', '1') : null,
  ]);
  expect(snapshot(path.dirname(db))).toEqual(before); // read only: nothing settled, nothing moved
  return { inspected: JSON.parse(inspect.stdout), text: inspectText?.stdout ?? '', verified: JSON.parse(verify.stdout), verifyStatus: verify.status, verifyText: verifyText?.stdout ?? '' };
}

describe('walnut inspect and verify after a killed restore', () => {
  beforeAll(async () => {
    await newDatabaseStream(dir, true);
  });

  it.skipIf(crashShim.error !== null)('killed before its rename: reported (the -journal aside), not settled; the next open settles it', async () => {
    const d = path.join(dir, 'before-rename');
    fs.mkdirSync(d);
    const db = path.join(d, 'app.db');
    persistDatabase(db);
    const child = spawn(process.execPath, [bin, 'restore', path.join(dir, 'new.ark'), db, '--force'], {
      env: { ...process.env, LD_PRELOAD: crashShim.path, CRASH_DIR: d, CRASH_AT: '2' },
      stdio: 'ignore',
    });
    expect(await new Promise((resolve) => child.once('close', (_s, sig) => resolve(sig)))).toBe('SIGKILL');
    expect(fs.existsSync(`${db}-journal`)).toBe(false); // aside

    const r = await readOnlyReports(db, true);
    expect(r.inspected.restores).toHaveLength(1);
    const [p] = r.inspected.restores;
    expect(p).toMatchObject({ live: false, renamed: false });
    expect(path.basename(p!.temporary)).toMatch(/^\.app\.db\.restore-[0-9a-f]{12}$/);
    expect(p!.asides).toEqual([`${fs.realpathSync(d)}/${path.basename(p!.temporary)}.aside-journal`]);
    expect(p!.settle).toMatch(/rename did not happen: -journal go(es)? back/);
    expect(r.text).toMatch(/restores/);
    expect(r.verifyStatus).toBe(1);
    expect(r.verified.ok).toBe(false);
    expect(r.verified.issues.filter((i) => i.kind === 'unsettled-restore')).toHaveLength(1);
    expect(r.verifyText).toMatch(/unsettled-restore .*was killed/);

    await walnut('checkpoint', db); // an open: settles (what it then does with a rollback-journal database is not this test's)
    expect(fs.readdirSync(d).filter((f) => f.includes('.restore-'))).toEqual([]);
    expect(execFileSync('sqlite3', [db, "SELECT who || ':' || count(*) FROM t GROUP BY who"], { encoding: 'utf8' }).trim()).toBe('old:30');
    expect(JSON.parse((await walnut('inspect', db, '--json')).stdout).restores).toEqual([]);
  }, 60_000);

  it.skipIf(pauseShim.error !== null)('killed just after creating its temporary file: reported, then the next open removes it and the marker', async () => {
    const d = path.join(dir, 'after-create');
    fs.mkdirSync(d);
    const db = path.join(d, 'app.db');
    persistDatabase(db);
    const ready = path.join(dir, 'ready');
    const child = spawn(process.execPath, [bin, 'restore', path.join(dir, 'new.ark'), db, '--force'], {
      env: { ...process.env, LD_PRELOAD: pauseShim.path, PAUSE_LOCK_NAME: '.app.db.restore-', PAUSE_LOCK_EXCLUDE: '.app.db.restore-asides', PAUSE_LOCK_READY: ready, PAUSE_LOCK_GO: path.join(dir, 'never') },
      stdio: 'ignore',
    });
    const closed = new Promise((resolve) => child.once('close', (_s, sig) => resolve(sig)));
    await until(() => fs.existsSync(ready), 30_000);
    child.kill('SIGKILL');
    expect(await closed).toBe('SIGKILL');
    expect(fs.readdirSync(d).filter((f) => f.includes('.restore-')).length).toBe(2); // its (empty) temporary file and the marker

    const r = await readOnlyReports(db, false);
    expect(r.inspected.restores).toHaveLength(1);
    expect(r.inspected.restores[0]).toMatchObject({ live: false, renamed: false, asides: [] });
    expect(r.verified.issues.map((i) => i.kind)).toContain('unsettled-restore');

    await walnut('checkpoint', db);
    expect(fs.readdirSync(d).filter((f) => f.includes('.restore-'))).toEqual([]);
    expect(fs.existsSync(`${db}-journal`)).toBe(true);
  }, 60_000);

  it.skipIf(pauseShim.error !== null)('verify of a live database (a sqlite3 connection attached) settles nothing either', async () => {
    const d = path.join(dir, 'live');
    fs.mkdirSync(d);
    const db = path.join(d, 'app.db');
    execFileSync('sqlite3', [db, "PRAGMA journal_mode=WAL; CREATE TABLE t(id INTEGER PRIMARY KEY, who TEXT); INSERT INTO t(who) VALUES ('old')"], { stdio: 'ignore' });
    const ready = path.join(d, 'ready');
    const child = spawn(process.execPath, [bin, 'restore', path.join(dir, 'new.ark'), db, '--force'], {
      env: { ...process.env, LD_PRELOAD: pauseShim.path, PAUSE_LOCK_NAME: '.app.db.restore-', PAUSE_LOCK_EXCLUDE: '.app.db.restore-asides', PAUSE_LOCK_READY: ready, PAUSE_LOCK_GO: path.join(dir, 'never') },
      stdio: 'ignore',
    });
    const closed = new Promise((resolve) => child.once('close', (_s, sig) => resolve(sig)));
    await until(() => fs.existsSync(ready), 30_000);
    child.kill('SIGKILL');
    expect(await closed).toBe('SIGKILL');
    const left = () => fs.readdirSync(d).filter((f) => f.includes('.restore-')).sort();
    const before = left();
    expect(before).toHaveLength(2);

    // a sqlite3 connection holds the database open (its -shm attached), so verify reads as a connection does
    const holder = spawn('python3', ['-c', `
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute('SELECT count(*) FROM t').fetchone()
print('open', flush=True)
sys.stdin.read()
`, db], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve) => holder.stdout!.once('data', () => resolve()));
      const verify = await walnut('verify', db, '--level', '1', '--json');
      expect(verify.status, verify.stderr).toBe(1);
      expect(JSON.parse(verify.stdout).issues.map((i: { kind: string }) => i.kind)).toContain('unsettled-restore');
      expect(left()).toEqual(before);
    } finally {
      holder.stdin!.end();
      await new Promise((resolve) => holder.once('close', resolve));
    }
  }, 60_000);
});
