// Hostile: a real full disk (a small tmpfs filled by a filler file), not an injected fault.
// A WAL append that grows the file writes 1 MiB of zeros after its frames in the same pwritev
// (preallocation, WalFile.GROWTH_CHUNK). With less than that free, the whole write failed with
// WALNUT_FULL: no commit needing the WAL to grow got through while a sqlite3 process on the same
// disk still committed dozens, and the zeros written before ENOSPC stayed, taking the last free
// bytes (a checkpoint could no longer grow the database either). Now such an append writes its
// frames alone and leaves the space after them unallocated: commits go on until the frames
// themselves no longer fit, and the disk keeps what they did not use. A multi-page commit whose
// frames fit only partly either lands whole (and survives a reopen) or fails with WALNUT_FULL and
// never appears: the retry without the zeros once rewrote the first write's advanced iovecs, so
// an acknowledged commit's frames were garbage and recovery dropped it and everything after.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import { fillUp, MOUNT_SKIP, smallTmpfs } from '../helpers/small-fs';
import { Database } from '../helpers/sqlite';

const PS = 4096;
const FRAME = 24 + PS;

function freeBytes(dir: string): number {
  const s = fs.statfsSync(dir);
  return s.bavail * s.bsize;
}

describe.skipIf(MOUNT_SKIP !== null)(`a WAL that must grow on a nearly full disk${MOUNT_SKIP === null ? '' : ` (${MOUNT_SKIP})`}`, () => {
  it('commits whose frames fit go through, as sqlite3 commits there, and the zeros never take the last free bytes', async () => {
    const dir = smallTmpfs('4m');
    const file = path.join(dir, 'app.db');
    const lite = new Database(file);
    lite.pragma(`page_size = ${PS}`);
    lite.pragma('journal_mode = WAL');
    lite.exec('CREATE TABLE t(x)');
    lite.pragma('wal_checkpoint(TRUNCATE)');
    lite.close();

    const store = await open(file, { autoCheckpoint: false, keepWal: true });
    let acked = 0;
    try {
      const snap = await store.snapshot();
      const page2 = Buffer.from(await snap.read(2)); // the table's root: rewritten as it is
      snap.release();
      // commit until the next frame would pass the end of the preallocated WAL
      for (;;) {
        const r = await store.commit([{ pgno: 2, data: page2 }]);
        acked++;
        if (32 + (r.lastFrame + 1) * FRAME > fs.statSync(`${file}-wal`).size) break;
      }
      const leave = 400 * 1024;
      const filler = fillUp(dir, leave);

      // sqlite3 (python3) on the same disk: a database of its own commits rows of ~4 KiB
      const other = path.join(dir, 'other.db');
      const out = execFileSync('python3', ['-c', [
        'import sqlite3, sys',
        'c = sqlite3.connect(sys.argv[1], isolation_level=None)',
        "c.execute('PRAGMA journal_mode=WAL'); c.execute('CREATE TABLE t(x)')",
        'n = 0',
        'for i in range(10):',
        "  c.execute('INSERT INTO t VALUES (zeroblob(3000))'); n += 1",
        'print(n)',
      ].join('\n'), other], { encoding: 'utf8' });
      expect(out.trim()).toBe('10');
      fs.rmSync(other);
      fs.rmSync(`${other}-wal`, { force: true });
      fs.rmSync(`${other}-shm`, { force: true });

      const before = freeBytes(dir);
      for (let i = 0; i < 20; i++) {
        await store.commit([{ pgno: 2, data: page2 }]); // rejected with WALNUT_FULL before the fix
        acked++;
      }
      // the 20 frames took ~80 KiB; the rest of what was free is still free
      expect(freeBytes(dir)).toBeGreaterThan(before - 20 * FRAME - 128 * 1024);
      // and the checkpoint (a database that grows) has room
      fs.rmSync(filler);
    } finally {
      await store.close();
    }
    expect(execFileSync('sqlite3', [file, 'PRAGMA integrity_check'], { encoding: 'utf8' }).trim()).toBe('ok');
    expect(acked).toBeGreaterThan(20);
  });

  it('a multi-page commit that straddles the end of the WAL file at the last free bytes: acknowledged and intact after a reopen, or WALNUT_FULL and never there', async () => {
    const dir = smallTmpfs('4m');
    const file = path.join(dir, 'app.db');
    const lite = new Database(file);
    lite.pragma(`page_size = ${PS}`);
    lite.pragma('journal_mode = WAL');
    for (let t = 0; t < 4; t++) lite.exec(`CREATE TABLE t${t}(x)`); // root pages 2..5: empty leaves
    lite.pragma('wal_checkpoint(TRUNCATE)');
    lite.close();

    const roots = [2, 3, 4, 5];
    const store = await open(file, { autoCheckpoint: false, keepWal: true });
    const acked = new Map<number, number>(); // pgno -> the counter its last acknowledged image holds
    const failed: unknown[] = [];
    try {
      const snap = await store.snapshot();
      const images = await Promise.all(roots.map(async (p) => Buffer.from(await snap.read(p))));
      snap.release();
      // a counter in each leaf's free area (bytes the b-tree never reads): rewrites stay valid pages
      const version = (n: number, pgnos = roots) => pgnos.map((pgno) => {
        const data = Buffer.from(images[roots.indexOf(pgno)]!);
        data.writeUInt32BE(n, PS - 64);
        return { pgno, data };
      });
      let n = 1;
      // one-page commits until 2 to 3 frames are left before the file's end: a 4-page commit
      // then writes half its frames into allocated space and needs new space for the rest
      for (;;) {
        const r = await store.commit(version(n, [2]));
        acked.set(2, n++);
        const left = fs.statSync(`${file}-wal`).size - (32 + r.lastFrame * FRAME);
        if (left >= 2 * FRAME && left < 3 * FRAME) break;
      }
      const filler = fillUp(dir, 2 * 1024);
      for (let i = 0; i < 3; i++, n++) {
        try {
          await store.commit(version(n));
          for (const p of roots) acked.set(p, n);
        } catch (e) {
          failed.push(e);
          store.resumeCommits(e);
        }
      }
      fs.rmSync(filler);
      await store.commit(version(n));
      for (const p of roots) acked.set(p, n);
    } finally {
      await store.close();
    }
    for (const e of failed) expect(e).toMatchObject({ code: 'WALNUT_FULL' });
    expect(execFileSync('sqlite3', [file, 'PRAGMA integrity_check'], { encoding: 'utf8' }).trim()).toBe('ok');
    const again = await open(file, { keepWal: true });
    try {
      const snap = await again.snapshot();
      for (const p of roots) expect({ pgno: p, n: (await snap.read(p)).readUInt32BE(PS - 64) }).toEqual({ pgno: p, n: acked.get(p) ?? 0 });
      snap.release();
    } finally {
      await again.close();
    }
  });
});
