// restore() from an async iterable whose producer refills one buffer for every chunk (the
// common loop of fh.read into one Buffer). The records of a chunk are views of it
// (framing.ts RecordParser), and restore held them past the next chunk: a transaction's frames
// until its COMMIT_META, base pages queued for the PageWriter (written later, no copy). Before:
// the restore reported every commit and built a database with other bytes (33 of 50 committed
// pages wrong). Now the caller's records are copied as they arrive: the database is the one
// exported, byte for byte. Also with a fresh buffer per chunk, for comparison.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open, restore, WalnutFile } from '../../lib/index';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

async function* chunksOf(file: string, reuse: boolean): AsyncGenerator<Uint8Array> {
  const fh = await fs.promises.open(file);
  let buf = Buffer.alloc(65536);
  try {
    for (;;) {
      if (!reuse) buf = Buffer.alloc(65536);
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) return;
      yield buf.subarray(0, bytesRead);
    }
  } finally {
    await fh.close();
  }
}

describe('restore from a producer that reuses its buffer', () => {
  it('builds exactly the exported database', async () => {
    const db = path.join(dir, 'a.db');
    const store = await open(db, { autoCheckpoint: false });
    // a base image of 300 pages, then 50 commits of 5 pages each, left in the WAL: the stream
    // holds their frames, each transaction's held until its COMMIT_META
    await store.commit(Array.from({ length: 300 }, (_, i) => ({ pgno: i + 2, data: Buffer.alloc(4096, i % 251) })));
    await store.checkpoint('truncate');
    for (let c = 0; c < 50; c++) {
      await store.commit(Array.from({ length: 5 }, (_, k) => ({ pgno: 400 + c * 5 + k, data: Buffer.alloc(4096, (c * 7 + k + 1) % 256) })));
    }
    const exported = path.join(dir, 'a.exp');
    const out = await WalnutFile.open(exported, { create: true, truncate: true });
    await store.exportTo(out).done;
    await out.close();
    await store.close();
    const expected = fs.readFileSync(db);
    for (const reuse of [false, true]) {
      const target = path.join(dir, `b-${reuse}.db`);
      const r = await restore(chunksOf(exported, reuse), target);
      expect(r.stoppedBy).toBeNull();
      const got = fs.readFileSync(target);
      const wrong: number[] = [];
      for (let p = 0; p < Math.max(got.length, expected.length) / 4096; p++) {
        if (Buffer.compare(got.subarray(p * 4096, p * 4096 + 4096), expected.subarray(p * 4096, p * 4096 + 4096)) !== 0) wrong.push(p + 1);
      }
      expect({ reuse, wrong }).toEqual({ reuse, wrong: [] });
    }
  });
});
