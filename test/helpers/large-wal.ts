// Large WALs built fast, for the scale case the project's standard asks of every interop family
// (a WAL of 4+ wal-index segments, 16,000+ frames, another process writing): a store's own
// pages committed again unchanged, in whole-database commits (small pages make it quick), and
// the wal-index header's mxFrame read from the -shm as any connection sees it.
import * as fs from 'node:fs';

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
