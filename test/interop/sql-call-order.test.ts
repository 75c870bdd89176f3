// walnut/sql calls on a free writer start at once (database.ts #call, Serial.idle): run() on an
// idle database has sequenced its transaction when it returns (its promise still waits for
// durability), and the calls made after it — while it waits, or while one that failed or a
// transaction() holds the writer — queue behind it and run in call order. Concurrent callers
// still share group commits although each call runs to its commit at once (CommitPipeline
// #isAlone), also when their promise chains differ in length.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { openDatabase } from '../../lib/sql';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

describe('walnut/sql calls on a free writer', () => {
  it('run() on an idle database has sequenced its transaction when it returns; resolves once durable', async () => {
    const db = await openDatabase(path.join(dir, 'now.db'));
    try {
      await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v)');
      const insert = await db.prepare('INSERT INTO t(v) VALUES (?)');
      // a new turn of the event loop (a call made 10 ms into one waits for the next: TURN_MS)
      await new Promise((resolve) => setImmediate(resolve));
      const before = db.store.lastTicket;
      const ran = insert.run(['a']);
      expect(db.store.lastTicket).toBe(before + 1); // sequenced before run() returned
      expect(await ran).toEqual({ changes: 1, lastInsertRowid: 1 });
      expect(db.store.metrics().commits).toBeGreaterThanOrEqual(before + 1); // durable by then
      // a statement not prepared yet is prepared first (asynchronously), then runs
      const other = db.run('INSERT INTO t(v) VALUES (?)', ['b']);
      expect(await other).toEqual({ changes: 1, lastInsertRowid: 2 });
    } finally {
      await db.close();
    }
  });

  it('calls made while one failed, one waits for durability or a transaction holds the writer run after it, in call order', async () => {
    const db = await openDatabase(path.join(dir, 'order.db'), { readConnections: 0 });
    try {
      await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v)');
      await db.run('INSERT INTO t VALUES (1, ?)', ['first']);
      const outcomes: string[] = [];
      const note = (name: string, p: Promise<unknown>): Promise<unknown> =>
        p.then(
          () => void outcomes.push(`${name} ok`),
          (e: { code?: string }) => void outcomes.push(`${name} ${e.code}`),
        );
      let counted: unknown;
      const calls = [
        note('dup', db.run('INSERT INTO t VALUES (1, ?)', ['again'])), // UNIQUE: fails after a wait-free step
        note('two', db.run('INSERT INTO t VALUES (2, ?)', ['two'])),
        note(
          'tx',
          db.transaction(async (tx) => {
            await new Promise((resolve) => setImmediate(resolve)); // holds the writer across a turn
            await tx.run('UPDATE t SET v = v || ?', ['+tx']);
          }),
        ),
        note('three', db.run('INSERT INTO t VALUES (3, ?)', ['three'])),
        note('get', db.get('SELECT count(*) AS n FROM t').then((row) => (counted = row))),
      ];
      await Promise.all(calls);
      expect(outcomes.sort()).toEqual(['dup WALNUT_SQL', 'get ok', 'three ok', 'two ok', 'tx ok']);
      expect(counted).toEqual({ n: 3 }); // after 'three'
      // the transaction ran after 'two' and before 'three'
      expect(await db.all('SELECT id, v FROM t ORDER BY id')).toEqual([
        { id: 1, v: 'first+tx' },
        { id: 2, v: 'two+tx' },
        { id: 3, v: 'three' },
      ]);
      const dup = await db.run('INSERT INTO t VALUES (1, ?)', ['x']).catch((e: unknown) => e);
      await expectRejectsWalnut(Promise.reject(dup), 'WALNUT_SQL');
      expect(await db.get('SELECT count(*) AS n FROM t')).toEqual({ n: 3 });
    } finally {
      await db.close();
    }
  });

  it('concurrent callers with promise chains of unequal length share each group commit', async () => {
    const db = await openDatabase(path.join(dir, 'groups.db'));
    try {
      await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v)');
      const insert = await db.prepare('INSERT INTO t(v) VALUES (?)');
      const hops = async (n: number): Promise<void> => {
        for (let i = 0; i < n; i++) await null;
      };
      // How many join a batch depends on the scheduler: a caller whose next call comes once the
      // turn is past TURN_MS (10 ms; a loaded machine preempts this process that long now and
      // then) waits for the next turn and a later batch. So the share is taken over up to 3
      // rounds of 40 calls a caller, and holds if one round shows it; calls that never share a
      // batch (about 1 a batch) fail all three.
      let rows = 0;
      for (const callers of [2, 8]) {
        const shares: number[] = [];
        const enough = callers * 0.8;
        for (let attempt = 0; attempt < 3; attempt++) {
          const before = db.store.metrics();
          // caller w awaits 3w more microtasks between its calls than caller 0
          await Promise.all(
            Array.from({ length: callers }, async (_, w) => {
              for (let i = 0; i < 40; i++) {
                await insert.run([`${w}:${i}`]);
                await hops(3 * w);
              }
            }),
          );
          rows += callers * 40;
          const after = db.store.metrics();
          shares.push((after.commits - before.commits) / (after.batches - before.batches));
          if (shares[attempt]! > enough) break;
        }
        // each caller's next call comes within microtasks of the batch's completion: all join
        // the next batch (the first batches and the stragglers at the end may be smaller)
        expect(Math.max(...shares), `${callers} callers, commits per batch in each round: ${shares.map((x) => x.toFixed(2)).join(', ')}`).toBeGreaterThan(enough);
      }
      expect(await db.get('SELECT count(*) AS n FROM t')).toEqual({ n: rows });
    } finally {
      await db.close();
    }
  });
});
