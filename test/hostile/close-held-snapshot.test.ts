// README: close() releases the snapshots still held ("their reads then reject with
// WALNUT_CLOSED"), and the last connection's close() checkpoints and removes the -wal and -shm
// (unless keepWal). A snapshot the caller forgot to release (taken before later commits) kept
// its read mark through that closing checkpoint, which then stopped at the snapshot's frame:
// close() resolved leaving the -wal and -shm behind, the later commits only in the WAL. Now the
// snapshots are let go before the closing checkpoint: the files go, every commit is in the
// database file (sqlite3 reads it, integrity ok), and the snapshot's reads reject WALNUT_CLOSED.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import { Database } from '../helpers/sqlite';
import { oneRowWalDatabase } from '../helpers/sqlite-db';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const PAGE = 4096;

/** A WAL-mode database SQLite built (table t, one row), with nothing left in a -wal. */
const sqliteDb = (name: string): string => oneRowWalDatabase(path.join(dir, name), PAGE);

const companions = (db: string) => ['-wal', '-shm'].filter((s) => fs.existsSync(db + s));

describe('close() with a snapshot still held', () => {
  for (const how of ['snapshot', 'trySnapshotSync', 'snapshotSync', 'begin']) {
    it(`(${how}) still checkpoints and removes the -wal and -shm as the last connection`, async () => {
      const db = sqliteDb(`${how}.db`);
      const page1 = Buffer.from(fs.readFileSync(db).subarray(0, PAGE));
      const store = await open(db);
      await store.commit([{ pgno: 1, data: page1 }]);
      const held =
        how === 'snapshot' ? await store.snapshot() : how === 'trySnapshotSync' ? store.trySnapshotSync()! : how === 'snapshotSync' ? store.snapshotSync() : null;
      const tx = how === 'begin' ? store.begin() : null;
      if (tx !== null) await tx.read(2);
      // later commits: the held view stops below them
      for (let i = 0; i < 3; i++) await store.commit([{ pgno: 3 + i, data: Buffer.alloc(PAGE, i + 1) }]);
      await store.close();
      expect(companions(db)).toEqual([]);
      if (held !== null) await expect(held.read(1)).rejects.toMatchObject({ code: 'WALNUT_CLOSED' });
      if (tx !== null) await expect(tx.read(1)).rejects.toMatchObject({ code: 'WALNUT_CLOSED' });
      // every commit is in the database file itself
      expect(fs.statSync(db).size).toBe(5 * PAGE);
      expect(fs.readFileSync(db).subarray(4 * PAGE, 5 * PAGE).equals(Buffer.alloc(PAGE, 3))).toBe(true);
      expect(execFileSync('sqlite3', [db, 'PRAGMA integrity_check; SELECT count(*) FROM t'], { encoding: 'utf8' })).toBe('ok\n1\n');
    });
  }

  it('keepWal still keeps them, and another connection still open keeps them too', async () => {
    const db = sqliteDb('other.db');
    const page1 = Buffer.from(fs.readFileSync(db).subarray(0, PAGE));
    const other = new Database(db);
    other.prepare('SELECT count(*) FROM t').get();
    const store = await open(db);
    store.trySnapshotSync();
    await store.commit([{ pgno: 1, data: page1 }]);
    await store.close();
    expect(companions(db)).toEqual(['-wal', '-shm']);
    other.close();
    const kept = sqliteDb('kept.db');
    const s2 = await open(kept, { keepWal: true });
    s2.trySnapshotSync();
    await s2.commit([{ pgno: 1, data: Buffer.from(fs.readFileSync(kept).subarray(0, PAGE)) }]);
    await s2.close();
    expect(companions(kept)).toEqual(['-wal', '-shm']);
  });
});
