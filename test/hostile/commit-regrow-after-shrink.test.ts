// A commit that shrinks the database (dbSize below the previous size) and a later one that grows
// it back past pages it does not write: those pages must read as zeros ("pages past it read as
// zeros"), whatever the checkpoints did in between. They read as their pre-shrink bytes instead
// whenever the shrink was still in the WAL (the WAL's older frame of the page, or the database
// file's page that no complete checkpoint had cut yet), and as zeros only when a complete
// checkpoint had cut the file between the two commits: the same commits gave different
// databases depending on when the (background) auto-checkpoint ran, and the checkpoint then
// copied the stale page into the database file, where sqlite3 reads it too. The regrowing
// commit now writes a zero page for every page it brings back that could hold old bytes (in the
// WAL, in the database file, or written earlier in its batch); a growth over pages that never
// held anything writes nothing more (the file's holes read as zeros).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open, type Store } from '../../lib/commit/store';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const P = 1024;
const page = (v: number): Buffer => Buffer.alloc(P, v);
let n = 0;

/** Pages 2..20 of value pgno, then page 2 with dbSize 5, then page 15 with dbSize 15. */
async function shrinkThenRegrow(store: Store, between: 'none' | 'checkpoint-before-shrink' | 'checkpoint-between'): Promise<void> {
  const all = [];
  for (let p = 2; p <= 20; p++) all.push({ pgno: p, data: page(p) });
  await store.commit(all, { dbSize: 20 });
  if (between === 'checkpoint-before-shrink') expect((await store.checkpoint('truncate')).busy).toBe(false);
  await store.commit([{ pgno: 2, data: page(200) }], { dbSize: 5 });
  if (between === 'checkpoint-between') expect((await store.checkpoint('truncate')).busy).toBe(false);
  await store.commit([{ pgno: 15, data: page(150) }], { dbSize: 15 });
}

async function pagesOf(store: Store): Promise<number[]> {
  const s = await store.snapshot();
  try {
    const firstBytes: number[] = [];
    for (let p = 2; p <= s.dbSize; p++) firstBytes.push((await s.read(p))[0]!);
    return firstBytes;
  } finally {
    s.release();
  }
}

// pages 2..15 after the three commits: 200, 3, 4, 5, then zeros through 14, then 150
const EXPECTED = [200, 3, 4, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 150];

describe('a commit growing the database back over pages a shrink dropped', () => {
  for (const between of ['none', 'checkpoint-before-shrink', 'checkpoint-between'] as const) {
    it(`${between}: the pages it does not write read as zeros, before and after a checkpoint, in the database file too`, async () => {
      const db = path.join(dir, `r${n++}.db`);
      const store = await open(db, { pageSize: P, autoCheckpoint: false });
      try {
        await shrinkThenRegrow(store, between);
        expect(await pagesOf(store)).toEqual(EXPECTED);
        expect(await store.checkpoint('truncate')).toMatchObject({ busy: false, walFrames: 0 });
        expect(await pagesOf(store)).toEqual(EXPECTED);
      } finally {
        await store.close();
      }
      const file = fs.readFileSync(db);
      expect(file.length).toBe(15 * P);
      for (let p = 6; p <= 14; p++) expect(file.subarray((p - 1) * P, p * P).equals(page(0)), `page ${p} in the database file`).toBe(true);
      const again = await open(db, { pageSize: P, autoCheckpoint: false });
      try {
        expect(await pagesOf(again)).toEqual(EXPECTED);
      } finally {
        await again.close();
      }
    });
  }

  it('shrink and regrowth in one batch (commits not awaited one by one): zeros too', async () => {
    const db = path.join(dir, `r${n++}.db`);
    const store = await open(db, { pageSize: P, autoCheckpoint: false });
    try {
      const all = [];
      for (let p = 2; p <= 20; p++) all.push({ pgno: p, data: page(p) });
      await Promise.all([
        store.commit(all, { dbSize: 20 }),
        store.commit([{ pgno: 2, data: page(200) }], { dbSize: 5 }),
        store.commit([{ pgno: 15, data: page(150) }], { dbSize: 15 }),
      ]);
      expect(await pagesOf(store)).toEqual(EXPECTED);
      await store.checkpoint('truncate');
      expect(await pagesOf(store)).toEqual(EXPECTED);
    } finally {
      await store.close();
    }
  });

  it('sequenced (store.sequence): a view of the tickets in flight reads zeros there too, as the published commits do', async () => {
    const store = await open(path.join(dir, `r${n++}.db`), { pageSize: P, autoCheckpoint: false });
    try {
      const all = [];
      for (let p = 2; p <= 20; p++) all.push({ pgno: p, data: page(p) });
      await store.commit(all, { dbSize: 20 });
      const shrink = store.sequence([{ pgno: 2, data: page(200) }], { dbSize: 5 });
      const regrow = store.sequence([{ pgno: 15, data: page(150) }], { dbSize: 15 });
      const view = store.trySnapshotSync()!;
      try {
        expect(view.pendingTicket).toBe(regrow.ticket);
        const seen = [];
        for (let p = 2; p <= view.dbSize; p++) seen.push(view.readSync(p)[0]);
        expect(seen).toEqual(EXPECTED);
      } finally {
        view.release();
      }
      await shrink.durable;
      await regrow.durable;
      expect(await pagesOf(store)).toEqual(EXPECTED);
    } finally {
      await store.close();
    }
  });

  it('a growth over pages that never held anything writes no more frames than its own', async () => {
    const store = await open(path.join(dir, `r${n++}.db`), { pageSize: P, autoCheckpoint: false });
    try {
      const r = await store.commit([{ pgno: 40, data: page(40) }]);
      expect(r.lastFrame - r.firstFrame).toBe(0);
      const r2 = await store.commit([{ pgno: 100, data: page(100) }], { dbSize: 120 });
      expect(r2.lastFrame - r2.firstFrame).toBe(0);
      expect(await pagesOf(store)).toEqual(Array.from({ length: 119 }, (_, i) => (i + 2 === 40 ? 40 : i + 2 === 100 ? 100 : 0)));
    } finally {
      await store.close();
    }
  });
});
