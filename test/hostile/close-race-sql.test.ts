// walnut/sql's verbs raced against db.close(), for the ones interop/sql's 'close racing queries'
// (20 run()s before close(), a get() after it, all() and transaction() once closed) and the
// sql-close-* tests do not race: exec, run, get, all, prepare, transaction, and a Statement's
// run, get and all, each called in the same tick just before close(), in the same tick just
// after it, after close() began (one setImmediate) and after it resolved, with close() called
// twice; the getters (open, path, store, conflictRetries, leasedRetries) at each of those; and
// db.close() with db.store.close() in the same tick, in both orders.
// Asserted for every case: every call settles within a hang guard; a call made before close()
// finishes (README: the calls made before close() finish), one made after it began rejects
// WALNUT_CLOSED; close() resolves (both calls the same promise); no unhandled rejection; the
// rows of the writes that resolved are there after the close, those that rejected are not, and
// sqlite3's PRAGMA integrity_check is ok.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { openDatabase, type Database } from '../../lib/sql';
import { call, expectNoUnhandledRejections, settle } from '../helpers/outcomes';
import { Database as Sqlite } from '../helpers/sqlite';
import { sqliteIntegrity } from '../helpers/sqlite-db';
import { tmpDir } from '../helpers/tmp';

expectNoUnhandledRejections();

const dir = tmpDir();
let n = 0;

/** The values of table t once every connection has closed (sqlite3 reads the file). */
function rows(file: string): string[] {
  expect(sqliteIntegrity(file)).toEqual(['ok']);
  const db = new Sqlite(file, { readonly: true });
  try {
    return (db.prepare('SELECT v FROM t ORDER BY id').all() as { v: string }[]).map((r) => r.v);
  } finally {
    db.close();
  }
}

type When = 'same tick, before close()' | 'same tick, after close()' | 'after close() began' | 'after close() resolved';
const WHEN: When[] = ['same tick, before close()', 'same tick, after close()', 'after close() began', 'after close() resolved'];

interface Verb {
  name: string;
  /** Runs the verb; `v` is the value a write inserts. `stmt`: an INSERT prepared before the race. */
  run: (db: Database, v: string, stmt: Awaited<ReturnType<Database['prepare']>>) => unknown;
  /** It inserts `v` when it resolves. */
  writes?: boolean;
  /** The SQL of `stmt` (default: an INSERT of one value). */
  prepared?: string;
}

const VERBS: Verb[] = [
  { name: 'exec', writes: true, run: (db, v) => db.exec(`INSERT INTO t(v) VALUES ('${v}')`) },
  { name: 'run', writes: true, run: (db, v) => db.run('INSERT INTO t(v) VALUES (?)', [v]) },
  { name: 'get', run: (db) => db.get('SELECT count(*) AS n FROM t') },
  { name: 'all', run: (db) => db.all('SELECT v FROM t') },
  { name: 'get of an UPDATE ... RETURNING', run: (db) => db.get("UPDATE t SET v = v WHERE id = 1 RETURNING v") },
  { name: 'prepare', run: (db) => db.prepare('SELECT v FROM t WHERE id = ?') },
  { name: 'transaction', writes: true, run: (db, v) => db.transaction(async (tx) => { await tx.run('INSERT INTO t(v) VALUES (?)', [v]); return tx.get('SELECT 1 AS one'); }) },
  { name: 'statement.run (prepared before)', writes: true, run: (_db, v, stmt) => stmt.run([v]) },
  { name: 'statement.get (prepared before)', prepared: 'SELECT v FROM t WHERE id = ?', run: (_db, _v, stmt) => stmt.get([1]) },
  { name: 'statement.all (prepared before)', prepared: 'SELECT v FROM t WHERE id > ?', run: (_db, _v, stmt) => stmt.all([0]) },
];

describe('walnut/sql verbs against db.close()', () => {
  for (const verb of VERBS) {
    it(`${verb.name}: made before close() it finishes, after close() began it is WALNUT_CLOSED; close() resolves; the rows are the acknowledged ones`, async () => {
      for (const when of WHEN) {
        const file = path.join(dir, `q${n++}.db`);
        const db = await openDatabase(file);
        await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)');
        await db.run("INSERT INTO t(v) VALUES ('first')");
        const stmt = await db.prepare(verb.prepared ?? 'INSERT INTO t(v) VALUES (?)');
        const v = `${verb.name} ${when}`;
        let running: Promise<unknown> | null = null;
        const start = () => verb.run(db, v, stmt);
        if (when === 'same tick, before close()') running = call(start);
        const closing = [db.close()];
        if (when === 'same tick, after close()') running = call(start);
        closing.push(db.close());
        expect(closing[1], 'close() twice: the same promise').toBe(closing[0]);
        if (when === 'after close() began') {
          await new Promise((resolve) => setImmediate(resolve));
          running = call(start);
        }
        if (when === 'after close() resolved') {
          await closing[0];
          running = call(start);
        }
        const [r, c] = await Promise.all([settle(running!, `${verb.name} ${when}`), settle(closing[0]!, `close() ${when}`)]);
        expect(c, `${when}: close()`).toEqual({ ok: true, value: undefined });
        if (when === 'same tick, before close()') expect(r, `${when}: ${r.ok ? '' : r.message}`).toMatchObject({ ok: true });
        else expect(r, `${when}: ${r.ok ? 'resolved' : r.message}`).toMatchObject({ ok: false, code: 'WALNUT_CLOSED', walnut: true });
        expect(db.open).toBe(false);
        expect(rows(file), when).toEqual(verb.writes && r.ok ? ['first', v] : ['first']);
      }
    });
  }

  it('the getters (open, path, store, conflictRetries, leasedRetries) answer before, during and after close()', async () => {
    for (const when of WHEN) {
      const file = path.join(dir, `g${n++}.db`);
      const db = await openDatabase(file);
      await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)');
      const read = () => [db.open, db.path, typeof db.store, db.conflictRetries, db.leasedRetries];
      const seen: unknown[][] = [];
      if (when === 'same tick, before close()') seen.push(read());
      const closing = db.close();
      if (when !== 'same tick, before close()') {
        if (when === 'after close() began') await new Promise((resolve) => setImmediate(resolve));
        if (when === 'after close() resolved') await closing;
        seen.push(read());
      }
      await settle(closing, 'close()');
      expect(seen[0]!.slice(1)).toEqual([db.path, 'object', 0, 0]);
      expect(seen[0]![0], when).toBe(when === 'same tick, before close()');
      expect(rows(file)).toEqual([]);
    }
  });

  for (const order of ['db.close() then db.store.close()', 'db.store.close() then db.close()'] as const) {
    it(`${order} in the same tick, with writes in flight: both resolve, each write is acknowledged (and there) or WALNUT_CLOSED, later verbs WALNUT_CLOSED`, async () => {
      const file = path.join(dir, `b${n++}.db`);
      const db = await openDatabase(file);
      await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)');
      const writes = Array.from({ length: 8 }, (_, k) => settle(db.run('INSERT INTO t(v) VALUES (?)', [`w${k}`]), `run ${k}`));
      const tx = settle(db.transaction(async (t) => t.run("INSERT INTO t(v) VALUES ('tx')")), 'transaction');
      const closes = order === 'db.close() then db.store.close()' ? [db.close(), db.store.close()] : [db.store.close(), db.close()];
      const [a, b] = await Promise.all(closes.map((c) => settle(c, 'close')));
      expect([a, b]).toEqual([{ ok: true, value: undefined }, { ok: true, value: undefined }]);
      const outcomes = await Promise.all([...writes, tx]);
      for (const o of outcomes) if (!o.ok) expect(o, o.message).toMatchObject({ code: 'WALNUT_CLOSED', walnut: true });
      await expect(db.run("INSERT INTO t(v) VALUES ('late')")).rejects.toMatchObject({ code: 'WALNUT_CLOSED' });
      const acked = [...outcomes.slice(0, 8).flatMap((o, k) => (o.ok ? [`w${k}`] : [])), ...(outcomes[8]!.ok ? ['tx'] : [])];
      expect(rows(file).sort()).toEqual(acked.sort());
    });
  }
});
