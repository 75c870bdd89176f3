// The append window (append-window.test.ts) at scale: a WAL of 20,000+ frames (512-byte pages)
// that a python3 sqlite3 writer (another process, large-wal.ts startWalFiller) grew beside
// walnut/sql's commits to near the end of wal-index segment 4, then a python3 transaction
// spilled (cache_size 2: an UPDATE of 1,500 of the filler's rows) and rolled back: its frames, of this generation, run past mxFrame into
// segment 5, and SQLite put them in the -shm's hash tables (segment 5 made for them) while the
// header stayed as walnut last published it. walnut's next commits write over them, as SQLite's
// next writer does (walIndexAppend: the remnants of an uncommitted transaction cleaned out of
// the hash before new entries, a new segment zeroed at its first frame), on into segment 5. Then
// sqlite3 reads every row as committed (none of the rolled-back ones) through the live -shm and
// through a recovery of a copy of the files, integrity ok; a python3 commit after that and more
// walnut commits read the same way.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { openDatabase } from '../../lib/sql';
import { pythonSqlite } from '../helpers/children';
import { segmentEnd, startWalFiller } from '../helpers/large-wal';
import { expectSameAfterRecovery } from '../helpers/sqlite-db';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const PAGE = 512;
const FRAME = 24 + PAGE;

const cli = (file: string, sql: string): string => execFileSync('sqlite3', [file, sql], { encoding: 'utf8' }).trim();

/** Rows per writer tag (w NULL: python3's filler, in u) as sqlite3 reads `file`. */
const rowsOf = (file: string) => cli(file, "SELECT 't', w, count(*) FROM t GROUP BY w UNION ALL SELECT 'u', NULL, count(*) FROM u;").replace(/\n/g, ' ');

/** Whether WAL frame `f` (1-based) is a frame of the WAL's current generation (its salts). */
function liveFrame(file: string, f: number): boolean {
  const fd = fs.openSync(`${file}-wal`, 'r');
  try {
    const header = Buffer.alloc(32);
    const frame = Buffer.alloc(24);
    fs.readSync(fd, header, 0, 32, 0);
    return fs.readSync(fd, frame, 0, 24, 32 + (f - 1) * FRAME) === 24 && frame.readUInt32BE(0) !== 0 && frame.subarray(8, 16).equals(header.subarray(16, 24));
  } finally {
    fs.closeSync(fd);
  }
}

describe('walnut commits over a rolled-back sqlite3 spill that ran into wal-index segment 5, on a 20,000-frame WAL', () => {
  it('every row as committed, none rolled back, through the -shm and a recovery; then a python3 commit and more walnut commits the same', async () => {
    const file = path.join(dir, 'window.db');
    const db = await openDatabase(file, { pageSize: PAGE, autoCheckpoint: false });
    let walnut = 0;
    const insert = async (rows: number) => {
      for (let i = 0; i < rows; i++, walnut++) await db.run('INSERT INTO t(w, v) VALUES (1, randomblob(200))');
    };
    try {
      await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, w INTEGER, v BLOB); CREATE TABLE u(id INTEGER PRIMARY KEY, v BLOB)');
      const filler = startWalFiller(file, segmentEnd(4) - 400, 'u');
      let filled = false;
      void filler.filled.then(() => (filled = true));
      // beside python3 for the first 4,000 frames (continuous commits here would run the WAL past
      // segment 4 while python3 waits for WRITE in its busy handler), then python3 alone
      while (!filled && db.store.metrics().walFrames < 4000) await insert(1);
      await filler.filled;
      filler.stop();
      const python3Rows = await filler.done;
      await insert(1); // (the store's view of the WAL is its last transaction's)
      const mxFrame = db.store.metrics().walFrames;
      expect(mxFrame).toBeGreaterThan(segmentEnd(3));
      expect(mxFrame).toBeLessThan(segmentEnd(4));

      // a spilled transaction (every page it changes written to the WAL as the cache of 2 pages
      // overflows), rolled back: frames of this generation past mxFrame, into segment 5
      await pythonSqlite(file, "c.execute('PRAGMA cache_size = 2')\nc.execute('BEGIN IMMEDIATE')\nc.execute('UPDATE u SET v = randomblob(900) WHERE id <= 1500')\nc.execute('INSERT INTO t(w, v) VALUES (9, randomblob(200))')\nc.execute('ROLLBACK')");
      expect(liveFrame(file, mxFrame + 1), 'the spill after the last commit').toBe(true);
      expect(liveFrame(file, segmentEnd(4) + 100), 'the spill in segment 5').toBe(true);
      expect(db.store.metrics().walFrames).toBe(mxFrame); // nothing of it committed
      while (db.store.metrics().walFrames < segmentEnd(4) + 200) await insert(1); // over the spill, on into segment 5
      expectSameAfterRecovery(file, rowsOf, `t|1|${walnut} u||${python3Rows}`);

      await pythonSqlite(file, "c.execute('INSERT INTO t(w, v) VALUES (2, randomblob(200))')");
      await insert(20);
      expectSameAfterRecovery(file, rowsOf, `t|1|${walnut} t|2|1 u||${python3Rows}`);
      expect(await db.get('SELECT count(*) AS n FROM t WHERE w = 9')).toEqual({ n: 0 });
    } finally {
      await db.close();
    }
    expect(fs.existsSync(`${file}-wal`)).toBe(false);
    expect(cli(file, 'PRAGMA integrity_check; SELECT count(*) FROM t WHERE w = 1;')).toBe(`ok\n${walnut}`);
  });
});
