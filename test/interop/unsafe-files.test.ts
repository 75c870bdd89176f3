// Files that cannot be turned against the user: a symbolic link planted at a file walnut
// derives (-wal, -shm, the FEC sidecar) is refused as sqlite3 refuses it, and its target keeps
// every byte; the database path itself may be a link (resolved, as SQLite does); restore keeps
// a replaced database's permissions; an export never lands on the database it reads.
import { spawnSync } from 'node:child_process';
import nodeFs from 'node:fs';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { open } from '../../lib/open';
import { WalnutFile } from '../../lib/io/file';
import { createExportStream, openExportOutput } from '../../lib/export/stream';
import { restore } from '../../lib/export/restore';
import { expectRejectsWalnut, expectWalnutError } from '../helpers/expect-error';
import { streamOf } from '../helpers/export-stream';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
let n = 0;
const VICTIM_BYTES = Buffer.from('the victim file: walnut must never write here\n'.repeat(100));

/** A WAL-mode database SQLite made (one row), plus a victim file with known bytes. */
function setup(): { db: string; victim: string; rows: () => number } {
  const db = path.join(dir, `u${n++}.db`);
  const s = new Database(db);
  s.pragma('journal_mode = WAL');
  s.exec('CREATE TABLE t(x); INSERT INTO t VALUES (1)');
  s.close(); // the last close checkpoints and removes -wal/-shm
  const victim = path.join(dir, `victim${n}`);
  fs.writeFileSync(victim, VICTIM_BYTES);
  const rows = () => {
    const r = spawnSync('sqlite3', [db, 'PRAGMA integrity_check; SELECT count(*) FROM t;'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const [ok, count] = r.stdout.trim().split('\n');
    expect(ok).toBe('ok');
    return Number(count);
  };
  return { db, victim, rows };
}

describe('a symbolic link at a file walnut derives is refused, its target untouched', () => {
  for (const suffix of ['-wal', '-shm', '-wal-fec', '-journal']) { // (-journal: it was read through the link and called a hot journal)
    it(`${suffix}: open() fails with WALNUT_CANTOPEN (reason Symlink, the path); sqlite3 refuses it too`, async () => {
      const { db, victim } = setup();
      fs.symlinkSync(victim, `${db}${suffix}`);
      const attempt = async () => {
        const store = await open(db, { fec: suffix === '-wal-fec' ? { repairSymbols: 2 } : false });
        await store.commit([{ pgno: 3, data: Buffer.alloc(4096, 7) }]);
        await store.close();
      };
      await expectRejectsWalnut(attempt(), 'WALNUT_CANTOPEN', { reason: 'Symlink', path: `${fs.realpathSync(db)}${suffix}` });
      expect(fs.readFileSync(victim)).toEqual(VICTIM_BYTES);
      expect(fs.lstatSync(`${db}${suffix}`).isSymbolicLink()).toBe(true);
      if (suffix !== '-wal-fec') {
        // SQLite's unix VFS opens its -wal/-shm with O_NOFOLLOW: the same refusal (it ignores the sidecar)
        const r = spawnSync('sqlite3', [db, 'INSERT INTO t VALUES (2)'], { encoding: 'utf8' });
        expect(r.status).not.toBe(0);
        expect(r.stderr).toMatch(/unable to open database file/);
        expect(fs.readFileSync(victim)).toEqual(VICTIM_BYTES);
      }
    });
  }

  it('the sidecar\'s temporary file (recovery prunes the sidecar through <db>-wal-fec.tmp): a link there is not followed', async () => {
    const { victim } = setup();
    const db = path.join(dir, `prune${n}.db`);
    const store = await open(db, { fec: { repairSymbols: 1 }, autoCheckpoint: false, keepWal: true });
    for (let batch = 0; batch < 3; batch++) {
      await store.commit(Array.from({ length: 10 }, (_, i) => ({ pgno: 2 + i, data: Buffer.alloc(4096, 10 * batch + i) })));
    }
    await store.close();
    // two lost frames in the second group are more than R = 1 repairs: recovery keeps 10 frames and prunes the sidecar
    const frameAt = (f: number) => 32 + (f - 1) * (24 + 4096);
    const wal = fs.openSync(`${db}-wal`, 'r+');
    for (const f of [14, 16]) fs.writeSync(wal, Buffer.alloc(24 + 4096), 0, 24 + 4096, frameAt(f));
    fs.closeSync(wal);
    fs.rmSync(`${db}-shm`);
    fs.symlinkSync(victim, `${db}-wal-fec.tmp`);
    const again = await open(db, { fec: { repairSymbols: 1 }, keepWal: true });
    await again.commit([{ pgno: 2, data: Buffer.alloc(4096, 99) }]);
    await again.close();
    expect(fs.readFileSync(victim)).toEqual(VICTIM_BYTES);
    expect(fs.lstatSync(`${db}-wal-fec`).isSymbolicLink()).toBe(false);
  });

  it('the database path itself may be a link: the real file is opened, -wal/-shm sit beside it', async () => {
    const { db, rows } = setup();
    const link = path.join(dir, `link${n}.db`);
    fs.symlinkSync(db, link);
    const store = await open(link, { keepWal: true });
    await store.commit([{ pgno: 3, data: Buffer.alloc(4096, 7) }]);
    expect(fs.existsSync(`${db}-wal`) && fs.existsSync(`${db}-shm`)).toBe(true);
    expect(fs.existsSync(`${link}-wal`) || fs.existsSync(`${link}-shm`)).toBe(false);
    await store.close();
    expect(rows()).toBe(1);
  });

  it('a database path that is a dangling link (to a link) names its target: open() and restore create it and keep the links, as sqlite3 does', async () => {
    const { db } = setup();
    const stream = await streamOf(db);
    for (const make of ['open', 'restore'] as const) {
      const target = path.join(dir, `not-yet-${make}${n}.db`);
      const link = path.join(dir, `dangling-${make}${n}.db`);
      fs.symlinkSync(target, `${link}.1`);
      fs.symlinkSync(`${link}.1`, link);
      if (make === 'open') await (await open(link)).close();
      else await restore(stream, link);
      expect(fs.lstatSync(link).isSymbolicLink(), make).toBe(true);
      expect(fs.readFileSync(target).subarray(0, 16).toString('latin1'), make).toBe('SQLite format 3\0');
    }
  });

  it('WalnutFile.open refuses a link unless followSymlinks is given', async () => {
    const { victim } = setup();
    const link = path.join(dir, `plain-link${n}`);
    fs.symlinkSync(victim, link);
    expectWalnutError(() => WalnutFile.openSync(link), 'WALNUT_CANTOPEN', { reason: 'Symlink', path: link, errno: 40 /* ELOOP */ });
    await expectRejectsWalnut(WalnutFile.open(link, { create: true, truncate: true }), 'WALNUT_CANTOPEN', { reason: 'Symlink' });
    expect(fs.readFileSync(victim)).toEqual(VICTIM_BYTES);
    const f = await WalnutFile.open(link, { readOnly: true, followSymlinks: true });
    expect(await f.size()).toBe(VICTIM_BYTES.length);
    await f.close();
  });
});

describe('permissions', () => {
  let umask = 0;
  beforeEach(() => {
    umask = process.umask(0o022);
  });
  afterEach(() => {
    process.umask(umask);
  });

  it('restore --force over a 0600 database leaves a 0600 database without its old companions; a new one gets 0644 less the umask, like SQLite', async () => {
    const { db, rows } = setup();
    const stream = await streamOf(db);
    const target = path.join(dir, `secret${n}.db`);
    fs.copyFileSync(db, target);
    fs.chmodSync(target, 0o600);
    for (const suffix of ['-wal', '-shm', '-wal-fec']) fs.writeFileSync(`${target}${suffix}`, 'the old database\'s');
    await restore(stream, target, { force: true });
    expect(fs.statSync(target).mode & 0o777).toBe(0o600);
    for (const suffix of ['-wal', '-shm', '-wal-fec']) expect(fs.existsSync(`${target}${suffix}`), suffix).toBe(false); // they described the old file
    expect(rows()).toBe(1);

    process.umask(0o027);
    const fresh = path.join(dir, `fresh${n}.db`);
    await restore(stream, fresh);
    const sqliteMade = path.join(dir, `sqlite-made${n}.db`);
    new Database(sqliteMade).exec('CREATE TABLE x(y)');
    expect(fs.statSync(fresh).mode & 0o777).toBe(0o640);
    expect(fs.statSync(fresh).mode & 0o777).toBe(fs.statSync(sqliteMade).mode & 0o777);
  });

  it('restore --force through a link replaces the database the link names, keeps the link and the mode', async () => {
    const { db } = setup();
    const stream = await streamOf(db);
    const real = path.join(dir, `real${n}.db`);
    fs.writeFileSync(real, 'an older database');
    fs.chmodSync(real, 0o640);
    const link = path.join(dir, `via-link${n}.db`);
    fs.symlinkSync(real, link);
    await restore(stream, link, { force: true });
    expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
    expect(fs.statSync(real).mode & 0o777).toBe(0o640);
    expect(fs.readFileSync(real).subarray(0, 16).toString('latin1')).toBe('SQLite format 3\0');
    expect(fs.readdirSync(dir).filter((f) => f.includes('.restore-'))).toEqual([]);
  });

  it('restore never replaces its own stream (by name, link or descriptor, even with force); a missing directory names the target', async () => {
    const { db } = setup();
    const ark = path.join(dir, `own${n}.ark`);
    fs.writeFileSync(ark, await streamOf(db));
    const before = sha256(ark);
    const link = path.join(dir, `own-link${n}.db`);
    fs.symlinkSync(ark, link);
    for (const target of [ark, link]) {
      await expectRejectsWalnut(restore(fs.createReadStream(ark), target, { force: true }), 'WALNUT_INVALID_ARGUMENT', { reason: 'TargetIsSource', path: fs.realpathSync(ark) });
    }
    const fd = fs.openSync(ark, 'r'); // `walnut restore - app.ark < app.ark`: stdin is the file
    await expectRejectsWalnut(restore(fs.createReadStream('', { fd }), ark, { force: true }), 'WALNUT_INVALID_ARGUMENT', { reason: 'TargetIsSource' });
    expect(sha256(ark)).toBe(before);
    const lost = path.join(dir, `no-such-dir${n}`, 'x.db');
    await expectRejectsWalnut(restore(fs.createReadStream(ark), lost), 'WALNUT_CANTOPEN', { path: lost }); // not the temporary file's name
  });

  it('restore --force refuses a database a SQLite connection has open (WALNUT_BUSY, reason InUse): the connection would commit into the unlinked old file', async () => {
    const { db } = setup();
    const stream = await streamOf(db);
    const live = path.join(dir, `live${n}.db`);
    fs.copyFileSync(db, live);
    const conn = new Database(live);
    try {
      expect(conn.prepare('SELECT count(*) AS c FROM t').get()).toEqual({ c: 1 }); // WAL mode: it keeps its locks
      const before = sha256(live);
      await expectRejectsWalnut(restore(stream, live, { force: true }), 'WALNUT_BUSY', { reason: 'InUse', path: live });
      expect(sha256(live)).toBe(before);
      conn.exec('INSERT INTO t VALUES (2)'); // the connection still works on the file that is there
    } finally {
      conn.close();
    }
    await restore(stream, live, { force: true }); // closed: replaced
    const after = new Database(live);
    expect(after.prepare('SELECT count(*) AS c FROM t').get()).toEqual({ c: 1 });
    after.close();
  });

  it('the -wal, -shm and FEC sidecar get the database\'s mode, past the umask', async () => {
    const { db } = setup();
    fs.chmodSync(db, 0o660);
    const store = await open(db, { fec: { repairSymbols: 1 }, keepWal: true });
    await store.commit([{ pgno: 3, data: Buffer.alloc(4096, 7) }]);
    for (const suffix of ['-wal', '-shm', '-wal-fec']) expect(fs.statSync(`${db}${suffix}`).mode & 0o777, suffix).toBe(0o660);
    await store.close();
  });

  for (const suffix of ['-wal', '-shm']) {
    it(`${suffix}: its mode is set on the opened file, not through a link swapped in after the open`, async () => {
      const { db, victim } = setup();
      fs.chmodSync(db, 0o640);
      fs.writeFileSync(`${db}${suffix}`, '', { mode: 0o600 }); // an existing file of another mode
      fs.chmodSync(victim, 0o600);
      // The swap happens when open() first looks at the file by its path (before: to stat it for
      // the chmod that followed the link; now it never does, and nothing is swapped).
      const real = nodeFs.statSync;
      let swapped = false;
      const spy = vi.spyOn(nodeFs, 'statSync').mockImplementation(((p: fs.PathLike, o?: fs.StatSyncOptions) => {
        if (p === `${db}${suffix}` && !swapped) {
          swapped = true;
          fs.renameSync(`${db}${suffix}`, `${db}${suffix}.opened`);
          fs.symlinkSync(victim, `${db}${suffix}`);
        }
        return real(p, o);
      }) as typeof nodeFs.statSync);
      syncBuiltinESMExports();
      try {
        const store = await open(db, { keepWal: true });
        await store.close();
      } finally {
        spy.mockRestore();
        syncBuiltinESMExports();
      }
      expect(fs.statSync(victim).mode & 0o777).toBe(0o600);
      expect(fs.readFileSync(victim)).toEqual(VICTIM_BYTES);
      expect(fs.statSync(swapped ? `${db}${suffix}.opened` : `${db}${suffix}`).mode & 0o777).toBe(0o640);
    });
  }
});

describe('the library never exports onto the database', () => {
  it('openExportOutput refuses the database and its files by any name; store.exportTo refuses a file that is one of them', async () => {
    const { db, rows } = setup();
    const store = await open(db, { fec: { repairSymbols: 1 }, keepWal: true });
    await store.commit([{ pgno: 3, data: Buffer.alloc(4096, 7) }]);
    const hard = path.join(dir, `hard${n}`);
    fs.linkSync(`${db}-wal`, hard);
    const soft = path.join(dir, `soft${n}`);
    fs.symlinkSync(db, soft);
    const before = sha256(`${db}-wal`);
    for (const out of [db, `${db}-wal`, `${db}-shm`, `${db}-wal-fec`, hard, soft, path.join(dir, '.', path.basename(db))]) {
      for (const force of [false, true]) {
        expectWalnutError(() => openExportOutput(db, out, { force }), 'WALNUT_INVALID_ARGUMENT', { reason: 'OutputIsDatabase' });
      }
    }
    // names that do not exist yet: the rollback journal, and a dangling link to the -wal-fec (with force, the open would create it)
    fs.rmSync(`${db}-wal-fec`);
    const dangling = path.join(dir, `dangling${n}`);
    fs.symlinkSync(`${db}-wal-fec`, dangling);
    fs.symlinkSync(dangling, `${dangling}-2`);
    for (const out of [`${db}-journal`, dangling, `${dangling}-2`]) {
      for (const force of [false, true]) expectWalnutError(() => openExportOutput(db, out, { force }), 'WALNUT_INVALID_ARGUMENT', { reason: 'OutputIsDatabase' });
    }
    expect(fs.existsSync(`${db}-wal-fec`)).toBe(false);
    expect(fs.existsSync(`${db}-journal`)).toBe(false);
    const wal = await WalnutFile.open(`${db}-wal`);
    expectWalnutError(() => store.exportTo(wal), 'WALNUT_INVALID_ARGUMENT', { reason: 'OutputIsDatabase' });
    await wal.close();
    expect(sha256(`${db}-wal`)).toBe(before);
    await store.close();
    expect(rows()).toBe(1);
  });
});

describe('what an export output may be', () => {
  it('a device (/dev/null) needs no force, nothing is replaced; a directory is WALNUT_CANTOPEN with or without force', async () => {
    const { db } = setup();
    const sink = openExportOutput(db, '/dev/null');
    await pipeline(createExportStream(db), sink);
    for (const force of [false, true]) expectWalnutError(() => openExportOutput(db, dir, { force }), 'WALNUT_CANTOPEN', { reason: 'directory' });
  });
});

const sha256 = (f: string) => createHash('sha256').update(fs.readFileSync(f)).digest('hex');
