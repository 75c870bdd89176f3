// restore --force onto a database with a replica's position file (-replica, a restore companion:
// io/restore-asides.ts) whose -wal holds 16,000+ frames SQLite wrote (its wal-index spans 4+
// -shm segments; sqliteLargeWal):
//  - while a python3 sqlite3 writer has it open and commits: every restore is refused (WALNUT_BUSY,
//    InUse) and changes nothing (the -replica byte for byte); the writer's rows are all there (or,
//    the writer's connection closed just before the last try, that one replaced it);
//  - a stream that breaks before its base image is complete: refused, the old database keeps every
//    row its WAL held and its -replica;
//  - no connection open: replaced. The old -wal's frames are checkpointed into the old file before
//    it goes aside (restore.ts checkpointOldDatabase), the -wal, -shm and -replica of the old
//    database are gone, nothing of the restore is left beside it, and sqlite3 reads the restored rows.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { restore } from '../../lib/export/restore';
import { HELPERS, runPython } from '../helpers/children';
import { exportOfRows } from '../helpers/export-stream';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { copyWithWal, segmentEnd, sqliteLargeWal, untilWalMoves, walFileFrames } from '../helpers/large-wal';
import { sqliteIntegrity, sqliteRowCount } from '../helpers/sqlite-db';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const FRAMES = segmentEnd(3) + 100; // 16,000+
const POSITION = Buffer.alloc(4096, 7); // (restore does not read it: it goes with the database it describes)

let large: string | null = null;
let stream: Buffer | null = null;

/** A fresh copy of the large database, its 16,000+-frame -wal and a -replica, in its own directory. */
function target(name: string): string {
  large ??= sqliteLargeWal(dir, 'large', 1024, FRAMES);
  const db = copyWithWal(large, path.join(dir, name, 'app.db'));
  fs.writeFileSync(`${db}-replica`, POSITION);
  return db;
}

/** An export of a 30-row database (w = 7). */
async function exportStream(): Promise<Buffer> {
  stream ??= await exportOfRows(dir, 'src', 30);
  return stream;
}

const restoreFiles = (d: string) => fs.readdirSync(d).filter((f) => f.includes('.restore'));

describe('restore --force onto a database with a -replica and a 16,000+-frame -wal', () => {
  it('refused (InUse) while a python3 writer commits, nothing changed; the writer\'s rows all there', async () => {
    const db = target('writing');
    const rows0 = sqliteRowCount(db, 't'); // (read-only: the -wal stays)
    expect(walFileFrames(`${db}-wal`)).toBeGreaterThanOrEqual(FRAMES);
    const bytes = await exportStream();
    const writer = runPython(path.join(HELPERS, 'sqlite-writer.py'), [db, '1', '1', '0', '0', '10', '2']);
    let writing = true;
    void writer.finally(() => (writing = false)).catch(() => undefined);
    await untilWalMoves(db, walFileFrames(`${db}-wal`)); // python3 has it open: it recovered the 16,000+ frames and committed
    let refused = 0;
    let replaced = false;
    while (writing) {
      const err = await restore(bytes, db, { force: true }).then(
        () => null,
        (e: unknown) => e,
      );
      if (err === null) {
        replaced = true; // (python3 closed its connection just now, its process not gone yet)
        break;
      }
      expect(err).toMatchObject({ name: 'WalnutError', code: 'WALNUT_BUSY', reason: 'InUse' });
      refused++;
      expect(fs.readFileSync(`${db}-replica`).equals(POSITION)).toBe(true);
      await new Promise((r) => setTimeout(r, 20));
    }
    const written = Number((await writer).trim());
    expect(refused).toBeGreaterThan(0);
    if (replaced) {
      expect(sqliteRowCount(db, 't')).toBe(30);
      expect(fs.existsSync(`${db}-replica`)).toBe(false);
    } else {
      expect(sqliteRowCount(db, 't', 'w = 1')).toBe(written);
      expect(sqliteRowCount(db, 't')).toBe(rows0 + written);
      expect(fs.readFileSync(`${db}-replica`).equals(POSITION)).toBe(true);
    }
    expect(sqliteIntegrity(db)).toEqual(['ok']);
    expect(restoreFiles(path.dirname(db))).toEqual([]);
  });

  it('a stream broken inside its base image: refused, the old database keeps every row of its -wal and its -replica', async () => {
    const db = target('torn');
    const rows0 = sqliteRowCount(db, 't');
    const bytes = await exportStream();
    await expectRejectsWalnut(restore(bytes.subarray(0, Math.floor(bytes.length / 2)), db, { force: true }), 'WALNUT_INVALID_FRAMING');
    expect(fs.readFileSync(`${db}-replica`).equals(POSITION)).toBe(true);
    expect(walFileFrames(`${db}-wal`)).toBeGreaterThanOrEqual(FRAMES);
    expect(sqliteRowCount(db, 't')).toBe(rows0);
    expect(sqliteIntegrity(db)).toEqual(['ok']);
    expect(restoreFiles(path.dirname(db))).toEqual([]);
  });

  it('no connection open: replaced; the old -wal, -shm and -replica gone, nothing of the restore left', async () => {
    const db = target('quiet');
    const r = await restore(await exportStream(), db, { force: true });
    expect(r.stoppedBy).toBeNull();
    expect(fs.readdirSync(path.dirname(db))).toEqual(['app.db']);
    expect(sqliteRowCount(db, 't')).toBe(30);
    expect(sqliteRowCount(db, 't', 'w = 7')).toBe(30);
    expect(sqliteIntegrity(db)).toEqual(['ok']);
  });
});
