// The walnut command on databases written by SQLite and by walnut: --json fields against
// SQLite's own view, exit statuses, error messages, and inspect changing nothing.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import { open as openWithFec } from '../../lib/open';
import { spawnOutput } from '../helpers/children';
import { Database, sqliteWritesWal, typicalWork } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';
import { WAIT_MS } from '../helpers/until';

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
// (every process is awaited, never spawnSync: a test's run of them blocked the vitest worker's event loop: see spawnOutput)
const walnut = (...args: string[]) => spawnOutput(process.execPath, [bin, ...args]);
const json = async (...args: string[]) => {
  const r = await walnut(...args, '--json');
  expect(r.stderr).toBe('');
  return { status: r.status, out: JSON.parse(r.stdout) };
};
const hash = (f: string) => (fs.existsSync(f) ? createHash('sha256').update(fs.readFileSync(f)).digest('hex') : null);
let n = 0;
function sqliteCopy() {
  const src = sqliteWritesWal(dir, `cli${n++}`, 4096, typicalWork(12, n));
  return src.db;
}

describe('walnut inspect / verify', () => {
  it('reports what SQLite sees and changes no byte of the db, -wal or -shm', async () => {
    const db = sqliteCopy();
    // give it a -shm too: a SQLite reader that stays open in another process is not needed, SQLite leaves one while open
    const before = [hash(db), hash(`${db}-wal`), hash(`${db}-shm`)];
    const { status, out } = await json('inspect', db);
    expect(status).toBe(0);
    expect([hash(db), hash(`${db}-wal`), hash(`${db}-shm`)]).toEqual(before);
    // SQLite's own view on a copy
    const copy = path.join(dir, `copy${n}.db`);
    fs.copyFileSync(db, copy);
    fs.copyFileSync(`${db}-wal`, `${copy}-wal`);
    const s = new Database(copy);
    const pageCount = s.pragma('page_count', { simple: true });
    expect(out.pageSize).toBe(s.pragma('page_size', { simple: true }));
    const ck = s.pragma('wal_checkpoint(PASSIVE)') as { log: number }[];
    s.close();
    expect(out.walFrames).toBe(ck[0]!.log);
    expect(out.dbPages).toBe(pageCount);
    expect(out.commits).toBeGreaterThan(5);
    expect(out.walMode).toBe(true);
    expect(await json('verify', db)).toMatchObject({ status: 0, out: { ok: true, level: 5, issues: [] } });
  });

  it('on a walnut-written database with a live -shm: the fields match and no byte changes', async () => {
    const db = path.join(dir, 'live-shm.db');
    const store = await open(db, { autoCheckpoint: false });
    for (let i = 0; i < 5; i++) await store.commit([{ pgno: 2 + i, data: Buffer.alloc(4096, i) }]);
    const before = [hash(db), hash(`${db}-wal`), hash(`${db}-shm`)];
    expect(before[2]).not.toBeNull();
    const { status, out } = await json('inspect', db);
    expect(status).toBe(0);
    expect([hash(db), hash(`${db}-wal`), hash(`${db}-shm`)]).toEqual(before);
    expect(out).toMatchObject({ walFrames: 5, commits: 5, dbPages: 6, backfilled: 0 });
    expect(out.shm).toMatchObject({ headerValid: true, mxFrame: 5 });
    // this process holds SHARED on the database and the DMS byte: inspect names the holders
    expect(out.locks.map((l: { lock: string }) => l.lock)).toEqual(expect.arrayContaining(['DMS', 'SHARED']));
    await store.close();
  });

  it('verify exits 1 when the -shm describes frames the WAL does not hold', async () => {
    const db = path.join(dir, 'shmbad.db');
    const store = await open(db, { keepWal: true });
    for (let i = 0; i < 3; i++) await store.commit([{ pgno: 2, data: Buffer.alloc(4096, i) }]);
    await store.close();
    fs.truncateSync(`${db}-wal`, 32 + 4120); // the WAL loses its last frames; the -shm still says 3
    const r = await json('verify', db);
    expect(r.status).toBe(1);
    expect(r.out.ok).toBe(false);
    expect(r.out.issues.map((i: { kind: string }) => i.kind)).toContain('shm-ahead-of-wal');
  });
});

describe('walnut checkpoint / recover / export / restore', () => {
  it('checkpoint --mode truncate beside a sqlite3 read transaction comes back busy: exit 1, the WAL not cut', async () => {
    const db = sqliteCopy();
    const reader = new Database(db);
    try {
      reader.prepare('BEGIN').run();
      const rows = reader.prepare('SELECT count(*) AS n FROM t').get(); // a read mark in the WAL, held
      const walBytes = fs.statSync(`${db}-wal`).size;
      const r = await json('checkpoint', db, '--mode', 'truncate', '--busy-timeout', '500'); // waits out the busy timeout for the reader
      expect(r.out).toMatchObject({ mode: 'truncate', busy: true });
      expect(r.out.walFrames).toBeGreaterThan(0);
      expect(r.status).toBe(1); // not done: a script's `&&` must not go on (it exited 0)
      expect(fs.statSync(`${db}-wal`).size).toBe(walBytes);
      expect(reader.prepare('SELECT count(*) AS n FROM t').get()).toEqual(rows);
      reader.prepare('COMMIT').run();
    } finally {
      reader.close();
    }
    expect(await json('checkpoint', db, '--mode', 'truncate')).toMatchObject({ status: 0, out: { busy: false, walFrames: 0 } });
  });

  it('checkpoint reports what SQLite reports; recover rebuilds; export | restore round-trips', async () => {
    const db = sqliteCopy();
    const theirs = path.join(dir, `theirs${n}.db`);
    fs.copyFileSync(db, theirs);
    fs.copyFileSync(`${db}-wal`, `${theirs}-wal`);
    const s = new Database(theirs);
    const their = (s.pragma('wal_checkpoint(RESTART)') as { busy: number; log: number; checkpointed: number }[])[0]!;
    const rows = s.prepare('SELECT * FROM t ORDER BY id').all();
    s.close();
    const r = await json('checkpoint', db, '--mode', 'restart');
    expect(r.out).toEqual({ mode: 'restart', busy: their.busy === 1, walFrames: their.log, checkpointedFrames: their.checkpointed });
    expect((await json('recover', db)).out).toMatchObject({ pageSize: 4096, repairedFrames: 0 });
    const ark = path.join(dir, `x${n}.ark`);
    expect((await json('export', db, '-o', ark)).out.bytes).toBe(fs.statSync(ark).size);
    const restored = path.join(dir, `restored${n}.db`);
    expect((await json('restore', ark, restored)).out).toMatchObject({ stoppedBy: null });
    const back = new Database(restored);
    expect(back.prepare('SELECT * FROM t ORDER BY id').all()).toEqual(rows);
    expect(back.pragma('integrity_check', { simple: true })).toBe('ok');
    back.close();
    // piped: no progress bar, no control characters on stderr
    const quiet = await walnut('export', db, '-o', `${ark}.2`);
    expect(quiet.stderr).toMatch(/^walnut export: \d+ bytes\n$/);
    const again = await walnut('restore', ark, restored);
    expect(again.status).toBe(2);
    expect(again.stderr).toMatch(/WALNUT_INVALID_ARGUMENT: .*exists/);
  });

  it('restore --until: a whole number is a sequence, an ISO 8601 time a time, anything else one clear error and no file', async () => {
    const db = sqliteCopy();
    const ark = path.join(dir, `until${n}.ark`);
    expect((await json('export', db, '-o', ark)).status).toBe(0);
    // Date's fallback parser reads "-1" as 2001-01-01 and "1.5" as 2001-01-05: both would be "before the earliest point"
    // or, worse, a real time; neither is what the user typed
    // and Date rolls a day or hour that does not exist over into the next (2026-02-30 is 2026-03-02): another state
    for (const bad of ['-1', '1.5', 'abc', ' 5', '+5', '1e3', 'Nov 22 2026', '2026-13-45', '2026-02-30', '2026-02-29T10:00:00Z', '2026-04-31', '2026-11-22T24:00:00Z', '2026-11-22T23:00:00+24:00']) {
      const out = path.join(dir, `until-bad${n}.db`);
      const r = await walnut('restore', ark, out, '--until', bad);
      expect(r.status, bad).toBe(2);
      expect(r.stderr, bad).toMatch(/^walnut: WALNUT_INVALID_ARGUMENT: --until must be a commit sequence .*ISO 8601/m);
      expect(fs.existsSync(out), bad).toBe(false);
    }
    // a sequence past every u64 names no commit of any stream: refused, no file
    const pastU64 = path.join(dir, `until-past-u64${n}.db`);
    const refused = await walnut('restore', ark, pastU64, '--until', '18446744073709551616');
    expect(refused.status).toBe(2);
    expect(refused.stderr).toMatch(/^walnut: WALNUT_INVALID_ARGUMENT: --until as a commit sequence must be at most 2\^64 - 1/m);
    expect(fs.existsSync(pastU64)).toBe(false);
    // a sequence past the last commit gives the last (the largest u64 included); an ISO time after every commit too
    const huge = await json('restore', ark, path.join(dir, `until-huge${n}.db`), '--until', '18446744073709551615');
    const whole = await json('restore', ark, path.join(dir, `until-time${n}.db`), '--until', '2999-01-01T00:00:00Z');
    expect(huge.out).toMatchObject({ stoppedBy: null });
    expect(huge.out.lastCommitSeq).toBe(whole.out.lastCommitSeq);
  });
});

describe('errors and help', () => {
  it('one clear line and exit 2 for each kind of bad path', async () => {
    const notDb = path.join(dir, 'text.db');
    fs.writeFileSync(notDb, 'not a database at all, but long enough to have a header ............................................');
    const rollback = path.join(dir, 'rollback.db');
    const r = new Database(rollback);
    r.exec('CREATE TABLE x(y)');
    r.close();
    const cases: [string[], RegExp][] = [
      [['inspect', path.join(dir, 'missing.db')], /WALNUT_CANTOPEN: cannot open .*no such file/],
      [['inspect', dir], /WALNUT_CANTOPEN: .* is a directory/],
      [['inspect', notDb], /WALNUT_CANTOPEN: .* is not a SQLite database/],
      [['checkpoint', rollback], /WALNUT_CANTOPEN: .*not in WAL mode/],
      [['checkpoint', path.join(dir, 'never-made.db')], /WALNUT_CANTOPEN: cannot open the database .*no such file/],
      [['verify', rollback, '--level', '9'], /WALNUT_INVALID_ARGUMENT: level must be/],
      [['frobnicate'], /unknown command/],
    ];
    for (const [args, message] of cases) {
      expect(fs.existsSync(path.join(dir, 'never-made.db'))).toBe(false);
      const res = await walnut(...args);
      expect(res.status, args.join(' ')).toBe(2);
      expect(res.stderr.trim().split('\n')[0]).toMatch(message);
      expect(res.stdout).toBe('');
    }
  });

  it('a FIFO at the database, its -wal, -shm or -wal-fec: inspect and verify refuse it (WALNUT_CANTOPEN) instead of blocking on its open', async () => {
    const db = sqliteCopy();
    const run = async (target: string, fifo: string) => {
      await spawnOutput('mkfifo', [fifo]);
      for (const cmd of ['inspect', 'verify']) {
        const res = await spawnOutput(process.execPath, [bin, cmd, target], { timeout: WAIT_MS });
        expect(res.signal, `${cmd} ${fifo}: blocked`).toBe(null);
        expect(res.status, `${cmd} ${fifo}`).toBe(2);
        const what = fifo === target ? 'not a database' : 'remove it (opening it would block or fail)'; // the database itself, or a companion
        expect(res.stderr.trim()).toBe(`walnut: WALNUT_CANTOPEN: ${fs.realpathSync(fifo)} is not a regular file (a FIFO): ${what}`);
      }
      fs.rmSync(fifo);
    };
    await run(path.join(dir, 'fifo.db'), path.join(dir, 'fifo.db'));
    for (const suffix of ['-wal', '-shm', '-wal-fec']) {
      for (const s of ['-wal', '-shm', '-wal-fec']) fs.rmSync(db + s, { force: true });
      await run(db, db + suffix);
    }
  });

  it('--help for every command shows an example', async () => {
    for (const cmd of ['inspect', 'verify', 'recover', 'checkpoint', 'export', 'restore', 'bench']) {
      const res = await walnut(cmd, '--help');
      expect(res.status).toBe(0);
      expect(res.stdout).toContain('Example:');
    }
  });
});

describe('walnut export never lands on the database', () => {
  const sqlite3 = async (db: string) => (await spawnOutput('sqlite3', [db, 'PRAGMA integrity_check; SELECT count(*) FROM t;'])).stdout;

  it('refuses the database, -wal, -shm and sidecar, also through hard and symbolic links with --force (exit 2, WALNUT_INVALID_ARGUMENT); the database is unchanged', async () => {
    const db = sqliteCopy();
    const rows = await sqlite3(db); // (sqlite3's last close checkpoints and removes the -wal and -shm)
    expect(rows).toMatch(/^ok\n\d+\n$/);
    const store = await openWithFec(db, { fec: { repairSymbols: 1 }, keepWal: true }); // a -wal, -shm and sidecar
    await store.commit([{ pgno: 1, data: fs.readFileSync(db).subarray(0, 4096) }]); // page 1 as it is: one frame in the WAL
    await store.close();
    const files = [db, `${db}-wal`, `${db}-shm`, `${db}-wal-fec`];
    const before = files.map(hash);
    expect(before.every((h) => h !== null)).toBe(true);
    const hard = path.join(dir, `hard-link${n}`);
    fs.linkSync(db, hard);
    const soft = path.join(dir, `soft-link${n}`);
    fs.symlinkSync(`${db}-wal`, soft);
    // (every name with and without force: test/interop/unsafe-files.test.ts, in process)
    for (const [out, force] of [...files.map((f) => [f, []]), [hard, ['--force']], [soft, ['--force']]] as [string, string[]][]) {
      const r = await walnut('export', db, '-o', out, ...force);
      expect(r.status, `${out} ${force}`).toBe(2);
      expect(r.stderr).toMatch(/^walnut: WALNUT_INVALID_ARGUMENT: refusing to write the export to .*: it is the database/);
    }
    // `walnut export app.db >> app.db`: the shell hands the database over as stdout (appended to, exit 0, before)
    const appended = fs.openSync(db, 'a');
    try {
      const r = await spawnOutput(process.execPath, [bin, 'export', db], { stdio: ['ignore', appended, 'pipe'] });
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/^walnut: WALNUT_INVALID_ARGUMENT: refusing to write the export to descriptor 1: it is the database \(/);
    } finally {
      fs.closeSync(appended);
    }
    expect(files.map(hash)).toEqual(before);
    expect(await sqlite3(db)).toBe(rows);
    // a companion that does not exist yet is refused by its name
    fs.rmSync(`${db}-wal-fec`);
    expect((await walnut('export', db, '-o', `${db}-wal-fec`)).status).toBe(2);
    expect(fs.existsSync(`${db}-wal-fec`)).toBe(false);
  });

  it('an existing output only with --force', async () => {
    const db = sqliteCopy();
    const ark = path.join(dir, `existing${n}.ark`);
    fs.writeFileSync(ark, 'keep me');
    const r = await walnut('export', db, '-o', ark);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^walnut: WALNUT_INVALID_ARGUMENT: .*exists; pass force \(--force\)/);
    expect(fs.readFileSync(ark, 'utf8')).toBe('keep me');
    expect((await json('export', db, '-o', ark, '--force')).out.bytes).toBe(fs.statSync(ark).size);
    expect(fs.readFileSync(ark).subarray(0, 8).toString()).toBe('ARKHEXP1');
    expect((await json('restore', ark, path.join(dir, `from-forced${n}.db`))).out).toMatchObject({ stoppedBy: null });
    // the export above, the database's last connection, checkpointed its WAL as it closed: the
    // streams from now on start from that state
    expect((await json('export', db, '-o', ark, '--force')).out.bytes).toBe(fs.statSync(ark).size);
    // -o - is stdout (restore's - is stdin); no file named -
    const stdout = await spawnOutput(process.execPath, [bin, 'export', db, '-o', '-'], { cwd: dir, encoding: 'buffer' });
    expect(stdout.status).toBe(0);
    expect(stdout.stdout.length).toBe(fs.statSync(ark).size); // the same records (their export times differ)
    expect(stdout.stdout.subarray(0, 8).toString()).toBe('ARKHEXP1');
    expect(fs.existsSync(path.join(dir, '-'))).toBe(false);
    // an export that fails (a rollback-journal database cannot be exported) leaves no output file behind
    const rollback = path.join(dir, `rollback${n}.db`);
    new Database(rollback).exec('CREATE TABLE t(x)');
    const failed = await walnut('export', rollback, '-o', `${ark}.new`);
    expect(failed.status).toBe(2);
    expect(failed.stderr).toMatch(/^walnut: WALNUT_CANTOPEN: .*rollback-journal mode/);
    expect(fs.existsSync(`${ark}.new`)).toBe(false);
  });
});

describe('a closed stdout', () => {
  // The child's stdout is a real pipe whose reader is closed before the child starts: every
  // write gets EPIPE, whatever the size of the output and however fast the machine is.
  // (a FIFO opened read-write then write-only; the read-write descriptor is closed, then exec)
  const CLOSED_PIPE = 'f=$(mktemp -u) && mkfifo "$f" && exec 3<>"$f" 4>"$f" && rm "$f" && exec 3<&- && exec "$@" >&4 4>&-';
  const intoClosedPipe = (...args: string[]) => spawnOutput('bash', ['-c', CLOSED_PIPE, 'bash', process.execPath, bin, ...args]);
  const noTrace = (stderr: string) => expect(stderr).not.toMatch(/Error:|\n\s+at |Unhandled/);

  it('every command ends quietly with the status it would have had; export exits 2 naming EPIPE', async () => {
    const db = sqliteCopy();
    const ark = path.join(dir, `epipe${n}.ark`);
    expect((await walnut('export', db, '-o', ark)).status).toBe(0);
    const bad = path.join(dir, `epipe-bad${n}.db`);
    const store = await open(bad, { keepWal: true });
    for (let i = 0; i < 3; i++) await store.commit([{ pgno: 2, data: Buffer.alloc(4096, i) }]);
    await store.close();
    fs.truncateSync(`${bad}-wal`, 32 + 4120); // verify finds the -shm ahead of the WAL: status 1
    const cases: [string[], number][] = [
      [['inspect', db, '--json'], 0],
      [['verify', db], 0],
      [['verify', bad], 1],
      [['checkpoint', db, '--json'], 0],
      [['recover', db], 0],
      [['restore', ark, path.join(dir, `epipe-restored${n}.db`)], 0],
    ];
    for (const [args, status] of cases) {
      const r = await intoClosedPipe(...args);
      expect(r.status, args.join(' ')).toBe(status);
      expect(r.stderr, args.join(' ')).toBe('');
    }
    expect(fs.existsSync(path.join(dir, `epipe-restored${n}.db`))).toBe(true); // the work was done
    for (const follow of [[], ['--follow']]) {
      const e = await intoClosedPipe('export', db, ...follow); // --follow too ends (it would run until interrupted)
      expect(e.status).toBe(2);
      // the reader read nothing (closed before the start): no "after N bytes" as if it had them
      expect(e.stderr).toMatch(/^walnut: WALNUT_IO: the reader of the export stream went away before the stream ended \(EPIPE\): its copy is incomplete \(the export had produced \d+ bytes; the reader read at most that many\)\n$/);
      noTrace(e.stderr);
    }
  });

  it('a stdout that fails otherwise (a full disk: /dev/full) is a runtime error: exit 2, one line naming WALNUT_FULL', async () => {
    const db = sqliteCopy();
    const full = fs.openSync('/dev/full', 'w');
    try {
      // verify prints its report after an await, --help through commander: their write errors too (exit 0 before)
      for (const args of [['inspect', db], ['export', db], ['verify', db], ['--help']]) {
        const r = await spawnOutput(process.execPath, [bin, ...args], { stdio: ['ignore', full, 'pipe'] });
        expect(r.status, args[0]).toBe(2);
        expect(r.stderr).toBe('walnut: WALNUT_FULL: ENOSPC: no space left on device, write\n');
      }
    } finally {
      fs.closeSync(full);
    }
  });

  it('export | head -c1 on an export larger than a pipe holds: exit 2, one line, no stack trace', async () => {
    const db = path.join(dir, `big${n}.db`);
    const s = new Database(db);
    s.pragma('journal_mode = WAL');
    s.exec("CREATE TABLE t(x); WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 500) INSERT INTO t SELECT randomblob(4000) FROM c");
    s.close();
    const r = await spawnOutput('bash', ['-c', `"${process.execPath}" "${bin}" export "${db}" | head -c1 > /dev/null; echo "\${PIPESTATUS[0]}"`]);
    expect(r.stdout.trim()).toBe('2');
    expect(r.stderr).toMatch(/^walnut: WALNUT_IO: the reader of the export stream went away before the stream ended \(EPIPE\): its copy is incomplete \(the export had produced \d+ bytes; the reader read at most that many\)\n$/);
    noTrace(r.stderr);
  });
});
