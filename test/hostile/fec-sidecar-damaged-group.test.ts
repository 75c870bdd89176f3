// Hostile: a damaged byte in the -wal-fec itself. The sidecar's scan stopped at the first group
// whose hash did not verify, so one flipped byte in an early group took away every group after
// it: a damaged WAL frame those later groups protect was not repaired (recovery dropped it and
// every commit after it) and verify called it unprotected. A group whose header holds (its length
// is known) is now passed over, and the scan goes on with the next one.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { inspect, open, recoverWithRepair, verify } from '../../lib/index';
import { tmpDir } from '../helpers/tmp';

const PS = 4096;
const FRAME = 24 + PS;

describe('a damaged group in the middle of the sidecar', () => {
  it('is passed over: the groups after it still repair their frames', async () => {
    const file = path.join(tmpDir(), 'app.db');
    const store = await open(file, { pageSize: PS, fec: { repairSymbols: 2 }, autoCheckpoint: false, keepWal: true });
    for (let c = 0; c < 5; c++) await store.commit(Array.from({ length: 4 }, (_, i) => ({ pgno: 2 + i, data: Buffer.alloc(PS, 8 * c + i + 1) })), { dbSize: 6 });
    await store.close();

    const side = fs.readFileSync(`${file}-wal-fec`);
    const group = side.length / 5;
    side[group + 48 + 24 * 4 + 1000] ^= 0x04; // the second group's repair data
    fs.writeFileSync(`${file}-wal-fec`, side);
    expect(inspect(file).fecSidecar).toMatchObject({ groups: 4, protectedFrames: 16 }); // 1 before

    const fd = fs.openSync(`${file}-wal`, 'r+');
    fs.writeSync(fd, Buffer.alloc(300, 0xee), 0, 300, 32 + (14 - 1) * FRAME + 2000); // frame 14: the fourth group's
    fs.closeSync(fd);
    fs.rmSync(`${file}-shm`, { force: true });
    const v = await verify(file, 1);
    expect(v.issues).toContainEqual(expect.objectContaining({ kind: 'wal-damage-repairable', frame: 14 }));
    const r = await recoverWithRepair(file);
    expect(r.fallback).toBeNull(); // missing-group at 14 before: frames 13..20 lost
    expect(r).toMatchObject({ walFrames: 20, repairedFrames: 1 });
  });
});
