// A commit frame whose database size is larger than any page the files could hold (a damaged or
// hand-made WAL whose chain still checks out). SQLite's checkpoint refuses it
// (walCheckpoint: file size + 64 KiB + the WAL's frames < nPage * pageSize is SQLITE_CORRUPT) and
// leaves every file as it was; walnut's grew the database file to that size (a sparse 8 TiB file
// for 2^31 pages, 16 TiB for 0xffffffff), then the last close() removed the -wal: a database SQLite
// would have kept out of its file was there for good. walnut's own sparse growth (its commit's
// top page far past the end) is a page the WAL holds, and still checkpoints. An export of such
// a WAL streamed that many zero pages as its base image (16 TiB for 0xffffffff: it never ended);
// it is refused the same way.
import * as fs from 'node:fs';
import { describe, expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import { createExportStream } from '../../lib/export/stream';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { Database, jsWalChecksum, oracleScan, sqliteWritesWal, typicalWork } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

/** The SQLite-written WAL with its last commit frame's database size set to `size`, the chain recomputed. */
function withLastCommitSize(name: string, size: number, pgno?: number): { db: string; pages: number } {
  const copy = sqliteWritesWal(dir, name, 4096, typicalWork(6));
  const wal = fs.readFileSync(copy.wal);
  const scan = oracleScan(wal)!;
  const last = scan.frames[scan.frames.length - 1]!;
  wal.writeUInt32BE(size >>> 0, last.offset + 4);
  if (pgno !== undefined) wal.writeUInt32BE(pgno >>> 0, last.offset); // the commit frame's own page that high too
  let sums: [number, number] = [wal.readUInt32BE(24), wal.readUInt32BE(28)];
  for (const f of scan.frames) {
    sums = jsWalChecksum(wal.subarray(f.offset, f.offset + 8), sums[0], sums[1], scan.bigEndian);
    sums = jsWalChecksum(wal.subarray(f.offset + 24, f.offset + 24 + scan.pageSize), sums[0], sums[1], scan.bigEndian);
    wal.writeUInt32BE(sums[0], f.offset + 16);
    wal.writeUInt32BE(sums[1], f.offset + 20);
  }
  fs.writeFileSync(copy.wal, wal);
  return { db: copy.db, pages: scan.dbSize };
}

describe('checkpoint: a commit frame with an implausible database size', () => {
  for (const [size, pgno] of [[0x80000001], [0xffffffff], [100_000], [0xffffffff, 0xffffffff]] as [number, number?][]) {
    it(`database size ${size}${pgno ? `, its commit frame page ${pgno}` : ''}: WALNUT_CORRUPT, the database file and the -wal stay as they were (SQLite refuses it too)`, async () => {
      const { db } = withLastCommitSize(`huge-${size}-${pgno}`, size, pgno);
      const before = fs.statSync(db).size;
      const wal = fs.readFileSync(`${db}-wal`);
      // SQLite's own checkpoint of a copy: SQLITE_CORRUPT, the database file unchanged
      for (const s of ['', '-wal']) fs.copyFileSync(db + s, `${db}.sqlite${s}`);
      const s = new Database(`${db}.sqlite`);
      expect(() => s.pragma('wal_checkpoint(TRUNCATE)')).toThrow(/malformed/);
      s.close();
      expect(fs.statSync(`${db}.sqlite`).size).toBe(before);

      const store = await open(db, { autoCheckpoint: false });
      await expectRejectsWalnut(store.checkpoint('truncate'), 'WALNUT_CORRUPT', { reason: 'DbSizeImplausible', path: db });
      await store.close(); // the last connection's checkpoint fails the same way: the -wal stays
      expect(fs.statSync(db).size).toBe(before);
      expect(fs.readFileSync(`${db}-wal`).subarray(0, wal.length).equals(wal)).toBe(true);
    });
  }

  it("walnut's own sparse growth (a page far past the end, the pages between never written) still checkpoints", async () => {
    const { db } = sqliteWritesWal(dir, 'plausible', 4096, typicalWork(6));
    const store = await open(db, { autoCheckpoint: false });
    const snap = await store.snapshot();
    const page1 = await snap.read(1);
    snap.release();
    const grown = snap.dbSize + 100_000; // past the file + 64 KiB + the WAL's frames: only its own frame holds it
    page1.writeUInt32BE(grown, 28);
    await store.commit([{ pgno: 1, data: page1 }, { pgno: grown, data: Buffer.alloc(4096) }]);
    const r = await store.checkpoint('truncate');
    expect(r.busy).toBe(false);
    await store.close();
    expect(fs.statSync(db).size).toBe(grown * 4096);
  });

  for (const pgno of [undefined, 0xffffffff]) it(`an export of it is refused before any page is streamed (it streamed 2^32 zero pages)${pgno ? ', its commit frame page 0xffffffff' : ''}`, async () => {
    const { db } = withLastCommitSize(`export-huge-${pgno}`, 0xffffffff, pgno);
    let bytes = 0;
    const done = (async () => {
      for await (const chunk of createExportStream(db)) {
        bytes += (chunk as Buffer).length;
        if (bytes > 1 << 20) throw new Error(`streamed ${bytes} bytes of a base image of 2^32 pages`);
      }
    })();
    await expectRejectsWalnut(done, 'WALNUT_CORRUPT', { reason: 'DbSizeImplausible' });
  });
});
