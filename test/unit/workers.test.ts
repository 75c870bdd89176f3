// The addon is context-aware: several worker_threads load it at once, each with its own I/O
// thread, and every one of them can exit while the others keep working.
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';

import { crc32c, xxh3_64 } from '../../lib/checksum';
import { HELPERS } from '../helpers/children';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

function runWorker(id: number): Promise<{ id: number; crc: number; xxh: string; error?: string }> {
  const w = new Worker(path.join(HELPERS, 'worker-io.js'), { workerData: { id, file: path.join(dir, `w${id}.bin`) } });
  return new Promise((resolve, reject) => {
    w.once('message', (m) => {
      resolve(m);
      void w.terminate();
    });
    w.once('error', reject);
  });
}

describe('worker_threads', () => {
  it('loads and works in four workers at once, twice over', async () => {
    for (let round = 0; round < 2; round++) {
      const results = await Promise.all([1, 2, 3, 4].map(runWorker));
      for (const r of results) {
        expect(r.error).toBeUndefined();
        const expected = Buffer.alloc(16 << 16, r.id);
        expect(r.crc).toBe(crc32c(expected));
        expect(r.xxh).toBe(xxh3_64(expected).toString());
      }
    }
  });
});
