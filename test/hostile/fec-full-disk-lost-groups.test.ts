// Hostile: a real full disk (a small tmpfs) under a store with the FEC sidecar. The WAL's frames
// go into its preallocated space, so commits go on while the sidecar, which grows with every
// group, cannot: each append fails (counted, a 'fec' event; the commits stand). Those groups were
// lost for good: once there was room again, later batches got groups, but the frames committed
// while the disk was full stayed unprotected for the life of the WAL, and a damaged one among
// them made recovery drop it and every commit after it. Now the first append that lands after a
// failed one has the lost groups made from the WAL (its checksum chain checked first).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open, recoverWithRepair } from '../../lib/index';
import { fillUp, MOUNT_SKIP, smallTmpfs } from '../helpers/small-fs';
import { until, WAIT_MS } from '../helpers/until';

const PS = 4096;
const FRAME = 24 + PS;

describe.skipIf(MOUNT_SKIP !== null)(`the sidecar on a full disk${MOUNT_SKIP === null ? '' : ` (${MOUNT_SKIP})`}`, () => {
  it('the groups lost while the disk was full are made once the sidecar takes writes again', async () => {
    const dir = smallTmpfs('4m');
    const file = path.join(dir, 'app.db');
    const store = await open(file, { pageSize: PS, fec: { repairSymbols: 2 }, autoCheckpoint: false, keepWal: true });
    const fec = () => store.metrics().fec as { writeErrors: number; queuedBytes: number; groups: number };
    const commit = async (fill: number) => (await store.commit([{ pgno: 2, data: Buffer.alloc(PS, fill) }, { pgno: 3, data: Buffer.alloc(PS, fill + 1) }], { dbSize: 3 })).lastFrame;
    try {
      for (let i = 0; i < 3; i++) await commit(i);
      await until(() => fec().groups === 3, WAIT_MS, fec);
      const filler = fillUp(dir);
      const fullFrom = (await commit(10)) - 1;
      for (let i = 11; i < 16; i++) await commit(i); // frames 7..18: into the WAL's preallocated space
      await until(() => fec().writeErrors > 0 && fec().queuedBytes === 0, WAIT_MS, fec);
      fs.rmSync(filler);
      const last = await commit(20);
      await store.close();
      expect(fullFrom).toBe(7);

      const fd = fs.openSync(`${file}-wal`, 'r+');
      fs.writeSync(fd, Buffer.alloc(512, 0x5a), 0, 512, 32 + (9 - 1) * FRAME + 1000); // frame 9: committed while the disk was full
      fs.closeSync(fd);
      fs.rmSync(`${file}-shm`, { force: true });
      const r = await recoverWithRepair(file);
      expect(r.fallback).toBeNull(); // missing-group at frame 9 before: frames 9..20 lost
      expect(r).toMatchObject({ walFrames: last, repairedFrames: 1 });
    } finally {
      await store.close().catch(() => undefined);
    }
  });
});
