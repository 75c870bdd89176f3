// The foreign -wal refusal (wal/page1-through-wal.ts, WalIndex recovery) at scale: a WAL of
// 16,000+ frames (its wal-index spans 4+ -shm segments) and page-1 frames in every segment.
//  - foreign: another database's live -wal (real SQLite, 1024-byte pages, thousands of commits,
//    page 1 in many of them) copied beside an intact 4096-byte header, in WAL mode and in rollback
//    mode: open() and openDatabase() refuse it (WALNUT_CORRUPT) and leave the database, its -wal
//    and the absence of a -shm as they were; verify names `wal-page-size`; without the -wal the
//    database is whole (sqlite3: every row, integrity ok);
//  - no false positive: the database's own 16,000+-frame WAL (page-1 frames valid, in every
//    segment) while a python3 sqlite3 writer keeps committing (page 1 in most of its commits):
//    open(), openDatabase() and verify, again and again, beside an intact header and beside a torn
//    one (page 1 then read through the WAL while it grows) are never refused; afterwards a
//    checkpoint copies everything, and sqlite3 counts every row (integrity ok);
//  - page 1 through the WAL decided by its NEWEST committed frame (past the first segment): bad
//    page-1 frames in the first segment only under a torn header open; a bad newest one is
//    WALNUT_CORRUPT (another page size), changing nothing.
// Every WAL is built once per file (better-sqlite3, wal_autocheckpoint 0, synchronous off) and copied.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { inspect, open, verify } from '../../lib';
import { openDatabase } from '../../lib/sql';
import { HELPERS, runPython } from '../helpers/children';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { copyWithWal, page1Frames, segmentEnd, shmMxFrame, sqliteLargeWal, untilWalMoves, walFileFrames } from '../helpers/large-wal';
import { Database, rewritePage1InWal } from '../helpers/sqlite';
import { sqliteIntegrity } from '../helpers/sqlite-db';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const FRAMES = segmentEnd(3) + 100; // frames in the 5th wal-index segment: 16,000+

let foreignWal: string | null = null;
let madeLegit: string | null = null;

/** A fresh directory holding app.db (4096-byte pages, 2,000 rows, `mode`) and a copy of the large 1024-byte foreign -wal as app.db-wal. */
function withForeignWal(name: string, mode: 'wal' | 'rollback'): string {
  foreignWal ??= `${sqliteLargeWal(dir, 'foreign', 1024, FRAMES)}-wal`;
  const d = path.join(dir, name);
  fs.mkdirSync(d);
  const db = path.join(d, 'app.db');
  const a = new Database(db);
  a.pragma('page_size = 4096');
  if (mode === 'wal') a.pragma('journal_mode = WAL');
  a.exec('CREATE TABLE app(x)');
  a.transaction(() => {
    for (let i = 0; i < 2000; i++) a.prepare('INSERT INTO app VALUES (?)').run(i);
  })();
  a.close(); // (the last connection: the database alone, its own -wal gone)
  fs.copyFileSync(foreignWal, `${db}-wal`);
  return db;
}

/** A fresh copy of the large legit database (1024-byte pages) and its -wal. */
function legitCopy(name: string): string {
  madeLegit ??= sqliteLargeWal(dir, 'legit', 1024, FRAMES);
  return copyWithWal(madeLegit, path.join(dir, name, 'app.db'));
}

/** Rows in t, read by walnut/sql, leaving the -wal and -shm as they are (keepWal). */
async function rowsOf(db: string): Promise<number> {
  const sql = await openDatabase(db, { autoCheckpoint: false, keepWal: true, readConnections: 0 });
  try {
    return Number((await sql.get('SELECT count(*) AS n FROM t'))!.n);
  } finally {
    await sql.close();
  }
}

/** Fixed bytes over the file's first 100 (none the magic's): what a torn write of page 1 leaves. */
function tearHeader(db: string): void {
  const fd = fs.openSync(db, 'r+');
  try {
    fs.writeSync(fd, Buffer.from(Array.from({ length: 100 }, (_, k) => (k * 151 + 7) & 0xff)), 0, 100, 0);
  } finally {
    fs.closeSync(fd);
  }
}

describe('a foreign -wal of 16,000+ frames (1024-byte pages, real SQLite) beside an intact 4096-byte header', () => {
  for (const mode of ['wal', 'rollback'] as const) {
    it(`${mode} mode: open() and openDatabase() refuse it (WALNUT_CORRUPT), nothing changed; verify names wal-page-size`, async () => {
      const db = withForeignWal(`foreign-${mode}`, mode);
      expect(walFileFrames(`${db}-wal`)).toBeGreaterThanOrEqual(FRAMES);
      const p1 = page1Frames(`${db}-wal`);
      expect(p1.count).toBeGreaterThan(100);
      expect(p1.newest).toBeGreaterThan(segmentEnd(2)); // page 1 in the last segments too
      const before = [fs.readFileSync(db), fs.readFileSync(`${db}-wal`)];
      await expectRejectsWalnut(open(db), 'WALNUT_CORRUPT');
      await expectRejectsWalnut(openDatabase(db), 'WALNUT_CORRUPT');
      await expectRejectsWalnut(open(db, { convert: false }), 'WALNUT_CORRUPT'); // (in rollback mode the -wal is refused before the mode is looked at)
      expect(fs.readFileSync(db).equals(before[0]!), 'the database file').toBe(true);
      expect(fs.readFileSync(`${db}-wal`).equals(before[1]!), 'the foreign -wal').toBe(true);
      expect(fs.existsSync(`${db}-shm`), 'a -shm left by a refused open').toBe(false);
      expect(inspect(db)).toMatchObject({ pageSize: 4096 });
      const v = await verify(db, 5);
      expect(v.ok).toBe(false);
      expect(v.issues.map((x) => x.kind)).toContain('wal-page-size');
      fs.rmSync(`${db}-wal`);
      expect(sqliteIntegrity(db)).toEqual(['ok']);
      const s = new Database(db, { readonly: true });
      try {
        expect(s.prepare('SELECT count(*) AS n FROM app').get()).toEqual({ n: 2000 });
      } finally {
        s.close();
      }
    });
  }
});

describe('the database\'s own 16,000+-frame WAL, valid page-1 frames in every segment, a python3 writer committing', () => {
  for (const header of ['intact', 'torn'] as const) {
    it(`${header} file header: open(), openDatabase() and verify never refuse it while the WAL grows; a checkpoint then copies every frame`, async () => {
      const db = legitCopy(`legit-${header}`);
      if (header === 'torn') tearHeader(db);
      const p1 = page1Frames(`${db}-wal`);
      expect(p1.newest).toBeGreaterThan(segmentEnd(3)); // the newest page 1 past the 4th segment's start
      const rows0 = await rowsOf(db);
      expect(rows0).toBeGreaterThan(FRAMES / 3);
      // python3 (wal_autocheckpoint 0: it never checkpoints, the header stays as it is) for 1.5 s, at least 20 commits
      const from = shmMxFrame(db);
      const writer = runPython(path.join(HELPERS, 'sqlite-writer.py'), [db, '1.5', '1', '0', '0', '20', '2']);
      let writing = true;
      void writer.finally(() => (writing = false)).catch(() => undefined);
      await untilWalMoves(db, from);
      const refused: string[] = [];
      let rounds = 0;
      let walFramesSeen = 0;
      while (writing) {
        rounds++;
        try {
          const store = await open(db, { autoCheckpoint: false });
          expect(store.pageSize).toBe(1024);
          walFramesSeen = Math.max(walFramesSeen, store.metrics().walFrames);
          const snap = await store.snapshot();
          expect(Buffer.from(await snap.read(1)).subarray(0, 16).toString('latin1')).toBe('SQLite format 3\0');
          snap.release();
          await store.close(); // python3 is connected: not the last connection, nothing checkpointed
          const sql = await openDatabase(db, { autoCheckpoint: false, readConnections: 0 });
          try {
            expect(Number((await sql.get('SELECT count(*) AS n FROM t'))!.n)).toBeGreaterThanOrEqual(rows0);
          } finally {
            await sql.close();
          }
          const v = await verify(db, 2, { busyTimeout: 5000 });
          expect(v.issues.map((x) => x.kind)).not.toContain('wal-page-size');
        } catch (e) {
          refused.push(`${(e as { code?: string }).code}: ${(e as Error).message}`);
        }
      }
      const written = Number((await writer).trim());
      expect(refused).toEqual([]);
      expect(rounds).toBeGreaterThan(0);
      expect(walFramesSeen).toBeGreaterThan(FRAMES);
      // (whoever closed last, python3 or a walnut round, may have checkpointed and removed the -wal already)
      const store = await open(db, { autoCheckpoint: false });
      try {
        expect(await store.checkpoint('truncate')).toMatchObject({ busy: false, walFrames: 0 });
      } finally {
        await store.close();
      }
      expect(fs.existsSync(`${db}-wal`)).toBe(false);
      expect(sqliteIntegrity(db)).toEqual(['ok']);
      const s = new Database(db, { readonly: true });
      try {
        expect(s.prepare('SELECT count(*) AS n FROM t WHERE w = 1').get()).toEqual({ n: written });
        expect(s.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: rows0 + written });
      } finally {
        s.close();
      }
    });
  }

  it('a torn header: the newest page-1 frame (past the 4th segment) decides; bad ones in the first segment only do not refuse it, a bad newest one does', async () => {
    const oldOnly = legitCopy('old-page1-bad');
    tearHeader(oldOnly);
    rewritePage1InWal(`${oldOnly}-wal`, (page) => page.writeUInt16BE(4096, 16), (frame) => frame <= segmentEnd(0));
    const store = await open(oldOnly, { autoCheckpoint: false });
    try {
      expect(store.pageSize).toBe(1024);
      expect(await store.checkpoint('truncate')).toMatchObject({ busy: false, walFrames: 0 });
    } finally {
      await store.close();
    }
    expect(sqliteIntegrity(oldOnly)).toEqual(['ok']);

    const newest = legitCopy('newest-page1-bad');
    tearHeader(newest);
    const last = page1Frames(`${newest}-wal`).newest;
    rewritePage1InWal(`${newest}-wal`, (page) => page.writeUInt16BE(4096, 16), (frame) => frame === last);
    const before = [fs.readFileSync(newest), fs.readFileSync(`${newest}-wal`)];
    await expectRejectsWalnut(open(newest), 'WALNUT_CORRUPT', { pgno: 1 });
    await expectRejectsWalnut(openDatabase(newest), 'WALNUT_CORRUPT', { pgno: 1 });
    expect(fs.readFileSync(newest).equals(before[0]!) && fs.readFileSync(`${newest}-wal`).equals(before[1]!)).toBe(true);
  });
});
