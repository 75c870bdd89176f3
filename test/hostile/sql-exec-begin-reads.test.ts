// walnut/sql get/all inside a transaction opened through exec() (BEGIN, SAVEPOINT): they were
// routed to a read connection (only transaction()'s scope kept them on the writer), whose
// snapshot holds durable commits only, so `await db.run('INSERT ...')` then `db.get()` of that
// row answered undefined, and `db.all()` showed the rows as before the transaction's own
// UPDATE, where SQLite (and walnut/sql with readConnections: 0) answer from the transaction.
// Now a read made while the writer is in a transaction that transaction() did not open runs on
// the writer, in call order; reads beside a transaction() still go to read connections.
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { openDatabase } from '../../lib/sql';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

function cli(file: string, sql: string): string {
  return execFileSync('sqlite3', [file, sql], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

describe('walnut/sql reads inside a transaction opened through exec()', () => {
  for (const begin of ['BEGIN', 'BEGIN IMMEDIATE', 'SAVEPOINT s']) {
    it(`${begin}: get/all see the transaction's own writes, as with readConnections 0; after ROLLBACK they are gone, after COMMIT durable (sqlite3 reads them)`, async () => {
      const file = path.join(dir, `exec-begin-${begin.replace(/\s/g, '-')}.db`);
      const end = begin.startsWith('SAVEPOINT') ? 'RELEASE s' : 'COMMIT';
      const rollback = begin.startsWith('SAVEPOINT') ? 'ROLLBACK TO s; RELEASE s' : 'ROLLBACK';
      for (const readConnections of [0, 2]) {
        const db = await openDatabase(file, { readConnections });
        try {
          await db.exec('DROP TABLE IF EXISTS t; CREATE TABLE t(id INTEGER PRIMARY KEY, v)');
          await db.run('INSERT INTO t VALUES (1, 1)');
          await db.exec(begin);
          await db.run('INSERT INTO t VALUES (2, 2)');
          await db.run('UPDATE t SET v = 10 WHERE id = 1');
          expect(await db.get('SELECT v FROM t WHERE id = 2')).toEqual({ v: 2 });
          expect(await db.all('SELECT id, v FROM t ORDER BY id')).toEqual([{ id: 1, v: 10 }, { id: 2, v: 2 }]);
          await db.exec(rollback);
          expect(await db.all('SELECT id, v FROM t ORDER BY id')).toEqual([{ id: 1, v: 1 }]);
          await db.exec(begin);
          await db.run('INSERT INTO t VALUES (3, 3)');
          expect(await db.get('SELECT count(*) n FROM t')).toEqual({ n: 2 });
          await db.exec(end);
          expect(await db.all('SELECT id FROM t ORDER BY id')).toEqual([{ id: 1 }, { id: 3 }]);
        } finally {
          await db.close();
        }
        expect(cli(file, 'PRAGMA integrity_check; SELECT group_concat(id) FROM t')).toBe('ok\n1,3');
      }
    });
  }

  it('reads beside a running transaction() still go to read connections: they answer while its fn waits', async () => {
    const db = await openDatabase(path.join(dir, 'beside-transaction.db'), { readConnections: 2 });
    try {
      await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v)');
      await db.run('INSERT INTO t VALUES (1, 1)');
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      const tx = db.transaction(async (t) => {
        await t.run('INSERT INTO t VALUES (2, 2)');
        await held;
      });
      await new Promise((resolve) => setTimeout(resolve, 20)); // fn is waiting, BEGIN IMMEDIATE open on the writer
      const read = await Promise.race([db.all('SELECT id FROM t'), new Promise((resolve) => setTimeout(() => resolve('waited for the transaction'), 2000))]);
      expect(read).toEqual([{ id: 1 }]);
      release();
      await tx;
      expect(await db.all('SELECT id FROM t ORDER BY id')).toEqual([{ id: 1 }, { id: 2 }]);
    } finally {
      await db.close();
    }
  });
});
