// `walnut verify` on a live database is a reader like any other: it holds a WAL read mark, not
// the WRITE and CKPT locks, so walnut and sqlite3 go on committing (and checkpointing up to its
// mark) while it runs, and its report is the state at its mark. The verify runs in another
// process (the CLI), frozen with SIGSTOP once it holds its locks, so the commits certainly
// happen during it whatever the machine's speed. A 16,000+ frame WAL (4 -shm segments).
import { execFile, execFileSync, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';

import { open } from '../../lib/commit/store';
import { SHM_LOCK } from '../../lib/format/shm-header';
import { inspect } from '../../lib/integrity/inspect';
import { verify } from '../../lib/integrity/verify';
import { WalnutFile } from '../../lib/io/file';
import { expectRejectsWalnut, expectWalnutError } from '../helpers/expect-error';
import { sqliteWritesWal } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const bin = path.join(__dirname, '..', '..', 'bin', 'walnut.js');

/** True once a connection other than the caller's holds WRITE or a READ(1..4) lock on the -shm. */
function verifierHoldsLocks(shm: WalnutFile): boolean {
  for (const byte of [SHM_LOCK.WRITE, SHM_LOCK.READ(1), SHM_LOCK.READ(2), SHM_LOCK.READ(3), SHM_LOCK.READ(4)]) {
    if (shm.lockHolder(byte, 1, 'exclusive') !== null) return true;
  }
  return false;
}

/**
 * Process `pid` has `walPath` open twice: verify opens the WAL a second time (its scan, openWal)
 * only once its read transaction is taken (holdReadMark: the connection's own descriptor is the
 * first). A lock seen alone is not that point: taking a read mark holds a READ slot before it
 * checks that the header did not move (SQLite's walTryBeginRead does the same), and a verifier
 * frozen there (preempted on a loaded machine while the test polled) took its mark again after
 * SIGCONT, past the commits made meanwhile (seen once: report.pages 5692, at its mark 5683).
 */
function walOpenedTwice(pid: number, walPath: string): boolean {
  let n = 0;
  let fds: string[];
  try {
    fds = fs.readdirSync(`/proc/${pid}/fd`);
  } catch {
    return false;
  }
  for (const fd of fds) {
    try {
      if (fs.readlinkSync(`/proc/${pid}/fd/${fd}`) === walPath) n++;
    } catch {
      // closed meanwhile
    }
  }
  return n >= 2;
}

describe('walnut verify on a live database with a 16,000+ frame WAL', () => {
  it('walnut and sqlite3 commit (and sqlite3 checkpoints) while verify runs; verify reports the state at its read mark, no finding', async () => {
    // a table with an index over 1 KiB pages: b-trees of several levels, every frame in the WAL
    const big = sqliteWritesWal(dir, 'big', 1024, (db) => {
      db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT, v BLOB); CREATE INDEX t_k ON t(k)');
      const ins = db.prepare('INSERT INTO t(k, v) VALUES (?, randomblob(300))');
      const tx = db.transaction((from: number) => {
        for (let i = from; i < from + 40; i++) ins.run(`key ${(i * 7919) % 100003}`);
      });
      for (let c = 0; c < 400; c++) tx(c * 40);
    });
    const store = await open(big.db, { autoCheckpoint: false, busyTimeout: 3000, keepWal: true });
    onTestFinished(() => store.close());
    const before = inspect(big.db);
    expect(before.walFrames).toBeGreaterThanOrEqual(16_000);
    expect(fs.statSync(`${big.db}-shm`).size).toBeGreaterThanOrEqual(4 * 32768);

    const child = spawn(process.execPath, [bin, 'verify', big.db, '--level', '5', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    onTestFinished(() => void child.kill('SIGKILL'));
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code))); // with its whole output (children.ts runNode)
    let running = true;
    void exited.then(() => (running = false));

    // freeze the verifier once it holds its read mark (the store here is idle: it holds none) and
    // is past taking it (walOpenedTwice)
    const shm = WalnutFile.openSync(`${big.db}-shm`, { readOnly: true });
    onTestFinished(() => shm.closeSync());
    const walPath = fs.realpathSync(big.wal);
    while (!verifierHoldsLocks(shm) || !walOpenedTwice(child.pid!, walPath)) {
      expect(running, `verify ended before it was seen holding a lock: ${stderr}`).toBe(true);
      await new Promise((r) => setTimeout(r, 1));
    }
    child.kill('SIGSTOP');

    // walnut commits: pages rewritten with their own content (the database stays valid)
    const snap = await store.snapshot();
    const pages = await Promise.all([2, 3, 4, 5, 6].map(async (pgno) => ({ pgno, data: Buffer.from(await snap.read(pgno)) })));
    snap.release();
    for (let i = 0; i < 10; i++) await store.commit([pages[i % pages.length]!]);
    // sqlite3 commits in another process; its auto-checkpoint copies frames up to the verifier's mark
    // (asynchronously: the store releases WRITE on its event loop, which a sync spawn would block)
    for (let i = 0; i < 3; i++) {
      await promisify(execFile)('sqlite3', ['-cmd', '.timeout 3000', big.db, `INSERT INTO t(k, v) VALUES ('during verify ${i}', randomblob(3000)); PRAGMA wal_checkpoint(PASSIVE);`], { encoding: 'utf8' });
    }
    const after = inspect(big.db);
    expect(after.dbPages).toBeGreaterThan(before.dbPages); // the sqlite3 rows grew the database

    expect(running).toBe(true); // stopped: everything above happened during the verify
    child.kill('SIGCONT');
    expect(await exited, stderr).toBe(0);
    const report = JSON.parse(stdout);
    expect(report.issues).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.pages).toBe(before.dbPages); // the state at its mark, not a mix with what came after
    expect(execFileSync('sqlite3', [big.db, 'PRAGMA integrity_check; SELECT count(*) FROM t'], { encoding: 'utf8' }).trim().split('\n')).toEqual(['ok', String(400 * 40 + 3)]);
  });
});

describe('verify and inspect inputs a caller can get wrong', () => {
  it('a path that is not a non-empty string is WALNUT_INVALID_ARGUMENT (reason dbPath), options that are not an object too', async () => {
    for (const bad of [5, undefined, null, '', 'a\0b']) {
      expectWalnutError(() => inspect(bad as never), 'WALNUT_INVALID_ARGUMENT', { reason: 'dbPath' });
      await expectRejectsWalnut(verify(bad as never, 1), 'WALNUT_INVALID_ARGUMENT', { reason: 'dbPath' });
    }
    const { db } = sqliteWritesWal(dir, 'small', 4096, (d) => d.exec('CREATE TABLE t(x)'));
    await expectRejectsWalnut(verify(db, 1, 'fast' as never), 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
    // options of the wrong kind were taken as they came: pageChecksums 'no' checked trailers (false findings), a misspelt one was dropped
    for (const bad of [{ pageChecksums: 'no' }, { maxFindings: -1 }, { maxFindings: NaN }, { maxfindings: 1 }]) {
      await expectRejectsWalnut(verify(db, 1, bad as never), 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
    }
    expect((await verify(db, 5, { maxFindings: 1, pageChecksums: false, busyTimeout: 100 })).ok).toBe(true);
  });

  it('a -wal of another database with another page size is a level-1 finding (wal-page-size), as open() refuses it', async () => {
    const mine = sqliteWritesWal(dir, 'mine', 4096, (d) => d.exec("CREATE TABLE t(x); INSERT INTO t VALUES ('mine')"));
    const other = sqliteWritesWal(dir, 'other', 1024, (d) => d.exec("CREATE TABLE u(y); INSERT INTO u VALUES ('other')"));
    fs.copyFileSync(other.wal, mine.wal);
    const r = await verify(mine.db, 1);
    expect(r.ok).toBe(false);
    expect(r.issues.map((i) => i.kind)).toEqual(['wal-page-size']);
    await expectRejectsWalnut(open(mine.db), 'WALNUT_CORRUPT');
  });
});
