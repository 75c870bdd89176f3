// Hostile: file offsets past 2^31 (and 2^32 for the 32-bit halves of i64 arguments) on the
// paths this session changed: walnut/sql's VFS called straight from the wasm callback imports
// (engine.ts: an offset comes as two i32 halves, the low one negative past 2^31), a store's
// WAL frames of such pages and the checkpoint writing them into the database file. The
// database is sparse: SQLite's header says 1,100,000 pages of 4 KiB (4.5 GB), few are written.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import { openDatabase } from '../../lib/sql';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const PAGES = 1_100_000; // (PAGES - 1) * 4096 > 2^32
const MARKED = 600_000; // its offset is past 2^31

/** A SQLite database of PAGES pages (sparse: only page 1, MARKED and the last are written). */
function sparseDatabase(file: string): void {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE t(x)');
  db.close();
  const fd = fs.openSync(file, 'r+');
  try {
    fs.writeSync(fd, Buffer.alloc(4096, 0x11).fill('MARK', 0, 4), 0, 4096, (MARKED - 1) * 4096);
    fs.writeSync(fd, Buffer.alloc(4096), 0, 4096, (PAGES - 1) * 4096);
    const header = Buffer.alloc(100);
    fs.readSync(fd, header, 0, 100, 0);
    header.writeUInt32BE(PAGES, 28); // the in-header database size, valid while version-valid-for (92) equals the change counter (24)
    header.writeUInt32BE(header.readUInt32BE(24), 92);
    fs.writeSync(fd, header, 0, 100, 0);
  } finally {
    fs.closeSync(fd);
  }
  expect(fs.statSync(file).blocks * 512).toBeLessThan(16 << 20); // sparse (the test writes no gigabytes)
}

describe('offsets past 2^31 and 2^32', () => {
  it('walnut/sql writes and reads tables whose pages lie past 4 GiB (SQLite appends them after the last page); sqlite3 reads them; a store reads and checkpoints such pages', async () => {
    const file = path.join(dir, 'sparse.db');
    sparseDatabase(file);
    const db = await openDatabase(file);
    try {
      await db.exec('CREATE TABLE u(id INTEGER PRIMARY KEY, v BLOB)');
      for (let i = 0; i < 10; i++) await db.run('INSERT INTO u(v) VALUES (?)', [Buffer.alloc(9000, i)]); // overflow pages
      expect(await db.get("SELECT rootpage FROM sqlite_schema WHERE name = 'u'")).toEqual({ rootpage: PAGES + 1 });
    } finally {
      await db.close();
    }
    const again = await openDatabase(file); // its reads come from the database file and the WAL
    try {
      expect(await again.get('SELECT count(*) AS n, sum(length(v)) AS bytes, sum(unicode(substr(v, 9000, 1))) AS last FROM u')).toEqual({ n: 10, bytes: 90_000, last: 45 });
    } finally {
      await again.close();
    }
    const reader = new Database(file, { readonly: true });
    try {
      expect(reader.prepare('SELECT count(*) AS n, sum(length(v)) AS bytes FROM u').get()).toEqual({ n: 10, bytes: 90_000 });
    } finally {
      reader.close();
    }
    const store = await open(file);
    try {
      const snap = await store.snapshot();
      expect(Buffer.from(snap.readSync(MARKED).subarray(0, 4)).toString()).toBe('MARK');
      snap.release();
      const page = Buffer.alloc(4096, 0x22).fill('WALP', 0, 4);
      await store.commit([{ pgno: MARKED + 1, data: page }, { pgno: PAGES - 1, data: page }]); // past 2^31, past 2^32
      await store.checkpoint('truncate');
    } finally {
      await store.close();
    }
    const fd = fs.openSync(file, 'r');
    try {
      const back = Buffer.alloc(4096);
      for (const pgno of [MARKED + 1, PAGES - 1]) {
        back.fill(0);
        fs.readSync(fd, back, 0, 4096, (pgno - 1) * 4096);
        expect(back.subarray(0, 4).toString()).toBe('WALP');
      }
    } finally {
      fs.closeSync(fd);
    }
  });
});
