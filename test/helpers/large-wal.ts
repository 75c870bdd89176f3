// Large WALs built fast, for the scale case the project's standard asks of every interop family
// (a WAL of 4+ wal-index segments, 16,000+ frames, another process writing): a store's own
// pages committed again unchanged, in whole-database commits (small pages make it quick), and
// the wal-index header's mxFrame read from the -shm as any connection sees it; or SQLite's own
// (sqliteLargeWal: one-row commits, page 1 in every one that grows the file); or a python3
// sqlite3 process growing it beside the test's own writers (startWalFiller).
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';

import type { Store } from '../../lib/commit/store';
import { SHM_INDEX_HEADER_BYTES } from '../../lib/format/shm-header';
import { WalnutFile } from '../../lib/io/file';
import { readLines } from './child-lines';
import { until, WAIT_MS } from './until';

/** The last frame wal-index segment k indexes (1-based frames): segment 0 holds 4,062, each later one 4,096. */
export function segmentEnd(k: number): number {
  return 4062 + 4096 * k;
}

/** Commits the store's pages again, unchanged, until its WAL holds at least `frames` frames (open it with autoCheckpoint: false). */
export async function growWal(store: Store, frames: number): Promise<void> {
  const snap = await store.snapshot();
  const all = await Promise.all(Array.from({ length: snap.dbSize }, (_, k) => snap.read(k + 1)));
  snap.release();
  while (store.metrics().walFrames < frames) await store.commit(all.map((data, k) => ({ pgno: k + 1, data })));
}

/** mxFrame of the wal-index header (offset 16 of the -shm, native byte order): the -wal file is extended ahead of its frames, so its size does not tell. */
export function shmMxFrame(db: string): number {
  const mxFrame = liveShmMxFrame(db);
  if (mxFrame === null) throw new Error(`${db}-shm is missing or shorter than its header`);
  return mxFrame;
}

/**
 * shmMxFrame, or null while the -shm is missing or shorter than its header (the first connection
 * to open the database is rebuilding it). Read through WalnutFile, not node:fs: closing a
 * descriptor of the -shm drops every POSIX lock this process holds on it, and a test may have a
 * better-sqlite3 connection to the database open in this process (its read mark, its DMS lock);
 * walnut keeps such a descriptor open until those locks are gone (native/fd_registry.h).
 */
function liveShmMxFrame(db: string): number | null {
  let shm: WalnutFile;
  try {
    shm = WalnutFile.openSync(`${db}-shm`, { readOnly: true });
  } catch (e) {
    if ((e as { code?: string }).code === 'WALNUT_CANTOPEN' && !fs.existsSync(`${db}-shm`)) return null;
    throw e;
  }
  try {
    const header = new Uint8Array(SHM_INDEX_HEADER_BYTES);
    return shm.readSync(header, 0, header.length, 0) === header.length ? Buffer.from(header.buffer).readUInt32LE(16) : null;
  } finally {
    shm.closeSync();
  }
}

/**
 * Waits until another connection appends to the WAL of `db` (the -shm header's mxFrame moves
 * from `from`). Scale tests start a python3 writer this way before walnut's committers: a
 * sqlite3 writer still sleeping in its busy handler for its first commit holds no lock walnut
 * can see, so continuous commits can starve it (README, known); once it has committed, walnut
 * leaves WRITE free after every batch and both go on. A -shm being rebuilt (python3 the first
 * connection) has not moved yet. (WAIT_MS, for a hang: a python3 start and first commit at
 * load 20+ is seconds, and 30 s was a speed check.)
 */
export async function untilWalMoves(db: string, from: number, timeoutMs = WAIT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let mxFrame = liveShmMxFrame(db); mxFrame === null || mxFrame === from; mxFrame = liveShmMxFrame(db)) {
    if (Date.now() > deadline) throw new Error(`no other connection appended to ${db}-wal within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Whole frames in a WAL file (its header's page size), valid or not. */
export function walFileFrames(wal: string): number {
  const fd = fs.openSync(wal, 'r');
  try {
    const head = Buffer.alloc(32);
    fs.readSync(fd, head, 0, 32, 0);
    return Math.floor((fs.fstatSync(fd).size - 32) / (head.readUInt32BE(8) + 24));
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * A WAL-mode database SQLite (better-sqlite3) wrote in `dir`: table t(id, w, v), one-row commits
 * (w = 0, a third of a page each: page 1 in every commit that grows the file) until its -wal
 * holds `frames` frames, wal_autocheckpoint 0, synchronous off; copied with that -wal while its
 * connection is open (nothing checkpointed). Returns the copy's path.
 */
export function sqliteLargeWal(dir: string, name: string, pageSize: number, frames: number): string {
  const src = path.join(dir, `${name}.src.db`);
  const s = new Database(src);
  try {
    s.pragma(`page_size = ${pageSize}`);
    s.pragma('journal_mode = WAL');
    s.pragma('wal_autocheckpoint = 0');
    s.pragma('synchronous = OFF');
    s.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, w INTEGER, v BLOB)');
    s.pragma('wal_checkpoint(TRUNCATE)'); // page 1 in the file, every frame after it a commit's
    const ins = s.prepare('INSERT INTO t(w, v) VALUES (0, randomblob(?))');
    // the -wal's size (one stat; SQLite writes its frames in place, nothing ahead of them) told
    // apart into whole frames: reading its header each time was most of the fill
    const walFrames = (): number => Math.floor((fs.statSync(`${src}-wal`).size - 32) / (pageSize + 24));
    while (walFrames() < frames) ins.run(Math.floor(pageSize / 3));
    return copyWithWal(src, path.join(dir, `${name}.db`));
  } finally {
    s.close();
  }
}

/** Copies the database `from` and its -wal to `to` (its directory made when missing); returns `to`. */
export function copyWithWal(from: string, to: string): string {
  fs.mkdirSync(path.dirname(to), { recursive: true });
  fs.copyFileSync(from, to);
  fs.copyFileSync(`${from}-wal`, `${to}-wal`);
  return to;
}

/** How many frames of a WAL file hold page 1, and the newest of them (1-based; 0: none). */
export function page1Frames(wal: string): { count: number; newest: number } {
  const b = fs.readFileSync(wal);
  const pageSize = b.readUInt32BE(8);
  let count = 0;
  let newest = 0;
  for (let at = 32, f = 1; at + 24 + pageSize <= b.length; at += 24 + pageSize, f++) {
    if (b.readUInt32BE(at) !== 1) continue;
    count++;
    newest = f;
  }
  return { count, newest };
}

/** A running sqlite-wal-filler.py (see there). */
export interface WalFiller {
  /** Resolves once the WAL holds the frames asked for (or the process ended before). */
  filled: Promise<void>;
  /** Every row the process committed, once it has closed its connection and exited 0. */
  done: Promise<number>;
  /** Ends its one-row commits (it may not have filled the WAL yet: it does that first). */
  stop: () => void;
}

/**
 * Starts python3 growing the WAL of `db` (WAL mode, `table`(v) there) to `frames` frames in
 * 100-row transactions, then committing one row at a time until stop() (test/helpers/
 * sqlite-wal-filler.py).
 */
export function startWalFiller(db: string, frames: number, table: string): WalFiller {
  const stopFile = `${db}.filler-stop`;
  fs.rmSync(stopFile, { force: true });
  const child = spawn('python3', [path.join(__dirname, 'sqlite-wal-filler.py'), db, String(frames), stopFile, table], { stdio: ['ignore', 'pipe', 'pipe'] });
  let rows = -1;
  let markFilled!: () => void;
  const filled = new Promise<void>((resolve) => (markFilled = resolve));
  const ended = readLines(child, (line) => {
    if (line === 'filled') markFilled();
    if (line.startsWith('done ')) rows = Number(line.slice(5));
  });
  const done = ended.then((r) => {
    if (r.code !== 0 || rows < 0) throw new Error(`sqlite-wal-filler.py: exit ${r.code ?? r.signal} ${r.stderr}`);
    return rows;
  });
  done.catch(() => undefined); // (a test that awaits filled only still sees the failure through it)
  return { filled: Promise.race([filled, done.then(() => undefined)]), done, stop: () => fs.writeFileSync(stopFile, '') };
}

/**
 * Runs `commit` (one commit of the test's own writer) again and again until `filler` has filled
 * the WAL, and then `more` times, each time once another connection (python3) has committed
 * since the last one (the -shm's mxFrame moved): commits back to back starve a sqlite3 writer
 * sleeping in its busy handler (README, known) and run the WAL far past the frames asked for
 * (400,000 frames, not 17,500, at load 10). Returns how many commits ran.
 */
export async function commitBetweenFillerTurns(db: string, filler: WalFiller, commit: () => Promise<unknown>, more = 0): Promise<number> {
  let filled = false;
  void filler.filled.then(() => (filled = true));
  let commits = 0;
  for (let after = 0; !filled || after < more; after += filled ? 1 : 0) {
    await commit();
    commits++;
    const mine = shmMxFrame(db);
    const waitingForFill = !filled;
    await until(() => (waitingForFill && filled) || shmMxFrame(db) !== mine, WAIT_MS, () => mine);
  }
  await filler.filled;
  return commits;
}
