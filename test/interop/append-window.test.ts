// The append window beside sqlite3 writers (issue #19): an append whose wal-index header is
// still the one this connection published skips its native re-check of the WAL (header, size,
// next slot). These are the changes SQLite's protocol allows another process to make between two
// of walnut's commits, each followed by walnut commits, each then read back by sqlite3 through
// the -shm and through a recovery of a copy of the files (the WAL's checksum chain as written):
//  - a writer that spilled frames of a transaction into the WAL (cache_size 2) and rolled it
//    back: frames of this generation after mxFrame, the header unchanged; walnut writes over
//    them, as SQLite's next writer does;
//  - a commit (a new header: walnut re-reads the window);
//  - a TRUNCATE checkpoint (the WAL cut to 0 bytes, a new generation).
// And outside the protocol: a WAL cut shorter, or its header rewritten in place (same size),
// without the lock after walnut's own commit (the wal-index header unchanged) is still refused by
// the header and size checks the append keeps: nothing is written into a hole or under a header
// whose salts disown the new frames (acknowledged, then dropped by the next recovery).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { inspect, open } from '../../lib/index';
import { openDatabase, type Database } from '../../lib/sql';
import { pythonSqlite } from '../helpers/children';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { expectSameAfterRecovery } from '../helpers/sqlite-db';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

const cli = (file: string, sql: string): string => execFileSync('sqlite3', [file, sql], { encoding: 'utf8' }).trim();

/** Rows per writer tag, as sqlite3 reads them from `file`. */
function rowsByWriter(file: string): string {
  return cli(file, 'SELECT w, count(*) FROM t GROUP BY w ORDER BY w;').replace(/\n/g, ' ');
}

/** The -shm header's mxFrame (native byte order) and whether WAL slot mxFrame + 1 holds a frame of the WAL's generation. */
function slotAfterLastCommit(file: string, pageSize: number): { mxFrame: number; liveFrameAfter: boolean } {
  const mxFrame = fs.readFileSync(`${file}-shm`).readUInt32LE(16);
  const wal = fs.readFileSync(`${file}-wal`);
  const at = 32 + mxFrame * (24 + pageSize);
  const slot = wal.subarray(at, at + 24);
  return { mxFrame, liveFrameAfter: slot.length === 24 && slot.readUInt32BE(0) !== 0 && slot.subarray(8, 16).equals(wal.subarray(16, 24)) };
}

async function insert(db: Database, w: number, rows: number): Promise<void> {
  for (let i = 0; i < rows; i++) await db.run('INSERT INTO t(w, v) VALUES (?, randomblob(200))', [w]);
}

describe('walnut commits between changes another process makes to the WAL', () => {
  it('over frames a rolled-back sqlite3 transaction spilled, after a sqlite3 commit, after a TRUNCATE checkpoint: every row as committed, the WAL chain valid', async () => {
    const file = path.join(dir, 'window.db');
    const db = await openDatabase(file, { autoCheckpoint: false });
    try {
      await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, w INTEGER, v BLOB)');
      await insert(db, 1, 5); // the lone committer's own commits: the window is its own

      // a spilled transaction, rolled back: frames of this generation after mxFrame, header unchanged
      const before = fs.readFileSync(`${file}-shm`).subarray(0, 48);
      await pythonSqlite(file, "c.execute('PRAGMA cache_size = 2')\nc.execute('BEGIN IMMEDIATE')\nfor i in range(200): c.execute('INSERT INTO t(w, v) VALUES (9, randomblob(3000))')\nc.execute('ROLLBACK')");
      expect(fs.readFileSync(`${file}-shm`).subarray(0, 48).equals(before)).toBe(true);
      expect(slotAfterLastCommit(file, 4096).liveFrameAfter).toBe(true); // the case is real
      await insert(db, 1, 5);
      expectSameAfterRecovery(file, rowsByWriter, '1|10');

      await pythonSqlite(file, "c.execute('INSERT INTO t(w, v) VALUES (2, randomblob(200))')");
      await insert(db, 1, 5);
      expectSameAfterRecovery(file, rowsByWriter, '1|15 2|1');

      expect(await pythonSqlite(file, "print(c.execute('PRAGMA wal_checkpoint(TRUNCATE)').fetchone())")).toBe('(0, 0, 0)');
      expect(fs.statSync(`${file}-wal`).size).toBe(0);
      await insert(db, 1, 5);
      await pythonSqlite(file, "c.execute('INSERT INTO t(w, v) VALUES (2, randomblob(200))')");
      await insert(db, 1, 5);
      expectSameAfterRecovery(file, rowsByWriter, '1|25 2|2');
      expect((await db.get('SELECT count(*) AS n FROM t')) as { n: number }).toEqual({ n: 27 });
    } finally {
      await db.close();
    }
    expect(rowsByWriter(file)).toBe('1|25 2|2');
  });

  it('a WAL cut shorter without the lock after this store\'s own commit: the next commit is refused (WALNUT_CORRUPT), the file not written past the cut', async () => {
    const file = path.join(dir, 'cut.db');
    const store = await open(file, { autoCheckpoint: false });
    try {
      await store.commit(Array.from({ length: 40 }, (_, k) => ({ pgno: 2 + k, data: Buffer.alloc(4096, 1 + k) })));
      await store.commit([{ pgno: 2, data: Buffer.alloc(4096, 99) }]);
      const cut = 32 + 20 * (24 + 4096);
      fs.truncateSync(`${file}-wal`, cut);
      await expectRejectsWalnut(store.commit([{ pgno: 3, data: Buffer.alloc(4096, 98) }]), 'WALNUT_CORRUPT');
      expect(fs.statSync(`${file}-wal`).size).toBe(cut);
    } finally {
      await store.close().catch(() => undefined);
    }
  });
  // Its checksum no longer matches: SQLite's recovery would read the WAL as empty. Before
  // 70ddb05 the next commit was refused (WALNUT_CORRUPT) and a reopen lost every commit in the WAL;
  // now the commit, holding WRITE, restores the header the live index and frame 1 pin down
  // (README, FEC: "A header damaged under a running store") and goes on.
  it('a WAL header rewritten in place without the lock after this store\'s own commit (salt-1 changed, same size, checksum now wrong): the next commit restores the header byte for byte and lands after the earlier ones', async () => {
    const file = path.join(dir, 'rewritten.db');
    const store = await open(file, { autoCheckpoint: false, keepWal: true });
    let original: Buffer;
    try {
      await store.commit([{ pgno: 2, data: Buffer.alloc(4096, 1) }]);
      await store.commit([{ pgno: 2, data: Buffer.alloc(4096, 2) }]);
      original = fs.readFileSync(`${file}-wal`).subarray(0, 32);
      const fd = fs.openSync(`${file}-wal`, 'r+');
      const salt1 = Buffer.alloc(4);
      fs.readSync(fd, salt1, 0, 4, 16);
      salt1.writeUInt32BE((salt1.readUInt32BE(0) + 1) >>> 0);
      fs.writeSync(fd, salt1, 0, 4, 16);
      fs.closeSync(fd);
      const r = await store.commit([{ pgno: 3, data: Buffer.alloc(4096, 3) }]);
      expect(r.firstFrame).toBe(3);
      expect(fs.readFileSync(`${file}-wal`).subarray(0, 32).equals(original)).toBe(true);
    } finally {
      await store.close().catch(() => undefined);
    }
    // recovery from the files alone (what the next connection, SQLite's included, does) finds
    // the header valid and all three commits
    const report = inspect(file);
    expect(report.walHeaderStatus).toBe('ok');
    expect(report.commits).toBe(3);
    expect(report.dbPages).toBe(3);
  });
});
