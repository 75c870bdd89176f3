// close() against every public verb that can race it (issue #17 item 2): a verb started before
// or while close() runs either finishes before close checkpoints (a commit that resolved is in
// the database after reopening) or is rejected with WALNUT_CLOSED (and a rejected commit is
// absent); close() always resolves; nothing escapes as an unhandled rejection.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { PassThrough } from 'node:stream';

import { open, type Store } from '../../lib/commit/store';
import { WalnutError } from '../../lib/errors';
import { WalStreamReader, type WalRecordSink } from '../../lib/export/framing';
import { SHM_LOCK } from '../../lib/format/shm-header';
import { WalnutFile } from '../../lib/io/file';
import { SqlitePeer } from '../helpers/children';
import { expectRejectsWalnut, expectWalnutError } from '../helpers/expect-error';
import { CLOSE_INTERLEAVINGS, expectNoUnhandledRejections } from '../helpers/outcomes';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
let n = 0;
const fresh = () => path.join(dir, `c${n++}.db`);
const page = (v: number) => Buffer.alloc(4096, v);

expectNoUnhandledRejections();

type Outcome = { ok: true; value?: unknown } | { ok: false; code: string | undefined; walnut: boolean };
const settle = (p: Promise<unknown>): Promise<Outcome> =>
  p.then(
    (value) => ({ ok: true, value }),
    (e) => ({ ok: false, code: (e as { code?: string }).code, walnut: e instanceof WalnutError }),
  );

/** The value (first byte) of page `pgno` after reopening the database. */
async function pageAfterReopen(file: string, pgno: number): Promise<number> {
  const store = await open(file);
  try {
    const snap = await store.snapshot();
    const b = await snap.read(pgno);
    snap.release();
    return b[0]!;
  } finally {
    await store.close();
  }
}

/**
 * A verb racing close(). `start` runs it on an open store (page 2 holds 1) and returns its
 * settlement; `wrote` says which value page 2 must hold after reopening for that outcome.
 */
interface Verb {
  name: string;
  /** Work done before the race starts (not raced). */
  prepare?: (store: Store) => Promise<unknown>;
  start: (store: Store, prepared: unknown) => Promise<Outcome>;
  /** Page 2's value on reopen when the verb resolved (when it was rejected it stays 1). */
  written?: number;
  /** close() cuts it wherever it is (an export): started first, it may still be refused. */
  cutByClose?: boolean;
}

const collectingSink = (): WalRecordSink & { records: number } => ({
  records: 0,
  async appendRecord(bytes: Uint8Array) {
    this.records += bytes.length > 0 ? 1 : 0;
  },
  async flush() {},
});

const VERBS: Verb[] = [
  { name: 'store.commit', start: (s) => settle(s.commit([{ pgno: 2, data: page(2) }])), written: 2 },
  {
    name: 'tx.commit (snapshot read before)',
    prepare: async (s) => {
      const tx = s.begin();
      await tx.read(2);
      tx.write(2, page(3));
      return tx;
    },
    start: (_s, tx) => settle((tx as ReturnType<Store['begin']>).commit()),
    written: 3,
  },
  {
    name: 'begin + tx.commit in the same call',
    start: (s) => {
      try {
        const tx = s.begin();
        tx.write(2, page(4));
        return settle(tx.commit());
      } catch (e) {
        return settle(Promise.reject(e));
      }
    },
    written: 4,
  },
  {
    name: 'tx.read',
    prepare: async (s) => s.begin(),
    start: async (_s, tx) => {
      const r = await settle((tx as ReturnType<Store['begin']>).read(2));
      if (r.ok) expect((r.value as Buffer)[0]).toBe(1);
      return r;
    },
  },
  {
    name: 'store.snapshot + read',
    start: async (s) => {
      const r = await settle(s.snapshot());
      if (!r.ok) return r;
      const snap = r.value as Awaited<ReturnType<Store['snapshot']>>;
      const read = await settle(snap.read(2));
      if (read.ok) expect((read.value as Buffer)[0]).toBe(1);
      else expect(read).toMatchObject({ code: 'WALNUT_CLOSED', walnut: true });
      snap.release();
      return r;
    },
  },
  { name: 'store.checkpoint(truncate)', start: (s) => settle(s.checkpoint('truncate')) },
  { name: 'store.checkpoint(passive)', start: (s) => settle(s.checkpoint('passive')) },
  {
    name: 'store.exportTo',
    start: (s) => {
      try {
        const sink = collectingSink();
        return settle(s.exportTo(sink).done.then((stats) => {
          expect(stats.basePages).toBeGreaterThan(0);
          return stats;
        }));
      } catch (e) {
        return settle(Promise.reject(e));
      }
    },
    cutByClose: true,
  },
];

describe('a verb racing close()', () => {
  for (const verb of VERBS) {
    it(`${verb.name}: resolves and is kept, or is rejected with WALNUT_CLOSED; close() resolves`, async () => {
      const seen = new Set<string>();
      for (const [when, wait] of CLOSE_INTERLEAVINGS) {
        const file = fresh();
        const store = await open(file, { autoCheckpoint: false });
        await store.commit([{ pgno: 2, data: page(1) }]);
        const prepared = await verb.prepare?.(store);
        let closing: Promise<void>;
        let outcome: Promise<Outcome>;
        if (wait === 'before') {
          closing = store.close();
          outcome = verb.start(store, prepared);
        } else {
          outcome = verb.start(store, prepared);
          if (wait) await wait();
          closing = store.close();
        }
        const [r] = await Promise.all([outcome, closing]);
        if (!r.ok) expect(r, `${when}: a rejection is WALNUT_CLOSED`).toEqual({ ok: false, code: 'WALNUT_CLOSED', walnut: true });
        seen.add(r.ok ? 'resolved' : 'closed');
        const expected = r.ok && verb.written !== undefined ? verb.written : 1;
        expect(await pageAfterReopen(file, 2), `${when}: ${r.ok ? 'resolved' : 'rejected'}`).toBe(expected);
      }
      // close() first always refuses; the verb started first gets in at least once
      expect(seen).toEqual(verb.cutByClose ? new Set([...seen, 'closed']) : new Set(['resolved', 'closed']));
    });
  }
});

describe('close() itself', () => {
  it('cuts an export whose sink nobody empties: close() resolves, the export ends with WALNUT_CLOSED, the stream ends between records', async () => {
    const file = fresh();
    const store = await open(file, { autoCheckpoint: false });
    for (let i = 0; i < 4; i++) await store.commit(Array.from({ length: 64 }, (_, k) => ({ pgno: 2 + k + 64 * i, data: page(i + 1) })));
    const out = new PassThrough(); // nobody reads it: the export's write waits for 'drain' forever
    const handle = store.exportTo(out);
    const done = settle(handle.done);
    await new Promise((resolve) => out.once('readable', resolve)); // the export has written
    await store.close();
    expect(await done).toEqual({ ok: false, code: 'WALNUT_CLOSED', walnut: true });
    const bytes: Buffer[] = [];
    for (let chunk = out.read(); chunk !== null; chunk = out.read()) bytes.push(chunk as Buffer);
    expect([...WalStreamReader.fromBuffer(Buffer.concat(bytes))].length).toBeGreaterThan(0); // no Truncated
    expect(await pageAfterReopen(file, 257)).toBe(4);
  });

  it('with commits queued behind a WRITE lock sqlite3 holds, cuts their wait: all of them reject at once with the same WALNUT_CLOSED (WriteWaitCut), not one wait per batch', async () => {
    const file = fresh();
    const store = await open(file, { busyTimeout: 100, groupCommit: { maxBatchBytes: 4096 } }); // one page per batch
    await store.commit([{ pgno: 2, data: page(1) }]);
    const peer = new SqlitePeer(file);
    try {
      await peer.exec('BEGIN IMMEDIATE'); // SQLite's WRITE lock, held until COMMIT
      const queued = Array.from({ length: 6 }, (_, i) => store.commit([{ pgno: 3 + i, data: page(3) }]).catch((e: unknown) => e));
      await store.close();
      const errors = await Promise.all(queued);
      for (const e of errors) expect([(e as WalnutError).code, (e as WalnutError).reason]).toEqual(['WALNUT_CLOSED', 'WriteWaitCut']);
      // every commit queued behind the first batch's wait ended with that wait: the same answer
      expect(new Set(errors).size).toBe(1);
      await peer.exec('COMMIT');
    } finally {
      await peer.close();
    }
    expect(await pageAfterReopen(file, 2)).toBe(1);
    expect(await pageAfterReopen(file, 3)).toBe(0);
  });

  it('a transaction whose commit() close() refuses lets its read mark go at once: a restart checkpoint waiting for it does not run out the busy timeout, and the commit queued behind that checkpoint is written', async () => {
    const file = fresh();
    const store = await open(file, { busyTimeout: 1000, autoCheckpoint: false });
    await store.commit([{ pgno: 2, data: page(1) }]);
    const tx = store.begin();
    await tx.read(2); // a reader of the WAL: a restart checkpoint waits for it, holding WRITE
    const checkpoint = settle(store.checkpoint('restart'));
    await new Promise((resolve) => setTimeout(resolve, 20)); // (lets the checkpoint take WRITE first: the case that stalled)
    const queued = settle(store.commit([{ pgno: 3, data: page(3) }])); // waits for WRITE
    const closing = store.close();
    await expectRejectsWalnut(tx.commit(), 'WALNUT_CLOSED'); // it can never commit now: its snapshot goes
    expect(await checkpoint).toMatchObject({ ok: true, value: { mode: 'restart', busy: false } }); // (it waited out the busy timeout: busy)
    expect(await queued).toMatchObject({ ok: true });
    await closing;
    expect(await pageAfterReopen(file, 3)).toBe(3);
  });

  it('called twice (and more) resolves each time, once', async () => {
    const file = fresh();
    const store = await open(file);
    await store.commit([{ pgno: 2, data: page(7) }]);
    const a = store.close();
    const b = store.close();
    expect(b).toBe(a);
    await Promise.all([a, b, store.close()]);
    await store.close();
    expect(await pageAfterReopen(file, 2)).toBe(7);
  });

  it('every verb after close() is refused cleanly with WALNUT_CLOSED', async () => {
    const file = fresh();
    const store = await open(file);
    await store.commit([{ pgno: 2, data: page(1) }]);
    const tx = store.begin();
    await tx.read(2);
    tx.write(2, page(9));
    const snap = await store.snapshot();
    await store.close();
    await expectRejectsWalnut(store.commit([{ pgno: 2, data: page(2) }]), 'WALNUT_CLOSED');
    await expectRejectsWalnut(store.snapshot(), 'WALNUT_CLOSED');
    await expectRejectsWalnut(store.checkpoint(), 'WALNUT_CLOSED');
    expectWalnutError(() => store.begin(), 'WALNUT_CLOSED');
    expectWalnutError(() => store.exportTo(collectingSink()), 'WALNUT_CLOSED');
    await expectRejectsWalnut(tx.read(2), 'WALNUT_CLOSED');
    await expectRejectsWalnut(tx.commit(), 'WALNUT_CLOSED');
    await tx.rollback();
    await expectRejectsWalnut(snap.read(2), 'WALNUT_CLOSED');
    expectWalnutError(() => snap.readSync(2), 'WALNUT_CLOSED');
    snap.release();
    snap.release();
    expect(store.metrics().walFrames).toBe(0);
    expect(await pageAfterReopen(file, 2)).toBe(1);
  });

  it('releases the snapshots the user still holds: close() resolves, their reads stop, the data is kept', async () => {
    const file = fresh();
    const store = await open(file, { autoCheckpoint: false });
    await store.commit([{ pgno: 2, data: page(1) }]);
    const old = await store.snapshot(); // holds a read mark that the close checkpoint must not wait for forever
    await store.commit([{ pgno: 2, data: page(2) }]);
    const reading = settle(old.read(2)); // in flight as close() starts
    await store.close();
    const r = await reading;
    if (r.ok) expect((r.value as Buffer)[0]).toBe(1); // the snapshot's own view, never the newer page
    else expect(r).toEqual({ ok: false, code: 'WALNUT_CLOSED', walnut: true });
    expect(old.released).toBe(true);
    await expectRejectsWalnut(old.read(2), 'WALNUT_CLOSED');
    old.release();
    expect(await pageAfterReopen(file, 2)).toBe(2);
  });

  it('a snapshot released with reads in flight keeps its read lock until they end (close() releases the same way)', async () => {
    const file = fresh();
    const store = await open(file, { autoCheckpoint: false });
    await store.commit([{ pgno: 2, data: page(1) }]);
    const probe = await WalnutFile.open(`${file}-shm`); // another open file description: OFD locks conflict
    try {
      const snap = await store.snapshot();
      const lock = SHM_LOCK.READ(snap.readLock);
      expect(probe.tryLock(lock, 1, 'exclusive')).toBe(false);
      const reading = snap.read(2);
      snap.release();
      expect(snap.released).toBe(true);
      // the read's completion cannot run before this synchronous check: the lock must still be held
      expect(probe.tryLock(lock, 1, 'exclusive')).toBe(false);
      await expectRejectsWalnut(snap.read(2), 'WALNUT_CLOSED'); // no new reads
      expect((await reading)[0]).toBe(1);
      expect(probe.tryLock(lock, 1, 'exclusive'), 'released after the read').toBe(true);
      probe.unlock(lock, 1);
    } finally {
      await probe.close();
      await store.close();
    }
  });
});
