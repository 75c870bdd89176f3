// `walnut recover --repair` on a WAL whose damage is past what the sidecar repairs (more damaged
// frames in a group than its repair symbols) reported the wrong reason: recovery ran twice (once
// as the first connection opened the files, once for the rebuild), the first pass fell back
// ('too-many-damaged') and pruned the groups past the frames it kept, so the second pass found
// no group over the damage and its 'unprotected-tail' ("a write cut short by a crash, or a batch
// whose sidecar group was not written yet") replaced the real reason in the report, which
// `walnut verify` had just given as too-many-damaged. The first fallback is the one reported.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open, verify } from '../../lib/index';
import { buildDatabase } from '../helpers/sqlite-db';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const PS = 1024;
const FRAME = 24 + PS;
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');

function flip(file: string, frame: number): void {
  const fd = fs.openSync(`${file}-wal`, 'r+');
  const at = 32 + (frame - 1) * FRAME + 24 + 300;
  const b = Buffer.alloc(1);
  fs.readSync(fd, b, 0, 1, at);
  b[0]! ^= 0x08;
  fs.writeSync(fd, b, 0, 1, at);
  fs.closeSync(fd);
}

describe('recover --repair past the repair symbols', () => {
  it('reports too-many-damaged (as verify does), not an unprotected tail', async () => {
    const file = buildDatabase(dir, 'app', { pageSize: PS, rows: 300 });
    const bytes = fs.readFileSync(file);
    const pages = bytes.length / PS;
    expect(pages).toBeGreaterThanOrEqual(20);
    const store = await open(file, { fec: { repairSymbols: 1 }, autoCheckpoint: false, keepWal: true });
    for (let c = 0; c < 3; c++) {
      await store.commit(Array.from({ length: 6 }, (_, i) => ({ pgno: 1 + c * 6 + i, data: bytes.subarray((c * 6 + i) * PS, (c * 6 + i + 1) * PS) })), { dbSize: pages });
    }
    await store.close();
    fs.rmSync(`${file}-shm`);
    flip(file, 8); // two damaged frames in the second group (frames 7..12), which repairs one
    flip(file, 10);

    const v = await verify(file, 1);
    expect(v.issues).toContainEqual(expect.objectContaining({ kind: 'wal-damage', frame: 8 }));
    expect(v.issues.find((i) => i.kind === 'wal-damage')!.message).toMatch(/too-many-damaged/);

    const rec = spawnSync(process.execPath, [bin, 'recover', file, '--repair', '--json'], { encoding: 'utf8' });
    expect(rec.stderr).toBe('');
    expect(rec.status).toBe(0);
    const out = JSON.parse(rec.stdout);
    expect(out).toMatchObject({ walFrames: 6, repairedFrames: 0 });
    expect(out.fallback).toMatchObject({ frame: 8, reason: 'too-many-damaged' });
  });
});
