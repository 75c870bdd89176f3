// README: a run of commit batches keeps SQLite's WAL write lock (WRITE) for one turn of the event
// loop after its last commit resolved, so code that runs synchronously right after
// `await store.commit()` (better-sqlite3 in the same thread, a sqlite3 run with spawnSync)
// waits out its busy timeout: "let a turn pass first, `await new Promise(setImmediate)`", after
// which it "commits at once". Through walnut/sql that held; through store.commit(),
// tx.commit() and a sequenced commit's `durable`, the committer scheduled its own turn only
// after the caller's continuation had run, so the caller's one setImmediate came first and
// found WRITE still held: better-sqlite3 (busy timeout 50 ms) failed SQLITE_BUSY 50 times of 50.
// Now the turn is scheduled before the commits resolve: one setImmediate is enough.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open } from '../../lib/open';
import { openDatabase } from '../../lib/sql';
import { Database } from '../helpers/sqlite';
import { oneRowWalDatabase } from '../helpers/sqlite-db';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const PAGE = 4096;
const ROUNDS = 20;

/** A WAL-mode database SQLite built (table t, one row), with nothing left in a -wal. */
const sqliteDb = (name: string): string => oneRowWalDatabase(path.join(dir, name), PAGE);

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));
const pause = () => new Promise<void>((resolve) => setTimeout(resolve, 2));

describe('one setImmediate after a commit resolved lets a same-thread SQLite writer in', () => {
  for (const how of ['commit', 'transaction', 'sequence'] as const) {
    it(`after store.${how === 'transaction' ? 'begin() ... tx.commit()' : how === 'sequence' ? 'sequence(...).durable' : 'commit()'}`, async () => {
      const db = sqliteDb(`${how}.db`);
      const page1 = Buffer.from(fs.readFileSync(db).subarray(0, PAGE));
      const store = await open(db);
      const other = new Database(db, { timeout: 50 });
      const insert = other.prepare('INSERT INTO t VALUES (2)');
      let wrote = 0;
      for (let i = 0; i < ROUNDS; i++) {
        if (how === 'commit') await store.commit([{ pgno: 3, data: Buffer.alloc(PAGE, i) }, { pgno: 1, data: page1 }]);
        else if (how === 'sequence') await store.sequence([{ pgno: 3, data: Buffer.alloc(PAGE, i) }, { pgno: 1, data: page1 }]).durable;
        else {
          const tx = store.begin();
          await tx.read(3);
          tx.write(3, Buffer.alloc(PAGE, i));
          await tx.commit();
        }
        await turn();
        try {
          insert.run();
          wrote++;
        } catch (e) {
          expect((e as { code?: string }).code).toBe('SQLITE_BUSY');
        }
        await pause(); // the next commit must not meet better-sqlite3's commit still holding WRITE
      }
      other.close();
      await store.close();
      expect(wrote).toBe(ROUNDS);
    });
  }

  it('after walnut/sql db.run() (held before too)', async () => {
    const db = path.join(dir, 'sql.db');
    const sql = await openDatabase(db);
    await sql.exec('CREATE TABLE t(x)');
    const other = new Database(db, { timeout: 50 });
    let wrote = 0;
    for (let i = 0; i < ROUNDS; i++) {
      await sql.run('INSERT INTO t VALUES (1)');
      await turn();
      try {
        other.exec('INSERT INTO t VALUES (2)');
        wrote++;
      } catch (e) {
        expect((e as { code?: string }).code).toBe('SQLITE_BUSY');
      }
      await pause();
    }
    other.close();
    await sql.close();
    expect(wrote).toBe(ROUNDS);
  });
});
