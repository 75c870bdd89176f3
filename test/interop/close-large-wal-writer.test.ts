// close() of walnut/sql beside a python3 sqlite3 writer (SQLite's own library, another process)
// on a WAL of 16,000+ frames (512-byte pages: 4+ wal-index segments): the close family's case at
// scale. python3 fills the WAL in transactions of 100 rows beside walnut/sql's one-row commits
// (no checkpoint on either side), then goes on committing one row at a time (large-wal.ts
// startWalFiller):
//  - walnut closes first, while python3 commits: close() resolves, it is not the last
//    connection (python3's SHARED on the database file), so the -wal and -shm stay and nothing
//    is checkpointed under python3; python3 commits on after it, and its own close, the last,
//    checkpoints and removes the -wal;
//  - python3 closes first (its close is not the last: walnut has the database open, so the WAL
//    stays whole); walnut commits on, then its close() is the last connection's: it checkpoints
//    the 16,000+ frames and removes the -wal and -shm.
// Either way sqlite3 then finds every row both acknowledged, integrity ok, and no lock is left.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { openDatabase } from '../../lib/sql';
import { commitBetweenFillerTurns, segmentEnd, shmMxFrame, startWalFiller, untilWalMoves, type WalFiller } from '../helpers/large-wal';
import { expectSqliteUnlocked, sqliteIntegrity, sqliteRowCount } from '../helpers/sqlite-db';
import { tmpDir } from '../helpers/tmp';
import { until, WAIT_MS } from '../helpers/until';

const dir = tmpDir();
const TARGET = segmentEnd(3) + 200; // frames: past the 4th segment's end

async function filledBeside(file: string): Promise<{ db: Awaited<ReturnType<typeof openDatabase>>; writer: WalFiller; acked: number }> {
  const db = await openDatabase(file, { pageSize: 512, autoCheckpoint: false });
  await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, w TEXT, v BLOB)');
  const writer = startWalFiller(file, TARGET, 't'); // its rows: w NULL
  await untilWalMoves(file, shmMxFrame(file)); // python3 committed once: from now on both go on
  const acked = await commitBetweenFillerTurns(file, writer, () => db.run("INSERT INTO t(w, v) VALUES ('walnut', randomblob(200))"));
  expect(db.store.metrics().walFrames).toBeGreaterThan(segmentEnd(3));
  return { db, writer, acked };
}

function expectRows(file: string, walnut: number, python: number): void {
  expect(sqliteIntegrity(file)).toEqual(['ok']);
  expect(sqliteRowCount(file, 't', "w = 'walnut'")).toBe(walnut);
  expect(sqliteRowCount(file, 't', 'w IS NULL')).toBe(python);
  expectSqliteUnlocked(file);
}

describe('walnut/sql closing beside a python3 writer on a WAL of 16,000+ frames', () => {
  it('walnut closes first while python3 commits: the -wal and -shm stay, python3 commits on; its close removes them; every row there', async () => {
    const file = path.join(dir, 'walnut-first.db');
    const { db, writer, acked } = await filledBeside(file);
    await db.close();
    expect(fs.existsSync(`${file}-wal`), 'the -wal (python3 still has it open)').toBe(true);
    expect(fs.existsSync(`${file}-shm`), 'the -shm (python3 still has it open)').toBe(true);
    const after = shmMxFrame(file);
    expect(after).toBeGreaterThan(segmentEnd(3)); // nothing checkpointed and restarted it under python3
    await until(() => shmMxFrame(file) > after + 10, WAIT_MS, () => shmMxFrame(file)); // python3 goes on committing
    writer.stop();
    const python = await writer.done;
    expect(fs.existsSync(`${file}-wal`), "python3's close, the last, removes the -wal").toBe(false);
    expectRows(file, acked, python);
  });

  it('python3 closes first: walnut commits on, and its close() (the last connection) checkpoints the 16,000+ frames and removes the -wal and -shm; every row there', async () => {
    const file = path.join(dir, 'python-first.db');
    const { db, writer, acked } = await filledBeside(file);
    writer.stop();
    let more = 0;
    try {
      const python = await writer.done;
      expect(fs.existsSync(`${file}-wal`), 'python3 was not the last connection').toBe(true);
      for (; more < 20; more++) await db.run("INSERT INTO t(w, v) VALUES ('walnut', randomblob(200))");
      expect(db.store.metrics().walFrames).toBeGreaterThan(segmentEnd(3));
      await db.close();
      expect(fs.existsSync(`${file}-wal`), 'the -wal, after the last close').toBe(false);
      expect(fs.existsSync(`${file}-shm`), 'the -shm, after the last close').toBe(false);
      expectRows(file, acked + more, python);
    } finally {
      await db.close();
    }
  });
});
