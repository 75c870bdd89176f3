// Hostile: the -shm growing to a new 32 KiB segment on a real full disk. The segment was grown
// as SQLite grows it, one byte written at the end of each 4 KiB page; on a file system of 1 KiB
// blocks (a small ext4) those writes allocate one block in four, and the index writes that
// follow into the mapping land in holes the full disk cannot back: SIGBUS. The guard around the
// touches kept the process alive, but the commit's batch failed as "the -shm was truncated
// under this connection" (WALNUT_CORRUPT ShmTruncated, nobody truncated anything) and stopped
// the store (WALNUT_FAILED). Now the new segment's blocks are allocated (fallocate) before it is
// mapped: a disk without room for them fails the commit with WALNUT_FULL before anything is
// written, and once space is freed the same store commits again (after resumeCommits). The same
// holds for a segment another process grew SQLite's way (one byte per 4 KiB page) on that full
// disk: its holes are allocated before this connection writes its first index entry there.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { describe, expect, it } from 'vitest';

import { open, type Store } from '../../lib/commit/store';
import { ext4Skip, fillUp } from '../helpers/small-fs';
import { commitToSegmentEnd, SEGMENT_FRAMES, storeOnExt4 } from '../helpers/shm-segment-fill';

const EXT4_SKIP = ext4Skip();

/** The next commits reach the segment's end and then fail WALNUT_FULL; with `filler` removed the store commits again. */
async function expectFullThenCommits(store: Store, page2: Buffer, filler: string): Promise<void> {
  let last = 0;
  let failure: unknown = null;
  for (let i = 0; i < 4 && failure === null; i++) {
    try {
      last = (await store.commit([{ pgno: 2, data: page2 }])).lastFrame;
    } catch (e) {
      failure = e;
    }
  }
  expect(failure).toMatchObject({ code: 'WALNUT_FULL' });
  expect(last).toBe(SEGMENT_FRAMES);
  fs.rmSync(filler);
  expect(store.resumeCommits(failure)).toBe(true);
  for (let i = 0; i < 10; i++) last = (await store.commit([{ pgno: 2, data: page2 }])).lastFrame;
  expect(last).toBe(SEGMENT_FRAMES + 10);
}

describe.skipIf(EXT4_SKIP !== null)(`the -shm's second segment on a full ext4 of 1 KiB blocks${EXT4_SKIP === null ? '' : ` (${EXT4_SKIP})`}`, () => {
  it('is WALNUT_FULL before anything is written, not ShmTruncated; the store commits again once space is freed', async () => {
    const { dir, file, store, page2 } = await storeOnExt4();
    try {
      await commitToSegmentEnd(store, page2, 2);
      // room for the one-byte writes, not for the whole segment
      await expectFullThenCommits(store, page2, fillUp(dir, 12 * 1024));
    } finally {
      await store.close();
    }
    const again = await open(file, { keepWal: true });
    try {
      expect((await again.checkpoint('truncate')).busy).toBe(false);
    } finally {
      await again.close();
    }
    expect(execFileSync('sqlite3', [file, 'PRAGMA integrity_check'], { encoding: 'utf8' }).trim()).toBe('ok');
  });

  it('a segment another process grew with holes: WALNUT_FULL before anything is written, then commits again', async () => {
    const { dir, file, store, page2 } = await storeOnExt4();
    try {
      await commitToSegmentEnd(store, page2, 2);
      const filler = fillUp(dir, 12 * 1024);
      // the second segment grown as SQLite's unixShmMap grows it: a byte at the end of each 4 KiB
      const shm = fs.openSync(`${file}-shm`, 'r+');
      for (let at = 32768 + 4095; at < 65536; at += 4096) fs.writeSync(shm, Buffer.alloc(1), 0, 1, at);
      fs.closeSync(shm);
      fillUp(dir); // and the last blocks taken
      await expectFullThenCommits(store, page2, filler);
    } finally {
      await store.close();
    }
    expect(execFileSync('sqlite3', [file, 'PRAGMA integrity_check'], { encoding: 'utf8' }).trim()).toBe('ok');
  });
});
