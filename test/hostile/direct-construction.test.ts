// The classes a verb hands out (Store from open(), Transaction from begin(), Snapshot from
// snapshot()) and WalStreamReader (static readers only) could be constructed by anyone:
// `new Store()` threw a raw TypeError ("reading 'pageTrailers'"), `new Store(1, 2)`,
// `new Snapshot()` and `new WalStreamReader(5)` made objects that were accepted and whose
// methods then threw raw TypeErrors, `new Transaction()` threw "reading 'catch'"; walnut/sql's
// `new Database()` and `new Statement({}, 'SELECT 1')` too (statement.run() then threw
// "target().run is not a function", synchronously, from a verb that answers with a promise). Now each is
// WALNUT_INVALID_ARGUMENT, reason 'constructor', before any argument is read; the verbs still
// give working objects. WalnutError itself (constructed by callers too, to rethrow or in tests):
// `new WalnutError('m')` threw "Cannot read properties of undefined (reading 'cause')"; now
// WALNUT_INVALID_ARGUMENT, reason 'details'.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open, Snapshot, Store, Transaction, WalnutError, WalStreamReader } from '../../lib/index';
import { Database, openDatabase, Statement } from '../../lib/sql';
import { invalidArgumentReason } from '../helpers/expect-error';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

describe('classes constructed directly', () => {
  it('are refused with reason constructor, whatever they are given', async () => {
    const db = path.join(dir, 'a.db');
    const store = await open(db, { pageSize: 1024 });
    const snap = await store.snapshot();
    const classes = [Store, Transaction, Snapshot, WalStreamReader] as unknown as (new (...a: unknown[]) => unknown)[];
    for (const C of classes) {
      for (const args of [[], [1, 2], [{}, {}, {}], [store], [snap, Promise.resolve(snap)], [Symbol('key')]]) {
        expect(invalidArgumentReason(() => new C(...args))).toBe('constructor');
      }
    }
    // what the verbs give still works
    await store.commit([{ pgno: 2, data: Buffer.alloc(1024, 7) }]);
    const tx = store.begin();
    expect(tx).toBeInstanceOf(Transaction);
    expect((await tx.read(2))[0]).toBe(7);
    await tx.rollback();
    expect(snap).toBeInstanceOf(Snapshot);
    snap.release();
    await store.close();
  });

  it('walnut/sql: Database and Statement too', async () => {
    const db = await openDatabase(path.join(dir, 'b.db'), { readConnections: 0 });
    for (const C of [Database, Statement] as unknown as (new (...a: unknown[]) => unknown)[]) {
      for (const args of [[], [{}, 'SELECT 1'], [db, 'SELECT 1'], [db.store, {}, {}, 0, false]]) {
        expect(invalidArgumentReason(() => new C(...args))).toBe('constructor');
      }
    }
    const st = await db.prepare('SELECT 41 + 1 AS x');
    expect(st).toBeInstanceOf(Statement);
    expect(await st.get()).toEqual({ x: 42 });
    await db.close();
  });

  it('WalnutError without its details', () => {
    const E = WalnutError as unknown as new (...a: unknown[]) => WalnutError;
    for (const args of [['m'], ['m', null], ['m', 'WALNUT_IO'], []]) {
      let err: unknown;
      try {
        new E(...args);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(WalnutError);
      expect((err as WalnutError).code).toBe('WALNUT_INVALID_ARGUMENT');
      expect((err as WalnutError).reason).toBe('details');
    }
    const ok = new WalnutError('WALNUT_IO: x', { code: 'WALNUT_IO', errno: 5 });
    expect([ok.code, ok.errno, ok.message]).toEqual(['WALNUT_IO', 5, 'WALNUT_IO: x']);
  });
});
