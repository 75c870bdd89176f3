// An input whose reading throws — an options object with a getter that throws, a page object's
// getter, walnut/sql params behind a getter or a Proxy — reached the caller as that raw Error
// (a TypeError, say), no WalnutError and no code to branch on. Now it is WALNUT_INVALID_ARGUMENT,
// reason naming the argument ('options', 'pages', 'params'), the original as `cause`, and the
// verb has done nothing: no files created, no frame written, no ticket taken, no chain broken,
// no row inserted; the same verb called right afterwards works.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open, restore, verify, WalnutFile } from '../../lib/index';
import { openDatabase } from '../../lib/sql';
import { expectRejectsWalnut, expectWalnutError } from '../helpers/expect-error';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const thrown = new TypeError('the caller\'s getter');
/** An object whose `name` throws when read (and which has the name, for the options' name check). */
const throwing = <T extends object>(name: string, rest: T = {} as T): T => Object.defineProperty({ ...rest }, name, { enumerable: true, get: () => { throw thrown; } });

describe('an input whose reading throws', () => {
  it('is WALNUT_INVALID_ARGUMENT with the original as cause, and the store verb did nothing', async () => {
    const file = path.join(dir, 'a.db');
    for (const name of ['pageSize', 'busyTimeout']) {
      const err = await expectRejectsWalnut(open(file, throwing(name)), 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
      expect(err.cause).toBe(thrown);
    }
    expect(fs.readdirSync(dir)).toEqual([]);
    const store = await open(file, { pageSize: 1024, autoCheckpoint: false, shareLane: false });
    try {
      const data = Buffer.alloc(1024, 1);
      let err = await expectRejectsWalnut(store.commit([{ pgno: 2, data }], throwing('dbSize')), 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
      expect(err.cause).toBe(thrown);
      err = await expectRejectsWalnut(store.commit([throwing('data', { pgno: 2 }) as never]), 'WALNUT_INVALID_ARGUMENT', { reason: 'pages' });
      expect(err.cause).toBe(thrown);
      expectWalnutError(() => store.sequence([{ pgno: 2, data }], throwing('alone')), 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
      expectWalnutError(() => store.sequence([throwing('pgno', { data }) as never]), 'WALNUT_INVALID_ARGUMENT', { reason: 'pages' });
      await expectRejectsWalnut(store.snapshot(throwing('sequenced')), 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
      expectWalnutError(() => store.metrics(throwing('format') as never), 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
      const sink = fs.createWriteStream(path.join(dir, 'export.ark'));
      expectWalnutError(() => store.exportTo(sink, throwing('pollMs')), 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
      expect(sink.listenerCount('error')).toBe(0); // the sink was not taken
      sink.destroy();
      expectWalnutError(() => store.replicateTo(throwing('servers') as never), 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
      const tx = store.begin();
      tx.write(3, data);
      await expectRejectsWalnut(tx.commit(throwing('dbSize')), 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
      // nothing was written, sequenced or broken; the transaction is still open
      expect(store.metrics()).toMatchObject({ walFrames: 0, commits: 0 });
      expect(store.lastTicket).toBe(0);
      expect(store.chainBrokenBy).toBeNull();
      expect(await tx.commit()).toMatchObject({ durable: true });
      expect(await store.commit([{ pgno: 2, data }])).toMatchObject({ durable: true });
      await expectRejectsWalnut(verify(file, 5, throwing('maxFindings')), 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
      const target = path.join(dir, 'restored.db');
      await expectRejectsWalnut(restore(new Uint8Array(0), target, throwing('until')), 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
      expect(fs.existsSync(target)).toBe(false);
    } finally {
      await store.close();
    }
  });

  // the addon read the options itself: the getter's exception left pending, the next N-API call
  // aborted the process (FATAL ERROR: Error::New napi_get_last_error_info)
  it('WalnutFile.open/openSync: WALNUT_INVALID_ARGUMENT, the process alive (it aborted)', async () => {
    const file = path.join(dir, 'file.bin');
    fs.writeFileSync(file, 'x');
    expectWalnutError(() => WalnutFile.openSync(file, throwing('readOnly')), 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
    await expectRejectsWalnut(WalnutFile.open(file, throwing('lane')), 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
    const f = await WalnutFile.open(file, { readOnly: true });
    await f.close();
  });

  it('walnut/sql: options and params whose reading throws are WALNUT_INVALID_ARGUMENT; nothing ran, the next call works', async () => {
    const file = path.join(dir, 'sql.db');
    for (const name of ['readConnections', 'pageSize']) {
      const err = await expectRejectsWalnut(openDatabase(file, throwing(name)), 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
      expect(err.cause).toBe(thrown);
    }
    expect(fs.existsSync(file)).toBe(false);
    const db = await openDatabase(file);
    try {
      await db.exec('CREATE TABLE t(a)');
      const list = [1];
      Object.defineProperty(list, 0, { get: () => { throw thrown; } });
      const proxy = new Proxy({ a: 1 }, { get: () => { throw thrown; } });
      for (const p of [throwing('a'), list, proxy]) {
        const err = await expectRejectsWalnut(db.run(p === list ? 'INSERT INTO t VALUES (?)' : 'INSERT INTO t VALUES (:a)', p as never), 'WALNUT_INVALID_ARGUMENT', { reason: 'params' });
        expect(err.cause).toBe(thrown);
      }
      await expectRejectsWalnut(db.get('SELECT :a AS a', throwing('a') as never), 'WALNUT_INVALID_ARGUMENT', { reason: 'params' });
      await expectRejectsWalnut(db.transaction(async (tx) => {
        await tx.run('INSERT INTO t VALUES (1)');
        await tx.run('INSERT INTO t VALUES (:a)', throwing('a') as never);
      }), 'WALNUT_INVALID_ARGUMENT', { reason: 'params' });
      expect(await db.all('SELECT a FROM t')).toEqual([]);
      await db.run('INSERT INTO t VALUES (:a)', { a: 7 });
      expect(await db.all('SELECT a FROM t')).toEqual([{ a: 7 }]);
    } finally {
      await db.close();
    }
  });
});
