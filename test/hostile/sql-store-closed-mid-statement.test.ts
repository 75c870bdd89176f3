// walnut/sql whose store is closed (db.store.close()) while its writer keeps the view of its last
// transaction (kept across back-to-back transactions, commit-pipeline.ts) — found racing
// checkpoint('truncate') against close() with walnut/sql callers in flight. The next statement's
// SQLite step called the VFS (xFileControl COMMIT_ATOMIC_WRITE, or xLock RESERVED on the kept
// view), whose staleness check asks store.dataVersion(), which throws WALNUT_CLOSED once close()
// began. That exception unwound through SQLite's wasm stack: the statement was left running and
// its write transaction open inside SQLite. Then (deterministic, every run here):
//  - that run rejected WALNUT_CLOSED, but the next db.run() RESOLVED — its INSERT went into the
//    write transaction SQLite still had open, which is never committed: an acknowledged row that
//    a reopen does not find;
//  - with the statement reused, runs rejected WALNUT_SQL sqliteCode 21 ("bad parameter or other
//    API misuse", its bind on a running statement) instead of WALNUT_CLOSED;
//  - db.close() rejected with wa-sqlite's own SQLiteError (code 5, "unable to close due to
//    unfinalized statements or unfinished backups"), not a WalnutError, and left the SQLite
//    connection open.
// Now the VFS reports that error as SQLite expects a VFS failure (SQLITE_IOERR, the error kept
// for the statement's rejection): every call after close() began rejects WALNUT_CLOSED,
// db.close() resolves, and what was acknowledged is what a reopen finds.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { WalnutError } from '../../lib/errors';
import { openDatabase } from '../../lib/sql';
import { expectNoUnhandledRejections } from '../helpers/outcomes';
import { tmpDir } from '../helpers/tmp';

expectNoUnhandledRejections();

const dir = tmpDir();
const outcome = (p: Promise<unknown>): Promise<string> =>
  p.then(
    () => 'ok',
    (e: unknown) => (e instanceof WalnutError ? `${e.code}${e.sqliteCode === undefined || e.code === 'WALNUT_CLOSED' ? '' : ` ${e.sqliteCode}`}` : `not a WalnutError: ${String(e)}`),
  );

describe('walnut/sql with its store closed under a kept view', () => {
  it('a statement right after db.store.close() began, then more: each rejects WALNUT_CLOSED, none resolves, db.close() resolves, the reopened database holds exactly the acknowledged rows', async () => {
    for (let trial = 0; trial < 5; trial++) {
      const file = path.join(dir, `kept-view-${trial}.db`);
      const db = await openDatabase(file, { readConnections: 0 });
      await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)');
      await db.run('INSERT INTO t(id, v) VALUES (?, 1)', [1]); // the writer keeps this transaction's view
      const closing = db.store.close();
      const during = await outcome(db.run('INSERT INTO t(id, v) VALUES (?, 2)', [2]));
      await closing;
      const after = [await outcome(db.run('INSERT INTO t(id, v) VALUES (?, 3)', [3])), await outcome(db.run('INSERT INTO t(id, v) VALUES (?, 4)', [4]))];
      expect({ during, after }, `trial ${trial}`).toEqual({ during: 'WALNUT_CLOSED', after: ['WALNUT_CLOSED', 'WALNUT_CLOSED'] });
      expect(await outcome(db.close()), `trial ${trial}: db.close()`).toBe('ok');
      const again = await openDatabase(file);
      try {
        expect(await again.all('SELECT id FROM t'), `trial ${trial}`).toEqual([{ id: 1 }]);
      } finally {
        await again.close();
      }
    }
  });

  it('4 callers inserting back to back when db.store.close() is called: each stops at WALNUT_CLOSED (never WALNUT_SQL), db.close() resolves, every acknowledged row is there', async () => {
    for (const waitMs of [0, 1, 2, 5, 10]) {
      const file = path.join(dir, `callers-${waitMs}.db`);
      const db = await openDatabase(file, { readConnections: 0 });
      await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)');
      let next = 1;
      const acked: number[] = [];
      const ends: string[] = [];
      const callers = Array.from({ length: 4 }, async () => {
        for (;;) {
          const id = next++;
          const o = await outcome(db.run('INSERT INTO t(id, v) VALUES (?, randomblob(300))', [id]));
          if (o !== 'ok') return void ends.push(o);
          acked.push(id);
        }
      });
      await new Promise((r) => setTimeout(r, waitMs));
      await db.store.close();
      await Promise.all(callers);
      expect(ends, `after ${waitMs} ms`).toEqual(Array(4).fill('WALNUT_CLOSED'));
      expect(await outcome(db.close()), `after ${waitMs} ms: db.close()`).toBe('ok');
      const again = await openDatabase(file);
      try {
        const ids = ((await again.all('SELECT id FROM t')) as { id: number }[]).map((r) => r.id);
        expect(ids.sort((a, b) => a - b), `after ${waitMs} ms`).toEqual(acked.sort((a, b) => a - b));
      } finally {
        await again.close();
      }
    }
  });
});
