// PRAGMA wal_checkpoint and wal_autocheckpoint through walnut/sql. SQLite in wasm runs in rollback
// mode over walnut's WAL (sql/walnut-vfs.ts), so it took both and did nothing: `PRAGMA
// wal_checkpoint(TRUNCATE)` answered 0|-1|-1 (SQLite's answer for a database not in WAL mode)
// and left the WAL as long as it was, `PRAGMA wal_autocheckpoint=0` answered 0 and the store
// went on checkpointing. An application that runs either (to bound its WAL, or before a backup)
// was told nothing. Both are refused now (WALNUT_INVALID_ARGUMENT, reason wal_checkpoint /
// wal_autocheckpoint), the message naming what does it: db.store.checkpoint(mode) and the
// autoCheckpoint option. Nothing else changes: the database stays as it was.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { expect, it } from 'vitest';

import { openDatabase } from '../../lib/sql';
import { tmpDir } from '../helpers/tmp';

it('walnut/sql refuses PRAGMA wal_checkpoint and wal_autocheckpoint, naming store.checkpoint() and the autoCheckpoint option', async () => {
  const file = path.join(tmpDir(), 'wal-pragmas.db');
  const db = await openDatabase(file, { autoCheckpoint: false });
  try {
    await db.exec('CREATE TABLE t(x)');
    for (let i = 0; i < 20; i++) await db.run('INSERT INTO t VALUES (?)', [i]);
    const walBytes = fs.statSync(`${file}-wal`).size;
    expect(walBytes).toBeGreaterThan(0);
    for (const sql of ['PRAGMA wal_checkpoint', 'PRAGMA main.wal_checkpoint', 'PRAGMA wal_checkpoint(PASSIVE)', 'PRAGMA wal_checkpoint(full)', 'PRAGMA wal_checkpoint(RESTART)', 'PRAGMA wal_checkpoint(TRUNCATE)']) {
      for (const verb of ['get', 'all', 'exec'] as const) {
        const e = await db[verb](sql).then(() => null, (err: unknown) => err);
        expect(e, `${verb} ${sql}`).toMatchObject({ code: 'WALNUT_INVALID_ARGUMENT', reason: 'wal_checkpoint' });
        expect((e as Error).message).toMatch(/store\.checkpoint/);
      }
    }
    for (const sql of ['PRAGMA wal_autocheckpoint', 'PRAGMA wal_autocheckpoint=0', 'PRAGMA main.wal_autocheckpoint = 100']) {
      const e = await db.get(sql).then(() => null, (err: unknown) => err);
      expect(e, sql).toMatchObject({ code: 'WALNUT_INVALID_ARGUMENT', reason: 'wal_autocheckpoint' });
      expect((e as Error).message).toMatch(/autoCheckpoint/);
    }
    // refused, nothing done: the WAL is as long as before; the database goes on
    expect(fs.statSync(`${file}-wal`).size).toBe(walBytes);
    await db.run('INSERT INTO t VALUES (20)');
    const done = await db.store.checkpoint('truncate');
    expect(done.busy).toBe(false);
    expect(fs.statSync(`${file}-wal`).size).toBe(0);
    expect(await db.get('SELECT count(*) AS n FROM t')).toEqual({ n: 21 });
    await db.close();
  } finally {
    if (db.open) await db.close().catch(() => undefined);
  }
  expect(execFileSync('sqlite3', [file, 'SELECT count(*) FROM t; PRAGMA integrity_check'], { encoding: 'utf8' }).trim()).toBe('21\nok');
}, 60_000);
