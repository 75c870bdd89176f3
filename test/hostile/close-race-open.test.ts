// open() and openDatabase() of a database against close() of its last connection in this process,
// at every interleaving of outcomes.ts CLOSE_INTERLEAVINGS (closeRaces; also 0, 2 and 5 ms into
// close()). The closing connection is the last one: its close() checkpoints the WAL (2,000 rows
// in it, or a 16,000+-frame WAL of 512-byte pages SQLite wrote: 4+ wal-index segments, so the
// checkpoint takes a while) and removes the -wal and -shm, unless the opener's SHARED on the
// database file (taken before it opens or looks at the -wal and -shm) comes first; the opener
// waits for the closer's EXCLUSIVE within its busy timeout. A process restarting its store, or
// two parts of one program, do this.
// Asserted for every interleaving: both calls settle within a hang guard; close() resolves; the
// open resolves (none is refused: the busy timeout is far longer than the checkpoint); the new
// connection reads every row, and a row it then commits lands; after it closes too the -wal and
// -shm are gone (it is the last connection then), sqlite3 finds every row, integrity ok, no lock
// left; no unhandled rejection. And open() made once the closer is seen holding EXCLUSIVE: it
// waits, and opens the files the closer's checkpoint left (the closer's path, made certain).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open } from '../../lib';
import { DB_LOCK } from '../../lib/format/db-header';
import { WalnutFile } from '../../lib/io/file';
import { openDatabase, type Database } from '../../lib/sql';
import { copyWithWal, segmentEnd, sqliteLargeWal } from '../helpers/large-wal';
import { closeRaces, expectNoUnhandledRejections, type Outcome } from '../helpers/outcomes';
import { expectSqliteUnlocked, sqliteIntegrity, sqliteRowCount } from '../helpers/sqlite-db';
import { tmpDir } from '../helpers/tmp';

expectNoUnhandledRejections();

const dir = tmpDir();
const ROWS = 2000;
let n = 0;

/** A walnut/sql database with ROWS rows, all of them still in its WAL (no checkpoint yet). */
async function sqlDatabaseInWal(file: string): Promise<Database> {
  const db = await openDatabase(file, { autoCheckpoint: false });
  await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)');
  await db.transaction(async (tx) => {
    for (let i = 0; i < ROWS; i++) await tx.run('INSERT INTO t(v) VALUES (?)', [`row ${i} ${'x'.repeat(40)}`]);
  });
  return db;
}

/** What every case checks once both connections closed: the files gone, the rows there, no lock. */
function expectClosedWhole(file: string, rows: number, name: string): void {
  expect(fs.existsSync(`${file}-wal`), `${name}: a -wal left after the last close`).toBe(false);
  expect(fs.existsSync(`${file}-shm`), `${name}: a -shm left after the last close`).toBe(false);
  expect(sqliteIntegrity(file), name).toEqual(['ok']);
  expect(sqliteRowCount(file, 't'), name).toBe(rows);
  expectSqliteUnlocked(file);
}

/** Whether some connection holds the database file's EXCLUSIVE (the last connection's close, checkpointing and removing the -wal and -shm). */
function exclusiveHeld(file: string): boolean {
  const f = WalnutFile.openSync(file, { readOnly: true });
  try {
    return f.lockHolder(DB_LOCK.SHARED_FIRST, DB_LOCK.SHARED_SIZE, 'shared') !== null;
  } finally {
    f.closeSync();
  }
}

/**
 * Which call came first, by the WAL the opener found: the closer's (it checkpointed and removed
 * the -wal: the opener starts an empty one) or the opener's (the closer was not the last
 * connection: the frames are still there). (Not by the -wal's inode: a removed file's number is
 * given to the next file made at once.)
 */
function whoWon(walFramesAtOpen: number): string {
  return walFramesAtOpen === 0 ? 'close first (-wal checkpointed and removed, a new one made)' : 'open first (the -wal kept)';
}

function opened<T>(o: Outcome, name: string): T {
  expect(o, `${name}: the open (${o.ok ? 'resolved' : o.message})`).toMatchObject({ ok: true });
  return (o as { value: T }).value;
}

describe("openDatabase() against close() of the database's last connection in this process", () => {
  it('every interleaving: both resolve; the new connection reads every row and commits; nothing lost, the files go after its close', async () => {
    const seen: string[] = [];
    for (const [name, run] of closeRaces([0, 2, 5])) {
      const file = path.join(dir, `sql-${n++}.db`);
      const first = await sqlDatabaseInWal(file);
      const [o, closed] = await run(() => openDatabase(file), () => first.close());
      expect(closed, `${name}: close()`).toEqual({ ok: true, value: undefined });
      const second = opened<Database>(o, name);
      seen.push(`${name}: ${whoWon(second.store.metrics().walFrames)}`);
      expect(await second.get('SELECT count(*) AS n FROM t'), name).toEqual({ n: ROWS });
      await second.run("INSERT INTO t(v) VALUES ('after')");
      expect(await second.get('SELECT count(*) AS n FROM t'), name).toEqual({ n: ROWS + 1 });
      await second.close();
      expectClosedWhole(file, ROWS + 1, name);
    }
    console.log(`openDatabase() against the last close(): ${seen.join('; ')}`);
  });
});

describe("open() against close() of a store whose WAL SQLite grew past 16,000 frames (4+ wal-index segments)", () => {
  it('every interleaving, also while the closing checkpoint copies: both resolve; every row there, the new store commits; the files go after its close', async () => {
    const large = sqliteLargeWal(dir, 'large', 512, segmentEnd(3) + 100);
    const copy = path.join(dir, 'large-count.db');
    copyWithWal(large, copy);
    const rows = sqliteRowCount(copy, 't');
    const seen: string[] = [];
    for (const [name, run] of closeRaces([0, 2, 5])) {
      const file = path.join(dir, `store-${n++}.db`);
      copyWithWal(large, file);
      const first = await open(file, { autoCheckpoint: false });
      expect(first.metrics().walFrames, name).toBeGreaterThan(segmentEnd(3));
      const [o, closed] = await run(() => open(file, { autoCheckpoint: false }), () => first.close());
      expect(closed, `${name}: close()`).toEqual({ ok: true, value: undefined });
      const second = opened<Awaited<ReturnType<typeof open>>>(o, name);
      seen.push(`${name}: ${whoWon(second.metrics().walFrames)}`);
      // the new store sees the same database: its page 1 is the one the closing store had
      const snap = await second.snapshot();
      const page1 = await snap.read(1);
      snap.release();
      await second.commit([{ pgno: 1, data: page1 }]);
      await second.close();
      expectClosedWhole(file, rows, name);
    }
    console.log(`open() against the last close() of a 16,000+-frame WAL: ${seen.join('; ')}`);
  });

  it("open() once the closing connection holds EXCLUSIVE (its checkpoint of the 16,000+ frames under way): the open waits for it, then makes a new -wal; every row there", async () => {
    const large = sqliteLargeWal(dir, 'large-exclusive', 512, segmentEnd(3) + 100);
    const rows = sqliteRowCount(copyWithWal(large, path.join(dir, 'large-exclusive-count.db')), 't');
    let caught = 0;
    for (let round = 0; round < 5 && caught < 2; round++) {
      const file = path.join(dir, `exclusive-${n++}.db`);
      copyWithWal(large, file);
      const first = await open(file, { autoCheckpoint: false });
      let closed = false;
      const closing = first.close().finally(() => (closed = true));
      while (!closed && !exclusiveHeld(file)) await new Promise((resolve) => setImmediate(resolve));
      if (closed) continue; // (it was through before a turn of this loop saw it: another round)
      caught++;
      const second = await open(file, { autoCheckpoint: false });
      await closing;
      expect(whoWon(second.metrics().walFrames), 'all of it in the database file, a new -wal').toBe('close first (-wal checkpointed and removed, a new one made)');
      await second.close();
      expectClosedWhole(file, rows, `round ${round}`);
    }
    expect(caught, 'a close() caught holding EXCLUSIVE').toBeGreaterThan(0);
  });
});
