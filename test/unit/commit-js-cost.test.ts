// The commit path's per-batch JavaScript, checked by what it makes rather than by time (issue
// #19, bench/README.md session 27): a batch of a lane leader's commits makes no Node
// AsyncResource (queueMicrotask's cost: an async id, the init hooks, a bound function per call).
import { createHook } from 'node:async_hooks';
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
});
