// A checkpoint that is the first to meet a -shm header in need of recovery (its two copies
// differ: a sqlite3 writer killed between writing them) recovers it and checkpoints, as
// SQLite's checkpointer does (walIndexRecover skips the CKPT lock its caller holds). walnut's
// checkpoint held CKPT, then its recovery waited for CKPT + RECOVER, i.e. for itself: the busy
// timeout passed (a passive checkpoint holding WRITE meanwhile, so every commit of every
// connection waited too) and it failed WALNUT_BUSY, "CKPT ... held by another connection",
// with no other connection open. The same for full, restart and truncate checkpoints.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';

import { open } from '../../lib/commit/store';
import { SHM_HEADER_SIZE } from '../../lib/format/shm-header';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const page = (v: number) => {
  const b = Buffer.alloc(4096, v & 0xff);
  b.writeUInt32BE(v, 0);
  return b;
};

/** Changes the second header copy's iChange (bytes 48+8..48+11): the copies differ, as a writer that died between them leaves them. */
function tearHeader(shm: string): void {
  const fd = fs.openSync(shm, 'r+');
  try {
    const b = Buffer.alloc(4);
    fs.readSync(fd, b, 0, 4, SHM_HEADER_SIZE + 8);
    b.writeUInt32LE((b.readUInt32LE(0) + 7) >>> 0);
    fs.writeSync(fd, b, 0, 4, SHM_HEADER_SIZE + 8);
  } finally {
    fs.closeSync(fd);
  }
}

describe('a checkpoint that meets a torn -shm header', () => {
  for (const mode of ['passive', 'full', 'restart', 'truncate'] as const) {
    it(`${mode}: recovers the header and checkpoints, not busy on its own CKPT lock`, async () => {
      const db = path.join(dir, `torn-${mode}.db`);
      const store = await open(db, { autoCheckpoint: false, busyTimeout: 1500 });
      onTestFinished(() => store.close());
      for (let v = 1; v <= 3; v++) await store.commit([{ pgno: 2, data: page(v) }, { pgno: 3, data: page(100 + v) }]);
      await new Promise(setImmediate); // the run of batches lets WRITE go
      tearHeader(`${db}-shm`);
      const r = await store.checkpoint(mode);
      expect(r).toMatchObject({ mode, busy: false });
      // (no timing asserted: without the recovery under CKPT the checkpoint rejects WALNUT_BUSY)
      const s = await store.snapshot();
      expect(s.readSync(2).readUInt32BE(0)).toBe(3);
      expect(s.readSync(3).readUInt32BE(0)).toBe(103);
      s.release();
    });
  }
});
