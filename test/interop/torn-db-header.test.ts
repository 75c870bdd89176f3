// A database whose file header is damaged while its WAL holds a good, committed page 1: what a
// torn write of page 1 during an interrupted checkpoint (by walnut or by sqlite3) leaves. SQLite
// opens the -wal before it reads anything and reads page 1 through it, so sqlite3 reads such a
// database as if nothing were wrong; walnut refused it (WALNUT_CANTOPEN "not a SQLite database",
// or a wrong page size taken from the file). Now every path that reads the header first (open,
// walnut/sql, inspect, verify, export, checkpoint, the CLI's pre-checks) takes page 1 from the WAL
// (wal/page1-through-wal.ts), and a checkpoint writes it back, after which sqlite3 and walnut
// verify agree the file is whole. Garbage with no WAL, or with a WAL SQLite would not use, is
// refused as before, changing nothing. Cases: the file's first 100 bytes random; only its
// page-size field wrong (an invalid size; another valid size in an intact WAL-mode header is what a
// copied foreign -wal looks like, and is refused); a 16,000+-frame WAL (4+ -shm
// segments) with a python3 sqlite3 writer beside walnut/sql; the CLI verbs on such a file, and
// its -shm name still refused as an export's output; page 1 in the WAL without the magic
// (WALNUT_CANTOPEN) or naming another page size (WALNUT_CORRUPT), each as sqlite3 fails it.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { inspect, open } from '../../lib';
import { openDatabase } from '../../lib/sql';
import { runPython, spawnOutput, HELPERS } from '../helpers/children';
import { segmentEnd } from '../helpers/large-wal';
import { rewritePage1InWal, sqliteWritesWal } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
const walnut = (...args: string[]) => spawnOutput(process.execPath, [bin, ...args]);
const sqlite3 = (db: string, sql: string) => execFileSync('sqlite3', [db, sql], { encoding: 'utf8' }).trim();

type Damage = 'random-100' | 'page-size-other' | 'page-size-invalid';

/** Writes the damage over the file's header (page 1 in the WAL is untouched). */
function damage(db: string, how: Damage): void {
  const fd = fs.openSync(db, 'r+');
  try {
    if (how === 'random-100') {
      // fixed bytes (reproducible), none of them the magic's
      fs.writeSync(fd, Buffer.from(Array.from({ length: 100 }, (_, k) => (k * 151 + 7) & 0xff)), 0, 100, 0);
    } else {
      const field = Buffer.alloc(2);
      field.writeUInt16BE(how === 'page-size-other' ? 1024 : 3000, 0);
      fs.writeSync(fd, field, 0, 2, 16);
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** A 4096-byte-page WAL database whose WAL holds page 1 (its CREATE TABLE) and a row; the file's header damaged. */
function tornCopy(name: string, how: Damage): string {
  const { db } = sqliteWritesWal(dir, name, 4096, (s) => {
    s.exec("CREATE TABLE t(w, v); INSERT INTO t VALUES (0, 'hello')");
  });
  damage(db, how);
  return db;
}

/** What open() rejects with (null when it opens; the store is closed again). */
function openError(db: string): Promise<unknown> {
  return open(db).then(
    async (s) => {
      await s.close();
      return null;
    },
    (e: unknown) => e,
  );
}

function headerIsWhole(db: string, pageSize = 4096): boolean {
  const head = Buffer.alloc(18);
  const fd = fs.openSync(db, 'r');
  try {
    fs.readSync(fd, head, 0, 18, 0);
  } finally {
    fs.closeSync(fd);
  }
  return head.subarray(0, 16).toString('latin1') === 'SQLite format 3\0' && head.readUInt16BE(16) === pageSize;
}

describe('a damaged database header under a WAL that holds page 1', () => {
  for (const how of ['random-100', 'page-size-invalid'] as const) {
    it(`${how}: open, read, commit, checkpoint; then the header is whole and sqlite3 reads every row`, async () => {
      const db = tornCopy(`open-${how}`, how);
      const store = await open(db);
      try {
        expect(store.pageSize).toBe(4096);
      } finally {
        await store.close();
      }
      expect(headerIsWhole(db)).toBe(true); // the last connection's checkpoint wrote page 1 back

      const again = tornCopy(`sql-${how}`, how);
      const sql = await openDatabase(again);
      try {
        expect(await sql.all('SELECT w, v FROM t')).toEqual([{ w: 0, v: 'hello' }]);
        await sql.run("INSERT INTO t VALUES (1, 'walnut')");
        expect(headerIsWhole(again)).toBe(false); // nothing rewrote it before the checkpoint
        const r = await sql.store.checkpoint('truncate');
        expect(r).toMatchObject({ busy: false, walFrames: 0 });
        expect(headerIsWhole(again)).toBe(true);
      } finally {
        await sql.close();
      }
      expect(sqlite3(again, 'PRAGMA integrity_check')).toBe('ok');
      expect(sqlite3(again, "SELECT group_concat(v, ',') FROM (SELECT v FROM t ORDER BY w)")).toBe('hello,walnut');
      const v = await walnut('verify', again, '--json');
      expect(v.status, v.stderr).toBe(0);
      expect(JSON.parse(v.stdout)).toMatchObject({ ok: true });
    });
  }

  it('garbage with no WAL, or with a WAL SQLite would not use, is still refused and left as it was', async () => {
    const noWal = tornCopy('no-wal', 'random-100');
    fs.rmSync(`${noWal}-wal`);
    const badWal = tornCopy('bad-wal', 'random-100');
    const fd = fs.openSync(`${badWal}-wal`, 'r+');
    fs.writeSync(fd, Buffer.from([0xff]), 0, 1, 24); // the WAL header's checksum: SQLite counts the WAL as empty
    fs.closeSync(fd);
    for (const db of [noWal, badWal]) {
      const before = fs.readFileSync(db);
      const err = await openError(db);
      expect(err).toMatchObject({ name: 'WalnutError', code: 'WALNUT_CANTOPEN', message: expect.stringMatching(/not a SQLite database/) });
      expect(fs.readFileSync(db).equals(before)).toBe(true);
      const i = await walnut('inspect', db, '--json');
      expect(i.status).toBe(2);
      expect(i.stderr).toMatch(/WALNUT_CANTOPEN/);
    }
  });

  it('an intact WAL-mode header naming another page size than the WAL is a foreign WAL: refused, not adopted', async () => {
    // sqlite3 would read page 1 from the WAL and its checkpoint would write 4096-byte pages into a
    // file whose header says 1024; no torn write changes only that field, a copied -wal does
    const db = tornCopy('foreign-size', 'page-size-other');
    const before = [fs.readFileSync(db), fs.readFileSync(`${db}-wal`)];
    const err = await openError(db);
    expect(err).toMatchObject({ name: 'WalnutError', code: 'WALNUT_CORRUPT' });
    const v = await walnut('verify', db, '--json', '--level', '1');
    expect(v.status).toBe(1);
    expect(JSON.parse(v.stdout).issues.map((i: { kind: string }) => i.kind)).toContain('wal-page-size'); // and the file read at 1024 (its header's size) has bad pages
    expect(fs.readFileSync(db).equals(before[0]!) && fs.readFileSync(`${db}-wal`).equals(before[1]!)).toBe(true);
  });

  it("page 1 in the WAL decides: without the magic it is no database, of another page size it is corrupt (as sqlite3 says)", async () => {
    const cases = [
      { name: 'wal-page1-magic', change: (page: Buffer) => (page[3] = 0x41), code: 'WALNUT_CANTOPEN', sqlite: /file is not a database/ },
      { name: 'wal-page1-size', change: (page: Buffer) => page.writeUInt16BE(1024, 16), code: 'WALNUT_CORRUPT', sqlite: /malformed/ },
    ];
    for (const c of cases) {
      const db = tornCopy(c.name, 'random-100');
      rewritePage1InWal(`${db}-wal`, c.change);
      const before = [fs.readFileSync(db), fs.readFileSync(`${db}-wal`)];
      const err = await openError(db);
      expect(err, c.name).toMatchObject({ name: 'WalnutError', code: c.code });
      expect(fs.readFileSync(db).equals(before[0]!) && fs.readFileSync(`${db}-wal`).equals(before[1]!)).toBe(true);
      const i = await walnut('inspect', db, '--json');
      expect(i.stderr).toContain(c.code);
      // sqlite3 on a copy (its close would checkpoint and remove the WAL of a database it could read)
      const copy = path.join(dir, `${c.name}-sqlite3.db`);
      fs.copyFileSync(db, copy);
      fs.copyFileSync(`${db}-wal`, `${copy}-wal`);
      const r = await spawnOutput('sqlite3', [copy, 'SELECT * FROM t']);
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(c.sqlite);
    }
  });

  it('the CLI verbs (inspect, verify, export, checkpoint) read it through the WAL; its companions stay its own', async () => {
    const inspected = tornCopy('cli-inspect', 'page-size-invalid');
    const i = await walnut('inspect', inspected, '--json');
    expect(i.status, i.stderr).toBe(0);
    expect(JSON.parse(i.stdout)).toMatchObject({ pageSize: 4096, journalMode: 'wal', walMode: true });
    const verified = tornCopy('cli-verify', 'random-100');
    const v = await walnut('verify', verified, '--json');
    expect(v.status, v.stderr).toBe(0);
    expect(JSON.parse(v.stdout)).toMatchObject({ ok: true });

    const exported = tornCopy('cli-export', 'random-100');
    const out = path.join(dir, 'cli-export.ark');
    const e = await walnut('export', exported, '-o', out);
    expect(e.status, e.stderr).toBe(0);
    const restored = path.join(dir, 'cli-export-restored.db');
    const r = await walnut('restore', out, restored);
    expect(r.status, r.stderr).toBe(0);
    expect(sqlite3(restored, 'SELECT v FROM t')).toBe('hello');

    const checkpointed = tornCopy('cli-checkpoint', 'random-100');
    // its -shm's name is still that database's companion: no export lands there (sqlite3 would take it for its wal-index)
    const onShm = await walnut('export', exported, '-o', `${checkpointed}-shm`);
    expect(onShm.status).toBe(2);
    expect(onShm.stderr).toMatch(/WALNUT_INVALID_ARGUMENT: refusing to write the export/);
    expect(fs.existsSync(`${checkpointed}-shm`)).toBe(false);
    const c = await walnut('checkpoint', checkpointed, '--mode', 'truncate');
    expect(c.status, c.stderr).toBe(0);
    expect(headerIsWhole(checkpointed)).toBe(true);
    expect(sqlite3(checkpointed, 'PRAGMA integrity_check')).toBe('ok');
    expect(sqlite3(checkpointed, 'SELECT v FROM t')).toBe('hello');
  });

  it('a WAL of 16,000+ frames (4+ -shm segments) with a python3 sqlite3 writer beside walnut/sql', async () => {
    const frames = segmentEnd(3) + 100;
    const { db } = sqliteWritesWal(dir, 'large', 512, (s) => {
      s.exec('CREATE TABLE t(w, v)');
      const ins = s.prepare('INSERT INTO t VALUES (0, ?)');
      // one row a commit (synchronous off: no fsync each); page 1 is in the WAL from the CREATE TABLE
      s.pragma('synchronous = OFF');
      for (let n = 0; frames > fs.statSync(`${s.name}-wal`).size / (512 + 24) - 1; n++) ins.run(n);
    });
    damage(db, 'random-100');
    expect(inspect(db)).toMatchObject({ pageSize: 512, walMode: true, walFrames: expect.any(Number) });
    expect(inspect(db).walFrames).toBeGreaterThanOrEqual(frames);
    const sql = await openDatabase(db, { autoCheckpoint: false }); // the truncate below is the first checkpoint
    try {
      const rows = Number((await sql.get('SELECT count(*) AS n FROM t'))!.n);
      expect(rows).toBeGreaterThan(frames / 4);
      const writer = runPython(path.join(HELPERS, 'sqlite-writer.py'), [db, '1', '1', '0', '0', '20']);
      for (let n = 0; n < 20; n++) await sql.run('INSERT INTO t VALUES (2, ?)', [n]);
      const written = Number((await writer).trim());
      expect(written).toBeGreaterThanOrEqual(20);
      expect(headerIsWhole(db, 512)).toBe(false); // wal_autocheckpoint 0: no checkpoint yet
      const r = await sql.store.checkpoint('truncate');
      expect(r).toMatchObject({ busy: false, walFrames: 0 });
      expect(headerIsWhole(db, 512)).toBe(true);
      expect(sqlite3(db, 'SELECT count(*) FROM t WHERE w = 1')).toBe(String(written));
      expect(Number(sqlite3(db, 'SELECT count(*) FROM t'))).toBe(rows + 20 + written);
    } finally {
      await sql.close();
    }
    expect(sqlite3(db, 'PRAGMA integrity_check')).toBe('ok');
  });
});

