// walnut/sql against better-sqlite3, statement by statement: fast-check makes sequences of
// run/get/all/transaction calls (inserts, upserts, INSERT OR IGNORE/REPLACE, a WITHOUT ROWID
// table, a trigger, RETURNING through get/all, constraint failures, last_insert_rowid()), all
// made at once without awaiting one before the next, and each call's answer (rows, changes,
// lastInsertRowid, the error's message) and the final tables must be what better-sqlite3 answers
// running them one after another. Reads that go to a read connection see the durable state as
// they start (README), so with readConnections 2 only the writes' and the writer-only reads'
// answers are compared call by call. This found writes through get()/all() applied out of call
// order (sql-write-through-get-order) and run()'s changes of non-DML statements (sql-run-changes).
import * as path from 'node:path';
import { inspect } from 'node:util';

import Database from 'better-sqlite3';
import * as fc from 'fast-check';
import { expect, test } from 'vitest';

import { openDatabase } from '../../lib/sql';
import { tmpDir } from '../helpers/tmp';

const SCHEMA =
  "CREATE TABLE t(k INTEGER PRIMARY KEY, v TEXT NOT NULL CHECK (v <> 'bad'), n INTEGER DEFAULT 0); CREATE TABLE u(x); " +
  'CREATE TABLE w(k, v, PRIMARY KEY (k, v)) WITHOUT ROWID; CREATE TABLE log(m); CREATE TRIGGER tt AFTER INSERT ON t BEGIN INSERT INTO log VALUES (new.v); END';
const WRITES = [
  'INSERT INTO t(k, v) VALUES (?, ?)',
  'INSERT OR IGNORE INTO t(k, v) VALUES (?, ?)',
  'INSERT OR REPLACE INTO t(k, v) VALUES (?, ?)',
  'INSERT INTO t(k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = v || excluded.v',
  'UPDATE t SET v = ? WHERE k = ?',
  'DELETE FROM t WHERE k = ? OR v = ?',
  'INSERT INTO u(x) VALUES (?), (?)',
  'INSERT INTO w(k, v) VALUES (?, ?)',
  'CREATE TABLE IF NOT EXISTS e(a)',
];
const READS = [
  'SELECT * FROM t ORDER BY k',
  'SELECT count(*) AS c, sum(n) AS s FROM t WHERE k <> ? AND v <> ?',
  'SELECT * FROM u ORDER BY rowid',
  'SELECT count(*) AS c FROM log',
  'SELECT last_insert_rowid() AS l, changes() AS c',
  'INSERT INTO u(x) VALUES (?), (?) RETURNING rowid, x',
  "INSERT INTO t(k, v) VALUES (?, ?) RETURNING k, v || '!' AS shout",
];
const onWriter = (sql: string): boolean => /RETURNING|last_insert_rowid/.test(sql);

type Call = ['run' | 'get' | 'all', string, number, string] | ['tx', [string, number, string][], boolean];

const call: fc.Arbitrary<Call> = fc.oneof(
  fc.tuple(fc.constant('run' as const), fc.constantFrom(...WRITES), fc.integer({ min: 0, max: 5 }), fc.constantFrom('a', 'b', 'bad')),
  fc.tuple(fc.constantFrom('get' as const, 'all' as const), fc.constantFrom(...READS), fc.integer({ min: 0, max: 5 }), fc.constantFrom('a', 'b')),
  fc.tuple(fc.constant('tx' as const), fc.array(fc.tuple(fc.constantFrom(...WRITES.slice(0, 8)), fc.integer({ min: 0, max: 5 }), fc.constantFrom('a', 'bad'))), fc.boolean()),
);

function params(sql: string, k: number, v: string): unknown[] {
  if (sql.startsWith('UPDATE t SET v')) return [v, k];
  return [k, v].slice(0, (sql.match(/\?/g) ?? []).length);
}

const show = (x: unknown): string => inspect(x, { depth: 5 });
const message = (e: unknown): string => `error: ${(e as Error).message.replace(/^WALNUT_\w+: /, '')}`;

test.each([0, 2])('calls made at once answer as better-sqlite3 running them in order (readConnections %i)', async (readConnections) => {
  const dir = tmpDir();
  let n = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(call, { maxLength: 20 }), async (calls) => {
      const db = await openDatabase(path.join(dir, `diff-${n++}.db`), { readConnections });
      const native = new Database(':memory:');
      try {
        await db.exec(SCHEMA);
        native.exec(SCHEMA);
        const pending = calls.map((c) => {
          const p: Promise<unknown> =
            c[0] === 'tx'
              ? db.transaction(async (tx) => {
                  const out = [];
                  for (const [sql, k, v] of c[1]) out.push(await tx.run(sql, params(sql, k, v) as never));
                  if (c[2]) throw new Error('fn threw');
                  return out;
                })
              : db[c[0]](c[1], params(c[1], c[2], c[3]) as never);
          return p.then((r) => r, message);
        });
        const expected = calls.map((c) => {
          try {
            if (c[0] === 'tx') {
              return native.transaction(() => {
                const out = c[1].map(([sql, k, v]) => native.prepare(sql).run(params(sql, k, v)));
                if (c[2]) throw new Error('fn threw');
                return out;
              })();
            }
            const stmt = native.prepare(c[1]);
            return stmt[c[0]](params(c[1], c[2], c[3]));
          } catch (e) {
            return message(e);
          }
        });
        const got = await Promise.all(pending);
        for (let i = 0; i < calls.length; i++) {
          const c = calls[i]!;
          if (readConnections > 0 && c[0] !== 'tx' && c[0] !== 'run' && !onWriter(c[1])) continue;
          expect(show(got[i]), `call ${i}: ${show(c)}`).toBe(show(expected[i]));
        }
        for (const q of ['SELECT * FROM t ORDER BY k', 'SELECT rowid, * FROM u ORDER BY rowid', 'SELECT * FROM w', 'SELECT rowid, * FROM log', "SELECT name FROM sqlite_schema WHERE name = 'e'"]) {
          expect(show(await db.all(q)), q).toBe(show(native.prepare(q).all()));
        }
      } finally {
        native.close();
        await db.close();
      }
    }),
    { numRuns: 60 },
  );
});
