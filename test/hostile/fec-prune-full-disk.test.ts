// Hostile: `walnut recover --repair` on a full disk (a small tmpfs). When recovery stops at
// damage it cannot repair, the sidecar is rewritten without the groups past the kept frames
// (pruneStaleGroups: a temporary `-wal-fec.tmp`, then a rename). On a full disk that write
// fails, which is fine (the sidecar stays as it was), but the half-written `-wal-fec.tmp` was
// left behind: a file walnut made and nobody removes, holding the last free blocks of the
// disk it just failed on. It is now removed when the rewrite fails.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open, recoverWithRepair, WalnutError } from '../../lib/index';
import { fillUp, MOUNT_SKIP, smallTmpfs } from '../helpers/small-fs';

const PS = 4096;
const FRAME = 24 + PS;

describe.skipIf(MOUNT_SKIP !== null)(`recover --repair pruning the sidecar on a full disk${MOUNT_SKIP === null ? '' : ` (${MOUNT_SKIP})`}`, () => {
  it('leaves no -wal-fec.tmp behind when the rewrite fails', async () => {
    const dir = smallTmpfs('2m');
    const file = path.join(dir, 'app.db');
    const store = await open(file, { pageSize: PS, fec: { repairSymbols: 2 }, autoCheckpoint: false, keepWal: true });
    for (let c = 0; c < 20; c++) await store.commit(Array.from({ length: 4 }, (_, i) => ({ pgno: 2 + i, data: Buffer.alloc(PS, 8 * c + i + 1) })), { dbSize: 6 });
    await store.close();

    // three damaged frames in one group of four (R = 2): too-many-damaged, recovery stops at frame 5
    // and the groups after it are pruned from the sidecar
    const fd = fs.openSync(`${file}-wal`, 'r+');
    for (const f of [5, 6, 7]) fs.writeSync(fd, Buffer.alloc(300, 0xee), 0, 300, 32 + (f - 1) * FRAME + 2000);
    fs.closeSync(fd);
    fs.rmSync(`${file}-shm`, { force: true });
    fillUp(dir);

    let failure: unknown = null;
    try {
      const r = await recoverWithRepair(file);
      expect(r.fallback).toMatchObject({ frame: 5, reason: 'too-many-damaged' });
    } catch (e) {
      failure = e;
    }
    if (failure !== null) {
      expect(failure).toBeInstanceOf(WalnutError);
      expect((failure as WalnutError).code).toBe('WALNUT_FULL');
    }
    expect(fs.readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    expect(fs.statSync(`${file}-wal-fec`).size).toBeGreaterThan(0); // the sidecar as it was
  });
});
