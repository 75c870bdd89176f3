// Fail-stop chaining (issue #20, store API item 2): a commit that fails after the store took it
// into the commit order fails every commit sequenced after it — the rest of its batch, the
// later batches, every commit() until resumeCommits() — and none of those is acknowledged or
// written. A Transaction's first-committer-wins conflict breaks no chain.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open, type Store } from '../../lib/index';
import { HELPERS, runJsonChild } from '../helpers/children';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { expectAcknowledgedPages } from '../helpers/outcomes';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
let n = 0;
const fresh = () => path.join(dir, `c${n++}.db`);
const page = (v: number) => Buffer.alloc(4096, v);

/** Runs chain-fault-child.js, then checks on reopen that exactly the acknowledged pages are there. */
async function runChild(scenario: string) {
  const db = fresh();
  const out = await runJsonChild<any>(path.join(HELPERS, 'chain-fault-child.js'), [db, scenario], { WALNUT_FAULT_INJECTION: '1' });
  expect(out.unhandled).toEqual([]);
  await expectAcknowledgedPages(db, out.acknowledged, 2, 9);
  return out;
}

describe('a failed write fails every commit sequenced after it, until resumeCommits()', () => {
  for (const [scenario, code] of [['write', 'WALNUT_IO'], ['enospc', 'WALNUT_FULL']] as const) {
    it(`${scenario}: the failing commit gets ${code}, the four later batches and a commit after it ChainBroken; resumed, commits work again`, async () => {
      const out = await runChild(scenario);
      expect(out.before).toEqual({ ok: true });
      expect(out.chain[0]).toMatchObject({ ok: false, code });
      for (const c of out.chain.slice(1)) expect(c).toEqual({ ok: false, code: 'WALNUT_FAILED', reason: 'ChainBroken', causeCode: code });
      expect(out.brokenBy).toBe(code);
      expect(out.whileBroken).toMatchObject({ ok: false, code: 'WALNUT_FAILED', reason: 'ChainBroken' });
      expect(out.snapshotWhileBroken).toEqual({ ok: true }); // reads go on
      expect(out.resumeOther).toBe(false);
      expect(out.resumed).toBe(true);
      expect(out.resumedAgain).toBe(false);
      expect(out.afterResume).toEqual({ ok: true });
      expect(out.acknowledged.map((a: { pgno: number }) => a.pgno)).toEqual([2, 9]);
      expect(out.metrics.chainBreaks).toBe(1);
    });
  }

  it("a transaction's failed write breaks no chain: the four later batches are written (over its unpublished frames), nothing is refused, and a reopen finds exactly them", async () => {
    const out = await runChild('transaction');
    expect(out.chain[0]).toMatchObject({ ok: false, code: 'WALNUT_IO' });
    for (const c of out.chain.slice(1)) expect(c).toEqual({ ok: true });
    expect(out.brokenBy).toBeNull();
    expect(out.whileBroken).toEqual({ ok: true });
    expect(out.resumed).toBe(false);
    expect(out.acknowledged.map((a: { pgno: number }) => a.pgno)).toEqual([2, 4, 5, 6, 7, 8, 9]);
    expect(out.metrics.chainBreaks).toBe(0);
  });

  it('close() racing the failing chain: every commit settles, none after the failure is acknowledged, close() resolves', async () => {
    const out = await runChild('close');
    expect(out.chain[0]).toMatchObject({ ok: false, code: 'WALNUT_IO' });
    for (const c of out.chain.slice(1)) expect(c).toMatchObject({ ok: false, code: 'WALNUT_FAILED', reason: 'ChainBroken' });
    expect(out.close).toEqual({ ok: true });
    expect(out.afterClose).toMatchObject({ ok: false, code: 'WALNUT_CLOSED' });
    expect(out.acknowledged.map((a: { pgno: number }) => a.pgno)).toEqual([2]);
  });
});

describe('what breaks the chain and what does not', () => {
  async function withStores(work: (store: Store, other: Store) => Promise<void>): Promise<void> {
    const file = fresh();
    const store = await open(file, { autoCheckpoint: false });
    const other = await open(file, { autoCheckpoint: false });
    try {
      await work(store, other);
    } finally {
      await store.close();
      await other.close();
    }
  }

  it("a conditional commit's conflict fails the commits sequenced after it in the same batch and later; resumeCommits(its error) mends it", async () => {
    await withStores(async (store, other) => {
      await store.commit([{ pgno: 2, data: page(1) }]);
      const base = await store.snapshot();
      await other.commit([{ pgno: 3, data: page(2) }]); // another connection commits after base
      const conditional = store.commit([{ pgno: 2, data: page(3) }], { base });
      const later = [store.commit([{ pgno: 4, data: page(4) }]), store.commit([{ pgno: 5, data: page(5) }])]; // same batch, after it
      const conflict = await expectRejectsWalnut(conditional, 'WALNUT_CONFLICT', { reason: 'OtherWriter' });
      for (const c of later) await expectRejectsWalnut(c, 'WALNUT_FAILED', { reason: 'ChainBroken' });
      expect(store.chainBrokenBy).toBe(conflict);
      const tx = store.begin();
      tx.write(6, page(6));
      await expectRejectsWalnut(tx.commit(), 'WALNUT_FAILED', { reason: 'ChainBroken' });
      expect(store.resumeCommits(conflict)).toBe(true);
      await store.commit([{ pgno: 7, data: page(7) }]);
      base.release();
      const s = await store.snapshot();
      expect([2, 3, 4, 5, 6, 7].map((p) => s.readSync(p)[0])).toEqual([1, 2, 0, 0, 0, 7]);
      s.release();
    });
  });

  it("a Transaction's first-committer-wins conflict breaks no chain: the commits after it go", async () => {
    await withStores(async (store) => {
      const a = store.begin();
      const b = store.begin();
      await a.read(2);
      await b.read(2);
      a.write(2, page(1));
      b.write(2, page(2));
      const results = await Promise.allSettled([a.commit(), b.commit(), store.commit([{ pgno: 3, data: page(3) }])]);
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
      expect((results[1] as PromiseRejectedResult).reason).toMatchObject({ code: 'WALNUT_CONFLICT', reason: 'PageChanged' });
      expect(store.chainBrokenBy).toBeNull();
      expect(store.resumeCommits()).toBe(false);
    });
  });

  it("a Transaction's refusal in a batch sends the transactions after it back to the queue with their snapshots still held: a WAL restart meanwhile cannot hide a commit they conflict with (no lost update)", async () => {
    // autoCheckpoint 1: every batch that finds no reader in the WAL checkpoints and restarts it
    const store = await open(fresh(), { autoCheckpoint: 1, shareLane: false });
    try {
      await store.commit([2, 3, 4].map((pgno) => ({ pgno, data: page(1) })));
      const s = await store.snapshot();
      const badPage1 = Buffer.from(await s.read(1));
      s.release();
      // page 1 whose in-header size (trusted: version-valid-for = change counter) is past the database: refused once the batch is built
      badPage1.writeUInt32BE(badPage1.readUInt32BE(24), 92);
      badPage1.writeUInt32BE(1000, 28);
      const victim = store.begin();
      const seen = (await victim.read(3))[0]!;
      await store.commit([{ pgno: 3, data: page(50) }]); // after the victim's snapshot: a conflict for it
      const bad = store.begin();
      bad.write(1, badPage1);
      victim.write(3, page(seen + 1));
      // one batch: a plain commit, the refused transaction, the victim (back to the queue)
      const results = await Promise.allSettled([store.commit([{ pgno: 4, data: page(7) }]), bad.commit(), victim.commit()]);
      expect(results[0]!.status).toBe('fulfilled');
      expect((results[1] as PromiseRejectedResult).reason).toMatchObject({ code: 'WALNUT_INVALID_ARGUMENT', reason: 'dbSize' });
      expect(results[2]!.status).toBe('rejected');
      expect((results[2] as PromiseRejectedResult).reason).toMatchObject({ code: 'WALNUT_CONFLICT', reason: 'PageChanged' });
      const after = await store.snapshot();
      expect([3, 4].map((pgno) => after.readSync(pgno)[0])).toEqual([50, 7]);
      after.release();
    } finally {
      await store.close();
    }
  });
});
