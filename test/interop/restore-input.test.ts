// restore() with inputs a caller can get wrong: every one is a WalnutError with a stable code,
// and nothing is lost (no target created or replaced, no temporary file left, an existing
// database and its -wal untouched). And a target whose -wal/-shm are left over from another
// database: refused without force; with force the result is what sqlite3 reads, never the old
// WAL replayed over it.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';

import { restore } from '../../lib/export/restore';
import { createExportStream } from '../../lib/export/stream';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { Database, sqliteWritesWal } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

/** A WAL database with `rows` rows of `label`, made by SQLite, checkpointed. */
function sqliteDb(name: string, label: string, rows: number): string {
  const p = path.join(dir, name);
  const db = new Database(p);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)');
  for (let i = 0; i < rows; i++) db.prepare('INSERT INTO t(v) VALUES (?)').run(`${label} ${i}`);
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  return p;
}

async function exportBytes(db: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of createExportStream(db)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** What the sqlite3 command reads from `db`: its rows' values, one per line. */
function sqlite3Rows(db: string): string[] {
  return execFileSync('sqlite3', [db, 'SELECT v FROM t ORDER BY id'], { encoding: 'utf8' }).trim().split('\n');
}

/** The directory's names: what a failed restore must not add or remove. */
function listing(): string[] {
  return fs.readdirSync(dir).sort();
}

const src = sqliteDb('src.db', 'restored', 20);
const ark = path.join(dir, 'src.ark');
let bytes: Buffer;
// every test uses the stream (made here, not by whichever test runs first: they may run in any order)
beforeAll(async () => {
  bytes = await exportBytes(src);
  fs.writeFileSync(ark, bytes);
});

describe('restore inputs a caller can get wrong', () => {
  it('a missing stream file, a directory as the stream: WALNUT_CANTOPEN naming it, nothing created', async () => {
    const before = listing();
    const missing = path.join(dir, 'missing.ark');
    await expectRejectsWalnut(restore(fs.createReadStream(missing), path.join(dir, 'a.db')), 'WALNUT_CANTOPEN', { path: missing, reason: 'source' });
    await expectRejectsWalnut(restore(fs.createReadStream(dir), path.join(dir, 'b.db')), 'WALNUT_CANTOPEN', { path: dir, reason: 'source' });
    expect(listing()).toEqual(before);
  });

  it('a Unix socket\'s file as the stream: WALNUT_CANTOPEN naming it (it was WALNUT_IO ENXIO, a failed read), nothing created', async () => {
    const socket = path.join(dir, 'listening.sock');
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(socket, resolve));
    try {
      const before = listing();
      await expectRejectsWalnut(restore(fs.createReadStream(socket), path.join(dir, 'c.db')), 'WALNUT_CANTOPEN', { path: socket, reason: 'source' });
      expect(listing()).toEqual(before);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('a target that is a directory (with force too), or in a directory that does not exist: WALNUT_CANTOPEN naming it, nothing created', async () => {
    const target = path.join(dir, 'a-directory.db');
    fs.mkdirSync(target);
    fs.writeFileSync(path.join(target, 'kept'), 'x');
    const before = listing();
    for (const force of [false, true]) await expectRejectsWalnut(restore(fs.createReadStream(ark), target, { force }), 'WALNUT_CANTOPEN', { path: target });
    const nowhere = path.join(dir, 'no-such-directory', 'r.db');
    await expectRejectsWalnut(restore(fs.createReadStream(ark), nowhere), 'WALNUT_CANTOPEN', { path: nowhere });
    expect(listing()).toEqual(before);
    expect(fs.readdirSync(target)).toEqual(['kept']);
  });

  it('wrong types: the source, the database path, the options, force; refused before anything is opened', async () => {
    const before = listing();
    const target = path.join(dir, 'c.db');
    for (const source of [123, null, undefined, {}, ark]) {
      await expectRejectsWalnut(restore(source as never, target), 'WALNUT_INVALID_ARGUMENT', { reason: 'source' });
    }
    for (const dbPath of [42, '', 'x\0y', undefined]) {
      await expectRejectsWalnut(restore(bytes, dbPath as never), 'WALNUT_INVALID_ARGUMENT', { reason: 'dbPath' });
    }
    await expectRejectsWalnut(restore(bytes, target, 'force' as never), 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
    await expectRejectsWalnut(restore(bytes, target, null as never), 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
    await expectRejectsWalnut(restore(bytes, target, { force: 'no' as never }), 'WALNUT_INVALID_ARGUMENT', { reason: 'force' });
    // an option restore does not take: a misspelt until would restore the stream's last state instead of the point asked for
    await expectRejectsWalnut(restore(bytes, target, { unitl: 0 } as never), 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
    expect(listing()).toEqual(before);
  });

  it('a stream that errors mid-way, an iterator that throws: WALNUT_IO, the database it would replace untouched', async () => {
    // the target: a live-looking database with commits still in its -wal
    const { db: target } = sqliteWritesWal(dir, 'kept', 4096, (db) => {
      db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t(v) VALUES ('kept 0'), ('kept 1')");
    });
    const files = [target, `${target}-wal`].map((f) => fs.readFileSync(f));
    const before = listing();
    const midway = new Readable({
      read() {
        if (this.readableLength === 0 && !(this as { sent?: boolean }).sent) {
          (this as { sent?: boolean }).sent = true;
          this.push(bytes.subarray(0, bytes.length >> 1));
        } else this.destroy(Object.assign(new Error('connection reset by peer'), { code: 'ECONNRESET', errno: -104, syscall: 'read' }));
      },
    });
    const e = await expectRejectsWalnut(restore(midway, target, { force: true }), 'WALNUT_IO', { reason: 'source', errno: 104 });
    expect(e.message).toContain('connection reset by peer');
    const throwing = (async function* () {
      yield bytes.subarray(0, 100);
      throw new TypeError('the producer broke');
    })();
    await expectRejectsWalnut(restore(throwing, target, { force: true }), 'WALNUT_IO', { reason: 'source' });
    expect(listing()).toEqual(before);
    expect([target, `${target}-wal`].map((f) => fs.readFileSync(f))).toEqual(files);
    expect(sqlite3Rows(target)).toEqual(['kept 0', 'kept 1']);
  });
});

describe('restore onto a target with another database\'s -wal/-shm', () => {
  it('a missing database whose -wal and -shm are still there is refused (StaleCompanion) without force; with force sqlite3 reads exactly the restored rows', async () => {
    // another database's WAL (same page size, commits sqlite3 would replay) left where the target goes
    const other = sqliteWritesWal(dir, 'other', 4096, (db) => {
      db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t(v) VALUES ('stale 0'), ('stale 1'), ('stale 2')");
    });
    const target = path.join(dir, 'fresh.db');
    fs.renameSync(other.wal, `${target}-wal`);
    fs.writeFileSync(`${target}-shm`, Buffer.alloc(32768));
    const wal = fs.readFileSync(`${target}-wal`);
    const err = await expectRejectsWalnut(restore(fs.createReadStream(ark), target), 'WALNUT_INVALID_ARGUMENT', { reason: 'StaleCompanion', path: `${target}-wal` });
    expect(err.message).toContain('its -wal does, with frames');
    expect(fs.existsSync(target)).toBe(false);
    expect(fs.readFileSync(`${target}-wal`).equals(wal)).toBe(true); // nothing removed by a refused restore
    expect(fs.readdirSync(dir).filter((f) => f.includes('.restore-'))).toEqual([]);

    const r = await restore(fs.createReadStream(ark), target, { force: true });
    expect(r.dbPages).toBeGreaterThan(1);
    expect(fs.existsSync(`${target}-wal`)).toBe(false);
    expect(fs.existsSync(`${target}-shm`)).toBe(false);
    expect(sqlite3Rows(target)).toEqual(Array.from({ length: 20 }, (_, i) => `restored ${i}`));
    expect(execFileSync('sqlite3', [target, 'PRAGMA integrity_check'], { encoding: 'utf8' }).trim()).toBe('ok');
  });

  it('a missing database whose -wal or -journal is a symbolic link is refused (StaleCompanion), and the message says so', async () => {
    for (const [companion, says] of [['-wal', 'its -wal does, as a symbolic link'], ['-journal', 'its rollback -journal does, as a symbolic link']]) {
      const target = path.join(dir, `linked${companion}.db`);
      fs.symlinkSync('/dev/null', `${target}${companion}`); // not looked through: what it names is not known to be empty
      const err = await expectRejectsWalnut(restore(bytes, target), 'WALNUT_INVALID_ARGUMENT', { reason: 'StaleCompanion', path: `${target}${companion}` });
      expect(err.message).toContain(says);
      expect(fs.existsSync(target)).toBe(false);
      expect(fs.lstatSync(`${target}${companion}`).isSymbolicLink()).toBe(true);
    }
  });

  it("a replica's position file (<db>-replica) goes with the database it describes; a failed restore keeps it", async () => {
    // left there, a replica opened on the restored file resumed from the old database's position
    const replaced = sqliteDb('was-replica.db', 'replica', 3);
    const position = Buffer.alloc(4096, 7);
    fs.writeFileSync(`${replaced}-replica`, position);
    const torn = bytes.subarray(0, bytes.length - 100);
    await expect(restore(Readable.from([torn]), replaced, { force: true })).rejects.toMatchObject({ name: 'WalnutError' });
    expect(fs.readFileSync(`${replaced}-replica`).equals(position)).toBe(true); // the old database stays, and its position
    expect(sqlite3Rows(replaced)).toEqual(['replica 0', 'replica 1', 'replica 2']);
    await restore(bytes, replaced, { force: true });
    expect(fs.existsSync(`${replaced}-replica`)).toBe(false);
    expect(sqlite3Rows(replaced)).toEqual(Array.from({ length: 20 }, (_, i) => `restored ${i}`));

    const missing = path.join(dir, 'gone-replica.db'); // the database removed, its position left
    fs.writeFileSync(`${missing}-replica`, position);
    await restore(bytes, missing);
    expect(fs.existsSync(`${missing}-replica`)).toBe(false);
    expect(fs.readdirSync(dir).filter((f) => f.includes('.restore-'))).toEqual([]);
  });

  it('a missing database whose -wal holds no frames (a read-only reader\'s leftovers): restored without force, the leftovers removed', async () => {
    const target = path.join(dir, 'leftovers.db');
    fs.writeFileSync(`${target}-wal`, '');
    fs.writeFileSync(`${target}-shm`, Buffer.alloc(32768));
    await restore(bytes, target);
    expect(fs.existsSync(`${target}-wal`)).toBe(false);
    expect(fs.existsSync(`${target}-shm`)).toBe(false);
    expect(sqlite3Rows(target)).toEqual(Array.from({ length: 20 }, (_, i) => `restored ${i}`));
  });

  it('an existing database is refused without force; with force its -wal (uncheckpointed commits) is gone and sqlite3 reads the restored rows', async () => {
    const { db: target } = sqliteWritesWal(dir, 'replaced', 4096, (db) => {
      db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t(v) VALUES ('old 0')");
    });
    await expectRejectsWalnut(restore(bytes, target), 'WALNUT_INVALID_ARGUMENT', { reason: 'exists' });
    expect(sqlite3Rows(target)).toEqual(['old 0']);
    await restore(bytes, target, { force: true });
    expect(fs.existsSync(`${target}-wal`)).toBe(false);
    expect(sqlite3Rows(target)).toEqual(Array.from({ length: 20 }, (_, i) => `restored ${i}`));
  });

  it('a -wal that is a directory is refused (NotRegularFile) even with force, nothing replaced', async () => {
    const target = path.join(dir, 'dirwal.db');
    fs.copyFileSync(src, target);
    fs.mkdirSync(`${target}-wal`);
    await expectRejectsWalnut(restore(bytes, target, { force: true }), 'WALNUT_CANTOPEN', { reason: 'NotRegularFile', path: `${target}-wal` });
    expect(fs.readFileSync(target).equals(fs.readFileSync(src))).toBe(true);
    expect(fs.readdirSync(dir).filter((f) => f.includes('.restore-'))).toEqual([]);
  });
});

describe('a restore that died (SIGKILL) mid-way', () => {
  /** `walnut restore - <target>` fed all of `stream` but its last bytes: it stays mid-way, its temporary file holding data. */
  async function restoreStuckMidway(stream: Buffer, target: string): Promise<{ child: ChildProcess; tmp: string }> {
    const before = new Set(fs.readdirSync(dir));
    const child = spawn(process.execPath, [path.join(__dirname, '../../bin/walnut.js'), 'restore', '-', target], { stdio: ['pipe', 'ignore', 'ignore'] });
    child.stdin!.on('error', () => undefined); // EPIPE once it is killed
    child.stdin!.write(stream.subarray(0, stream.length - 50));
    for (;;) {
      const tmp = fs.readdirSync(dir).find((f) => f.startsWith(`.${path.basename(target)}.restore-`) && /-[0-9a-f]{12}$/.test(f) && !before.has(f)); // (not the marker)
      if (tmp !== undefined && fs.statSync(path.join(dir, tmp)).size > 0) return { child, tmp };
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
  const kill = (child: ChildProcess) => new Promise((resolve) => child.once('close', resolve).kill('SIGKILL'));
  const temporaries = () => fs.readdirSync(dir).filter((f) => /^\.big\.db\.restore-[0-9a-f]{12}$/.test(f));

  it('leaves its temporary file (as large as the database), which the next restore to that target removes; a running restore\'s is kept', async () => {
    const big = path.join(dir, 'big-src.db');
    const db = new Database(big);
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)');
    db.transaction(() => {
      for (let i = 0; i < 3000; i++) db.prepare('INSERT INTO t(v) VALUES (randomblob(1000))').run();
    })();
    db.close();
    const stream = await exportBytes(big); // ~3 MB: the restore writes its first 2 MiB before the stream ends
    const target = path.join(dir, 'big.db');

    const dead = await restoreStuckMidway(stream, target);
    await kill(dead.child);
    expect(temporaries()).toEqual([dead.tmp]);
    const live = await restoreStuckMidway(stream, target);
    try {
      expect(temporaries()).toEqual([live.tmp]); // the next restore removed the dead one's
      await restore(stream, target);
      expect(temporaries()).toEqual([live.tmp]); // and a restore keeps a running one's
      expect(execFileSync('sqlite3', [target, 'PRAGMA integrity_check; SELECT count(*) FROM t'], { encoding: 'utf8' }).trim()).toBe('ok\n3000');
    } finally {
      await kill(live.child);
    }
    await restore(stream, target, { force: true });
    expect(temporaries()).toEqual([]);
    expect(fs.readdirSync(dir).filter((f) => f.includes('.big.db.restore-'))).toEqual([]); // the marker too, nothing left to settle
  });
});
