// The WAL's zero-ahead (wal-zero-ahead.test.ts) at scale, with another process writing:
// walnut/sql with zeroAhead on commits beside a python3 sqlite3 writer (large-wal.ts
// startWalFiller) until the WAL holds 17,000+ frames (1 KiB pages: 17+ MiB, 5 wal-index
// segments, zeroed ahead past 8 MiB), python3 appending into walnut's zeros as often as walnut
// appends after python3's frames. A copy of the files as they stand (no -shm) recovers, by
// SQLite and by walnut, to exactly the frames the live -shm names (the zeros are never frames),
// with every row; at the end sqlite3 finds every row of both, integrity ok.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { inspect } from '../../lib/index';
import { openDatabase } from '../../lib/sql';
import { commitBetweenFillerTurns, segmentEnd, shmMxFrame, startWalFiller } from '../helpers/large-wal';
import { Database } from '../helpers/sqlite';
import { sqliteIntegrity, sqliteRowCount } from '../helpers/sqlite-db';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const PAGE = 1024;
const FRAME = 24 + PAGE;
const BATCH = 10; // rows per walnut commit

/** SQLite's recovery of a copy of `file` and its -wal (no -shm): the frames it keeps and the rows then. */
function sqliteRecovers(file: string, copy: string): { frames: number; walnut: number; python: number; integrity: unknown } {
  fs.copyFileSync(file, copy);
  fs.copyFileSync(`${file}-wal`, `${copy}-wal`);
  const db = new Database(copy);
  try {
    db.pragma('wal_autocheckpoint = 0');
    const count = (where: string) => (db.prepare(`SELECT count(*) AS n FROM t WHERE ${where}`).get() as { n: number }).n;
    const rows = { walnut: count("w = 'walnut'"), python: count('w IS NULL'), integrity: db.pragma('quick_check', { simple: true }) };
    return { frames: fs.readFileSync(`${copy}-shm`).readUInt32LE(16), ...rows };
  } finally {
    db.close();
  }
}

describe('zero-ahead beside a python3 writer, a WAL of 17,000+ frames', () => {
  it('the WAL is zeroed ahead; a copy recovers (SQLite and walnut) to exactly the live frames and rows; every row there at the end', async () => {
    const file = path.join(dir, 'zeros.db');
    const db = await openDatabase(file, { pageSize: PAGE, autoCheckpoint: false, zeroAhead: true });
    let walnut = 0;
    try {
      await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, w TEXT, v BLOB)');
      const filler = startWalFiller(file, segmentEnd(3) + 700, 't'); // its rows: w NULL
      const commits = await commitBetweenFillerTurns(file, filler, () => db.run(`INSERT INTO t(w, v) SELECT 'walnut', randomblob(300) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ${BATCH}) SELECT x FROM c)`));
      walnut += commits * BATCH;
      filler.stop();
      const python = await filler.done;
      await db.run("INSERT INTO t(w, v) VALUES ('walnut', randomblob(300))"); // the last append: walnut's, after python3's frames
      walnut++;
      const live = shmMxFrame(file);
      expect(live).toBeGreaterThan(segmentEnd(3));
      // zeroed ahead: the file runs past its last frame, and what follows it is zeros (the background lane's, maybe still writing)
      const wal = fs.readFileSync(`${file}-wal`);
      const end = 32 + live * FRAME;
      expect(wal.length).toBeGreaterThan(end + FRAME);
      expect(wal.subarray(end, end + FRAME).every((b) => b === 0)).toBe(true);

      const forWalnut = path.join(dir, 'zeros-walnut.db'); // (SQLite's close of its copy checkpoints it away)
      fs.copyFileSync(file, forWalnut);
      fs.copyFileSync(`${file}-wal`, `${forWalnut}-wal`);
      expect(sqliteRecovers(file, path.join(dir, 'zeros-sqlite.db'))).toEqual({ frames: live, walnut, python, integrity: 'ok' });
      expect(inspect(forWalnut).walFrames).toBe(live); // walnut's recovery of the same files
      expect(await db.get("SELECT count(*) AS n FROM t WHERE w = 'walnut'")).toEqual({ n: walnut });
      expect(await db.get('SELECT count(*) AS n FROM t WHERE w IS NULL')).toEqual({ n: python });
    } finally {
      await db.close();
    }
    expect(sqliteIntegrity(file)).toEqual(['ok']);
    expect(sqliteRowCount(file, 't', "w = 'walnut'")).toBe(walnut);
  });
});
