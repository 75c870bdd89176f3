// Hostile: the -wal-fec replaced or removed under a store that keeps it. `walnut recover --repair`
// (recoverWithRepair) run beside a live store, on damage past what the sidecar repairs, prunes the
// groups past where recovery stops by writing a new file and renaming it over the sidecar; a
// user may also remove the file. The store's sidecar writer kept appending to the file it had
// open, gone from the directory: every later group was lost (the metrics counted them written),
// and a damaged frame among those commits was dropped with all after it. The writer now checks,
// under its append lock, that the path still names its file, and reopens it if not (the groups
// the new file lacks are then made from the WAL).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open, recoverWithRepair } from '../../lib/index';
import { tmpDir } from '../helpers/tmp';
import { until, WAIT_MS } from '../helpers/until';

const PS = 4096;
const FRAME = 24 + PS;
type Store = Awaited<ReturnType<typeof open>>;

function damage(file: string, frames: number[]): void {
  const fd = fs.openSync(`${file}-wal`, 'r+');
  for (const f of frames) fs.writeSync(fd, Buffer.alloc(200, 0xee), 0, 200, 32 + (f - 1) * FRAME + 99);
  fs.closeSync(fd);
}

async function commits(store: Store, n: number, from: number): Promise<number> {
  let last = 0;
  for (let c = 0; c < n; c++) last = (await store.commit(Array.from({ length: 4 }, (_, i) => ({ pgno: 2 + i, data: Buffer.alloc(PS, from + 4 * c + i) })), { dbSize: 6 })).lastFrame;
  return last;
}

/** After the store closed: damages frame `f`, recovers with repair. */
async function repairedAfter(file: string, f: number) {
  damage(file, [f]);
  fs.rmSync(`${file}-shm`, { force: true });
  return recoverWithRepair(file);
}

describe('the sidecar replaced or removed under a live store', () => {
  it('a recover --repair beside it prunes by rename: the store\'s later groups land in the new file', async () => {
    const file = path.join(tmpDir(), 'app.db');
    const store = await open(file, { pageSize: PS, fec: { repairSymbols: 1 }, autoCheckpoint: false, keepWal: true });
    try {
      await commits(store, 5, 0); // frames 1..20, a group of 4 each
      const fec = () => store.metrics().fec as { groups: number };
      await until(() => fec().groups === 5, WAIT_MS, fec);
      damage(file, [18, 19]); // two damaged frames in a group that repairs one
      const r = await recoverWithRepair(file);
      expect(r).toMatchObject({ walFrames: 16, fallback: { reason: 'too-many-damaged' } });
      const last = await commits(store, 3, 100); // frames 17..28
      await store.close();
      expect(last).toBe(28);
      const again = await repairedAfter(file, 26);
      expect(again.fallback).toBeNull(); // missing-group at 26 before: its group went to the replaced file
      expect(again).toMatchObject({ walFrames: 28, repairedFrames: 1 });
    } finally {
      await store.close().catch(() => undefined);
    }
  });

  it('a removed sidecar is made anew, with the groups of the frames committed before', async () => {
    const file = path.join(tmpDir(), 'app.db');
    const store = await open(file, { pageSize: PS, fec: { repairSymbols: 1 }, autoCheckpoint: false, keepWal: true });
    try {
      await commits(store, 3, 0);
      const fec = () => store.metrics().fec as { groups: number };
      await until(() => fec().groups === 3, WAIT_MS, fec);
      fs.rmSync(`${file}-wal-fec`);
      const last = await commits(store, 3, 100);
      await store.close();
      expect(fs.existsSync(`${file}-wal-fec`)).toBe(true);
      const r = await repairedAfter(file, 6); // a frame committed before the removal
      expect(r.fallback).toBeNull(); // no-sidecar before
      expect(r).toMatchObject({ walFrames: last, repairedFrames: 1 });
    } finally {
      await store.close().catch(() => undefined);
    }
  });
});
