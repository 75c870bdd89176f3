// The commit path's per-batch JavaScript, checked by what it makes rather than by time (issue
// #19, bench/README.md session 27): a batch of a lane leader's commits makes no Node
// AsyncResource (queueMicrotask's cost: an async id, the init hooks, a bound function per call),
// and WAL restarts, whose salts now come from a pool of random words, still get fresh ones; a
// batch whose commits are all accepted uses its own array as the accepted list, and one with a
// conflict in the middle still writes everything around it.
import { createHook } from 'node:async_hooks';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const PAGE = 4096;

describe('commit path: what a batch makes', () => {
  it("64 concurrent commits through the store's commit lane make no queueMicrotask resource (the lane's flush is a promise reaction)", async () => {
    const store = await open(path.join(dir, 'lane.db'));
    try {
      expect(store.metrics().lane).toBeDefined(); // the lane path (shareLane, shared locking): its leader flushes per batch
      const data = new Uint8Array(PAGE).fill(7);
      await Promise.all(Array.from({ length: 64 }, (_, w) => store.commit([{ pgno: 2 + w, data }]))); // warm
      let microtasks = 0;
      const hook = createHook({
        init(_id, type) {
          if (type === 'Microtask') microtasks++;
        },
      }).enable();
      let batches: number;
      try {
        const before = store.metrics().batches;
        for (let round = 0; round < 5; round++) {
          await Promise.all(Array.from({ length: 64 }, (_, w) => store.commit([{ pgno: 2 + w, data }])));
        }
        batches = store.metrics().batches - before;
      } finally {
        hook.disable();
      }
      expect(batches).toBeGreaterThanOrEqual(5);
      expect(microtasks).toBe(0); // before: one per batch (lane.ts #queueFlush)
    } finally {
      await store.close();
    }
  });

  it('every WAL restart writes new salts (salt-1 one more, salt-2 random): the pool hands out no word twice', async () => {
    const file = path.join(dir, 'salts.db');
    const store = await open(file, { autoCheckpoint: false });
    const salts: [number, number][] = [];
    try {
      const data = new Uint8Array(PAGE).fill(9);
      for (let i = 0; i < 40; i++) {
        await store.commit([{ pgno: 2, data }]);
        await store.checkpoint('restart');
        await store.commit([{ pgno: 3, data }]); // the restart's new header is written with this commit
        const header = Buffer.alloc(32);
        const fd = fs.openSync(`${file}-wal`, 'r');
        try {
          fs.readSync(fd, header, 0, 32, 0);
        } finally {
          fs.closeSync(fd);
        }
        salts.push([header.readUInt32BE(16), header.readUInt32BE(20)]);
      }
    } finally {
      await store.close();
    }
    for (let i = 1; i < salts.length; i++) expect(salts[i]![0]).toBe((salts[i - 1]![0] + 1) >>> 0);
    expect(new Set(salts.map((s) => s[1])).size).toBe(salts.length);
  });
  it('a conflict in the middle of one batch: the commits before and after it are written, each with its own frame, none skipped', async () => {
    const store = await open(path.join(dir, 'mid-batch.db'));
    try {
      const page = (v: number) => new Uint8Array(PAGE).fill(v);
      await store.commit([{ pgno: 2, data: page(1) }]);
      const a = store.begin();
      const b = store.begin();
      a.write(2, page(2));
      b.write(2, page(3)); // loses to a: same page, same snapshot
      await Promise.all([a.read(2), b.read(2)]); // both snapshots taken
      await new Promise((resolve) => setTimeout(resolve, 5)); // the committer idle: no turn armed by the last batch
      const framesBefore = store.metrics().walFrames;
      const batchesBefore = store.metrics().batches;
      // one turn: all five join one batch, the transactions between the plain commits (a
      // transaction submits once its snapshot, a settled promise here, is awaited: a few microtasks)
      const first = store.commit([{ pgno: 10, data: page(10) }]);
      const ca = a.commit();
      const cb = b.commit();
      for (let k = 0; k < 10; k++) await null;
      const results = await Promise.allSettled([first, ca, cb, store.commit([{ pgno: 11, data: page(11) }]), store.commit([{ pgno: 12, data: page(12) }])]);
      // one of a and b wins (whichever the committer took first), the other is the loser in the middle
      const statuses = results.map((r) => r.status);
      expect([statuses[0], statuses[3], statuses[4]]).toEqual(['fulfilled', 'fulfilled', 'fulfilled']);
      expect(statuses.filter((x) => x === 'rejected').length).toBe(1);
      const loser = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
      expect((loser.reason as { code?: string }).code).toBe('WALNUT_CONFLICT');
      const winnerValue = statuses[1] === 'fulfilled' ? 2 : 3;
      const written = results.filter((r) => r.status === 'fulfilled').map((r) => (r as PromiseFulfilledResult<{ firstFrame: number; lastFrame: number } | null>).value!).sort((x, y) => x.firstFrame - y.firstFrame);
      for (let i = 0; i < written.length; i++) {
        expect(written[i]!.lastFrame).toBe(written[i]!.firstFrame); // one page each
        if (i > 0) expect(written[i]!.firstFrame).toBe(written[i - 1]!.lastFrame + 1);
      }
      expect(store.metrics().walFrames).toBe(framesBefore + 4);
      expect(store.metrics().batches).toBe(batchesBefore + 1); // one batch: the loser was in its middle
      const snap = await store.snapshot();
      try {
        expect((await snap.read(2))[0]).toBe(winnerValue);
        for (const pgno of [10, 11, 12]) expect((await snap.read(pgno))[0]).toBe(pgno);
      } finally {
        snap.release();
      }
    } finally {
      await store.close();
    }
  });
});
