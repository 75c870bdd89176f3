// Sequenced commits (issue #20, store API item 1): store.sequence() gives a commit its place in
// the commit order synchronously (a ticket); this store's snapshots taken from then on see it
// before it is durable; it is durable later (its promise, whenDurable(ticket)); a reader that
// saw it can wait for it (snapshot.whenDurable()). A failed one fails every later one, and its
// pages leave the snapshots at once. Conditional (base) sequenced commits beside a sqlite3
// process on a WAL of 16,000+ frames; close() races.
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

import { open, type Store } from '../../lib/index';
import { WalnutError } from '../../lib/errors';
import { HELPERS, runJsonChild, runPython } from '../helpers/children';
import { expectRejectsWalnut, expectWalnutError } from '../helpers/expect-error';
import { expectAcknowledgedPages, expectNoUnhandledRejections } from '../helpers/outcomes';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
let n = 0;
const fresh = () => path.join(dir, `s${n++}.db`);
const page = (v: number) => Buffer.alloc(4096, v);

expectNoUnhandledRejections();

async function withStore(work: (store: Store, file: string) => Promise<void>, options = {}): Promise<void> {
  const file = fresh();
  const store = await open(file, { autoCheckpoint: false, ...options });
  try {
    await work(store, file);
  } finally {
    await store.close();
  }
}

describe('visible at once, durable later', () => {
  it("a snapshot taken after sequence() sees the pages and size before the commit is durable; durable-only views and other connections don't", async () => {
    await withStore(async (store, file) => {
      const other = await open(file, { autoCheckpoint: false });
      try {
        const before = store.trySnapshotSync()!;
        let durable = false;
        const a = store.sequence([{ pgno: 2, data: page(1) }]);
        void a.durable.then(() => (durable = true));
        const b = store.sequence([{ pgno: 3, data: page(2) }, { pgno: 2, data: page(3) }]);
        expect([a.ticket, b.ticket]).toEqual([1, 2]);
        expect(store.lastTicket).toBe(2);
        const snap = store.trySnapshotSync()!;
        expect(durable).toBe(false); // nothing awaited yet: not durable, already visible
        expect(snap.pendingTicket).toBe(2);
        expect(snap.dbSize).toBe(3);
        expect([snap.readSync(2)[0], snap.readSync(3)[0], (await snap.read(2))[0]]).toEqual([3, 2, 3]);
        // durable state only: a snapshot from before, one with { sequenced: false }, another store
        const durableOnly = store.trySnapshotSync({ sequenced: false })!;
        const others = other.trySnapshotSync()!;
        for (const s of [before, durableOnly, others]) {
          expect([s.pendingTicket, s.dbSize, s.readSync(2)[0]]).toEqual([0, 1, 0]);
        }
        await snap.whenDurable();
        expect(durable).toBe(true);
        expect(snap.readSync(2)[0]).toBe(3); // still the same view
        const after = await store.snapshot();
        expect([after.pendingTicket, after.readSync(2)[0], after.readSync(3)[0]]).toEqual([0, 3, 2]);
        const r = await b.durable;
        expect(r.durable).toBe(true);
        await store.whenDurable(1);
        for (const s of [before, snap, durableOnly, others, after]) s.release();
      } finally {
        await other.close();
      }
    });
  });

  it('tickets follow the commit order: whenDurable resolves in order, a later plain commit of the same page wins over an earlier ticket', async () => {
    await withStore(async (store) => {
      const seqs = Array.from({ length: 20 }, (_, i) => store.sequence([{ pgno: 2 + (i % 3), data: page(i + 1) }]));
      expect(seqs.map((s) => s.ticket)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
      const order: number[] = [];
      await Promise.all(seqs.map((s) => store.whenDurable(s.ticket).then(() => order.push(s.ticket))));
      expect(order).toEqual(seqs.map((s) => s.ticket));
      const results = await Promise.all(seqs.map((s) => s.durable));
      for (let i = 1; i < results.length; i++) expect(results[i]!.commitSeq).toBeGreaterThan(results[i - 1]!.commitSeq);
      // a plain commit after a ticket, same page: once both are durable every snapshot reads the plain one
      const t = store.sequence([{ pgno: 2, data: page(100) }]);
      const plain = store.commit([{ pgno: 2, data: page(101) }]);
      const seen = store.trySnapshotSync()!; // the ticket, not the plain commit (seen once durable)
      expect(seen.readSync(2)[0]).toBe(100);
      await plain;
      await t.durable;
      const s = store.trySnapshotSync()!;
      expect([s.pendingTicket, s.readSync(2)[0]]).toEqual([0, 101]);
      seen.release();
      s.release();
    });
  });

  it("advance() extends a snapshot to later tickets, past this store's own published commits too, and refuses once another connection committed", async () => {
    await withStore(async (store, file) => {
      await store.commit([{ pgno: 2, data: page(1) }]);
      const snap = store.trySnapshotSync()!;
      const t = store.sequence([{ pgno: 2, data: page(2) }]);
      expect(snap.readSync(2)[0]).toBe(1);
      expect(snap.advance()).toBe(true); // nothing published since it began
      expect([snap.pendingTicket, snap.readSync(2)[0]]).toEqual([t.ticket, 2]);
      await t.durable;
      expect(snap.readSync(2)[0]).toBe(2); // the overlay keeps what it showed
      const t3 = store.sequence([{ pgno: 2, data: page(3) }, { pgno: 5, data: page(5) }]);
      await t3.durable;
      await store.commit([{ pgno: 3, data: page(4) }]);
      // only this store published since: it sees all of it, from the WAL (no ticket pending), same read lock
      const lock = snap.readLock;
      expect(snap.advance()).toBe(true);
      expect([snap.pendingTicket, snap.mxFrame, snap.dbSize, snap.readLock, snap.readSync(2)[0], snap.readSync(3)[0], snap.readSync(5)[0]]).toEqual([0, 5, 5, lock, 3, 4, 5]);
      // and stays a commit base: nobody else committed since it began
      await store.commit([{ pgno: 2, data: page(6) }], { base: snap });
      const other = await open(file, { autoCheckpoint: false, shareLane: false });
      await other.commit([{ pgno: 4, data: page(7) }]);
      await other.close();
      expect(snap.advance()).toBe(false); // another connection committed: take a new snapshot
      expect(snap.readSync(4)[0]).toBe(0); // (what it saw stays)
      snap.release();
      expect(snap.advance()).toBe(false);
    });
  });

  it('release hands the page buffers back once the commit settled and no snapshot reads them from the overlay', async () => {
    await withStore(async (store) => {
      const released: number[] = [];
      const release = (pages: { pgno: number }[]) => void released.push(...pages.map((p) => p.pgno));
      const holder = store.trySnapshotSync()!; // begins before the tickets: reads none of them
      const t1 = store.sequence([{ pgno: 2, data: page(1) }, { pgno: 3, data: page(1) }], { release });
      const reader = store.trySnapshotSync()!; // reads t1's pages from the overlay
      await t1.durable;
      expect(released).toEqual([]); // durable, but the reader may still read them from the overlay
      reader.release();
      expect(released).toEqual([2, 3]);
      holder.release();
      // a failed one: back once it settled
      const base = await store.snapshot();
      const other = await open(store.path, { shareLane: false });
      await other.commit([{ pgno: 9, data: page(9) }]);
      await other.close();
      const t2 = store.sequence([{ pgno: 4, data: page(4) }], { base, release });
      await expectRejectsWalnut(t2.durable, 'WALNUT_CONFLICT', { reason: 'OtherWriter' });
      expect(released).toEqual([2, 3, 4]);
      store.resumeCommits(store.chainBrokenBy);
      base.release();
      expectWalnutError(() => store.sequence([{ pgno: 2, data: page(1) }], { release: 1 as never }), 'WALNUT_INVALID_ARGUMENT');
    }, { shareLane: false });
  });

  it('release hands back every buffer it was given, a page written twice in one commit included (its last image is the one committed)', async () => {
    await withStore(async (store) => {
      const released: Uint8Array[] = [];
      const [first, second, other] = [page(1), page(2), page(3)];
      const t = store.sequence([{ pgno: 2, data: first }, { pgno: 3, data: other }, { pgno: 2, data: second }], { release: (pages) => void released.push(...pages.map((p) => p.data)) });
      await t.durable;
      expect(released).toHaveLength(3);
      expect(new Set(released)).toEqual(new Set([first, second, other]));
      const s = store.trySnapshotSync()!;
      expect([s.readSync(2)[0], s.readSync(3)[0]]).toEqual([2, 3]);
      s.release();
    });
  });

  it('a Transaction reads durable commits only; its first-committer-wins check sees the ticket as a later commit', async () => {
    await withStore(async (store) => {
      const t = store.sequence([{ pgno: 2, data: page(1) }]);
      const tx = store.begin();
      expect((await tx.read(2))[0]).toBe(0);
      tx.write(2, page(2));
      await expectRejectsWalnut(tx.commit(), 'WALNUT_CONFLICT', { reason: 'PageChanged' });
      await t.durable;
    });
  });
});

describe('alone: no turn of the event loop to gather a batch', () => {
  it('a commit sequenced alone is written without the turn of the event loop the committer otherwise waits for more commits to join (wakeReasons.alone); others wait it', async () => {
    await withStore(
      async (store) => {
        const alone = () => store.metrics().wakeReasons.alone;
        const turn = () => new Promise((resolve) => setImmediate(resolve)); // the committer is idle after it
        let pgno = 2;
        const commit = (options: { alone?: boolean }) => store.sequence([{ pgno: pgno++, data: page(pgno) }], options).durable;
        for (let i = 0; i < 3; i++) {
          await turn();
          await commit({ alone: true });
        }
        expect(alone()).toBe(3);
        for (const options of [{ alone: false }, {}]) {
          await turn();
          await commit(options);
        }
        expect(alone()).toBe(3);
        // two at once: one batch takes both (the second, said alone, ends the wait)
        await turn();
        const batches = store.metrics().batches;
        await Promise.all([commit({}), commit({ alone: true })]);
        expect([alone(), store.metrics().batches - batches]).toEqual([4, 1]);
        const snap = store.trySnapshotSync({ sequenced: false })!;
        expect(Array.from({ length: pgno - 2 }, (_, i) => snap.readSync(i + 2)[0])).toEqual(Array.from({ length: pgno - 2 }, (_, i) => i + 3));
        snap.release();
        expectWalnutError(() => store.sequence([{ pgno: 2, data: page(1) }], { alone: 1 } as never), 'WALNUT_INVALID_ARGUMENT');
        // the event loop still turns: commits said alone in a row keep it from turning for 1 ms
        // at most; then one turn passes. Each commit comes once the committer waits for company
        // after the last batch (microtask hops, as walnut/sql's next transaction comes), with no
        // turn of the event loop between them
        const hops = async () => {
          for (let i = 0; i < 20; i++) await null;
        };
        // A turn of the event loop the committer makes for its own reasons (a WRITE run past
        // WRITE_RUN_MS lets WRITE go for a turn; a slow machine gets there) also ends a streak;
        // such an attempt proves nothing and is tried again (ours: no other turn came between)
        let clean = 0;
        for (let attempt = 0; attempt < 20 && clean === 0; attempt++) {
          await turn();
          const before = alone();
          let turned = false;
          setImmediate(() => (turned = true)); // queued with the committer's own streak end
          await commit({ alone: true }); // a streak begins: no turn
          await hops();
          const t0 = performance.now();
          while (performance.now() - t0 < 2); // the streak has kept the loop 2 ms
          if (turned) continue; // the loop turned inside the streak: not this test's case
          await commit({ alone: true }); // this one lets the event loop turn first (not counted alone)
          await hops();
          await commit({ alone: true }); // a new streak: no turn
          expect(alone() - before).toBe(2);
          clean++;
        }
        expect(clean).toBe(1);
      },
      { shareLane: false }, // (a commit lane brings other stores' commits: alone is not for it)
    );
  });
});

describe('alone, a commit that comes before the committer waits for company', () => {
  it('still lets the event loop turn once lone commits have kept it 1 ms: the committer gives that turn itself', async () => {
    await withStore(
      async (store) => {
        const turn = () => new Promise((resolve) => setImmediate(resolve)); // the committer is idle after it
        let pgno = 2;
        const commit = () => store.sequence([{ pgno: pgno++, data: page(pgno) }], { alone: true }).durable;
        await commit(); // the WAL's header (a first append goes through the I/O thread)
        // A commit written through the I/O thread (its completion comes in a turn of the event
        // loop: that turn ends the streak) proves nothing: such an attempt is tried again
        let clean = 0;
        for (let attempt = 0; attempt < 20 && clean < 3; attempt++) {
          await turn();
          let turnedDuringFirst = false;
          let turned = false;
          setImmediate(() => (turnedDuringFirst = true));
          // the next commit is sequenced from the first one's own durability handler: before the
          // committer, finishing that batch, would wait a turn for company (walnut/sql's lone
          // caller's next transaction comes this soon), 2 ms into the streak of lone commits
          const second = commit().then(() => {
            if (turnedDuringFirst) return null;
            const t0 = performance.now();
            while (performance.now() - t0 < 2); // the streak has kept the loop 2 ms
            setImmediate(() => (turned = true));
            return commit().then(() => turned);
          });
          const outcome = await second;
          if (outcome === null) continue;
          expect(outcome).toBe(true); // the event loop turned before the second was written
          clean++;
        }
        expect(clean).toBe(3);
      },
      { shareLane: false },
    );
  });
});

describe("a snapshot kept across this store's own commits (walnut/sql's writer view)", () => {
  it("advance() refuses when another connection committed between two of this store's commits, though the live header is this store's", async () => {
    await withStore(async (store, file) => {
      const other = await open(file, { autoCheckpoint: false, shareLane: false });
      try {
        await store.commit([{ pgno: 2, data: page(1) }]);
        const snap = store.trySnapshotSync()!;
        await store.commit([{ pgno: 2, data: page(2) }]);
        await other.commit([{ pgno: 3, data: page(3) }]);
        await store.commit([{ pgno: 2, data: page(4) }]); // the live header is this store's again
        expect(snap.advance()).toBe(false);
        expect([snap.readSync(2)[0], snap.readSync(3)[0]]).toEqual([1, 0]); // what it saw
        await expectRejectsWalnut(store.commit([{ pgno: 4, data: page(5) }], { base: snap }), 'WALNUT_CONFLICT');
        snap.release();
      } finally {
        await other.close();
      }
    });
  });

  it('its read mark rises only to the frames it reads: a checkpoint copies no later commit of this store over a page it reads from the database file', async () => {
    await withStore(async (store) => {
      await store.commit([{ pgno: 2, data: page(1) }, { pgno: 3, data: page(1) }]);
      expect(await store.checkpoint('truncate')).toMatchObject({ busy: false, walFrames: 0 }); // pages 2 and 3 only in the database file
      await store.commit([{ pgno: 4, data: page(4) }]);
      const snap = store.trySnapshotSync()!;
      await store.commit([{ pgno: 2, data: page(2) }]);
      expect(snap.advance()).toBe(true); // sees page 2 = 2 now (its mark still at the frame it began with)
      await store.commit([{ pgno: 3, data: page(3) }]); // not seen: it did not advance again
      const r = await store.checkpoint('passive');
      expect(r.checkpointedFrames).toBe(snap.mxFrame); // up to the frames it reads, not the later commit's
      expect([snap.readSync(2)[0], snap.readSync(3)[0], snap.readSync(4)[0]]).toEqual([2, 1, 4]);
      expect(snap.advance()).toBe(true);
      expect([snap.readSync(2)[0], snap.readSync(3)[0]]).toEqual([2, 3]);
      snap.release();
      expect((await store.checkpoint('passive')).checkpointedFrames).toBe(3); // everything, once it is gone
    });
  });

  it('a parked snapshot does not keep the WAL from restarting: brought to the live header, moved to the database file, it then refuses to advance and reads what it saw', async () => {
    await withStore(async (store) => {
      await store.commit([{ pgno: 2, data: page(1) }]);
      const snap = store.trySnapshotSync()!;
      snap.park();
      await store.commit([{ pgno: 2, data: page(2) }, { pgno: 3, data: page(2) }]);
      // the checkpoint brings it forward and raises its mark first: everything is copied
      expect(await store.checkpoint('passive')).toMatchObject({ walFrames: 3, checkpointedFrames: 3 });
      await store.commit([{ pgno: 2, data: page(3) }, { pgno: 3, data: page(3) }, { pgno: 4, data: page(3) }]); // the WAL restarts: frames 1..3 of a new generation
      expect(store.metrics().walFrames).toBe(3);
      expect(snap.readLock).toBe(0);
      expect([snap.readSync(2)[0], snap.readSync(3)[0], snap.readSync(4)[0]]).toEqual([2, 2, 0]);
      // parked on READ(0) it would stop every copy: the next checkpoint lets it go first
      expect(await store.checkpoint('passive')).toMatchObject({ walFrames: 3, checkpointedFrames: 3 });
      expect(snap.released).toBe(true);
      expect(snap.advance()).toBe(false);
    });
  });

  it('two parked snapshots sharing a read slot: the checkpoint raises the mark to what both read', async () => {
    await withStore(async (store) => {
      await store.commit([{ pgno: 2, data: page(1) }]);
      const a = store.trySnapshotSync()!;
      const b = store.trySnapshotSync()!;
      expect(a.readLock).toBe(b.readLock);
      a.park();
      b.park();
      await store.commit([{ pgno: 2, data: page(2) }]);
      expect(await store.checkpoint('passive')).toMatchObject({ walFrames: 2, checkpointedFrames: 2 });
      expect([a.advance(), b.advance(), a.readSync(2)[0], b.readSync(2)[0]]).toEqual([true, true, 2, 2]);
      a.release();
      b.release();
    });
  });
});

describe('failures', () => {
  it("a conditional ticket's conflict fails the tickets after it; their pages leave every snapshot; readers that saw them get the failure; resumeCommits() mends it", async () => {
    const file = fresh();
    const store = await open(file, { autoCheckpoint: false, shareLane: false });
    const other = await open(file, { autoCheckpoint: false, shareLane: false });
    try {
      await store.commit([{ pgno: 2, data: page(1) }]);
      const base = await store.snapshot();
      await other.holdWriteLease(); // the tickets wait for WRITE until other's commit is in
      const good = store.sequence([{ pgno: 5, data: page(5) }]); // no base: it goes
      const cond = store.sequence([{ pgno: 2, data: page(2) }], { base });
      const later = store.sequence([{ pgno: 3, data: page(3) }]);
      const saw = store.trySnapshotSync()!;
      const sawGood = store.trySnapshotSync()!;
      expect([saw.pendingTicket, saw.readSync(2)[0], saw.readSync(3)[0], saw.dbSize]).toEqual([later.ticket, 2, 3, 5]);
      const sawDurable = saw.whenDurable().catch((e: unknown) => e);
      await other.commit([{ pgno: 4, data: page(9) }]); // another connection commits after base (and after saw began)
      // a snapshot taken once that commit is seen stops before the ticket it overtook (never
      // cond's page 2 laid over it: a state that would never exist)
      const sawOther = store.trySnapshotSync()!;
      expect([sawOther.pendingTicket, sawOther.readSync(2)[0], sawOther.readSync(3)[0], sawOther.readSync(4)[0], sawOther.readSync(5)[0]]).toEqual([good.ticket, 1, 0, 9, 5]);
      sawOther.release();
      await other.close();
      await good.durable;
      const failure = await expectRejectsWalnut(cond.durable, 'WALNUT_CONFLICT', { reason: 'OtherWriter' });
      await expectRejectsWalnut(later.durable, 'WALNUT_FAILED', { reason: 'ChainBroken' });
      expect(await sawDurable).toBe(failure);
      expect(() => saw.readSync(5)).toThrow(failure);
      await expect(saw.read(2)).rejects.toBe(failure);
      await expect(store.whenDurable(cond.ticket)).rejects.toBe(failure);
      await expectRejectsWalnut(store.whenDurable(later.ticket), 'WALNUT_FAILED', { reason: 'ChainBroken' });
      await store.whenDurable(good.ticket);
      sawGood.release();
      // from now on no snapshot sees the failed pages
      const after = store.trySnapshotSync()!;
      expect([after.pendingTicket, after.readSync(2)[0], after.readSync(3)[0], after.readSync(4)[0], after.readSync(5)[0]]).toEqual([0, 1, 0, 9, 5]);
      expect(after.dbSize).toBe(5);
      // refused until the failure is acknowledged; then tickets go on past the failed ones
      expectWalnutError(() => store.sequence([{ pgno: 6, data: page(6) }]), 'WALNUT_FAILED', { reason: 'ChainBroken' });
      expect(store.resumeCommits(failure)).toBe(true);
      const next = store.sequence([{ pgno: 6, data: page(6) }]);
      expect(next.ticket).toBe(later.ticket + 1);
      await next.durable;
      for (const s of [base, saw, after]) s.release();
    } finally {
      await store.close();
      await other.close(); // (again: the same promise)
    }
  });

  for (const scenario of ['write', 'close'] as const) {
    it(`an injected write error (${scenario}): the failing ticket gets WALNUT_IO, the later ones ChainBroken, the snapshot that saw them fails, nothing after it is in the database`, async () => {
      const db = fresh();
      const out = await runJsonChild<any>(path.join(HELPERS, 'sequence-fault-child.js'), [db, scenario], { WALNUT_FAULT_INJECTION: '1' });
      expect(out.crashed).toBeUndefined();
      expect(out.unhandled).toEqual([]);
      expect(out.before).toEqual({ ok: true });
      expect(out.seenBefore).toEqual({ pendingTicket: 6, dbSize: 7, pages: [3, 7] });
      expect(out.chain[0]).toMatchObject({ ok: false, code: 'WALNUT_IO' });
      for (const c of out.chain.slice(1)) expect(c).toEqual({ ok: false, code: 'WALNUT_FAILED', reason: 'ChainBroken', causeCode: 'WALNUT_IO' });
      expect(out.snapDurable).toMatchObject({ ok: false, code: 'WALNUT_IO' });
      expect(out.readAfterFailure).toMatchObject({ ok: false, code: 'WALNUT_IO' });
      expect(out.whenDurable).toEqual([{ ok: false, code: 'WALNUT_IO' }, { ok: false, code: 'WALNUT_FAILED', reason: 'ChainBroken', causeCode: 'WALNUT_IO' }, { ok: true }]);
      if (scenario === 'write') {
        expect(out.seenAfter).toEqual({ pendingTicket: 0, dbSize: 2, pages: [1, 0, 0] });
        expect(out.whileBroken).toMatchObject({ ok: false, code: 'WALNUT_FAILED', reason: 'ChainBroken' });
        expect(out.resumed).toBe(true);
        expect(out.afterResume).toEqual({ ticket: 7, settled: { ok: true } });
      } else {
        expect(out.sequenceDuringClose).toMatchObject({ ok: false, code: 'WALNUT_CLOSED' });
        expect(out.close).toEqual({ ok: true });
        expect(out.afterClose).toMatchObject({ ok: false, code: 'WALNUT_CLOSED' });
      }
      await expectAcknowledgedPages(db, out.acknowledged, 2, 9);
    });
  }

  it('a store whose commit through the shared lane failed, leading the lane later: sequence() refuses (ChainBroken, nothing sequenced, nothing seen) until resumeCommits()', async () => {
    const out = await runJsonChild<any>(path.join(HELPERS, 'sequence-fault-child.js'), [fresh(), 'lane'], { WALNUT_FAULT_INJECTION: '1' });
    expect(out.crashed).toBeUndefined();
    expect(out.unhandled).toEqual([]);
    expect(out.failed).toMatchObject({ ok: false, code: 'WALNUT_IO' });
    expect(out.followerLeads).toBe(true);
    // it returned ticket 1, whose page snapshots showed until the lane's refusal arrived
    expect(out.whileBroken).toMatchObject({ ok: false, code: 'WALNUT_FAILED', reason: 'ChainBroken', causeCode: 'WALNUT_IO' });
    expect(out.seen).toEqual({ pendingTicket: 0, dbSize: 2, page4: 0 });
    expect(out.resumed).toBe(true);
    expect(out.afterResume).toEqual({ ticket: 1, settled: { ok: true } });
  });
});

describe('refusals and close()', () => {
  it('bad input, unknown tickets and bad snapshot options are WALNUT_INVALID_ARGUMENT; nothing is sequenced', async () => {
    await withStore(async (store) => {
      expectWalnutError(() => store.sequence([]), 'WALNUT_INVALID_ARGUMENT');
      expectWalnutError(() => store.sequence([{ pgno: 0, data: page(1) }]), 'WALNUT_INVALID_ARGUMENT');
      expectWalnutError(() => store.sequence([{ pgno: 2, data: Buffer.alloc(100) }]), 'WALNUT_INVALID_ARGUMENT');
      expectWalnutError(() => store.sequence([{ pgno: 2, data: page(1) }], { base: {} as never }), 'WALNUT_INVALID_ARGUMENT', { reason: 'base' });
      expectWalnutError(() => store.sequence([{ pgno: 2, data: page(1) }], { nope: 1 } as never), 'WALNUT_INVALID_ARGUMENT');
      expect(store.lastTicket).toBe(0);
      for (const t of [0, 1, -1, 1.5, Number.NaN, '1' as never]) await expectRejectsWalnut(store.whenDurable(t), 'WALNUT_INVALID_ARGUMENT', { reason: 'ticket' });
      expectWalnutError(() => store.trySnapshotSync({ sequenced: 'yes' } as never), 'WALNUT_INVALID_ARGUMENT');
      await expectRejectsWalnut(store.snapshot({ other: true } as never), 'WALNUT_INVALID_ARGUMENT');
    });
  });

  it('a store that shares a commit lane it does not lead refuses sequence() (reason shareLane); the leader sequences', async () => {
    const file = fresh();
    const leader = await open(file, { autoCheckpoint: false });
    const member = await open(file, { autoCheckpoint: false });
    try {
      expect([leader.metrics().lane?.leader, member.metrics().lane?.leader]).toEqual([true, false]);
      expectWalnutError(() => member.sequence([{ pgno: 2, data: page(1) }]), 'WALNUT_INVALID_ARGUMENT', { reason: 'shareLane' });
      const t = leader.sequence([{ pgno: 2, data: page(2) }]);
      const s = leader.trySnapshotSync()!;
      expect(s.readSync(2)[0]).toBe(2);
      await t.durable;
      await member.commit([{ pgno: 2, data: page(3) }]); // through the leader's committer, after the ticket
      const after = leader.trySnapshotSync()!;
      expect(after.readSync(2)[0]).toBe(3);
      s.release();
      after.release();
    } finally {
      await member.close();
      await leader.close();
    }
  });

  it('close() while tickets are in flight: each becomes durable, whenDurable resolves, sequence() during and after close() throws WALNUT_CLOSED; reopened, all are there', async () => {
    const file = fresh();
    const store = await open(file, { autoCheckpoint: false });
    const seqs = Array.from({ length: 50 }, (_, i) => store.sequence([{ pgno: 2 + i, data: page(i + 1) }]));
    const snap = store.trySnapshotSync()!;
    const closing = store.close();
    expectWalnutError(() => store.sequence([{ pgno: 60, data: page(1) }]), 'WALNUT_CLOSED');
    const waits = seqs.map((s) => store.whenDurable(s.ticket));
    await closing;
    await Promise.all(seqs.map((s) => s.durable));
    await Promise.all(waits);
    expect(() => snap.readSync(2)).toThrow(WalnutError); // close() released it
    expectWalnutError(() => store.sequence([{ pgno: 60, data: page(1) }]), 'WALNUT_CLOSED');
    await store.whenDurable(50);
    const again = await open(file);
    const s = await again.snapshot();
    for (let i = 0; i < 50; i += 7) expect((await s.read(2 + i))[0]).toBe(i + 1);
    s.release();
    await again.close();
  });
});

describe('at scale, beside sqlite3: conditional tickets on a WAL of 16,000+ frames', () => {
  it('each ticket on a base is visible at once (unless the snapshot met a python3 commit after its base: then hidden, and refused), then durable or refused (OtherWriter) as a python3 writer commits beside it; integrity ok', async () => {
    const file = fresh();
    const run = promisify(execFile);
    const py = (script: string) => run('python3', ['-c', 'import sqlite3, sys\nc = sqlite3.connect(sys.argv[1], timeout=5, isolation_level=None)\n' + script, file], { encoding: 'utf8' });
    // one python3 transaction of ~17,000 pages (512-byte pages, no checkpoint)
    await py("c.execute('PRAGMA page_size=512')\nc.execute('PRAGMA journal_mode=WAL')\nc.execute('CREATE TABLE t(w, v)')");
    const store = await open(file, { autoCheckpoint: false, keepWal: true, shareLane: false }); // keeps the WAL python3 writes
    await py("c.execute('PRAGMA wal_autocheckpoint=0')\nc.execute('BEGIN')\nc.executemany('INSERT INTO t VALUES (0, ?)', ((b'x' * 440,) for _ in range(17000)))\nc.execute('COMMIT')");
    const outcomes = { durable: 0, otherWriter: 0 };
    try {
      const first = await store.snapshot();
      expect(first.mxFrame).toBeGreaterThan(16_000);
      first.release();
      const writer = runPython(path.join(HELPERS, 'sqlite-writer.py'), [file, '2', '1', '0']);
      let writing = true;
      void writer.finally(() => (writing = false)).catch(() => undefined);
      for (let i = 1; writing || i <= 3; i++) {
        const base = store.snapshotSync();
        const p1 = base.readSync(1);
        // the change counter: a mark SQLite accepts (it writes page 1 with the counter it read + 1:
        // marks far apart, so that its next one is never ours)
        const mark = (0x5e000000 + i * 0x100) >>> 0;
        p1.writeUInt32BE(mark, 24);
        const t = store.sequence([{ pgno: 1, data: p1 }], { base });
        const seen = store.snapshotSync();
        // visible at once, unless this snapshot met python3's commit after `base` (the ticket can
        // then only fail, OtherWriter: the view shows python3's commit, not the ticket over it)
        const shown = seen.pendingTicket === t.ticket;
        if (shown) expect(seen.readSync(1).readUInt32BE(24)).toBe(mark);
        else expect([seen.pendingTicket, seen.readSync(1).readUInt32BE(24) === mark]).toEqual([0, false]);
        try {
          await t.durable;
          expect(shown).toBe(true);
          outcomes.durable++;
          await seen.whenDurable();
        } catch (e) {
          expect(e).toMatchObject({ code: 'WALNUT_CONFLICT', reason: 'OtherWriter' });
          outcomes.otherWriter++;
          if (shown) {
            await expect(seen.whenDurable()).rejects.toBe(e);
            expect(() => seen.readSync(1)).toThrow();
          }
          const now = store.snapshotSync();
          expect(now.readSync(1).readUInt32BE(24)).not.toBe(mark);
          now.release();
          expect(store.resumeCommits(e)).toBe(true);
        }
        seen.release();
        base.release();
        if (i % 8 === 0) await new Promise((resolve) => setTimeout(resolve, 5)); // let the writer in now and then
      }
      const inserted = Number((await writer).trim());
      expect(inserted).toBeGreaterThan(0);
      expect(outcomes.durable).toBeGreaterThan(0);
      expect(store.metrics().walFrames).toBeGreaterThan(16_000);
      await store.close();
      const { stdout } = await run('sqlite3', ['-cmd', '.timeout 5000', file, 'PRAGMA integrity_check; SELECT count(*) FROM t'], { encoding: 'utf8' });
      expect(stdout.trim().split('\n')).toEqual(['ok', String(17000 + inserted)]);
    } finally {
      await store.close();
    }
  });
});
