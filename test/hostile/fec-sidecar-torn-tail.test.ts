// Hostile: a -wal-fec whose last group is torn (a process killed while appending it, or an
// append cut short by a full disk). The writer appended every later group after the torn bytes,
// where the sidecar's scan (which stops at the first group that does not verify) never reaches:
// from then on no commit of that WAL generation was protected, silently (no write error), and a
// damaged frame among them was dropped by recovery with everything after it ('unprotected-tail',
// or on a real full disk "the sidecar has no group of this WAL generation yet"). The writer now
// checks where the file's whole groups end before it appends and cuts a torn tail off first.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open, recoverWithRepair } from '../../lib/index';
import { fillUp, MOUNT_SKIP, smallTmpfs } from '../helpers/small-fs';
import { tmpDir } from '../helpers/tmp';
import { flipPageByte } from '../helpers/wal-damage';
import { until, WAIT_MS } from '../helpers/until';

const PS = 4096;
const page = (n: number) => Buffer.alloc(PS, n & 0xff);

/** Commits `n` one-page batches (frames of page 2); the last commit's last frame. */
async function commitPages(store: Awaited<ReturnType<typeof open>>, n: number, from: number): Promise<number> {
  let last = 0;
  for (let i = 0; i < n; i++) last = (await store.commit([{ pgno: 2, data: page(from + i) }], { dbSize: 2 })).lastFrame;
  return last;
}

/** Damages the frame before `last`, drops the -shm and repairs: what recoverWithRepair says. */
async function damageAndRepair(file: string, last: number) {
  flipPageByte(`${file}-wal`, PS, last - 1);
  fs.rmSync(`${file}-shm`, { force: true });
  return recoverWithRepair(file);
}

describe('a torn last group in the FEC sidecar', () => {
  it('later commits are still protected (the torn bytes are cut before the next append)', async () => {
    const file = path.join(tmpDir(), 'app.db');
    let store = await open(file, { pageSize: PS, fec: { repairSymbols: 2 }, autoCheckpoint: false, keepWal: true });
    await commitPages(store, 4, 0);
    await store.close();
    const sidecar = `${file}-wal-fec`;
    const whole = fs.statSync(sidecar).size;
    const groups = fs.readFileSync(sidecar);
    const one = whole / 4;
    fs.appendFileSync(sidecar, groups.subarray(0, one - 500)); // a group cut short: header and most of its body

    store = await open(file, { fec: { repairSymbols: 2 }, autoCheckpoint: false, keepWal: true });
    const last = await commitPages(store, 4, 10);
    await store.close();
    expect(store.metrics().fec).toMatchObject({ groups: 4, writeErrors: 0, staleGroups: 0 });
    expect(fs.statSync(sidecar).size).toBe(whole * 2); // 8 whole groups, the torn one gone

    const r = await damageAndRepair(file, last);
    expect(r.fallback).toBeNull(); // was unprotected-tail at frame 7
    expect(r).toMatchObject({ walFrames: 8, repairedFrames: 1 });
  });

  it.skipIf(MOUNT_SKIP !== null)(`a real full disk cuts a sidecar append short; once there is room again, the next commits are protected${MOUNT_SKIP === null ? '' : ` (${MOUNT_SKIP})`}`, async () => {
    const dir = smallTmpfs('4m');
    const file = path.join(dir, 'app.db');
    const store = await open(file, { pageSize: PS, fec: { repairSymbols: 2 }, autoCheckpoint: false, keepWal: true });
    try {
      await commitPages(store, 3, 0);
      const filler = fillUp(dir, 6 * 1024); // room for part of a group (8 KiB of repair data each)
      await commitPages(store, 6, 20); // the frames go into the WAL's preallocated space; the groups do not fit
      const fec = () => store.metrics().fec as { writeErrors: number; queuedBytes: number };
      await until(() => fec().writeErrors > 0 && fec().queuedBytes === 0, WAIT_MS, fec);
      fs.rmSync(filler);
      const last = await commitPages(store, 3, 50);
      await store.close();
      const r = await damageAndRepair(file, last);
      expect(r.fallback).toBeNull(); // was unprotected-tail: 'the sidecar has no group of this WAL generation yet'
      expect(r).toMatchObject({ walFrames: last, repairedFrames: 1 });
    } finally {
      await store.close().catch(() => undefined);
    }
  });
});
