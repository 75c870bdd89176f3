// A store on a small ext4 filled to just before the -shm's second 32 KiB segment: the setting of
// the full-disk tests of a new -shm segment (full-disk-shm-segment, full-disk-shm-segment-batch).
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

import { open, type Store } from '../../lib/commit/store';
import { smallExt4 } from './small-fs';

/** The page size: small pages reach the segment's end in little space. */
export const PS = 512;
/** The frames the -shm's first segment indexes. */
export const SEGMENT_FRAMES = 4062;

/** A WAL-mode database of PS-byte pages (table t) on a fresh 8 MiB ext4, its first store, and page 2 as it is. */
export async function storeOnExt4(): Promise<{ dir: string; file: string; store: Store; page2: Buffer }> {
  const dir = smallExt4('8M');
  const file = path.join(dir, 'app.db');
  execFileSync('sqlite3', [file, `PRAGMA page_size=${PS}; PRAGMA journal_mode=WAL; CREATE TABLE t(x);`]);
  const store = await open(file, { autoCheckpoint: false, keepWal: true });
  const snap = await store.snapshot();
  const page2 = Buffer.from(await snap.read(2));
  snap.release();
  return { dir, file, store, page2 };
}

/** Commits page 2 until the WAL is `short` frames short of the first segment's end (concurrent: a few group commits). */
export async function commitToSegmentEnd(store: Store, page2: Buffer, short: number): Promise<void> {
  let last = 0;
  while (last < SEGMENT_FRAMES - short) {
    const n = Math.min(500, SEGMENT_FRAMES - short - last);
    const done = await Promise.all(Array.from({ length: n }, () => store.commit([{ pgno: 2, data: page2 }])));
    last = Math.max(...done.map((r) => r.lastFrame));
  }
}
