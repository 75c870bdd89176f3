// The walnut command on databases written by SQLite and by walnut: --json fields against
// SQLite's own view, exit statuses, error messages, and inspect changing nothing.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import { Database, sqliteWritesWal, typicalWork } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
const walnut = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' });
const json = (...args: string[]) => {
  const r = walnut(...args, '--json');
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
  it('reports what SQLite sees and changes no byte of the db, -wal or -shm', () => {
    const db = sqliteCopy();
    // give it a -shm too: a SQLite reader that stays open in another process is not needed, SQLite leaves one while open
    const before = [hash(db), hash(`${db}-wal`), hash(`${db}-shm`)];
    const { status, out } = json('inspect', db);
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
    expect(json('verify', db)).toMatchObject({ status: 0, out: { ok: true, level: 5, issues: [] } });
  });

  it('on a walnut-written database with a live -shm: the fields match and no byte changes', async () => {
    const db = path.join(dir, 'live-shm.db');
    const store = await open(db, { autoCheckpoint: false });
    for (let i = 0; i < 5; i++) await store.commit([{ pgno: 2 + i, data: Buffer.alloc(4096, i) }]);
    const before = [hash(db), hash(`${db}-wal`), hash(`${db}-shm`)];
    expect(before[2]).not.toBeNull();
    const { status, out } = json('inspect', db);
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
    const r = json('verify', db);
    expect(r.status).toBe(1);
    expect(r.out.ok).toBe(false);
    expect(r.out.issues.map((i: { kind: string }) => i.kind)).toContain('shm-ahead-of-wal');
  });
});

describe('walnut checkpoint / recover / export / restore', () => {
  it('checkpoint reports what SQLite reports; recover rebuilds; export | restore round-trips', () => {
    const db = sqliteCopy();
    const theirs = path.join(dir, `theirs${n}.db`);
    fs.copyFileSync(db, theirs);
    fs.copyFileSync(`${db}-wal`, `${theirs}-wal`);
    const s = new Database(theirs);
    const their = (s.pragma('wal_checkpoint(RESTART)') as { busy: number; log: number; checkpointed: number }[])[0]!;
    const rows = s.prepare('SELECT * FROM t ORDER BY id').all();
    s.close();
    const r = json('checkpoint', db, '--mode', 'restart');
    expect(r.out).toEqual({ mode: 'restart', busy: their.busy === 1, walFrames: their.log, checkpointedFrames: their.checkpointed });
    expect(json('recover', db).out).toMatchObject({ pageSize: 4096, repairedFrames: 0 });
    const ark = path.join(dir, `x${n}.ark`);
    expect(json('export', db, '-o', ark).out.bytes).toBe(fs.statSync(ark).size);
    const restored = path.join(dir, `restored${n}.db`);
    expect(json('restore', ark, restored).out).toMatchObject({ stoppedBy: null });
    const back = new Database(restored);
    expect(back.prepare('SELECT * FROM t ORDER BY id').all()).toEqual(rows);
    expect(back.pragma('integrity_check', { simple: true })).toBe('ok');
    back.close();
    // piped: no progress bar, no control characters on stderr
    const quiet = walnut('export', db, '-o', `${ark}.2`);
    expect(quiet.stderr).toMatch(/^walnut export: \d+ bytes\n$/);
    const again = walnut('restore', ark, restored);
    expect(again.status).toBe(2);
    expect(again.stderr).toMatch(/WALNUT_INVALID_ARGUMENT: .*exists/);
  });
});

describe('errors and help', () => {
  it('one clear line and exit 2 for each kind of bad path', () => {
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
      const res = walnut(...args);
      expect(res.status, args.join(' ')).toBe(2);
      expect(res.stderr.trim().split('\n')[0]).toMatch(message);
      expect(res.stdout).toBe('');
    }
  });

  it('--help for every command shows an example', () => {
    for (const cmd of ['inspect', 'verify', 'recover', 'checkpoint', 'export', 'restore', 'bench']) {
      const res = walnut(cmd, '--help');
      expect(res.status).toBe(0);
      expect(res.stdout).toContain('Example:');
    }
  });
});
