// A follow export is poked after each of its store's commits, and a poke starts the next pass
// at once (pollMs is only the fallback for other processes' commits). A poke that arrives while
// a pass runs — after the pass last read the live header, before it ended — must not be lost:
// the commit it announces would wait for the next poll (here: never, pollMs 2^31 - 1) or the
// next commit. The sink's flush at the end of a pass is held open to put a commit there.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open } from '../../lib/index';
import { decodeRecord } from '../../lib/export/records';
import { tmpDir } from '../helpers/tmp';
import { until, WAIT_MS } from '../helpers/until';

const dir = tmpDir();
const page = (v: number): Buffer => Buffer.alloc(4096, v);

describe('follow export: a poke during a pass', () => {
  it('a commit made while a pass ends (its flush held) is exported by a pass right after, not at the next poll', async () => {
    const store = await open(path.join(dir, 'poke.db'));
    await store.commit([{ pgno: 2, data: page(1) }]);
    const commitSeqs: bigint[] = [];
    let flushes = 0;
    let hold: Promise<void> | null = null;
    let release = (): void => undefined;
    let held = false;
    const handle = store.exportTo(
      {
        appendRecord: async (p: Uint8Array) => {
          const r = decodeRecord(p);
          if (r.kind === 'commitMeta') commitSeqs.push(r.seq);
        },
        flush: async () => {
          flushes++;
          if (hold !== null) {
            held = true;
            await hold;
          }
        },
      },
      { follow: true, pollMs: 0x7fffffff },
    );
    await until(() => flushes >= 1, WAIT_MS); // the base image and the WAL as of then are out
    hold = new Promise<void>((resolve) => (release = resolve));
    await store.commit([{ pgno: 2, data: page(2) }]); // poked: a pass exports it, then its flush waits
    await until(() => held, WAIT_MS);
    const exported = commitSeqs.length;
    await store.commit([{ pgno: 3, data: page(3) }]); // poked while that pass is still running
    hold = null;
    release();
    await until(() => commitSeqs.length > exported, WAIT_MS);
    expect(commitSeqs).toEqual(commitSeqs.map((_, i) => commitSeqs[0]! + BigInt(i)));
    await handle.stop();
    await store.close();
  });
});
