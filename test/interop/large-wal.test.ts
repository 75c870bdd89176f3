// WALs past the first wal-index segment: SQLite (a better-sqlite3 connection in another
// process) grows the WAL of a database to 4+ -shm segments (16,000+ frames) while a walnut
// store has it open with only segment 0 mapped. Every path that reads the index must map the
// new segments on demand (as SQLite's walIndexPage does): reads and batched lookups against an
// independent reading of the WAL, commits and transactions that SQLite then reads, every
// checkpoint mode against SQLite's own result on a copy, export/restore, verify, and the CLI.
// Also: a -shm truncated under a live store gives WalnutErrors, not SIGBUS.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { runCheckpoint } from '../../lib/checkpoint/execute';
import { open, type Store } from '../../lib/commit/store';
import { restore } from '../../lib/export/restore';
import { decodeShmHeaderCopies, encodeShmHeader, SHM_HEADER_SIZE, SHM_SEGMENT_BYTES, shmFramesBefore, shmSegmentOf } from '../../lib/format/shm-header';
import { WalIndex } from '../../lib/wal-index/wal-index';
import { verify, verifySnapshot } from '../../lib/integrity/verify';
import { WalnutFile } from '../../lib/io/file';
import { WalFile } from '../../lib/wal/wal-file';
import { SqlitePeer } from '../helpers/children';
import { expectRejectsWalnut, expectWalnutError } from '../helpers/expect-error';
import { Database, oracleScan } from '../helpers/sqlite';
import { sqliteIntegrity } from '../helpers/sqlite-db';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const PAGE = 512; // small pages: 16,000+ frames in about 9 MB
const FOUR_SEGMENTS = 16_000; // frames; segment 3 starts after frame 4062 + 2 * 4096 = 12254
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
let n = 0;

/** A WAL-mode database with 2,000 rows (about 400 leaf pages) in its database file. */
function newDb(): string {
  const file = path.join(dir, `big${n++}.db`);
  const db = new Database(file);
  db.pragma(`page_size = ${PAGE}`);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)');
  db.exec('WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 2000) INSERT INTO t(v) SELECT randomblob(90) FROM c');
  db.close(); // checkpointed: the WAL starts empty
  return file;
}

/** mxFrame of the -shm header SQLite published (copy 0, host order). */
/** SQLite opens `file` with integrity ok and the 2,000 rows newDb() wrote. */
function expectSqliteSeesNewDb(file: string): void {
  expect(sqliteIntegrity(file)).toEqual(['ok']);
  const db = new Database(file, { readonly: true });
  expect(db.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: 2000 });
  db.close();
}

function shmMxFrame(file: string): number {
  const b = fs.readFileSync(`${file}-shm`);
  return b.length >= 48 ? b.readUInt32LE(16) : 0;
}

/** Rewrites both -shm header copies with mxFrame = `mxFrame` and a valid checksum (another user's damage). */
function forgeShmMxFrame(file: string, mxFrame: number): void {
  const fd = fs.openSync(`${file}-shm`, 'r+');
  try {
    const copies = Buffer.alloc(2 * SHM_HEADER_SIZE);
    fs.readSync(fd, copies, 0, copies.length, 0);
    const forged = encodeShmHeader({ ...decodeShmHeaderCopies(copies)!, mxFrame });
    fs.writeSync(fd, forged, 0, SHM_HEADER_SIZE, SHM_HEADER_SIZE);
    fs.writeSync(fd, forged, 0, SHM_HEADER_SIZE, 0);
  } finally {
    fs.closeSync(fd);
  }
}

/** A new database, a store on it, and an acknowledged commit of page 1 with user_version 7 (page 1 returned). */
async function acknowledgedUserVersion7(): Promise<{ file: string; store: Store; page1: Buffer }> {
  const file = newDb();
  const store = await open(file, { autoCheckpoint: false, keepWal: true });
  const snap = await store.snapshot();
  const page1 = Buffer.from(await snap.read(1));
  snap.release();
  page1.writeUInt32BE(7, 60); // user_version, in the database header
  await store.commit([{ pgno: 1, data: page1 }]);
  return { file, store, page1 };
}

/** A SQLite connection in another process that never checkpoints on its own. */
async function sqliteWriter(file: string): Promise<SqlitePeer> {
  const peer = new SqlitePeer(file);
  await peer.exec('PRAGMA wal_autocheckpoint = 0');
  return peer;
}

/**
 * SQLite commits until its WAL holds at least `frames` frames: updates of a seventh of the rows
 * each, so every leaf page has versions in every segment. Returns SQLite's mxFrame.
 */
async function sqliteGrows(peer: SqlitePeer, file: string, frames: number): Promise<number> {
  for (let k = 0; shmMxFrame(file) < frames; k++) await peer.exec(`UPDATE t SET v = randomblob(90) WHERE id % 7 = ${k % 7}`);
  return shmMxFrame(file);
}

/** The newest frame <= the last commit for every page of the WAL, read without walnut. */
function oracle(file: string): { mxFrame: number; dbSize: number; frameOf: Map<number, number>; page: (pgno: number) => Buffer } {
  const wal = fs.readFileSync(`${file}-wal`);
  const db = fs.readFileSync(file);
  const scan = oracleScan(wal)!;
  const frameOf = new Map<number, number>();
  const offsetOf = new Map<number, number>();
  for (const f of scan.frames) {
    frameOf.set(f.pgno, f.index);
    offsetOf.set(f.pgno, f.offset);
  }
  const page = (pgno: number) => {
    const at = offsetOf.get(pgno);
    if (at !== undefined) return wal.subarray(at + 24, at + 24 + PAGE);
    const out = Buffer.alloc(PAGE);
    db.copy(out, 0, (pgno - 1) * PAGE, pgno * PAGE);
    return out;
  };
  return { mxFrame: scan.frames.length, dbSize: scan.dbSize, frameOf, page };
}

/** A store opened before SQLite grows the WAL, with segment 0 mapped by a first read. */
async function openedBeforeGrowth(file: string, options: Parameters<typeof open>[1] = {}): Promise<Store> {
  const store = await open(file, { autoCheckpoint: false, keepWal: true, ...options });
  const snap = await store.snapshot();
  await snap.read(1);
  snap.release();
  return store;
}

/**
 * A new database, a walnut store opened on it (segment 0 mapped), then a SQLite connection in
 * another process that grows the WAL to `frames` frames; it stays open.
 */
async function grownWhileOpen(frames: number): Promise<{ file: string; store: Store; peer: SqlitePeer; mx: number }> {
  const file = newDb();
  const store = await openedBeforeGrowth(file);
  const peer = await sqliteWriter(file);
  const mx = await sqliteGrows(peer, file, frames);
  return { file, store, peer, mx };
}

/** SQLite's PRAGMA wal_checkpoint(mode) on a copy of the database and WAL (sqlite3 command). */
function sqliteCheckpointOfCopy(file: string, mode: string): { busy: boolean; walFrames: number; checkpointedFrames: number } {
  const copy = `${file}.copy${n++}`;
  fs.copyFileSync(file, copy);
  fs.copyFileSync(`${file}-wal`, `${copy}-wal`);
  const r = spawnSync('sqlite3', [copy, `PRAGMA wal_checkpoint(${mode})`], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  const [busy, log, ckpt] = r.stdout.trim().split('|').map(Number);
  return { busy: busy === 1, walFrames: log!, checkpointedFrames: ckpt! };
}

describe('reads, lookups and verify over a 4-segment WAL SQLite wrote while the store was open', () => {
  it('every page equals the newest WAL frame (or the database file); batched lookups agree; verify ok', async () => {
    const { file, store, peer, mx } = await grownWhileOpen(FOUR_SEGMENTS);
    expect(fs.statSync(`${file}-shm`).size).toBeGreaterThanOrEqual(4 * SHM_SEGMENT_BYTES);
    const want = oracle(file);
    expect(want.mxFrame).toBe(mx);

    const snap = await store.snapshot();
    expect(snap.mxFrame).toBe(mx);
    expect(snap.dbSize).toBe(want.dbSize);
    for (let p = 1; p <= snap.dbSize; p++) {
      expect(snap.frameOf(p)).toBe(want.frameOf.get(p) ?? 0);
      expect(snap.readSync(p).equals(want.page(p)), `page ${p}`).toBe(true);
    }
    expect((await snap.read(snap.dbSize)).equals(want.page(snap.dbSize))).toBe(true);
    expect(verifySnapshot(snap, 3).issues).toEqual([]);
    snap.release();

    // another connection's batched lookups, mapping on demand from its own open
    const index = await WalIndex.open(file);
    const pgnos = Uint32Array.from({ length: want.dbSize }, (_, i) => i + 1);
    const out = new Uint32Array(pgnos.length);
    index.lookupMany(pgnos, mx, 1, out);
    expect([...out]).toEqual([...pgnos].map((p) => want.frameOf.get(p) ?? 0));
    // a window that starts in segment 2: only frames from there on count
    const from = 9000;
    index.lookupMany(pgnos, mx, from, out);
    const newest = new Map<number, number>();
    const scan = oracleScan(fs.readFileSync(`${file}-wal`))!;
    for (const f of scan.frames) if (f.index >= from) newest.set(f.pgno, f.index);
    expect([...out]).toEqual([...pgnos].map((p) => newest.get(p) ?? 0));
    await index.close();

    // verify (the -shm check walks every segment) while SQLite and walnut hold the database
    const report = await verify(file, 3);
    expect(report.issues).toEqual([]);
    expect(report.ok).toBe(true);
    await peer.close();
    await store.close();
    // ... and reaches the last segment: a wrong page number for the last frame is reported
    const copy = `${file}.damaged`;
    for (const s of ['', '-wal', '-shm']) fs.copyFileSync(file + s, copy + s);
    const seg = shmSegmentOf(mx); // > 0: its page numbers start at the segment's first byte
    const at = seg * SHM_SEGMENT_BYTES + 4 * (mx - shmFramesBefore(seg) - 1);
    const shm = fs.readFileSync(`${copy}-shm`);
    shm.writeUInt32LE(shm.readUInt32LE(at) + 1, at);
    fs.writeFileSync(`${copy}-shm`, shm);
    const damaged = await verify(copy, 1);
    expect(damaged.issues).toMatchObject([{ kind: 'shm-index', frame: mx }]);
  });
});

describe('commits and transactions after SQLite grew the WAL to 4 segments', () => {
  it("walnut's commits land past frame 16,000, SQLite reads them; a conflict there is detected", async () => {
    const { store, peer, mx } = await grownWhileOpen(FOUR_SEGMENTS);

    // a transaction: read page 1, set user_version (offset 60), commit
    const tx = store.begin();
    const page1 = await tx.read(1);
    page1.writeUInt32BE(4242, 60);
    tx.write(1, page1);
    const r = await tx.commit();
    expect(r!.firstFrame).toBe(mx + 1);
    expect(await peer.pragma('user_version')).toBe(4242);

    // a one-shot commit
    const snap = await store.snapshot();
    const again = await snap.read(1);
    snap.release();
    again.writeUInt32BE(4343, 60);
    const r2 = await store.commit([{ pgno: 1, data: again }]);
    expect(r2.firstFrame).toBe(mx + 2);
    expect(await peer.pragma('user_version')).toBe(4343);

    // first committer wins: SQLite grows the database (page 1 changes) after the snapshot
    const loser = store.begin();
    const stale = await loser.read(1);
    await peer.exec('INSERT INTO t(v) VALUES (zeroblob(4000))');
    stale.writeUInt32BE(1, 60);
    loser.write(1, stale);
    await expectRejectsWalnut(loser.commit(), 'WALNUT_CONFLICT');

    expect(await peer.pragma('integrity_check')).toBe('ok');
    expect(await peer.get('SELECT count(*) AS n FROM t')).toEqual({ n: 2001 });
    expect(await peer.pragma('user_version')).toBe(4343);
    await peer.close();
    await store.close();
  });
});

describe('checkpoints of a 4-segment WAL SQLite wrote while the store was open', () => {
  for (const mode of ['passive', 'full', 'restart', 'truncate'] as const) {
    it(`${mode}: the same result as SQLite's own checkpoint of a copy; SQLite then reads the database`, async () => {
      const { file, store, peer } = await grownWhileOpen(FOUR_SEGMENTS);
      const rows = await peer.all('SELECT id, hex(v) AS v FROM t ORDER BY id');
      const sqlite = sqliteCheckpointOfCopy(file, mode.toUpperCase());
      expect(sqlite.busy).toBe(false);

      const r = await store.checkpoint(mode);
      expect({ busy: r.busy, walFrames: r.walFrames, checkpointedFrames: r.checkpointedFrames }).toEqual(sqlite);
      if (mode === 'truncate') expect(fs.statSync(`${file}-wal`).size).toBe(0);

      expect(await peer.all('SELECT id, hex(v) AS v FROM t ORDER BY id')).toEqual(rows);
      expect(await peer.pragma('integrity_check')).toBe('ok');
      await peer.close();
      await store.close();
      // the database file alone (the WAL set aside) holds everything
      fs.renameSync(`${file}-wal`, `${file}-wal.aside`);
      fs.rmSync(`${file}-shm`, { force: true });
      const db = new Database(file, { readonly: true });
      expect(db.prepare('SELECT id, hex(v) AS v FROM t ORDER BY id').all()).toEqual(rows);
      db.close();
    });
  }

  it('passive with a SQLite reader whose mark is in segment 2: copies exactly up to that mark', async () => {
    const { file, store, peer, mx: mark } = await grownWhileOpen(9000);
    const reader = new SqlitePeer(file);
    await reader.exec('BEGIN');
    const seen = await reader.all('SELECT id, hex(v) AS v FROM t ORDER BY id');
    const mx = await sqliteGrows(peer, file, FOUR_SEGMENTS);

    const r = await store.checkpoint('passive');
    expect(r).toMatchObject({ busy: false, walFrames: mx, checkpointedFrames: mark });
    expect(await reader.all('SELECT id, hex(v) AS v FROM t ORDER BY id')).toEqual(seen);
    await reader.exec('COMMIT');
    await reader.close();
    const rest = await store.checkpoint('passive');
    expect(rest).toMatchObject({ busy: false, walFrames: mx, checkpointedFrames: mx });
    expect(await peer.pragma('integrity_check')).toBe('ok');
    await peer.close();
    await store.close();
  });
});

describe('export of a 4-segment WAL SQLite wrote while the store was open', () => {
  it('restores to exactly the rows SQLite sees; integrity ok', async () => {
    const { store, peer } = await grownWhileOpen(FOUR_SEGMENTS);
    const rows = await peer.all('SELECT id, hex(v) AS v FROM t ORDER BY id');
    const out = await WalnutFile.open(path.join(dir, `big${n}.ark`), { create: true, truncate: true });
    const stats = await store.exportTo(out).done;
    await out.close();
    expect(stats.commits).toBeGreaterThan(0);
    await peer.close();
    await store.close();

    const target = path.join(dir, `restored${n++}.db`);
    await restore(fs.createReadStream(out.path), target);
    const db = new Database(target, { readonly: true });
    expect(db.prepare('SELECT id, hex(v) AS v FROM t ORDER BY id').all()).toEqual(rows);
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    db.close();
  });
});

describe('walnut checkpoint (CLI) while SQLite holds the database open with a 3-segment WAL', () => {
  it("prints what SQLite's PRAGMA wal_checkpoint prints for the same files", async () => {
    const file = newDb();
    const peer = await sqliteWriter(file);
    await peer.get('SELECT count(*) FROM t'); // SQLite opens the WAL and creates the -shm
    const mx = await sqliteGrows(peer, file, 9000);
    expect(fs.statSync(`${file}-shm`).size).toBe(3 * SHM_SEGMENT_BYTES);
    const rows = await peer.all('SELECT id, hex(v) AS v FROM t ORDER BY id');
    const sqlite = sqliteCheckpointOfCopy(file, 'PASSIVE');
    expect(sqlite).toEqual({ busy: false, walFrames: mx, checkpointedFrames: mx });

    const r = spawnSync(process.execPath, [bin, 'checkpoint', file, '--json'], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ mode: 'passive', ...sqlite });
    // SQLite's own checkpoint of the same files now finds everything done
    expect(await peer.all('PRAGMA wal_checkpoint')).toEqual([{ busy: 0, log: mx, checkpointed: mx }]);
    expect(await peer.all('SELECT id, hex(v) AS v FROM t ORDER BY id')).toEqual(rows);
    expect(await peer.pragma('integrity_check')).toBe('ok');
    await peer.close();
  });
});

describe('a -shm truncated under a live store', () => {
  /** The store's next snapshot, commit and checkpoint are refused; the process lives. */
  async function refused(store: Store, pgno: number, data: Buffer): Promise<void> {
    await expectRejectsWalnut(store.snapshot(), 'WALNUT_CORRUPT', { reason: 'ShmTruncated' });
    const failed = await expectRejectsWalnut(store.commit([{ pgno, data }]), 'WALNUT_CORRUPT', { reason: 'ShmTruncated' });
    expect(store.resumeCommits(failed)).toBe(true); // the failed commit broke the commit chain
    await expectRejectsWalnut(store.checkpoint('passive'), 'WALNUT_CORRUPT', { reason: 'ShmTruncated' });
  }

  it('to 0 bytes: WalnutErrors instead of SIGBUS; a new connection rebuilds the index', async () => {
    const file = newDb();
    const store = await open(file, { keepWal: true });
    const snap = await store.snapshot();
    const page1 = await snap.read(1);
    snap.release();
    await store.commit([{ pgno: 1, data: page1 }]);
    fs.truncateSync(`${file}-shm`, 0);
    await refused(store, 1, page1);
    await store.close();
    const again = await open(file, { keepWal: true });
    expect((await again.checkpoint('truncate')).busy).toBe(false);
    await again.close();
    expect(sqliteIntegrity(file)).toEqual(['ok']);
  });

  it('to fewer segments than mapped (SQLite grew it to 2), then to 0: refused each time; nothing lost', async () => {
    const { file, store, peer } = await grownWhileOpen(5000); // two segments
    const before = await store.snapshot();
    const last = await before.read(before.dbSize); // maps segment 1
    before.release();
    await peer.close();

    for (const size of [SHM_SEGMENT_BYTES, 0]) {
      fs.truncateSync(`${file}-shm`, size);
      await refused(store, before.dbSize, last);
    }
    await store.close();
    const again = await open(file, { autoCheckpoint: false, keepWal: true });
    const snap = await again.snapshot();
    expect((await snap.read(before.dbSize)).equals(last)).toBe(true);
    snap.release();
    await again.close();
    expect(sqliteIntegrity(file)).toEqual(['ok']);
  });

  it('during a commit batch (while its frames are written): the batch fails, no SIGBUS; nothing acknowledged is lost', async () => {
    const { file, store, page1 } = await acknowledgedUserVersion7();
    // another user cuts the -shm while the next batch's frames are being written (a lone
    // commit's frames go through appendSync on the JS thread, a batch's through append). A lone
    // commit on idle lanes writes, indexes and publishes in one native call (appendInline): that
    // path is turned off here; its cut is the fault rule cutShmAfterInlineWrite, in
    // break-shm-truncate's 'publish' case (faults are armed only in child processes)
    const original = WalFile.prototype.append;
    const originalSync = WalFile.prototype.appendSync;
    const originalInline = WalIndex.prototype.appendInline;
    WalIndex.prototype.appendInline = () => null;
    WalFile.prototype.append = async function (this: WalFile, ...args: Parameters<WalFile['append']>) {
      const r = await original.apply(this, args);
      fs.truncateSync(`${file}-shm`, 0);
      return r;
    };
    WalFile.prototype.appendSync = function (this: WalFile, ...args: Parameters<WalFile['appendSync']>) {
      const r = originalSync.apply(this, args);
      fs.truncateSync(`${file}-shm`, 0);
      return r;
    };
    try {
      const next = Buffer.from(page1);
      next.writeUInt32BE(8, 60);
      const e = await expectRejectsWalnut(store.commit([{ pgno: 1, data: next }]), 'WALNUT_FAILED');
      expect(e.cause).toMatchObject({ code: 'WALNUT_CORRUPT', reason: 'ShmTruncated' });
    } finally {
      WalFile.prototype.append = original;
      WalFile.prototype.appendSync = originalSync;
      WalIndex.prototype.appendInline = originalInline;
    }
    await expectRejectsWalnut(store.commit([{ pgno: 1, data: page1 }]), 'WALNUT_FAILED'); // the store stopped
    await store.close();
    const db = new Database(file);
    expect(db.pragma('user_version', { simple: true })).toBeGreaterThanOrEqual(7); // 8 only if recovery kept the failed batch
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    db.close();
  });

  it("while a snapshot is held: the snapshot's next asynchronous read is refused, no SIGBUS", async () => {
    const { file, store } = await acknowledgedUserVersion7();
    const snap = await store.snapshot();
    expect(snap.mxFrame).toBeGreaterThan(0); // its reads look the WAL up
    fs.truncateSync(`${file}-shm`, 0);
    await expectRejectsWalnut(snap.read(1), 'WALNUT_CORRUPT', { reason: 'ShmTruncated' });
    snap.release();
    await store.close();
  });

  it("during a checkpoint's copy: WALNUT_CORRUPT (ShmTruncated) before nBackfill is stored, no SIGBUS", async () => {
    const { file, store, peer } = await grownWhileOpen(5000); // two segments
    await peer.close();
    await store.close();
    const index = await WalIndex.open(file);
    const target = await index.checkpointTarget();
    const synced = target.syncDb.bind(target);
    target.syncDb = async (truncateTo, sync) => {
      await synced(truncateTo, sync);
      fs.truncateSync(`${file}-shm`, 0); // after the copy, before nBackfill moves
    };
    await expectRejectsWalnut(runCheckpoint(target, 'passive', { sync: true }), 'WALNUT_CORRUPT', { reason: 'ShmTruncated' });
    await index.close();
    expectSqliteSeesNewDb(file);
  });

  it('frame numbers within 33 of 2^32 (a forged header) are past the -shm, never read outside the mapping', async () => {
    const file = newDb();
    const index = await WalIndex.open(file);
    try {
      const target = await index.checkpointTarget();
      const past = { message: expect.stringMatching(/lies in wal-index segment 1048576, beyond the end of the -shm/) };
      // the 32-bit segment arithmetic wrapped these to segment 0 and indexed its page array at ~2^32
      expectWalnutError(() => target.pageNumbers(0xfffffff0, new Uint32Array(16)), 'WALNUT_CORRUPT', past);
      expectWalnutError(() => index.lookup(1, 0xffffffff, 1), 'WALNUT_CORRUPT', past);
      expectWalnutError(() => index.lookupMany(Uint32Array.of(1), 0xffffffff, 0xffffffe0, new Uint32Array(1)), 'WALNUT_CORRUPT', past);
    } finally {
      await index.close();
    }
  });

  it('a header whose frames lie past the end of the file: WALNUT_CORRUPT naming the frame, from lookups and the checkpoint', async () => {
    const file = newDb();
    const first = await WalIndex.open(file); // stays attached (DMS), so the next opener keeps the file
    const peer = await sqliteWriter(file);
    const mx = await sqliteGrows(peer, file, FOUR_SEGMENTS);
    await peer.close(); // first still has the database open: SQLite leaves the -wal and -shm
    fs.truncateSync(`${file}-shm`, SHM_SEGMENT_BYTES); // segment 0 (the header) stays
    const second = await WalIndex.open(file);
    const snap = await second.beginRead();
    expect(snap.mxFrame).toBe(mx);
    const past = { message: expect.stringMatching(new RegExp(`frame ${mx} lies in wal-index segment \\d+, beyond the end of the -shm \\(32768 bytes\\)`)) };
    expectWalnutError(() => snap.frameOf(1), 'WALNUT_CORRUPT', past);
    expectWalnutError(() => second.lookupMany(Uint32Array.of(1, 2), mx, 1, new Uint32Array(2)), 'WALNUT_CORRUPT', past);
    await expectRejectsWalnut(second.checkpointTarget().then((t) => runCheckpoint(t, 'passive', { sync: false })), 'WALNUT_CORRUPT', {
      message: expect.stringMatching(/beyond the end of the -shm/),
    });
    // a writer must not grow the file over that header: the new segments' page arrays would be
    // empty, and every lookup (SQLite's too) would then miss the frames they should index
    await second.beginWrite(snap);
    const page1 = fs.readFileSync(file).subarray(0, PAGE);
    await expectRejectsWalnut(second.appendAndPublish([{ pages: [{ pgno: 1, data: page1 }], dbSize: snap.dbSize }], 'none'), 'WALNUT_CORRUPT', past);
    second.endWrite();
    expect(fs.statSync(`${file}-shm`).size).toBe(SHM_SEGMENT_BYTES);
    expect(fs.statSync(`${file}-wal`).size).toBe(32 + mx * (PAGE + 24));
    snap.release();
    await second.close();
    await first.close();
    // the next first opener rebuilds the index from the WAL
    expectSqliteSeesNewDb(file);
  });

  it('a header (valid checksum) whose frames lie past the end of the WAL: the writer refuses instead of writing after a hole', async () => {
    const { file, store, page1 } = await acknowledgedUserVersion7();
    const walSize = fs.statSync(`${file}-wal`).size;
    forgeShmMxFrame(file, shmMxFrame(file) + 1000); // still within segment 0
    page1.writeUInt32BE(8, 60);
    await expectRejectsWalnut(store.commit([{ pgno: 1, data: page1 }]), 'WALNUT_CORRUPT', { reason: 'ShmHeaderNotWal' });
    expect(fs.statSync(`${file}-wal`).size).toBe(walSize);
    await store.close();
    fs.rmSync(`${file}-shm`); // SQLite rebuilds the index from the WAL: the acknowledged commit is there
    const db = new Database(file);
    expect(db.pragma('user_version', { simple: true })).toBe(7);
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    db.close();
  });
});
