// The checkpoint's page-1 check (checkpoint/execute.ts refuseForeignPage1) at scale: WALs of
// 16,000+ frames (their wal-index spans 4+ -shm segments) that SQLite wrote, page 1 in many
// commits (sqliteLargeWal: one-row commits, 1024-byte pages).
//  - the bad page-1 frame past the first segment: the newest frame of page 1 (past the 4th
//    segment's start) names another page size, or lost the magic, under an intact checksum chain:
//    checkpoint() is WALNUT_CORRUPT (Page1Header, pgno 1, naming that frame), the database file
//    unchanged, and so is the last close()'s checkpoint (the -wal kept); the auto-checkpoint's
//    refusal is named once in metrics().lastCheckpointError, commits going on; again when the frames
//    before it were checkpointed already up to past the first segment (a sqlite3 reader kept
//    SQLite's writer from restarting the WAL, so the check reads the frame at an offset past
//    nBackfill: the page numbers come from the second segment on); walnut/sql's open of it is
//    WALNUT_CORRUPT (Page1Header, SQLITE_CORRUPT), where sqlite3 reads it at 4096 bytes a page
//    (integrity_check fails);
//  - no false positive: a checkpoint loop (every mode) on the database's own 16,000+-frame WAL
//    while a python3 sqlite3 writer commits beside it (page 1 in most of its commits): never an
//    error; once the writer is done a truncate copies everything (walFrames 0, the -wal 0 bytes),
//    sqlite3's integrity_check is ok and every row of both is there.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open } from '../../lib';
import type { CheckpointResult } from '../../lib/checkpoint/execute';
import { openDatabase } from '../../lib/sql';
import { HELPERS, runPython, spawnOutput } from '../helpers/children';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { expectNoUnhandledRejections } from '../helpers/outcomes';
import { copyWithWal, page1Frames, segmentEnd, shmMxFrame, sqliteLargeWal, untilWalMoves, walFileFrames } from '../helpers/large-wal';
import { Database, rewritePage1InWal } from '../helpers/sqlite';
import { sqliteIntegrity, sqliteRowCount } from '../helpers/sqlite-db';
import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';

expectNoUnhandledRejections();

const dir = tmpDir();
const FRAMES = segmentEnd(3) + 100; // 16,000+

let made: string | null = null;

/** A fresh copy of the large SQLite-written database (1024-byte pages) and its -wal. */
function largeCopy(name: string): string {
  made ??= sqliteLargeWal(dir, 'large', 1024, FRAMES);
  const db = path.join(dir, `${name}.db`);
  copyWithWal(made, db);
  return db;
}

const BAD = [
  { name: 'another page size', change: (page: Buffer) => page.writeUInt16BE(4096, 16), says: /says the page size is 4096/ },
  { name: 'no magic', change: (page: Buffer) => (page[0] = 0x41), says: /is not a SQLite database header/ },
];

describe('a bad page-1 frame past the first -shm segment of a 16,000+-frame WAL', () => {
  for (const bad of BAD) {
    it(`${bad.name}: checkpoint() and the last close() are WALNUT_CORRUPT (Page1Header), nothing copied`, async () => {
      const db = largeCopy(`bad-${bad.name.replace(/ /g, '-')}`);
      const newest = page1Frames(`${db}-wal`).newest;
      expect(newest).toBeGreaterThan(segmentEnd(3));
      rewritePage1InWal(`${db}-wal`, bad.change, (frame) => frame === newest);
      const before = fs.readFileSync(db);
      const store = await open(db, { autoCheckpoint: false });
      try {
        expect(store.metrics().walFrames).toBeGreaterThanOrEqual(FRAMES);
        for (const mode of ['passive', 'truncate'] as const) {
          const err = await expectRejectsWalnut(store.checkpoint(mode), 'WALNUT_CORRUPT', { reason: 'Page1Header', pgno: 1 });
          expect(err.message).toMatch(bad.says);
          expect(err.message).toContain(`frame ${newest} `);
        }
        expect(fs.readFileSync(db).equals(before)).toBe(true);
      } finally {
        await store.close();
      }
      expect(fs.readFileSync(db).equals(before)).toBe(true);
      expect(walFileFrames(`${db}-wal`)).toBeGreaterThanOrEqual(FRAMES);
      if (bad.name === 'another page size') {
        // walnut/sql's SQLite reads page 1 through the store and then asks for it at 4096 bytes:
        // corrupt (it was WALNUT_SQL "disk I/O error", SQLITE_IOERR_READ). sqlite3 goes on at
        // 4096 bytes a page, reading 1024-byte frames (its integrity_check fails, its answers are wrong)
        const wal = fs.readFileSync(`${db}-wal`);
        await expectRejectsWalnut(openDatabase(db), 'WALNUT_CORRUPT', { reason: 'Page1Header', pgno: 1, sqliteCode: 11 });
        expect(fs.readFileSync(db).equals(before) && fs.readFileSync(`${db}-wal`).equals(wal)).toBe(true);
        const copy = path.join(dir, 'bad-sqlite3.db');
        copyWithWal(db, copy);
        const r = await spawnOutput('sqlite3', [copy, 'PRAGMA integrity_check']);
        expect(r.stdout.trim()).not.toBe('ok');
      }
    });
  }

  it('the auto-checkpoint meets it: commits go on, metrics name the refusal once, no unhandled rejection; close() keeps the -wal', async () => {
    const db = largeCopy('bad-auto');
    const newest = page1Frames(`${db}-wal`).newest;
    rewritePage1InWal(`${db}-wal`, BAD[0]!.change, (frame) => frame === newest);
    const before = fs.readFileSync(db);
    const store = await open(db); // autoCheckpoint 1,000 frames: due at the first commit
    try {
      const snap = await store.snapshot();
      const page2 = Buffer.from(await snap.read(2));
      snap.release();
      for (let i = 0; i < 3; i++) await store.commit([{ pgno: 2, data: page2 }]);
      await until(() => store.metrics().lastCheckpointError !== null);
      expect(store.metrics().lastCheckpointError).toMatch(new RegExp(`^WALNUT_CORRUPT: page 1 in frame ${newest} of the WAL says the page size is 4096`));
      await store.commit([{ pgno: 2, data: page2 }]);
      expect(fs.readFileSync(db).equals(before)).toBe(true);
    } finally {
      await store.close();
    }
    expect(fs.readFileSync(db).equals(before)).toBe(true);
    expect(walFileFrames(`${db}-wal`)).toBeGreaterThanOrEqual(FRAMES);
  });

  it('after frames past the first segment were checkpointed already (nBackfill > 4062): the frame read is the bad one, nothing more copied', async () => {
    const db = path.join(dir, 'partly.db');
    const w = new Database(db);
    const r = new Database(db);
    let store: Awaited<ReturnType<typeof open>> | null = null;
    try {
      w.pragma('page_size = 1024');
      w.pragma('journal_mode = WAL');
      w.pragma('wal_autocheckpoint = 0');
      w.pragma('synchronous = OFF');
      w.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, w INTEGER, v BLOB)');
      w.pragma('wal_checkpoint(TRUNCATE)');
      const ins = w.prepare('INSERT INTO t(w, v) VALUES (0, randomblob(341))');
      while (walFileFrames(`${db}-wal`) < segmentEnd(1)) ins.run();
      // a sqlite3 reader's snapshot at the WAL's end: checkpointed through it, the WAL cannot restart under it
      r.exec('BEGIN');
      r.prepare('SELECT count(*) FROM t').get();
      store = await open(db, { autoCheckpoint: false });
      const first = await store.checkpoint('passive');
      expect(first.busy).toBe(false);
      expect(first.checkpointedFrames).toBeGreaterThan(segmentEnd(0));
      expect(first.checkpointedFrames).toBe(first.walFrames);
      while (walFileFrames(`${db}-wal`) < FRAMES) ins.run(); // appended after those: no restart
      r.exec('COMMIT');
      w.close(); // (not the last connection: nothing checkpointed; its cached chain would not survive the rewrite below)
      const newest = page1Frames(`${db}-wal`).newest;
      expect(newest).toBeGreaterThan(segmentEnd(3));
      rewritePage1InWal(`${db}-wal`, BAD[0]!.change, (frame) => frame === newest);
      const before = fs.readFileSync(db);
      const err = await expectRejectsWalnut(store.checkpoint('passive'), 'WALNUT_CORRUPT', { reason: 'Page1Header', pgno: 1 });
      expect(err.message).toContain(`frame ${newest} `);
      expect(fs.readFileSync(db).equals(before)).toBe(true);
      expect(store.metrics().walFrames).toBeGreaterThanOrEqual(FRAMES);
    } finally {
      if (w.open) w.close();
      r.close();
      await store?.close();
    }
  });
});

describe('a 16,000+-frame WAL with many valid page-1 frames, checkpointed while python3 sqlite3 commits beside it', () => {
  it('checkpoints of every mode never fail; the last truncate copies everything; integrity ok, every row there', async () => {
    const db = largeCopy('live');
    expect(page1Frames(`${db}-wal`).count).toBeGreaterThan(1000);
    const rows0 = sqliteRowCount(db, 't');
    expect(walFileFrames(`${db}-wal`)).toBeGreaterThanOrEqual(FRAMES); // (a read-only connection: it left the -wal as it was)
    const store = await open(db, { autoCheckpoint: false });
    const results: CheckpointResult[] = [];
    const errors: string[] = [];
    let written: number;
    try {
      const from = shmMxFrame(db);
      // wal_autocheckpoint 0: only walnut checkpoints; at least 30 commits
      const writer = runPython(path.join(HELPERS, 'sqlite-writer.py'), [db, '1.5', '1', '0', '0', '30', '2']);
      let writing = true;
      void writer.finally(() => (writing = false)).catch(() => undefined);
      await untilWalMoves(db, from);
      const modes = ['passive', 'full', 'restart', 'truncate'] as const;
      for (let k = 0; writing; k++) {
        try {
          results.push(await store.checkpoint(modes[k % modes.length]!));
        } catch (e) {
          errors.push(`${(e as { code?: string }).code}: ${(e as Error).message}`);
        }
        await new Promise((res) => setTimeout(res, 5));
      }
      written = Number((await writer).trim());
      expect(errors).toEqual([]);
      expect(results.length).toBeGreaterThan(0);
      expect(results.some((x) => x.checkpointedFrames >= FRAMES || x.walFrames === 0)).toBe(true); // the big WAL was copied at least once
      const last = await store.checkpoint('truncate');
      expect(last).toMatchObject({ busy: false, walFrames: 0 });
      expect(fs.statSync(`${db}-wal`).size).toBe(0);
    } finally {
      await store.close();
    }
    expect(fs.readFileSync(db).readUInt16BE(16)).toBe(1024);
    expect(sqliteIntegrity(db)).toEqual(['ok']);
    expect(sqliteRowCount(db, 't', 'w = 1')).toBe(written);
    expect(sqliteRowCount(db, 't')).toBe(rows0 + written);
  });
});
