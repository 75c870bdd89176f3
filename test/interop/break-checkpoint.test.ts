// store.checkpoint() in full, restart or truncate mode while transactions commit: the checkpoint
// holds WRITE and waits for readers, and the readers in its way can be this store's own
// transactions whose commit() waits for WRITE. Waiting for them only ran out the busy timeout
// (the commits stalled, then failed WALNUT_BUSY); the checkpoint now counts them as busy readers
// at once (CheckpointOptions.readersWaitingForWrite) and the commits go on. The same holds for a
// conditional commit's base snapshot (store.commit(pages, { base }), what walnut/sql commits
// with): its caller keeps it until the commit settles, so it too cannot end before WRITE is let go.
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

describe('checkpoints beside committing transactions of the same store', () => {
  it.each([
    ['transactions', '2 ms apart', 2],
    ['transactions', 'one turn of the event loop apart', 0],
    ['conditional commits (base)', '2 ms apart', 2],
  ])('%s, checkpoints %s: no commit fails or waits out the busy timeout; every acknowledged commit is there', async (kind, _name, gapMs) => {
    const file = path.join(dir, `ckpt-vs-${kind.length}-${gapMs}.db`);
    const store = await open(file, { autoCheckpoint: false, busyTimeout: 1000 });
    const committers = 16;
    const rounds = 40;
    const failures: string[] = [];
    const last = new Array<number>(committers).fill(-1);
    let done = 0;
    const work = Array.from({ length: committers }, async (_, i) => {
      for (let r = 0; r < rounds; r++) {
        // a read: the transaction (or the base snapshot) holds a read mark until the commit settles
        const tx = kind === 'transactions' ? store.begin() : null;
        const base = tx === null ? await store.snapshot() : null;
        const page = Buffer.from(await (tx ?? base!).read(2 + i));
        page.writeUInt32BE(r, 0);
        try {
          if (tx !== null) {
            tx.write(2 + i, page);
            await tx.commit();
          } else {
            await store.commit([{ pgno: 2 + i, data: page }], { base: base! });
          }
          last[i] = r;
        } catch (e) {
          failures.push(`${(e as { code?: string }).code}: ${(e as Error).message}`);
        } finally {
          base?.release();
        }
      }
      done++;
    });
    const results: string[] = [];
    const checkpoints = (async () => {
      for (let k = 0; done < committers; k++) {
        const r = await store.checkpoint((['restart', 'truncate', 'full'] as const)[k % 3]);
        results.push(`${r.mode}${r.busy ? ':busy' : ''}`);
        if (gapMs > 0) await sleep(gapMs);
        else await new Promise((resolve) => setImmediate(resolve)); // one turn of the event loop apart (a loop of checkpoints that never yields to it starves every timer, vitest's too)

      }
    })();
    await Promise.all([...work, checkpoints]);
    await store.close();
    expect(failures).toEqual([]);
    expect(results.length).toBeGreaterThan(0);

    const again = await open(file);
    const snap = await again.snapshot();
    expect(last.map((_, i) => snap.readSync(2 + i).readUInt32BE(0))).toEqual(last);
    expect(last).toEqual(new Array(committers).fill(rounds - 1));
    snap.release();
    await again.close();
  });
});
