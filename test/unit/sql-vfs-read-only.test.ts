// The walnut VFS of a database opened read-only (lib/sql/walnut-vfs.ts, `readOnly`) refuses a
// write on its own, whatever SQLite asks: openDatabase opens such a database's writer connection
// SQLITE_OPEN_READONLY, so SQLite never asks, and this is the second line. Here SQLite is opened
// read-write on a VFS registered read-only: reads work, a write's lock is refused
// (SQLITE_READONLY, the error behind it WALNUT_READONLY: sqliteFailure), nothing reaches the
// store (no commit sequenced, no WAL frame) and the file keeps every byte.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import { CommitPipeline } from '../../lib/sql/commit-pipeline';
import { sqliteFailure } from '../../lib/sql/connection';
import { loadEngine } from '../../lib/sql/engine';
import { registerWalnutVfs } from '../../lib/sql/walnut-vfs';
import { openDatabase } from '../../lib/sql';
import { tmpDir } from '../helpers/tmp';

it('a VFS registered read-only refuses the write lock of a SQLite connection opened read-write: SQLITE_READONLY, WALNUT_READONLY behind it, nothing written', async () => {
  const file = path.join(tmpDir(), 'vfs-read-only.db');
  const made = await openDatabase(file, { keepWal: true });
  await made.exec("CREATE TABLE t(v); INSERT INTO t VALUES ('a')");
  await made.close();
  const bytes = { db: fs.readFileSync(file), wal: fs.readFileSync(`${file}-wal`) };

  const store = await open(file, { keepWal: true, autoCheckpoint: false });
  const pipeline = new CommitPipeline(store);
  const engine = await loadEngine();
  const vfs = registerWalnutVfs(engine, 'walnut', store, pipeline, 'writer', { reason: 'ReadOnlyDatabase', why: 'opened read-only for this test' });
  const { C, sqlite3 } = engine;
  const db = (await sqlite3.open_v2(store.path, C.SQLITE_OPEN_READWRITE! | C.SQLITE_OPEN_CREATE!, 'walnut')) as number;
  try {
    await sqlite3.exec(db, 'PRAGMA journal_mode=MEMORY');
    const rows: unknown[][] = [];
    await sqlite3.exec(db, 'SELECT v FROM t', (row: unknown[]) => void rows.push(row));
    expect(rows).toEqual([['a']]);
    for (const sql of ["INSERT INTO t VALUES ('b')", 'CREATE TABLE u(a)', 'BEGIN IMMEDIATE']) {
      vfs.lastError = null;
      const e = await sqlite3.exec(db, sql).then(() => null, (err: unknown) => err);
      expect(e, sql).not.toBeNull();
      expect((e as { code: number }).code & 0xff, sql).toBe(C.SQLITE_READONLY);
      expect(vfs.lastError, sql).toMatchObject({ code: 'WALNUT_READONLY', reason: 'ReadOnlyDatabase' });
      expect(sqliteFailure(e, vfs, store.path), sql).toMatchObject({ code: 'WALNUT_READONLY', reason: 'ReadOnlyDatabase', sqliteCode: C.SQLITE_READONLY });
      expect(sqlite3.get_autocommit(db), sql).not.toBe(0); // no transaction left open
    }
    expect(vfs.takeDurability()).toBeNull(); // nothing sequenced
    expect(pipeline.commitsInFlight).toBe(0);
  } finally {
    await sqlite3.close(db);
    await store.close();
  }
  expect(fs.readFileSync(file).equals(bytes.db)).toBe(true);
  expect(fs.readFileSync(`${file}-wal`).equals(bytes.wal)).toBe(true);
});
