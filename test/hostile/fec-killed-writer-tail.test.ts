// Hostile: a writer with the FEC sidecar on SIGKILLed mid-commit (at its batch's fdatasync, after
// its pwritev: frames of the WAL's generation, unpublished, never acknowledged, no sidecar group)
// while another connection keeps the -shm valid, then the next commit (by the connection left
// open, or by a new process) appended at the same slot. Every append zeros the frame header
// after its last frame (native/frames.cc), so the killed writer's later frames never continue
// the chain: recovery ends there, as SQLite's does. Every frame recovery keeps was protected, and
// yet the repair report (`recoverWithRepair`, store.metrics().fec.recovery) named an
// 'unprotected-tail' at the zeroed header: "torn or damaged after the last protected frame", of
// a log that simply ends there. Now: no fallback; damage in the protected frames is repaired,
// and then the report is clean too. Checked on copies of the files without the -shm (recovery
// runs, as after a crash), while the holder's store is still open. A zeroed frame header with a
// group over a later frame is still damage (committed frames follow it), and reported.
import * as fs from 'node:fs';
import * as path from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { open, recoverWithRepair, verify, WalnutFile, type Store } from '../../lib/index';
import { scanSidecar } from '../../lib/fec/sidecar';
import { HELPERS, runNode } from '../helpers/children';
import { expectAcknowledgedPages } from '../helpers/outcomes';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const PS = 4096;
const FRAME = 24 + PS;
const child = path.join(HELPERS, 'fec-killed-writer-child.js');
const stores: Store[] = [];
afterAll(async () => {
  for (const s of stores) await s.close();
});

/** A copy of `db`'s database, -wal and -wal-fec (no -shm: the copy's first opener recovers). */
function copyOf(db: string, name: string): string {
  const copy = path.join(dir, name);
  for (const suffix of ['', '-wal', '-wal-fec']) fs.copyFileSync(db + suffix, copy + suffix);
  return copy;
}

/** Page number of frame `f`'s header in `db`'s WAL (0: a zeroed header). */
function pgnoOf(db: string, f: number): number {
  const h = Buffer.alloc(4);
  const fd = fs.openSync(`${db}-wal`, 'r');
  fs.readSync(fd, h, 0, 4, 32 + (f - 1) * FRAME);
  fs.closeSync(fd);
  return h.readUInt32BE(0);
}

/** Overwrites `length` bytes of frame `f` in `db`'s WAL at `at` within it with `byte`. */
function damage(db: string, f: number, at: number, length: number, byte: number): void {
  const fd = fs.openSync(`${db}-wal`, 'r+');
  fs.writeSync(fd, Buffer.alloc(length, byte), 0, length, 32 + (f - 1) * FRAME + at);
  fs.closeSync(fd);
}

/** Until the holder's sidecar writer has written the groups of its `frames` frames. */
async function sidecarCaughtUp(store: Store, frames: number): Promise<void> {
  for (let i = 0; i < 500 && !(store.metrics().fec!.frames >= frames && store.metrics().fec!.queuedBytes === 0); i++) await new Promise((r) => setTimeout(r, 10));
  expect(store.metrics().fec).toMatchObject({ frames, queuedBytes: 0, writeErrors: 0 });
}

describe("a killed fec writer's unpublished frames, after the next commit's zeroed frame header", () => {
  for (const retrier of ['holder', 'new process'] as const) {
    it(`retried by the ${retrier}: recovery ends there with no fallback; damage before it is repaired`, async () => {
      const db = path.join(dir, `${retrier === 'holder' ? 'self' : 'other'}.db`);
      const holder = await open(db, { pageSize: PS, synchronous: 'full', autoCheckpoint: false, keepWal: true, shareLane: false, fec: { repairSymbols: 2 } });
      stores.push(holder);
      await holder.commit([2, 3, 4, 5].map((pgno) => ({ pgno, data: Buffer.alloc(PS, 1) }))); // frames 1..4
      const killed = await runNode(child, ['killed', db, String(PS)], { WALNUT_FAULT_INJECTION: '1' });
      expect(killed.stdout).toBe(''); // SIGKILLed at its sync
      expect([5, 6, 7, 8, 9, 10].map((f) => pgnoOf(db, f))).toEqual([2, 3, 4, 5, 6, 7]); // its batch, unpublished
      if (retrier === 'holder') {
        expect((await holder.commit([{ pgno: 2, data: Buffer.alloc(PS, 9) }])).lastFrame).toBe(5);
        await sidecarCaughtUp(holder, 5);
      } else {
        const r = await runNode(child, ['retry', db, String(PS)]);
        expect(r.stdout.trim()).toBe('ok 5');
        await sidecarCaughtUp(holder, 4);
      }
      expect([5, 6, 7].map((f) => pgnoOf(db, f))).toEqual([2, 0, 4]); // the retry, a zeroed header, the killed writer's frames

      const clean = await recoverWithRepair(copyOf(db, `${retrier}-clean.db`));
      expect(clean).toMatchObject({ walFrames: 5, repairedFrames: 0, fallback: null }); // was unprotected-tail at frame 6
      expect((await verify(copyOf(db, `${retrier}-verify.db`), 1)).issues.filter((i) => i.kind.startsWith('wal'))).toEqual([]);

      // damage in the protected frames: a page (frame 3) and the retry's frame header zeroed
      // whole (as an append's tail looks, but a group covers it): both repaired, then the log ends
      const damaged = copyOf(db, `${retrier}-damaged.db`);
      damage(damaged, 3, 24 + 100, 200, 0xa5);
      damage(damaged, 5, 0, 24, 0);
      const repaired = await recoverWithRepair(damaged);
      expect(repaired).toMatchObject({ walFrames: 5, repairedFrames: 2, fallback: null });
      await expectAcknowledgedPages(damaged, [{ pgno: 2, v: 9 }, { pgno: 3, v: 1 }, { pgno: 4, v: 1 }, { pgno: 5, v: 1 }], 2, 7);
    }, 20_000);
  }
});

describe('a zeroed frame header after a commit frame, with a sidecar group over a later frame', () => {
  it('is damage, not the end of the log: reported as missing-group when no group covers it', async () => {
    const db = path.join(dir, 'gap.db');
    const store = await open(db, { pageSize: PS, autoCheckpoint: false, keepWal: true, fec: { repairSymbols: 2 } });
    stores.push(store);
    for (const v of [1, 2, 3]) await store.commit([2, 3].map((pgno) => ({ pgno, data: Buffer.alloc(PS, v) }))); // frames 1-2, 3-4, 5-6
    await sidecarCaughtUp(store, 6);
    const copy = copyOf(db, 'gap-copy.db');
    // the group over frames 3-4 gone (as if its writer died first), frame 3's header zeroed alone
    const f = WalnutFile.openSync(`${copy}-wal-fec`, { readOnly: true });
    const groups = scanSidecar(f).groups;
    f.closeSync();
    expect(groups.map((g) => [g.firstFrame, g.k])).toEqual([[1, 2], [3, 2], [5, 2]]);
    const sidecar = fs.readFileSync(`${copy}-wal-fec`);
    fs.writeFileSync(`${copy}-wal-fec`, Buffer.concat([sidecar.subarray(0, groups[1]!.offset), sidecar.subarray(groups[2]!.offset)]));
    damage(copy, 3, 0, 24, 0);
    const r = await recoverWithRepair(copy);
    expect(r).toMatchObject({ walFrames: 2, fallback: { frame: 3, reason: 'missing-group' } });
  });
});
