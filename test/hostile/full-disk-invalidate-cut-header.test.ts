// Hostile: a real full disk (a small tmpfs filled by a filler file), not an injected fault.
// A WAL append that hits the full disk may have put a few bytes of its first frame header in the
// file before ENOSPC: here 8 (frame 170 of 4 KiB pages starts 8 bytes before the end of the last
// block the WAL holds: 32 + 169 * 4120 = 170 * 4096 - 8). The failed batch is then invalidated.
// Its first header's 24 zeros were written whole, past what the file holds (or, after the
// preallocating append's fallback extended the file without allocating, into the hole there):
// that needed a block the full disk did not have, the zeroing failed ENOSPC too, and the batch
// was reported WALNUT_FULL with reason OutcomeUnknown (the store stops on it) although nothing of
// it could ever come back. Now only the header's bytes that are not zeros are zeroed: the failure
// is definite, the WAL recovers to its last commit, and it takes new frames once space is free.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { WalFile } from '../../lib/wal/wal-file';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { fillUp, MOUNT_SKIP, smallTmpfs } from '../helpers/small-fs';

const PS = 4096;
const FRAME = 24 + PS;
const page = (v: number) => new Uint8Array(PS).fill(v);

describe.skipIf(MOUNT_SKIP !== null)(`a failed append's cut first frame header on a full disk${MOUNT_SKIP === null ? '' : ` (${MOUNT_SKIP})`}`, () => {
  for (const preallocate of [false, true]) {
    it(`${preallocate ? 'preallocating (the file extended without allocating after the frames)' : 'not preallocating'}: the failure is WALNUT_FULL, not OutcomeUnknown, and the WAL recovers to its last commit`, async () => {
      const dir = smallTmpfs('2m');
      const walPath = path.join(dir, 'app.db-wal');
      const wal = await WalFile.open(walPath, { create: true });
      try {
        wal.preallocate = false;
        await wal.writeHeader({ pageSize: PS, checkpointSeq: 0 });
        await wal.append([{ pages: Array.from({ length: 169 }, (_, i) => ({ pgno: i + 1, data: page(1) })), dbSize: 169 }], 'data');
        const end = 32 + 169 * FRAME;
        expect(fs.statSync(walPath).size).toBe(end);
        expect(end % 4096).toBe(4096 - 8); // frame 170's header: 8 bytes in the WAL's last block
        wal.preallocate = preallocate;
        const filler = fillUp(dir);
        const e = await expectRejectsWalnut(wal.append([{ pages: [{ pgno: 1, data: page(2) }, { pgno: 2, data: page(2) }], dbSize: 169 }], 'data'), 'WALNUT_FULL');
        expect((e as { reason?: string }).reason).toBeUndefined(); // definite: not OutcomeUnknown
        const header = Buffer.alloc(24);
        const fd = fs.openSync(walPath, 'r');
        const got = fs.readSync(fd, header, 0, 24, end);
        fs.closeSync(fd);
        expect(header.subarray(0, got).every((b) => b === 0)).toBe(true); // the 8 bytes that got there: zeroed
        fs.rmSync(filler);
        const r = await wal.recover();
        expect([r.mxFrame, r.dbSize]).toEqual([169, 169]);
        const next = await wal.append([{ pages: [{ pgno: 1, data: page(3) }], dbSize: 169 }], 'data');
        expect(next.lastFrame).toBe(170);
        expect((await wal.recover()).mxFrame).toBe(170);
      } finally {
        await wal.close();
      }
    });
  }
});
