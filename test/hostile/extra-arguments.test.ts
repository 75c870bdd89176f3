// Arguments past the ones a public verb takes were dropped without a word (only
// store.checkpoint refused them): db.exec('INSERT ... (?)', [1]) ran with the parameter unbound
// (NULL inserted), statement.run(1, 2) in better-sqlite3's spread style bound 1 and dropped 2,
// snapshot.read(pgno, out) left `out` untouched, store.commit(pages, options, callback) never
// called the callback. Now every verb refuses an argument past its own that is not undefined
// (WALNUT_INVALID_ARGUMENT, reason 'options'), before it does anything; undefined is no
// argument. The verbs that end something (close, release, rollback) take anything: they are
// used as callbacks (process.once('SIGTERM', store.close.bind(store)) passes the signal's name).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { inspect, open, restore, verify, verifySnapshot } from '../../lib/index';
import { openDatabase } from '../../lib/sql';
import { expectRejectsWalnut, expectWalnutError } from '../helpers/expect-error';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const page = (fill: number): Buffer => Buffer.alloc(1024, fill);
// the verbs, called as a JavaScript caller would (the types forbid the extra argument)
type Loose = (...args: unknown[]) => unknown;
const loose = (f: unknown): Loose => f as Loose;

describe('an argument past the ones a verb takes', () => {
  it('is refused by every store, transaction and snapshot verb before it does anything; undefined is no argument', async () => {
    const file = path.join(dir, 'store.db');
    const store = await open(file, { pageSize: 1024, autoCheckpoint: false, shareLane: false });
    try {
      await store.commit([{ pgno: 2, data: page(1) }]);
      const s = store as unknown as Record<string, unknown>;
      const call = (name: string, ...args: unknown[]): unknown => loose(s[name]).apply(store, args);
      const rejected = [
        ['commit', [{ pgno: 3, data: page(2) }], {}, () => undefined],
        ['snapshot', {}, 'x'],
        ['checkpoint', 'passive', { busyTimeout: 1 }],
        ['holdWriteLease', true],
        ['whenDurable', 0, 1],
      ] as const;
      for (const [name, ...args] of rejected) {
        const err = await expectRejectsWalnut(call(name, ...args) as Promise<unknown>, 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
        expect(err.message).toContain(`store.${name} takes`);
      }
      const thrown = [
        ['sequence', [{ pgno: 3, data: page(2) }], {}, 1],
        ['begin', { readOnly: true }],
        ['trySnapshotSync', {}, 1],
        ['snapshotSync', {}, 1],
        ['dataVersion', 1],
        ['exportTo', { write: () => undefined }, {}, 1],
        ['replicateTo', { servers: 'nats://127.0.0.1:1', stream: 's' }, 1],
        ['metrics', {}, 1],
        ['recentEvents', 1],
        ['resumeCommits', undefined, 1],
      ] as const;
      for (const [name, ...args] of thrown) {
        expectWalnutError(() => call(name, ...args), 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
      }
      // nothing ran: no second commit, no ticket, no checkpoint, no lease (a commit goes on)
      expect(store.lastTicket).toBe(0);
      expect(store.metrics()).toMatchObject({ walFrames: 1, checkpoints: 0 });
      expect(store.chainBrokenBy).toBeNull();

      const tx = store.begin();
      await expectRejectsWalnut(loose(tx.read).call(tx, 2, Buffer.alloc(1024)) as Promise<unknown>, 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
      expectWalnutError(() => loose(tx.write).call(tx, 2, page(3), 'extra'), 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
      tx.write(2, page(3));
      await expectRejectsWalnut(loose(tx.commit).call(tx, {}, () => undefined) as Promise<unknown>, 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
      expect(await tx.commit({}, ...([undefined] as unknown as []))).toMatchObject({ commitSeq: expect.any(Number) });

      const snap = await store.snapshot();
      const out = Buffer.alloc(1024);
      await expectRejectsWalnut(loose(snap.read).call(snap, 2, out) as Promise<unknown>, 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
      expectWalnutError(() => loose(snap.readSync).call(snap, 2, out), 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
      expectWalnutError(() => loose(snap.readIntoSync).call(snap, 2, out, 0), 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
      expect(snap.readSync(2, ...([undefined] as unknown as []))).toEqual(page(3));
      expectWalnutError(() => loose(verifySnapshot)(snap, 5, {}, 1), 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
      loose(snap.release).call(snap, 'anything'); // ends it all the same
      await expectRejectsWalnut(snap.read(2), 'WALNUT_CLOSED');

      // undefined passed on is no argument
      expect(await loose(store.commit).call(store, [{ pgno: 4, data: page(4) }], undefined, undefined)).toMatchObject({ durable: true });
    } finally {
      await loose(store.close).call(store, 'SIGTERM'); // a callback's argument: closes all the same
    }
    expect(fs.existsSync(`${file}-wal`)).toBe(false);
    await expectRejectsWalnut(loose(verify)(file, 5, {}, 1) as Promise<unknown>, 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
    expectWalnutError(() => loose(inspect)(file, {}), 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
    const target = path.join(dir, 'restored.db');
    await expectRejectsWalnut(loose(restore)(fs.createReadStream(file), target, {}, 1) as Promise<unknown>, 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
    const fresh = path.join(dir, 'never.db');
    await expectRejectsWalnut(loose(open)(fresh, {}, () => undefined) as Promise<unknown>, 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
    expect(fs.existsSync(target) || fs.existsSync(fresh)).toBe(false);
  });

  it('is refused by walnut/sql verbs before the statement runs: exec binds no parameters, run takes one params argument', async () => {
    await expectRejectsWalnut(loose(openDatabase)(path.join(dir, 'never-sql.db'), {}, 1) as Promise<unknown>, 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
    expect(fs.existsSync(path.join(dir, 'never-sql.db'))).toBe(false);
    const db = await openDatabase(path.join(dir, 'sql.db'));
    try {
      await db.exec('CREATE TABLE t(a, b)');
      const err = await expectRejectsWalnut(loose(db.exec).call(db, 'INSERT INTO t VALUES (?, ?)', [1, 2]) as Promise<unknown>, 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
      expect(err.message).toContain('db.exec takes only SQL');
      await expectRejectsWalnut(loose(db.run).call(db, 'INSERT INTO t VALUES (?, ?)', [1], 2) as Promise<unknown>, 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
      await expectRejectsWalnut(loose(db.get).call(db, 'SELECT * FROM t', [], {}) as Promise<unknown>, 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
      await expectRejectsWalnut(loose(db.all).call(db, 'SELECT * FROM t', [], {}) as Promise<unknown>, 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
      await expectRejectsWalnut(loose(db.prepare).call(db, 'SELECT 1', {}) as Promise<unknown>, 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
      await expectRejectsWalnut(loose(db.transaction).call(db, async () => undefined, {}) as Promise<unknown>, 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
      const insert = await db.prepare('INSERT INTO t VALUES (?, ?)');
      await expectRejectsWalnut(loose(insert.run).call(insert, 1, 2) as Promise<unknown>, 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
      await db.transaction(async (tx) => {
        await expectRejectsWalnut(loose(tx.exec).call(tx, 'INSERT INTO t VALUES (?, ?)', [1, 2]) as Promise<unknown>, 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
        await expectRejectsWalnut(loose(tx.run).call(tx, 'INSERT INTO t VALUES (?, ?)', [1, 2], 3) as Promise<unknown>, 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
      });
      expect(await db.all('SELECT * FROM t')).toEqual([]); // nothing ran
      await insert.run([1, 2], ...([undefined] as unknown as []));
      expect(await db.all('SELECT * FROM t')).toEqual([{ a: 1, b: 2 }]);
    } finally {
      await loose(db.close).call(db, 'SIGTERM');
    }
    expect(fs.existsSync(path.join(dir, 'sql.db-wal'))).toBe(false);
  });
});
