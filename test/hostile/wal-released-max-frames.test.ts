// Hostile: the walnut:wal 'released' event's maxFrames ("how large the WAL grew while it was
// held") was the largest WAL seen by a checkpoint that backed off, not by the commits: a WAL
// that grew past the last back-off checkpoint before its reader left was reported smaller
// than it was (maxFrames 200 beside frames 201 in one report). Every commit's size counts now.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir('walnut-hostile-wal-max-');
const EVERY = 100;
const page = Buffer.alloc(4096, 7);

describe("the walnut:wal 'released' event", () => {
  it('reports the largest WAL of the pin, including commits after the last back-off checkpoint', async () => {
    const store = await open(path.join(dir, 'a.db'), { autoCheckpoint: EVERY });
    for (let i = 0; i < 150; i++) await store.commit([{ pgno: 2 + (i % 50), data: page }]);
    const snap = await store.snapshot(); // holds the WAL: no checkpoint can restart it
    let largest = 0;
    const nextAt = (): number => store.metrics().wal.checkpointBackoff?.nextAtFrames ?? 0;
    const commit = async (i: number): Promise<void> => {
      await store.commit([{ pgno: 2 + (i % 50), data: page }]);
      largest = Math.max(largest, store.metrics().walFrames);
    };
    // until a back-off checkpoint has run (its next one is due EVERY frames later), then 20
    // commits more: no checkpoint sees those (the WAL stays below the next one's due point)
    let i = 0;
    const first = nextAt();
    while (nextAt() === first && i < 10 * EVERY) await commit(i++);
    for (let k = 0; k < 20; k++) await commit(i++);
    const events = () => store.recentEvents().filter((e) => e.name === 'wal').map((e) => e.data as { state: string; frames: number; maxFrames?: number });
    expect(events().some((e) => e.state === 'pinned')).toBe(true);
    snap.release();
    await store.commit([{ pgno: 2, data: page }]); // finds no reader: restarts the WAL
    const released = events().at(-1)!;
    expect(released.state).toBe('released');
    expect(released.maxFrames).toBe(largest);
    expect(released.maxFrames).toBeGreaterThanOrEqual(released.frames);
    await store.close();
  });
});
