// Hostile: a real full disk (a small tmpfs filled by a filler file), not an injected fault, and
// the zeros walnut writes over WAL frame headers: an append's tail and a failed batch's
// invalidation. Neither may need space a full disk lacks where nothing is to be zeroed.
//
// The tail: every append zeros the frame header after its last frame, as far as the file holds
// it (wal-file.ts, native/frames.cc), in the same pwritev as its frames. Those 24 bytes must
// never fail an append that would go through without them:
//  - over allocated space (a WAL reused after a recovery dropped its tail) they need no block: with
//    no free byte left, the append goes through and the dropped frame's header is zeroed;
//  - in a hole (the WAL extended without allocating after a preallocating append hit the full
//    disk: frames.cc's fallback) they may need a block of their own, here the one right after
//    frame 340 (32 + 340 * 4120 = 342 * 4096). The write fails ENOSPC after the frames; the
//    out-of-space fallback finds every frame in and the tail reading as zeros already (a hole):
//    the append stands, as it did before there was a tail.
//
// The invalidation: a WAL append that hits the full disk may have put a few bytes of its first
// frame header in the file before ENOSPC: here 8 (frame 170 of 4 KiB pages starts 8 bytes before
// the end of the last block the WAL holds: 32 + 169 * 4120 = 170 * 4096 - 8). The failed batch is
// then invalidated. Its first header's 24 zeros were written whole, past what the file holds (or,
// where an earlier append's out-of-space fallback extended the file without allocating, into the
// hole there): that needed a block the full disk did not have, the zeroing failed ENOSPC too, and the
// batch was reported WALNUT_FULL with reason OutcomeUnknown (the store stops on it) although
// nothing of it could ever come back. Now only the header's bytes that are not zeros are zeroed:
// the failure is definite, the WAL recovers to its last commit, and it takes new frames once
// space is free.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { WalFile } from '../../lib/wal/wal-file';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { fillUp, MOUNT_SKIP, smallTmpfs } from '../helpers/small-fs';

const PS = 4096;
const FRAME = 24 + PS;
const page = (v: number) => new Uint8Array(PS).fill(v);
const frames = (from: number, count: number, v: number) => Array.from({ length: count }, (_, i) => ({ pgno: from + i, data: page(v) }));
const skip = MOUNT_SKIP === null ? '' : ` (${MOUNT_SKIP})`;

/** The 24 bytes of frame `n`'s header in the WAL at `walPath` (zeros past its end). */
function frameHeader(walPath: string, n: number): Buffer {
  const h = Buffer.alloc(24);
  const fd = fs.openSync(walPath, 'r');
  try {
    fs.readSync(fd, h, 0, 24, 32 + (n - 1) * FRAME);
  } finally {
    fs.closeSync(fd);
  }
  return h;
}

/**
 * Runs `body` with a new WAL of 4 KiB pages (a header, no frames, no preallocation) on a 2 MiB
 * tmpfs of its own, and closes it after.
 */
async function withWal(body: (wal: WalFile, walPath: string, dir: string) => Promise<void>): Promise<void> {
  const dir = smallTmpfs('2m');
  const walPath = path.join(dir, 'app.db-wal');
  const wal = await WalFile.open(walPath, { create: true });
  try {
    wal.preallocate = false;
    await wal.writeHeader({ pageSize: PS, checkpointSeq: 0 });
    await body(wal, walPath, dir);
  } finally {
    await wal.close();
  }
}

describe.skipIf(MOUNT_SKIP !== null)(`an append's tail zeros on a full disk${skip}`, () => {
  it('over a dropped tail in allocated space: the append goes through with no free byte, and the dropped frame is zeroed', () =>
    withWal(async (wal, walPath, dir) => {
      await wal.append([{ pages: frames(1, 2, 1), dbSize: 5 }, { pages: frames(3, 3, 1), dbSize: 5 }], 'data');
      // frame 5's page damaged: recovery ends at frame 2, frames 3 and 4 stay valid past it
      const fd = fs.openSync(walPath, 'r+');
      fs.writeSync(fd, Buffer.from([9]), 0, 1, 32 + 4 * FRAME + 24 + 100);
      fs.closeSync(fd);
      const r = await wal.recover();
      expect([r.mxFrame, r.lastValidFrame]).toEqual([2, 4]);
      const filler = fillUp(dir);
      const result = await wal.append([{ pages: frames(1, 1, 2), dbSize: 5 }], 'data');
      expect(result.lastFrame).toBe(3);
      expect(frameHeader(walPath, 4).every((b) => b === 0)).toBe(true); // the tail
      expect(fs.statSync(walPath).size).toBe(32 + 5 * FRAME); // unchanged
      fs.rmSync(filler);
      const again = await wal.recover();
      expect([again.mxFrame, again.lastValidFrame]).toEqual([3, 3]);
    }));

  it('in a hole whose block the disk cannot give: the append goes through, as it did without the tail', () =>
    withWal(async (wal, walPath, dir) => {
      await wal.append([{ pages: frames(1, 339, 1), dbSize: 339 }], 'data');
      const end = 32 + 340 * FRAME;
      expect(end % 4096).toBe(0); // frame 341's header starts a block of its own
      fs.truncateSync(walPath, end + 64 * 1024); // a hole after the frames, as frames.cc's fallback leaves it
      await wal.recover();
      const filler = fillUp(dir);
      fs.truncateSync(filler, fs.statSync(filler).size - 4096); // one block free: frame 340's second
      const result = await wal.append([{ pages: frames(1, 1, 2), dbSize: 339 }], 'data');
      expect(result.lastFrame).toBe(340);
      expect(frameHeader(walPath, 341).every((b) => b === 0)).toBe(true); // a hole: zeros without a write
      fs.rmSync(filler);
      expect((await wal.recover()).mxFrame).toBe(340);
    }));
});

describe.skipIf(MOUNT_SKIP !== null)(`a failed append's cut first frame header on a full disk${skip}`, () => {
  for (const hole of [false, true]) {
    it(`${hole ? 'before a hole (the file extended without allocating, as the out-of-space fallback leaves it)' : 'at the end of the file'}: the failure is WALNUT_FULL, not OutcomeUnknown, and the WAL recovers to its last commit`, () =>
      withWal(async (wal, walPath, dir) => {
        await wal.append([{ pages: frames(1, 169, 1), dbSize: 169 }], 'data');
        const end = 32 + 169 * FRAME;
        expect(fs.statSync(walPath).size).toBe(end);
        expect(end % 4096).toBe(4096 - 8); // frame 170's header: 8 bytes in the WAL's last block
        if (hole) {
          fs.truncateSync(walPath, end + 64 * 1024);
          await wal.recover();
        }
        const filler = fillUp(dir);
        const e = await expectRejectsWalnut(wal.append([{ pages: frames(1, 2, 2), dbSize: 169 }], 'data'), 'WALNUT_FULL');
        expect((e as { reason?: string }).reason).toBeUndefined(); // definite: not OutcomeUnknown
        expect(frameHeader(walPath, 170).every((b) => b === 0)).toBe(true); // the 8 bytes that got there: zeroed
        fs.rmSync(filler);
        const r = await wal.recover();
        expect([r.mxFrame, r.dbSize]).toEqual([169, 169]);
        const next = await wal.append([{ pages: frames(1, 1, 3), dbSize: 169 }], 'data');
        expect(next.lastFrame).toBe(170);
        expect((await wal.recover()).mxFrame).toBe(170);
      }));
  }
});
