// The FEC sidecar beside a writer that has none, at scale: walnut/sql commits with fec on
// (R = 2) while a python3 sqlite3 process (SQLite's own library, large-wal.ts startWalFiller)
// inserts in transactions of 100 rows from another process, until the WAL holds 17,500+ frames
// (512-byte pages: 5 wal-index segments) and walnut's groups lie past frame 16,350 (the 4th
// segment's end) between python3's frames. Each walnut commit is a group of the sidecar naming its own frames only; python3's are
// in none. Then, all closed (the WAL kept), two frames of a walnut group past the 4th segment are
// damaged on disk: SQLite's recovery of a copy would stop there, dropping every later commit of
// both writers; recoverWithRepair() repairs both frames, falls back for nothing, the WAL is
// byte for byte what was written, and sqlite3 then finds every row of both writers, integrity ok.
// A damaged frame of python3's there (in no group) is not repairable: recovery keeps exactly the
// frames and rows SQLite's recovery keeps, and names the frame and the reason (missing-group).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { recoverWithRepair } from '../../lib/index';
import { scanSidecar } from '../../lib/fec/sidecar';
import { WalnutFile } from '../../lib/io/file';
import { openDatabase } from '../../lib/sql';
import { commitBetweenFillerTurns, segmentEnd, shmMxFrame, startWalFiller, untilWalMoves } from '../helpers/large-wal';
import { Database } from '../helpers/sqlite';
import { sqliteIntegrity, sqliteRowCount } from '../helpers/sqlite-db';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const PS = 512;
const FRAME = 24 + PS;
const frameAt = (f: number) => 32 + (f - 1) * FRAME;
const TARGET = segmentEnd(3) + 1200; // 17,550 frames: 5 segments, walnut's groups well past the 4th's end
const PER_COMMIT = 6; // rows of 300 bytes per walnut commit: a group of 2+ frames

/** SQLite's own recovery of a copy of the database and WAL: the frames it keeps (mxFrame of the -shm it builds) and the rows of t and u then. */
function sqliteRecovers(file: string): { frames: number; t: number; u: number } {
  const copy = `${file}.sqlite-copy`;
  fs.copyFileSync(file, copy);
  fs.copyFileSync(`${file}-wal`, `${copy}-wal`);
  const db = new Database(copy);
  try {
    db.pragma('wal_autocheckpoint = 0');
    const count = (table: string) => (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
    const rows = { t: count('t'), u: count('u') };
    return { frames: fs.readFileSync(`${copy}-shm`).readUInt32LE(16), ...rows };
  } finally {
    db.close();
    for (const s of ['', '-wal', '-shm']) fs.rmSync(copy + s, { force: true });
  }
}

function flipByte(wal: string, at: number): void {
  const fd = fs.openSync(wal, 'r+');
  try {
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, at);
    b[0]! ^= 0x10;
    fs.writeSync(fd, b, 0, 1, at);
  } finally {
    fs.closeSync(fd);
  }
}

describe('fec on beside a python3 writer without it, a WAL of 17,500+ frames (5 wal-index segments)', () => {
  it("two damaged frames of a walnut group past the 4th segment, between python3's frames: repaired byte for byte, no fallback, every row of both writers there; a damaged python3 frame: what SQLite keeps, missing-group", async () => {
    const file = path.join(dir, 'app.db');
    const db = await openDatabase(file, { pageSize: PS, fec: { repairSymbols: 2 }, autoCheckpoint: false, keepWal: true, readConnections: 0 });
    let acked = 0;
    let writerRows = 0;
    try {
      await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB); CREATE TABLE u(id INTEGER PRIMARY KEY, v BLOB)');
      const writer = startWalFiller(file, TARGET, 'u');
      await untilWalMoves(file, shmMxFrame(file)); // python3 committed once: from now on both go on (see untilWalMoves)
      acked = await commitBetweenFillerTurns(file, writer, () => db.run(`INSERT INTO t(v) SELECT randomblob(300) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ${PER_COMMIT}) SELECT x FROM c)`), 6); // (6 more past the 4th segment's end, python3's one-row commits between)
      writer.stop();
      writerRows = await writer.done;
    } finally {
      await db.close(); // keepWal: the -wal and its sidecar stay; it waits for the sidecar's writer
    }
    const fec = db.store.metrics().fec as { groups: number; writeErrors: number };
    expect(fec).toMatchObject({ writeErrors: 0, groups: acked + 2 }); // one per commit: the two CREATE TABLEs' and each INSERT's
    const wal = `${file}-wal`;
    fs.rmSync(`${file}-shm`); // the next open recovers from the WAL
    const before = fs.readFileSync(wal);
    const other = path.join(dir, 'other.db'); // the same files, for a damaged python3 frame
    for (const s of ['', '-wal', '-wal-fec']) fs.copyFileSync(file + s, other + s);

    const sidecar = WalnutFile.openSync(`${file}-wal-fec`, { readOnly: true });
    const groups = (() => {
      try {
        return scanSidecar(sidecar).groups;
      } finally {
        sidecar.closeSync();
      }
    })();
    expect(groups.length, 'one group per walnut commit in the file').toBe(acked + 2);
    // a walnut group past the 4th segment with walnut's and python3's frames after it (not the last group)
    const late = groups.filter((g) => g.firstFrame > segmentEnd(3) && g.k >= 2);
    const lastWalnut = Math.max(...groups.map((g) => g.firstFrame + g.k - 1));
    const target = late.find((g) => g.firstFrame + g.k - 1 < lastWalnut);
    expect(target, `no walnut group past frame ${segmentEnd(3)} with others after it (${late.length} past it)`).toBeDefined();
    const covered = new Set(groups.flatMap((g) => Array.from({ length: g.k }, (_, i) => g.firstFrame + i)));
    expect(covered.size, "python3's frames are in no group").toBeLessThan(TARGET);
    const damaged = [target!.firstFrame, target!.firstFrame + target!.k - 1];
    for (const f of damaged) flipByte(wal, frameAt(f) + 24 + 500);
    expect(sqliteRecovers(file).frames, "SQLite's recovery stops at the damage").toBeLessThan(damaged[0]!);

    const r = await recoverWithRepair(file);
    expect(r).toMatchObject({ repairedFrames: 2, fallback: null, restoredHeader: null });
    expect(r.walFrames).toBeGreaterThan(TARGET);
    expect(fs.readFileSync(wal).equals(before), 'the WAL is byte for byte what was written').toBe(true);
    expect(sqliteIntegrity(file)).toEqual(['ok']);
    expect(sqliteRowCount(file, 't')).toBe(acked * PER_COMMIT);
    expect(sqliteRowCount(file, 'u')).toBe(writerRows);
    console.log(`${acked} walnut commits beside python3's ${writerRows} rows, ${r.walFrames} frames; repaired frames ${damaged.join(', ')}`);

    // a frame of python3's past the 4th segment, before walnut's last group: no group covers it,
    // so recovery keeps what SQLite's keeps, and says where and why
    const foreign = Array.from({ length: lastWalnut - segmentEnd(3) }, (_, i) => segmentEnd(3) + 1 + i).find((f) => !covered.has(f))!;
    expect(foreign, 'a python3 frame between walnut groups past the 4th segment').toBeDefined();
    flipByte(`${other}-wal`, frameAt(foreign) + 24 + 500);
    const sqlite = sqliteRecovers(other);
    expect(sqlite.frames).toBeLessThan(foreign);
    const fallen = await recoverWithRepair(other);
    expect(fallen).toMatchObject({ repairedFrames: 0, walFrames: sqlite.frames, fallback: { frame: foreign, reason: 'missing-group' } });
    expect(sqliteIntegrity(other)).toEqual(['ok']);
    expect({ t: sqliteRowCount(other, 't'), u: sqliteRowCount(other, 'u') }).toEqual({ t: sqlite.t, u: sqlite.u });
  });
});
