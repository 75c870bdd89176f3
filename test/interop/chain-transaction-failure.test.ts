// The soak's ChainBroken cascade (63,312 refusals against 1,666 raw commits in one run): its
// root was a store.begin() transaction failing WALNUT_BUSY, reason CheckpointWaits, beside
// python3's RESTART/TRUNCATE checkpoints (the checkpoint holds WRITE and waits for the
// transaction's read mark), and that failure broke the store's commit chain: every commit queued
// behind it and every commit made until resumeCommits() was refused. A Transaction is built on
// durable commits only and nothing is built on it before it is published, so its failure, like
// its first-committer-wins conflict, breaks no chain (group-committer.ts, "The commit chain").
// Asserted beside a real python3 process: after such a failure the commits queued behind it and
// made after it are written; a failure of a commit that later commits may have been built on
// (a conditional commit whose base was still held, the same CheckpointWaits) still breaks the
// chain, and nothing after it is acknowledged or in the file, before or after a reopen; a batch
// that mixes a Transaction with a plain commit, both failed by the busy timeout (BusyWrite),
// still breaks it too.
import * as path from 'node:path';

import { expect, it } from 'vitest';

import { isWalnutError, open, type Store } from '../../lib/index';
import { holdWrite } from '../helpers/busy-writer';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { overflowRowDatabase, sqliteIntegrity, stampPage } from '../helpers/sqlite-db';
import { checkpoints, expectCompleted, holdsWrite, PATIENT_MS } from '../helpers/sqlite-checkpointer';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
let n = 0;

/** The stamp (byte 4) of each of `pgnos` as a new snapshot of `store` reads them. */
async function stamps(store: Store, pgnos: number[]): Promise<number[]> {
  const s = await store.snapshot();
  try {
    return await Promise.all(pgnos.map(async (pgno) => (await s.read(pgno))[4]!));
  } finally {
    s.release();
  }
}

/** 'ok', or the failure's code/reason (a synchronous throw too: sequence()). */
async function outcome(commit: () => Promise<unknown>): Promise<string> {
  try {
    await commit();
    return 'ok';
  } catch (e) {
    return isWalnutError(e) ? `${e.code}/${e.reason ?? ''}` : String(e);
  }
}

/** A database with a 4-page overflow chain (valid whatever its content bytes), and a store on it. */
async function storeWithPages(busyTimeout = 20_000): Promise<{ file: string; store: Store; pages: number[] }> {
  const file = path.join(dir, `chain-${n++}.db`);
  const pages = overflowRowDatabase(file);
  const store = await open(file, { shareLane: false, autoCheckpoint: false, busyTimeout });
  return { file, store, pages };
}

it("a Transaction failed CheckpointWaits beside python3's RESTART checkpoint breaks no chain: the plain and sequenced commits queued behind it and made after it are written", async () => {
  const { file, store, pages } = await storeWithPages();
  const [p1, p2, p3, p4] = pages as [number, number, number, number];
  await store.commit([{ pgno: p1, data: await stampPage(store, p1, 1) }]);
  const [d2, d3, d4] = [await stampPage(store, p2, 3), await stampPage(store, p3, 4), await stampPage(store, p4, 5)];
  const tx = store.begin();
  await tx.read(p1);
  tx.write(p1, await stampPage(store, p1, 2));
  const ckpt = checkpoints(file, ['RESTART'], 1, 0, PATIENT_MS);
  await holdsWrite(file, ckpt.pid); // it holds WRITE and waits for the transaction's read mark
  const failed = tx.commit();
  await new Promise((resolve) => setImmediate(resolve)); // the transaction is in the order: these come after it
  const queued = [outcome(() => store.commit([{ pgno: p2, data: d2 }])), outcome(() => store.sequence([{ pgno: p3, data: d3 }]).durable)];
  const e = await expectRejectsWalnut(failed, 'WALNUT_BUSY', { reason: 'CheckpointWaits' });
  expect(store.chainBrokenBy).toBeNull();
  expect(store.resumeCommits(e)).toBe(false); // nothing to mend
  const after = outcome(() => store.commit([{ pgno: p4, data: d4 }]));
  expectCompleted(await ckpt.run);
  expect(await Promise.all([...queued, after])).toEqual(['ok', 'ok', 'ok']);
  expect(store.metrics().chainBreaks).toBe(0);
  expect(await stamps(store, [p1, p2, p3, p4])).toEqual([1, 3, 4, 5]);
  await store.close();
  const again = await open(file, { autoCheckpoint: false });
  expect(await stamps(again, [p1, p2, p3, p4])).toEqual([1, 3, 4, 5]);
  await again.close();
  expect(sqliteIntegrity(file)).toEqual(['ok']);
}, 30_000);

it('a conditional commit whose held base failed CheckpointWaits still breaks the chain: the commits after it are refused (ChainBroken), none is in the file, until resumeCommits()', async () => {
  const { file, store, pages } = await storeWithPages();
  const [p1, p2, p3] = pages as [number, number, number];
  await store.commit([{ pgno: p1, data: await stampPage(store, p1, 1) }]);
  const [d2, d3, d3again] = [await stampPage(store, p2, 3), await stampPage(store, p3, 4), await stampPage(store, p3, 5)];
  const base = await store.snapshot();
  const built = Buffer.from(await base.read(p1)).fill(2, 4);
  const ckpt = checkpoints(file, ['RESTART'], 1, 0, PATIENT_MS);
  await holdsWrite(file, ckpt.pid); // it holds WRITE and waits for the base's read mark
  const failed = store.commit([{ pgno: p1, data: built }], { base });
  await new Promise((resolve) => setImmediate(resolve));
  const queued = outcome(() => store.commit([{ pgno: p2, data: d2 }]));
  const e = await expectRejectsWalnut(failed, 'WALNUT_BUSY', { reason: 'CheckpointWaits' });
  base.release();
  expect(store.chainBrokenBy).toBe(e);
  const sequenced = await outcome(() => store.sequence([{ pgno: p3, data: d3 }]).durable);
  expect([await queued, sequenced]).toEqual(['WALNUT_FAILED/ChainBroken', 'WALNUT_FAILED/ChainBroken']);
  expectCompleted(await ckpt.run);
  expect(store.resumeCommits(e)).toBe(true);
  await store.commit([{ pgno: p3, data: d3again }]);
  expect(store.metrics().chainBreaks).toBe(1);
  await store.close();
  const again = await open(file, { autoCheckpoint: false });
  expect(await stamps(again, [p1, p2, p3])).toEqual([1, 1, 5]);
  await again.close();
  expect(sqliteIntegrity(file)).toEqual(['ok']);
}, 30_000);

it('python3 holding WRITE past the busy timeout: a batch of Transactions only fails BusyWrite and breaks no chain; one with a plain commit in it breaks it, and the commit after that is refused', async () => {
  const { file, store, pages } = await storeWithPages(300);
  const [p1, p2, p3] = pages as [number, number, number];
  const holder = await holdWrite(file, 'SELECT 1');
  try {
    const tx = store.begin();
    tx.write(p1, await stampPage(store, p1, 2));
    const e = await expectRejectsWalnut(tx.commit(), 'WALNUT_BUSY', { reason: 'BusyWrite' });
    expect(store.chainBrokenBy).toBeNull();
    expect(store.resumeCommits(e)).toBe(false);
    const mixed = store.begin();
    mixed.write(p1, await stampPage(store, p1, 3));
    const both = [outcome(() => mixed.commit()), outcome(async () => store.commit([{ pgno: p2, data: await stampPage(store, p2, 4) }]))];
    expect(await Promise.all(both)).toEqual(['WALNUT_BUSY/BusyWrite', 'WALNUT_BUSY/BusyWrite']);
    const broken = store.chainBrokenBy;
    expect(broken).toMatchObject({ code: 'WALNUT_BUSY', reason: 'BusyWrite' });
    expect(await outcome(async () => store.commit([{ pgno: p3, data: await stampPage(store, p3, 5) }]))).toBe('WALNUT_FAILED/ChainBroken');
    await holder.stop();
    expect(store.resumeCommits(broken)).toBe(true);
    await store.commit([{ pgno: p3, data: await stampPage(store, p3, 6) }]);
    expect(await stamps(store, [p1, p2, p3])).toEqual([1, 1, 6]);
  } finally {
    await holder.stop();
    await store.close();
  }
  expect(sqliteIntegrity(file)).toEqual(['ok']);
}, 30_000);
