// Hostile: a process killed right after a commit was acknowledged, before the sidecar writer
// (asynchronous, off the commit path) appended that batch's group. The commit is durable, but no
// group protects its frames; the next process opened the database and appended its own groups
// after, so the frames stayed unprotected for the life of the WAL, and a damaged frame there
// made recovery stop at it ('missing-group'): that commit was lost, and so was every commit after
// it, the next process's protected ones too. Now opening with fec makes the groups no group
// covers for the committed frames of the WAL's generation (after checking their checksum
// chain), so the next recovery repairs them.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open, recoverWithRepair, WalnutFile } from '../../lib/index';
import { scanSidecar } from '../../lib/fec/sidecar';
import { tmpDir } from '../helpers/tmp';

const PS = 4096;
const FRAME = 24 + PS;
const dist = path.resolve(__dirname, '..', '..', 'dist', 'index.js');

/** The last frame any whole group of the sidecar covers. */
function coveredThrough(file: string): number {
  const f = WalnutFile.openSync(`${file}-wal-fec`, { readOnly: true });
  try {
    return scanSidecar(f).groups.reduce((m, g) => Math.max(m, g.firstFrame + g.k - 1), 0);
  } finally {
    f.closeSync();
  }
}

describe('a commit acknowledged just before its process was killed', () => {
  it('gets its sidecar group when the database is next opened with fec: a damaged frame of it is repaired', async () => {
    const file = path.join(tmpDir(), 'app.db');
    // four commits of 5 pages; SIGKILL at the fourth's acknowledgement
    const child = spawnSync(process.execPath, ['-e', `
      const { open } = require(${JSON.stringify(dist)});
      (async () => {
        const s = await open(process.argv[1], { pageSize: ${PS}, fec: { repairSymbols: 2 }, autoCheckpoint: false, keepWal: true });
        for (let c = 0; c < 4; c++) {
          const r = await s.commit(Array.from({ length: 5 }, (_, i) => ({ pgno: 2 + i, data: Buffer.alloc(${PS}, 16 * c + i + 1) })), { dbSize: 8 });
          process.stdout.write(r.lastFrame + '\\n');
        }
        process.kill(process.pid, 'SIGKILL');
      })();`, file], { encoding: 'utf8' });
    expect(child.signal).toBe('SIGKILL');
    const acked = child.stdout.trim().split('\n').map(Number);
    expect(acked).toEqual([5, 10, 15, 20]);
    expect(coveredThrough(file)).toBeLessThan(20); // the last group never written

    const store = await open(file, { fec: { repairSymbols: 2 }, autoCheckpoint: false, keepWal: true });
    for (let c = 4; c < 7; c++) await store.commit(Array.from({ length: 5 }, (_, i) => ({ pgno: 2 + i, data: Buffer.alloc(PS, 16 * c + i + 1) })), { dbSize: 8 });
    await store.close();
    expect(coveredThrough(file)).toBe(35);

    const fd = fs.openSync(`${file}-wal`, 'r+');
    fs.writeSync(fd, Buffer.alloc(FRAME), 0, FRAME, 32 + (18 - 1) * FRAME); // frame 18 (the fourth commit's) zeroed
    fs.closeSync(fd);
    fs.rmSync(`${file}-shm`, { force: true });
    const r = await recoverWithRepair(file);
    expect(r.fallback).toBeNull(); // missing-group at frame 18 before: 20 frames of 35 lost
    expect(r).toMatchObject({ walFrames: 35, repairedFrames: 1 });

    const check = await open(file, { autoCheckpoint: false, keepWal: true });
    const snap = await check.snapshot();
    try {
      for (let i = 0; i < 5; i++) expect((await snap.read(2 + i))[100]).toBe(16 * 6 + i + 1);
    } finally {
      snap.release();
      await check.close();
    }
  });
});
