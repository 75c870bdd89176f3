// A commit refused before anything is queued — its store's chain broken (until resumeCommits()),
// the store closed — rejects on a later turn of the event loop (errors.ts refusedOnLaterTurn),
// not among the microtasks of the turn it was called in. A caller that retries at once in a loop
// (await, catch, commit again) never left the microtask queue before: a timer due meanwhile did
// not fire for as long as the loop went on. Here each loop runs until a 0 ms timer set before it
// fired, or MAX_TRIES refusals (what it reaches when the timer cannot fire): store.commit(), a
// Transaction's commit, a lane member's commit (the lane's own chain), and commit() after close();
// after close() also a Transaction's commit and read (refused by the store's close gate) and walnut/sql's
// statements and transaction() after db.close().
import * as path from 'node:path';

import { describe, expect, it } from 'vitest';

import { open, type Store } from '../../lib/index';
import { openDatabase } from '../../lib/sql';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
let n = 0;
const fresh = (): string => path.join(dir, `r${n++}.db`);
const page = (v: number): Buffer => Buffer.alloc(4096, v);
/** Far more refusals than the microtask-only loop needs to show it never lets a timer fire. */
const MAX_TRIES = 20_000;

/** Retries `commit` at once after each refusal until a 0 ms timer set first fires; the refusals seen and whether it fired. */
async function retryUntilTimer(commit: () => Promise<unknown>): Promise<{ fired: boolean; codes: Set<string> }> {
  let fired = false;
  setTimeout(() => (fired = true), 0);
  const codes = new Set<string>();
  for (let i = 0; i < MAX_TRIES && !fired; i++) {
    await commit().then(
      () => codes.add('ok'),
      (e: { code?: string; reason?: string }) => codes.add(`${e.code}/${e.reason}`),
    );
  }
  return { fired, codes };
}

/** Page 1 of `store` whose in-header size is past the database: refused once its batch is built, which breaks the chain. */
async function badPage1(store: Store): Promise<Buffer> {
  const s = await store.snapshot();
  const p = Buffer.from(await s.read(1));
  s.release();
  p.writeUInt32BE(p.readUInt32BE(24), 92); // (version-valid-for = change counter: the size is trusted)
  p.writeUInt32BE(1000, 28);
  return p;
}

describe('a refused commit rejects on a later turn of the event loop: a caller retrying at once lets its timers run', () => {
  it('store.commit() and a Transaction while the chain is broken', async () => {
    const store = await open(fresh(), { shareLane: false });
    try {
      await store.commit([{ pgno: 2, data: page(1) }]);
      await expect(store.commit([{ pgno: 1, data: await badPage1(store) }])).rejects.toMatchObject({ reason: 'dbSize' });
      expect(await retryUntilTimer(() => store.commit([{ pgno: 2, data: page(2) }]))).toEqual({ fired: true, codes: new Set(['WALNUT_FAILED/ChainBroken']) });
      expect(
        await retryUntilTimer(() => {
          const tx = store.begin();
          tx.write(2, page(3));
          return tx.commit();
        }),
      ).toEqual({ fired: true, codes: new Set(['WALNUT_FAILED/ChainBroken']) });
      expect(store.resumeCommits()).toBe(true);
      await store.commit([{ pgno: 2, data: page(4) }]);
    } finally {
      await store.close();
    }
  });

  it("a lane member's commit while its own chain is broken", async () => {
    const file = fresh();
    const leader = await open(file);
    const member = await open(file);
    try {
      expect(member.metrics().lane?.leader).toBe(false);
      await expect(member.commit([{ pgno: 1, data: await badPage1(member) }])).rejects.toMatchObject({ reason: 'dbSize' });
      expect(await retryUntilTimer(() => member.commit([{ pgno: 2, data: page(2) }]))).toEqual({ fired: true, codes: new Set(['WALNUT_FAILED/ChainBroken']) });
    } finally {
      await member.close();
      await leader.close();
    }
  });

  it('store.commit() after close()', async () => {
    const store = await open(fresh(), { shareLane: false });
    await store.close();
    expect(await retryUntilTimer(() => store.commit([{ pgno: 2, data: page(2) }]))).toEqual({ fired: true, codes: new Set(['WALNUT_CLOSED/undefined']) });
  });

  it("a Transaction's commit and read() after close() (begun before it; the store's close gate refuses them)", async () => {
    const store = await open(fresh(), { shareLane: false });
    const tx = store.begin();
    tx.write(2, page(2));
    await store.close();
    const closed = { fired: true, codes: new Set(['WALNUT_CLOSED/undefined']) };
    expect(await retryUntilTimer(() => tx.commit())).toEqual(closed);
    expect(await retryUntilTimer(() => tx.read(1))).toEqual(closed);
  });

  it('walnut/sql: a statement and a transaction() after db.close()', async () => {
    const db = await openDatabase(fresh());
    await db.exec('CREATE TABLE t(x)');
    await db.close();
    const closed = { fired: true, codes: new Set(['WALNUT_CLOSED/undefined']) };
    expect(await retryUntilTimer(() => db.run('INSERT INTO t VALUES (1)'))).toEqual(closed);
    expect(await retryUntilTimer(() => db.transaction(async (tx) => tx.run('INSERT INTO t VALUES (1)')))).toEqual(closed);
  });
});
