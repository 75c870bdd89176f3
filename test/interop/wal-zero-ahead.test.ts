// The WAL's zero-ahead (native/wal_zero_ahead.h, WalFile.zeroAhead): a growing WAL keeps zeros
// written past its last frame by the background lane. Checked against SQLite itself: the zeros
// are never frames (SQLite's recovery and walnut's find exactly the frames written), SQLite
// appends into them, truncates them (TRUNCATE checkpoint, journal_size_limit) under walnut, and
// walnut brings them back; a writer SIGKILLed mid-way loses no acknowledged commit; a WAL restarted
// over an older generation and its zeros is read as the new generation only (sqlite3, python3's
// sqlite3, walnut's recovery, `walnut verify`).
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import { WalIndex } from '../../lib/wal-index/wal-index';
import type { WalTransaction } from '../../lib/wal/wal-file';
import { HELPERS, SqlitePeer } from '../helpers/children';
import { commitVia } from '../helpers/commit';
import { Database, oracleScan } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';
import { until, WAIT_MS } from '../helpers/until';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { readLines } = require('../helpers/child-lines.js') as typeof import('../helpers/child-lines');

const dir = tmpDir();
const PAGE = 4096;
const FRAME = 24 + PAGE;
/** WalFile's ZERO_AHEAD_LOW: after an append past ZERO_AHEAD_FROM at least this much is zeroed past the last frame. */
const AHEAD_LOW = 4 << 20;
/** Transactions of 64 pages that take the WAL past WalFile's ZERO_AHEAD_FROM (8 MiB): 33 x 64 frames = 8.3 MiB. */
const PAST_FROM = 33;

/** A WAL-mode database SQLite built: t(id, v) with `rows` rows of ~3 KB. SQLite is closed. */
function buildDb(name: string, rows = 300): string {
  const file = path.join(dir, `${name}.db`);
  const db = new Database(file);
  db.pragma(`page_size = ${PAGE}`);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)');
  const insert = db.prepare('INSERT INTO t(v) VALUES (randomblob(3000))');
  db.transaction(() => {
    for (let i = 0; i < rows; i++) insert.run();
  })();
  db.close();
  return file;
}

/**
 * `n` transactions of `size` pages each that re-commit pages of the database unchanged (page
 * images read through a snapshot): real frames, and the database SQLite sees stays valid
 * whatever SQLite committed before.
 */
async function touch(index: WalIndex, n: number, size = 64): Promise<void> {
  for (let i = 0; i < n; i++) {
    await commitVia(index, [], async (snap) => {
      const pages = [];
      for (let j = 0; j < size; j++) {
        const pgno = 1 + ((i * size + j) % snap.dbSize);
        pages.push({ pgno, data: await snap.readRaw(pgno) });
      }
      pages.sort((a, b) => a.pgno - b.pgno);
      return [{ pages, dbSize: snap.dbSize }] as WalTransaction[];
    });
  }
}

/** The WAL as SQLite's format defines it: valid frames through the last commit, file size. */
function walState(db: string): { frames: number; end: number; size: number; zerosAfter: boolean } {
  const wal = fs.readFileSync(`${db}-wal`);
  const scan = oracleScan(wal);
  const frames = scan?.frames.length ?? 0;
  const end = frames === 0 ? Math.min(wal.length, 32) : 32 + frames * FRAME;
  return { frames, end, size: wal.length, zerosAfter: wal.subarray(end).equals(Buffer.alloc(wal.length - end)) };
}

/** SQLite's own recovery of a copy of db + WAL (no -shm: rebuilt from the WAL): frames, rows, integrity. */
function sqliteRecovers(db: string, name: string): { frames: number; rows: number; integrity: string } {
  const copy = path.join(dir, `${name}.db`);
  fs.copyFileSync(db, copy);
  fs.copyFileSync(`${db}-wal`, `${copy}-wal`);
  const s = new Database(copy);
  try {
    const frames = (s.pragma('wal_checkpoint(PASSIVE)') as { log: number }[])[0]!.log;
    const rows = (s.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n;
    return { frames, rows, integrity: s.pragma('integrity_check', { simple: true }) as string };
  } finally {
    s.close();
  }
}

describe('WAL zero-ahead', () => {
  it('is off unless asked: a store without zeroAhead grows its WAL past 8 MiB by the append\'s 1 MiB chunks only; zeroAhead must be a boolean', async () => {
    const db = buildDb('default');
    const store = await open(db, { autoCheckpoint: false, keepWal: true });
    for (let i = 0; i < 40; i++) await store.commit(Array.from({ length: 64 }, (_, k) => ({ pgno: 2 + k, data: Buffer.alloc(4096, i) })));
    const w = walState(db);
    expect(w.end).toBeGreaterThan(PAST_FROM * 64 * (4096 + 24));
    expect(w.size - w.end).toBeLessThanOrEqual(1 << 20);
    await store.close();
    await expect(open(db, { zeroAhead: 'yes' as unknown as boolean })).rejects.toMatchObject({ code: 'WALNUT_INVALID_ARGUMENT' });
  });

  it('a growing WAL has zeros written ahead of its last frame; SQLite and walnut recover exactly the frames', async () => {
    const db = buildDb('grow');
    const index = await WalIndex.open(db);
    index.wal.zeroAheadOn = true; // the store's zeroAhead option
    await touch(index, 8); // 512 frames, 2.1 MiB: a WAL this small is not zeroed ahead (only the append's 1 MiB)
    let w = walState(db);
    expect(w.size).toBeLessThan(w.end + AHEAD_LOW);
    await touch(index, PAST_FROM - 8);
    await index.close(); // waits for a zeroing still running
    w = walState(db);
    expect(w.frames).toBe(PAST_FROM * 64);
    expect(w.size).toBeGreaterThanOrEqual(w.end + AHEAD_LOW);
    expect(w.zerosAfter).toBe(true);
    expect(sqliteRecovers(db, 'grow-check')).toEqual({ frames: PAST_FROM * 64, rows: 300, integrity: 'ok' });
    fs.rmSync(`${db}-shm`);
    const again = await WalIndex.open(db); // walnut's recovery from the WAL
    expect(again.liveHeader()!.mxFrame).toBe(PAST_FROM * 64);
    await again.close();
  });

  it('sqlite3 appends into the zeros, truncates the WAL under walnut (TRUNCATE, journal_size_limit); walnut writes the zeros again', async () => {
    const db = buildDb('peer');
    const index = await WalIndex.open(db);
    index.wal.zeroAheadOn = true;
    const peer = new SqlitePeer(db);
    try {
      await touch(index, PAST_FROM);
      await index.wal.zeroingSettled();
      let w = walState(db);
      expect(w.size).toBeGreaterThanOrEqual(w.end + AHEAD_LOW);
      const sizeBefore = w.size;

      // SQLite's frames go into the zeroed space: the file does not grow, nothing is hidden
      await peer.exec('PRAGMA wal_autocheckpoint = 0'); // (its own checkpoint would restart the WAL)
      for (let i = 0; i < 20; i++) await peer.exec('INSERT INTO t(v) VALUES (randomblob(3000))');
      w = walState(db);
      expect(w.size).toBe(sizeBefore);
      expect(w.frames).toBeGreaterThan(PAST_FROM * 64 + 20);
      const afterSqlite = w.frames;
      await touch(index, 2); // walnut continues after SQLite's frames
      await index.wal.zeroingSettled();
      w = walState(db);
      expect(w.frames).toBe(afterSqlite + 128);
      expect(w.zerosAfter).toBe(true);

      // a TRUNCATE checkpoint by sqlite3 cuts the file (zeros and all) to nothing
      expect(await peer.all('PRAGMA wal_checkpoint(TRUNCATE)')).toEqual([{ busy: 0, log: 0, checkpointed: 0 }]);
      expect(fs.statSync(`${db}-wal`).size).toBe(0);
      await touch(index, PAST_FROM);
      await index.wal.zeroingSettled();
      w = walState(db);
      expect(w.frames).toBe(PAST_FROM * 64);
      expect(w.size).toBeGreaterThanOrEqual(w.end + AHEAD_LOW);
      expect(w.zerosAfter).toBe(true);

      // journal_size_limit: SQLite's first commit after a restart cuts the file to the limit
      await peer.exec('PRAGMA journal_size_limit = 65536');
      expect(await peer.all('PRAGMA wal_checkpoint(RESTART)')).toEqual([{ busy: 0, log: PAST_FROM * 64, checkpointed: PAST_FROM * 64 }]);
      await peer.exec('INSERT INTO t(v) VALUES (randomblob(3000))');
      w = walState(db);
      expect(w.size).toBeLessThanOrEqual(65536);
      const sqliteFrames = w.frames;
      await touch(index, PAST_FROM);
      await index.wal.zeroingSettled();
      w = walState(db);
      expect(w.frames).toBe(sqliteFrames + PAST_FROM * 64);
      expect(w.size).toBeGreaterThanOrEqual(w.end + AHEAD_LOW);
      expect(w.zerosAfter).toBe(true);
      expect(await peer.get('SELECT count(*) AS n FROM t')).toEqual({ n: 321 });
      expect(await peer.pragma('integrity_check')).toBe('ok');
    } finally {
      await peer.close();
      await index.close();
    }
    const w = walState(db);
    expect(sqliteRecovers(db, 'peer-check')).toEqual({ frames: w.frames, rows: 321, integrity: 'ok' });
  });

  it('a WAL restarted over an older generation and its zeros: sqlite3, python3\'s sqlite3, walnut\'s recovery and `walnut verify` read only the new generation', async () => {
    const db = buildDb('restart-over');
    const image = fs.readFileSync(db);
    const dbPages = image.length / PAGE;
    /** Page images of the database as SQLite left it; page 1 with PRAGMA user_version = `version`. */
    const pages = (t: number, version: number) =>
      Array.from({ length: 64 }, (_, k) => {
        const pgno = 1 + ((t * 64 + k) % dbPages);
        const data = Buffer.from(image.subarray((pgno - 1) * PAGE, pgno * PAGE));
        if (pgno === 1) data.writeUInt32BE(version, 60);
        return { pgno, data };
      }).sort((a, b) => a.pgno - b.pgno);
    const store = await open(db, { autoCheckpoint: false, zeroAhead: true, keepWal: true });
    // the old generation: past 8 MiB, page 1 (user_version 1) in its last frames too
    for (let t = 0; t < PAST_FROM; t++) await store.commit(pages(t, 1));
    await store.commit(pages(0, 1));
    // (the zeroing runs on the background lane: polled, not given 5 s, which a loaded machine can take)
    await until(() => {
      const w = walState(db);
      return w.size >= w.end + AHEAD_LOW;
    }, WAIT_MS, () => walState(db));
    // the zeroing writes chunk by chunk and holds WRITE until it settles (wal-index.ts): the
    // file's size is final once another connection can take WRITE (a loaded machine measured it
    // mid-zeroing, 1.8 MB short)
    // (tried without a busy timeout: a blocking wait would hold the event loop the release needs)
    const peer = new Database(db);
    peer.pragma('busy_timeout = 0');
    await until(() => {
      try {
        peer.exec('BEGIN IMMEDIATE; ROLLBACK');
        return true;
      } catch (e) {
        if ((e as { code?: string }).code !== 'SQLITE_BUSY') throw e;
        return false;
      }
    }, WAIT_MS, () => walState(db));
    peer.close();
    const old = walState(db);
    expect(old.size).toBeGreaterThanOrEqual(old.end + AHEAD_LOW); // zeros written ahead
    expect(await store.checkpoint('restart')).toMatchObject({ busy: false, walFrames: old.frames, checkpointedFrames: old.frames });
    // the new generation: 3 transactions at the start of the file, page 1 with user_version 2 in
    // its first; the old generation's frames (user_version 1 at higher frame numbers) and zeros lie beyond
    for (let t = 0; t < 3; t++) await store.commit(pages(t, 2));
    await store.close();
    const w = walState(db);
    expect(w.frames).toBe(3 * 64);
    expect(w.size).toBe(old.size); // the restart reused the file (walSizeLimit 64 MiB): not cut, not grown
    expect(w.zerosAfter).toBe(false); // old frames lie past the new generation's end
    const fresh = () => {
      const copy = path.join(dir, `restart-over-${Math.random().toString(36).slice(2)}.db`);
      fs.copyFileSync(db, copy);
      fs.copyFileSync(`${db}-wal`, `${copy}-wal`); // no -shm: each reader rebuilds the index from the WAL
      return copy;
    };

    const viaBetter = new Database(fresh());
    try {
      expect(viaBetter.pragma('user_version', { simple: true })).toBe(2);
      expect((viaBetter.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n).toBe(300);
      expect(viaBetter.pragma('integrity_check', { simple: true })).toBe('ok');
      expect((viaBetter.pragma('wal_checkpoint(PASSIVE)') as { log: number }[])[0]!.log).toBe(3 * 64);
    } finally {
      viaBetter.close();
    }
    const cli = spawnSync('sqlite3', [fresh(), 'PRAGMA user_version; SELECT count(*) FROM t; PRAGMA integrity_check; PRAGMA wal_checkpoint(PASSIVE);'], { encoding: 'utf8' });
    expect(cli.stderr).toBe('');
    expect(cli.stdout.trim().split('\n')).toEqual(['2', '300', 'ok', `0|${3 * 64}|${3 * 64}`]);
    const py = spawnSync('python3', ['-c', [
      'import sqlite3, sys, json',
      'c = sqlite3.connect(sys.argv[1])',
      'v = c.execute("PRAGMA user_version").fetchone()[0]',
      'n = c.execute("SELECT count(*) FROM t").fetchone()[0]',
      'ok = c.execute("PRAGMA integrity_check").fetchone()[0]',
      'log = c.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]',
      'print(json.dumps([v, n, ok, log]))',
    ].join('\n'), fresh()], { encoding: 'utf8' });
    expect(py.stderr).toBe('');
    expect(JSON.parse(py.stdout)).toEqual([2, 300, 'ok', 3 * 64]);

    fs.rmSync(`${db}-shm`);
    const verify = spawnSync(process.execPath, [path.resolve(__dirname, '..', '..', 'bin', 'walnut.js'), 'verify', db, '--json'], { encoding: 'utf8' });
    expect(verify.stderr).toBe('');
    expect(JSON.parse(verify.stdout)).toMatchObject({ ok: true, issues: [] });
    const again = await WalIndex.open(db); // walnut's recovery from the WAL alone
    try {
      expect(again.liveHeader()!.mxFrame).toBe(3 * 64);
    } finally {
      await again.close();
    }
    const reopened = await open(db, { keepWal: true });
    try {
      const snap = await reopened.snapshot();
      try {
        expect(Buffer.from(await snap.read(1)).readUInt32BE(60)).toBe(2);
      } finally {
        snap.release();
      }
    } finally {
      await reopened.close();
    }
  });

  it('a writer SIGKILLed while it zeroes ahead: SQLite and walnut recover the same frames, every acknowledged commit among them', async () => {
    const db = buildDb('kill');
    const child = spawn(process.execPath, [path.join(HELPERS, 'zero-ahead-child.js'), db, '16'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let acked = 0;
    const done = readLines(child, (line) => {
      if (line.startsWith('error')) throw new Error(line);
      if (!line.startsWith('ack ')) return;
      acked = Math.max(acked, Number(line.slice(4)));
      // ~16 MiB of WAL: the zero-ahead has run a few times, and runs now
      if (acked >= 4000) child.kill('SIGKILL');
    });
    const end = await done;
    expect(end.signal).toBe('SIGKILL');
    expect(acked).toBeGreaterThanOrEqual(4000);
    fs.rmSync(`${db}-shm`); // both recoveries read the WAL itself
    const sqlite = sqliteRecovers(db, 'kill-check');
    expect(sqlite.frames).toBeGreaterThanOrEqual(acked);
    expect(sqlite).toEqual({ frames: sqlite.frames, rows: 300, integrity: 'ok' });
    expect(walState(db).frames).toBe(sqlite.frames);
    const index = await WalIndex.open(db);
    expect(index.liveHeader()!.mxFrame).toBe(sqlite.frames);
    await index.close();
  });
});
