// The commit path's per-batch JavaScript, checked by what it makes rather than by time (issue
// #19, bench/README.md session 27): a batch of a lane leader's commits makes no Node
// AsyncResource (queueMicrotask's cost: an async id, the init hooks, a bound function per call),
// and WAL restarts, whose salts now come from a pool of random words, still get fresh ones.
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
});
