// Large WALs built fast, for the scale case the project's standard asks of every interop family
// (a WAL of 4+ wal-index segments, 16,000+ frames, another process writing): a store's own
// pages committed again unchanged, in whole-database commits (small pages make it quick), and
// the wal-index header's mxFrame read from the -shm as any connection sees it; or SQLite's own
// (sqliteLargeWal: one-row commits, page 1 in every one that grows the file).
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';

import type { Store } from '../../lib/commit/store';
import { SHM_INDEX_HEADER_BYTES } from '../../lib/format/shm-header';
import { WAIT_MS } from './until';

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

/** shmMxFrame, or null while the -shm is missing or shorter than its header (the first connection to open the database is rebuilding it). */
function liveShmMxFrame(db: string): number | null {
  const shm = fs.existsSync(`${db}-shm`) ? fs.readFileSync(`${db}-shm`) : null;
  return shm !== null && shm.length >= SHM_INDEX_HEADER_BYTES ? shm.readUInt32LE(16) : null;
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
