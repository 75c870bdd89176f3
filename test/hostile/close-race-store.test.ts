// The raw store API raced against close(), for the verbs test/unit/close-races.test.ts does not
// race (that file: commit, tx.commit, begin, tx.read, snapshot + read, checkpoint passive and
// truncate, exportTo; close-during-truncate: truncate and restart; sequence.test.ts: sequence and
// whenDurable; lease-wait-*: holdWriteLease). Here:
//  - every other Store verb and property called in the same tick as close() (before it, just
//    after it), after close() began (one setImmediate) and after it resolved: each answers
//    as documented (WALNUT_CLOSED once close() has begun; releaseWriteLease, resumeCommits,
//    metrics(), recentEvents() and the getters still answer); metrics() and its Prometheus text
//    polled on every turn while close() runs never throw;
//  - checkpoint('full') and checkpoint('restart') with commits in flight at six interleavings;
//  - the Snapshot verbs (readInto, readRaw and the sync reads, frameOf, framesOf, advance,
//    park, whenDurable, a sequenced snapshot's pending read) in flight as close() starts and
//    after it; Transaction.rollback beside close();
//  - a follow export's handle: stop() in the same tick before and after close(), stop() and
//    close() each called twice; behindBytes(), unreadBytes(), poke() after close(); an export
//    into a WalnutFile or openExportOutput's Writable cut by close(): whole records only;
//  - the FEC sidecar: commits in flight as close() runs (keepWal, so the WAL and its sidecar
//    stay): recoverWithRepair repairs nothing and falls back for nothing, verify ok;
//  - telemetry: subscribers of every walnut channel while close() runs get objects, never throw;
//    close() called from inside a walnut:commit or walnut:checkpoint subscriber;
//  - WalnutFile (the exported file class): every kind of operation in flight as close() is
//    called (file.test.ts and lock-within-close.test.ts race the queue and lockWithin only).
// Every case: each promise settles within a hang guard, a rejection is a WalnutError with the
// documented code, close() resolves (twice: the same promise), no unhandled rejection, and the
// database stays whole (sqlite3's PRAGMA integrity_check, walnut's verify) with every
// acknowledged commit in it.
import diagnostics from 'node:diagnostics_channel';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';

import { open, type Store } from '../../lib/index';
import { WalStreamReader } from '../../lib/export/framing';
import { openExportOutput } from '../../lib/export/stream';
import { WalnutFile } from '../../lib/io/file';
import { recoverWithRepair } from '../../lib/fec/recover';
import { verify } from '../../lib/integrity/verify';
import type { Snapshot } from '../../lib/wal-index/snapshot';
import { CLOSE_INTERLEAVINGS, type Outcome, call, expectNoUnhandledRejections, settle } from '../helpers/outcomes';
import { linkOf, overflowRowDatabase, sqliteIntegrity } from '../helpers/sqlite-db';
import { tmpDir } from '../helpers/tmp';

expectNoUnhandledRejections();

const dir = tmpDir();
let n = 0;
const PAGE = 4096;

const CLOSED = { ok: false, code: 'WALNUT_CLOSED', walnut: true };

/** A SQLite database (one 16 KiB row: overflow pages rewritable past their 4-byte link) and its overflow pages. */
function database(): { file: string; overflow: number[] } {
  const file = path.join(dir, `s${n++}.db`);
  return { file, overflow: overflowRowDatabase(file) };
}

/** Page `pgno`'s image holding `v` past its 4-byte next-page link (the link is `link`). */
function overflowPage(link: Uint8Array, v: number): Buffer {
  const b = Buffer.alloc(PAGE, v);
  b.set(link.subarray(0, 4), 0);
  return b;
}

/** Reopens `file`: each page of `pages` holds (byte 100) its last acknowledged value, else `initial`. */
async function expectAcknowledged(file: string, acked: Map<number, number>, pages: number[], initial = 1): Promise<void> {
  expect(sqliteIntegrity(file)).toEqual(['ok']);
  expect(await verify(file, 5)).toMatchObject({ ok: true, issues: [] });
  const store = await open(file);
  try {
    const snap = await store.snapshot();
    for (const pgno of pages) expect((await snap.read(pgno))[100], `page ${pgno}`).toBe(acked.get(pgno) ?? initial);
    snap.release();
  } finally {
    await store.close();
  }
}

type When = 'same tick, before close()' | 'same tick, after close()' | 'after close() began' | 'after close() resolved';
const WHEN: When[] = ['same tick, before close()', 'same tick, after close()', 'after close() began', 'after close() resolved'];

/** Runs `verb` at `when` relative to store.close() (called twice); returns the verb's outcome. */
async function raced(store: Store, when: When, verb: () => unknown, what: string): Promise<Outcome> {
  let running: Promise<unknown> | null = null;
  if (when === 'same tick, before close()') running = call(verb);
  const closing = [store.close()];
  if (when === 'same tick, after close()') running = call(verb);
  closing.push(store.close());
  expect(closing[1], 'close() twice: the same promise').toBe(closing[0]);
  if (when === 'after close() began') {
    await new Promise((resolve) => setImmediate(resolve));
    running = call(verb);
  }
  if (when === 'after close() resolved') {
    await closing[0];
    running = call(verb);
  }
  const [r, c] = await Promise.all([settle(running!, `${what} ${when}`), settle(closing[0]!, `close() ${when}`)]);
  expect(c, `${what} ${when}: close()`).toEqual({ ok: true, value: undefined });
  return r;
}

interface SyncVerb {
  name: string;
  run: (store: Store, ticket: number) => unknown;
  /** Its outcome once close() has begun (before it: `before`, default a resolution). */
  closed: (r: Outcome) => void;
  before?: (r: Outcome) => void;
  /** Not called before close(): it would start something (a replication to a server that is not there). */
  afterOnly?: boolean;
}

const isClosed = (r: Outcome) => expect(r).toMatchObject(CLOSED);
const resolves = (check?: (v: unknown) => void) => (r: Outcome) => {
  expect(r, JSON.stringify(r)).toMatchObject({ ok: true });
  if (r.ok) check?.(r.value);
};

const resolvesOrClosed = (r: Outcome) => {
  if (!r.ok) expect(r).toMatchObject(CLOSED);
};

const SYNC_VERBS: SyncVerb[] = [
  { name: 'trySnapshotSync', run: (s) => s.trySnapshotSync()?.release(), closed: isClosed },
  { name: 'snapshotSync', run: (s) => s.snapshotSync().release(), closed: isClosed },
  { name: 'trySnapshotSync({ sequenced: false })', run: (s) => s.trySnapshotSync({ sequenced: false })?.release(), closed: isClosed },
  { name: 'dataVersion', run: (s) => s.dataVersion(), closed: isClosed, before: resolves((v) => expect(typeof v).toBe('number')) },
  { name: 'sequence', run: (s) => s.sequence([{ pgno: 2, data: Buffer.alloc(PAGE, 9) }]).durable, closed: isClosed },
  { name: 'begin', run: (s) => s.begin().rollback(), closed: isClosed },
  // (before close(): close() cuts an export still running, as documented)
  { name: 'exportTo', run: (s) => s.exportTo({ async appendRecord() {}, async flush() {} }).done, closed: isClosed, before: resolvesOrClosed },
  { name: 'replicateTo', afterOnly: true, run: (s) => s.replicateTo({ servers: 'nats://127.0.0.1:1', stream: 'closed' } as never), closed: isClosed },
  // (before close(): a lease still waiting for the lock is cut short, as documented)
  { name: 'holdWriteLease', run: async (s) => { await s.holdWriteLease(); s.releaseWriteLease(); }, closed: isClosed, before: resolvesOrClosed },
  { name: 'releaseWriteLease (none held)', run: (s) => s.releaseWriteLease(), closed: resolves(), before: (r) => expect(r).toMatchObject({ ok: false, code: 'WALNUT_INVALID_ARGUMENT' }) },
  { name: 'whenDurable (a ticket sequenced before)', run: (s, t) => s.whenDurable(t), closed: resolves(), before: resolves() },
  { name: 'resumeCommits', run: (s) => s.resumeCommits(), closed: resolves((v) => expect(v).toBe(false)), before: resolves((v) => expect(v).toBe(false)) },
  { name: 'metrics()', run: (s) => s.metrics(), closed: resolves((v) => expect(v).toMatchObject({ walFrames: expect.any(Number) })), before: resolves() },
  { name: "metrics({ format: 'prometheus' })", run: (s) => s.metrics({ format: 'prometheus' }), closed: resolves((v) => expect(v).toMatch(/walnut_/)), before: resolves() },
  { name: 'recentEvents', run: (s) => s.recentEvents(), closed: resolves((v) => expect(Array.isArray(v)).toBe(true)), before: resolves() },
  { name: 'lastTicket, chainBrokenBy, path, pageSize, options', run: (s) => [s.lastTicket, s.chainBrokenBy, s.path, s.pageSize, s.options.synchronous], closed: resolves((v) => expect((v as unknown[]).slice(0, 2)).toEqual([1, null])), before: resolves() },
  { name: "checkpoint('full')", run: (s) => s.checkpoint('full'), closed: isClosed },
  { name: "checkpoint('restart')", run: (s) => s.checkpoint('restart'), closed: isClosed },
];

describe('Store verbs against close()', () => {
  for (const verb of SYNC_VERBS) {
    it(`${verb.name}: before close() it answers, once close() began ${verb.closed === isClosed ? 'WALNUT_CLOSED' : 'it still answers'}; close() resolves; the data is kept`, async () => {
      for (const when of WHEN) {
        if (verb.afterOnly && when === 'same tick, before close()') continue;
        const { file, overflow } = database();
        const store = await open(file, { autoCheckpoint: false });
        const link = await linkOf(store, overflow[0]!);
        await store.commit([{ pgno: overflow[0]!, data: overflowPage(link, 5) }]);
        const { ticket } = store.sequence([{ pgno: overflow[0]!, data: overflowPage(link, 6) }]);
        const r = await raced(store, when, () => verb.run(store, ticket), verb.name);
        if (when === 'same tick, before close()') (verb.before ?? resolves())(r);
        else verb.closed(r);
        if (!r.ok) expect(r.walnut, r.message).toBe(true);
        // (sequence before close() writes page 2: a 1-page b-tree of 9s would not check; its own files)
        if (!(verb.name === 'sequence' && r.ok)) await expectAcknowledged(file, new Map([[overflow[0]!, 6]]), overflow);
      }
    });
  }

  it('metrics() and its Prometheus text, polled on every turn while close() runs with commits and a checkpoint in flight, never throw', async () => {
    const { file, overflow } = database();
    const store = await open(file, { autoCheckpoint: 4 });
    const link = await linkOf(store, overflow[1]!);
    const acked = new Map<number, number>();
    const commits = Array.from({ length: 16 }, (_, i) => settle(store.commit([{ pgno: overflow[1]!, data: overflowPage(link, 10 + i) }]).then(() => acked.set(overflow[1]!, 10 + i)), 'commit'));
    const checkpoint = settle(store.checkpoint('full'), 'checkpoint');
    let done = false;
    const closing = store.close().finally(() => (done = true));
    let polls = 0;
    while (!done) {
      expect(store.metrics()).toMatchObject({ walFrames: expect.any(Number) });
      expect(store.metrics({ format: 'prometheus' })).toMatch(/walnut_/);
      expect(Array.isArray(store.recentEvents())).toBe(true);
      polls++;
      await new Promise((resolve) => setImmediate(resolve));
    }
    await closing;
    expect(polls).toBeGreaterThan(0);
    for (const c of [...(await Promise.all(commits)), await checkpoint]) if (!c.ok) expect(c).toMatchObject(CLOSED);
    expect(store.metrics().walFrames).toBe(0);
    await expectAcknowledged(file, acked, overflow);
  });
});

describe("checkpoint('full' | 'restart') with commits in flight, against close()", () => {
  for (const mode of ['full', 'restart'] as const) {
    it(`${mode}: the checkpoint resolves or is WALNUT_CLOSED, each commit resolves (and is kept) or is WALNUT_CLOSED; close() resolves`, async () => {
      const seen = new Set<string>();
      for (const [when, wait] of CLOSE_INTERLEAVINGS) {
        const { file, overflow } = database();
        const store = await open(file, { autoCheckpoint: false, busyTimeout: 2000 });
        const link = await linkOf(store, overflow[0]!);
        for (let i = 0; i < 3; i++) await store.commit([{ pgno: overflow[0]!, data: overflowPage(link, 2 + i) }]);
        const acked = new Map<number, number>([[overflow[0]!, 4]]);
        let closing: Promise<void> | undefined;
        if (wait === 'before') closing = store.close();
        const checkpoint = settle(store.checkpoint(mode), `checkpoint ${when}`);
        const commits = [5, 6, 7].map((v) => settle(store.commit([{ pgno: overflow[0]!, data: overflowPage(link, v) }]).then(() => acked.set(overflow[0]!, Math.max(acked.get(overflow[0]!)!, v))), `commit ${when}`));
        if (wait !== 'before') {
          if (wait) await wait();
          closing = store.close();
        }
        const [c, closed, ...rs] = await Promise.all([checkpoint, settle(closing!, `close() ${when}`), ...commits]);
        expect(closed, when).toEqual({ ok: true, value: undefined });
        for (const r of [c, ...rs]) if (!r.ok) expect(r, `${when}: ${r.message}`).toMatchObject(CLOSED);
        if (c.ok) expect((c.value as { mode: string }).mode).toBe(mode);
        seen.add(c.ok ? 'resolved' : 'closed');
        await expectAcknowledged(file, acked, [overflow[0]!]);
      }
      expect(seen).toEqual(new Set(['resolved', 'closed']));
    });
  }
});

describe('Snapshot verbs against close()', () => {
  type SnapVerb = { name: string; run: (s: Snapshot, pgno: number) => unknown; closed: (r: Outcome) => void; sequenced?: boolean };
  const buffer = () => Buffer.alloc(PAGE);
  const VERBS: SnapVerb[] = [
    { name: 'readInto', run: (s, p) => s.readInto(p, buffer()), closed: isClosed },
    { name: 'readRaw', run: (s, p) => s.readRaw(p), closed: isClosed },
    { name: 'readIntoSync', run: (s, p) => s.readIntoSync(p, buffer()), closed: isClosed },
    { name: 'readRawSync', run: (s, p) => s.readRawSync(p), closed: isClosed },
    { name: 'readPagesIntoSync', run: (s, p) => s.readPagesIntoSync(p, 2, Buffer.alloc(2 * PAGE)), closed: isClosed },
    { name: 'frameOf', run: (s, p) => s.frameOf(p), closed: isClosed },
    { name: 'framesOf', run: (s, p) => s.framesOf(p, new Uint32Array(2)), closed: isClosed },
    { name: 'advance', run: (s) => s.advance(), closed: resolves((v) => expect(v).toBe(false)) },
    { name: 'park', run: (s) => s.park(), closed: resolves() },
    { name: 'release', run: (s) => s.release(), closed: resolves() },
    { name: 'getters', run: (s) => [s.dbSize, s.mxFrame, s.pageSize, s.dataVersion, s.pendingTicket, s.released, s.parked], closed: resolves() },
    { name: 'read of a sequenced commit (pending)', sequenced: true, run: (s, p) => s.read(p), closed: isClosed },
    { name: 'whenDurable of a sequenced commit', sequenced: true, run: (s) => s.whenDurable(), closed: resolves() },
  ];
  for (const verb of VERBS) {
    it(`${verb.name}: answers before close(), ${verb.closed === isClosed ? 'WALNUT_CLOSED' : 'still answers'} once close() released the snapshot; close() resolves`, async () => {
      for (const when of WHEN) {
        const { file, overflow } = database();
        const store = await open(file, { autoCheckpoint: false });
        const link = await linkOf(store, overflow[0]!);
        await store.commit([{ pgno: overflow[0]!, data: overflowPage(link, 5) }]);
        if (verb.sequenced) store.sequence([{ pgno: overflow[0]!, data: overflowPage(link, 6) }]);
        const snap = verb.sequenced ? store.snapshotSync() : await store.snapshot(); // (in the same step: it sees the ticket still pending)
        if (verb.sequenced) expect(snap.pendingTicket).toBe(1);
        let releasedAtCall = false;
        const r = await raced(store, when, () => {
          releasedAtCall = snap.released;
          return verb.run(snap, overflow[0]!);
        }, verb.name);
        // close() releases held snapshots once its commits and exports have ended: a verb in the
        // same tick as close() still runs on the snapshot
        if (when === 'after close() resolved') expect(releasedAtCall).toBe(true);
        if (releasedAtCall) verb.closed(r);
        else if (!r.ok) expect(r, `${when}: ${r.message}`).toMatchObject(CLOSED);
        if (r.ok && verb.name === 'read of a sequenced commit (pending)') expect((r.value as Buffer)[100]).toBe(6);
        expect(snap.released, `${when}: close() released it`).toBe(true);
        await expectAcknowledged(file, new Map([[overflow[0]!, verb.sequenced ? 6 : 5]]), overflow);
      }
    });
  }

  it('Transaction.rollback beside close(): resolves, before and after; a write after close() is WALNUT_CLOSED', async () => {
    for (const when of WHEN) {
      const { file, overflow } = database();
      const store = await open(file, { autoCheckpoint: false });
      const tx = store.begin();
      const page = await tx.read(overflow[0]!);
      tx.write(overflow[0]!, overflowPage(page, 8));
      const r = await raced(store, when, () => tx.rollback(), 'rollback');
      expect(r, when).toEqual({ ok: true, value: undefined });
      await expect(tx.commit()).rejects.toMatchObject({ code: when === 'same tick, before close()' ? 'WALNUT_CLOSED' : 'WALNUT_CLOSED' });
      await expectAcknowledged(file, new Map(), overflow);
    }
  });
});

describe("a follow export's handle against close()", () => {
  for (const when of ['stop() then close(), same tick', 'close() then stop(), same tick', 'stop() after close() began', 'stop() after close() resolved', 'stop() twice, close() twice'] as const) {
    it(`${when}: stop() resolves with the statistics or is WALNUT_CLOSED, done the same; behindBytes() 0, unreadBytes() 0, poke() harmless after; the stream is whole records`, async () => {
      const { file, overflow } = database();
      const store = await open(file, { autoCheckpoint: false });
      const link = await linkOf(store, overflow[0]!);
      const out = new PassThrough();
      const bytes: Buffer[] = [];
      out.on('data', (b: Buffer) => bytes.push(b));
      const handle = store.exportTo(out, { follow: true });
      for (let i = 0; i < 5; i++) await store.commit([{ pgno: overflow[0]!, data: overflowPage(link, 20 + i) }]);
      const inFlight = settle(store.commit([{ pgno: overflow[0]!, data: overflowPage(link, 30) }]), 'commit');
      const done = settle(handle.done, 'done');
      const stops: Promise<Outcome>[] = [];
      const closes: Promise<void>[] = [];
      if (when === 'stop() then close(), same tick') {
        stops.push(settle(handle.stop(), 'stop'));
        closes.push(store.close());
      } else if (when === 'close() then stop(), same tick') {
        closes.push(store.close());
        stops.push(settle(handle.stop(), 'stop'));
      } else if (when === 'stop() after close() began') {
        closes.push(store.close());
        await new Promise((resolve) => setImmediate(resolve));
        stops.push(settle(handle.stop(), 'stop'));
      } else if (when === 'stop() after close() resolved') {
        closes.push(store.close());
        await closes[0];
        stops.push(settle(handle.stop(), 'stop'));
      } else {
        stops.push(settle(handle.stop(), 'stop'), settle(handle.stop(), 'stop'));
        closes.push(store.close(), store.close());
      }
      const outcomes = await Promise.all([...stops, done, inFlight, ...closes.map((c) => settle(c, 'close'))]);
      for (const o of outcomes) if (!o.ok) expect(o, o.message).toMatchObject(CLOSED);
      for (const c of outcomes.slice(-closes.length)) expect(c).toEqual({ ok: true, value: undefined });
      expect(handle.behindBytes()).toBe(0);
      expect(handle.unreadBytes()).toBe(0);
      handle.poke();
      // whole records only (a cut stream ends between records): no Truncated. Empty only when
      // close() cut the export before it wrote its header (its start is I/O: a loaded machine
      // had not begun it after the five commits), and then stop() and done say so
      const stream = Buffer.concat(bytes);
      if (stream.length === 0) for (const o of outcomes.slice(0, stops.length + 1)) expect(o, 'an empty stream: cut by close()').toMatchObject(CLOSED);
      else expect([...WalStreamReader.fromBuffer(stream)].length).toBeGreaterThan(0);
      const acked = outcomes.at(-1 - closes.length)!.ok ? 30 : 24;
      await expectAcknowledged(file, new Map([[overflow[0]!, acked]]), [overflow[0]!]);
    });
  }
});

describe('the FEC sidecar against close()', () => {
  for (const [when, wait] of CLOSE_INTERLEAVINGS) {
    it(`${when}: commits in flight settle (kept or WALNUT_CLOSED); with keepWal the WAL and its sidecar agree: recoverWithRepair repairs nothing, no fallback; verify ok`, async () => {
      const { file, overflow } = database();
      const store = await open(file, { autoCheckpoint: false, keepWal: true, fec: { repairSymbols: 2, codec: 'rs' } });
      const links = await Promise.all(overflow.map((p) => linkOf(store, p)));
      const acked = new Map<number, number>();
      const write = (i: number) => {
        const k = i % overflow.length;
        return settle(store.commit([{ pgno: overflow[k]!, data: overflowPage(links[k]!, 40 + i) }]).then(() => acked.set(overflow[k]!, Math.max(acked.get(overflow[k]!) ?? 0, 40 + i))), 'commit');
      };
      for (let i = 0; i < 8; i++) await write(i);
      let closing: Promise<void> | undefined;
      if (wait === 'before') closing = store.close();
      const commits = Array.from({ length: 24 }, (_, i) => write(8 + i));
      if (wait !== 'before') {
        if (wait) await wait();
        closing = store.close();
      }
      const [closed, ...rs] = await Promise.all([settle(closing!, 'close'), ...commits]);
      expect(closed).toEqual({ ok: true, value: undefined });
      for (const r of rs) if (!r.ok) expect(r, r.message).toMatchObject(CLOSED);
      expect(await recoverWithRepair(file)).toMatchObject({ repairedFrames: 0, fallback: null, restoredHeader: null });
      expect(await verify(file, 5)).toMatchObject({ ok: true, issues: [] });
      await expectAcknowledged(file, acked, overflow);
    });
  }
});

describe('telemetry against close()', () => {
  it('subscribers of every walnut channel while close() runs with commits, a checkpoint and a follow export: each message an object, close() resolves', async () => {
    const names = ['commit', 'checkpoint', 'recovery', 'fault', 'fec', 'wal'];
    const got: Array<[string, unknown]> = [];
    const subscribers = names.map((name) => [`walnut:${name}`, (m: unknown) => void got.push([name, m])] as const);
    for (const [channel, f] of subscribers) diagnostics.subscribe(channel, f);
    try {
      for (const [when, wait] of CLOSE_INTERLEAVINGS) {
        got.length = 0;
        const { file, overflow } = database();
        const store = await open(file, { autoCheckpoint: 2, fec: { repairSymbols: 1, codec: 'rs' } });
        const link = await linkOf(store, overflow[0]!);
        const exported = store.exportTo({ async appendRecord() {}, async flush() {} }, { follow: true });
        const done = settle(exported.done, 'export');
        await store.commit([{ pgno: overflow[0]!, data: overflowPage(link, 50) }]);
        let closing: Promise<void> | undefined;
        if (wait === 'before') closing = store.close();
        const work = [settle(store.checkpoint('full'), 'checkpoint'), ...[51, 52, 53].map((v) => settle(store.commit([{ pgno: overflow[0]!, data: overflowPage(link, v) }]), 'commit'))];
        if (wait !== 'before') {
          if (wait) await wait();
          closing = store.close();
        }
        const outcomes = await Promise.all([settle(closing!, 'close'), done, ...work]);
        expect(outcomes[0]).toEqual({ ok: true, value: undefined });
        for (const o of outcomes) if (!o.ok) expect(o, `${when}: ${o.message}`).toMatchObject(CLOSED);
        for (const [name, m] of got) expect(typeof m, `${when}: walnut:${name}`).toBe('object');
        expect(got.some(([name]) => name === 'commit'), when).toBe(true);
        expect(sqliteIntegrity(file)).toEqual(['ok']);
      }
    } finally {
      for (const [channel, f] of subscribers) diagnostics.unsubscribe(channel, f);
    }
  });

  for (const [channel, nth] of [['walnut:commit', 1], ['walnut:commit', 2], ['walnut:checkpoint', 1], ['walnut:checkpoint', 3]] as const) {
    it(`close() called from inside a ${channel} subscriber (its message ${nth}), with commits, checkpoints and a follow export running: every call settles (kept, or WALNUT_CLOSED), close() resolves, the data is whole`, async () => {
      const { file, overflow } = database();
      const store = await open(file, { busyTimeout: 2000, autoCheckpoint: 2, fec: { repairSymbols: 1, codec: 'rs' } });
      const link = await linkOf(store, overflow[0]!);
      let seen = 0;
      let closing: Promise<Outcome> | null = null;
      const subscriber = (): void => {
        if (++seen === nth) closing = settle(store.close(), 'close() from the subscriber'); // (synchronously, inside the publisher's step)
      };
      diagnostics.subscribe(channel, subscriber);
      try {
        const exported = settle(store.exportTo({ async appendRecord() {}, async flush() {} }, { follow: true }).done, 'export');
        const acked = new Map<number, number>();
        const calls: Promise<Outcome>[] = [];
        for (let i = 0; i < 20; i++) {
          calls.push(settle(store.commit([{ pgno: overflow[0]!, data: overflowPage(link, 60 + i) }]).then(() => acked.set(overflow[0]!, Math.max(acked.get(overflow[0]!) ?? 0, 60 + i))), 'commit'));
          if (i % 5 === 4) calls.push(settle(store.checkpoint(i % 10 === 4 ? 'truncate' : 'full'), 'checkpoint'));
          if (i % 3 === 0) await new Promise((resolve) => setImmediate(resolve));
        }
        const outcomes = await Promise.all([...calls, exported]);
        expect(seen, 'the subscriber heard its message').toBeGreaterThanOrEqual(nth);
        expect(await closing!).toEqual({ ok: true, value: undefined });
        for (const o of outcomes) if (!o.ok) expect(o, o.message).toMatchObject(CLOSED);
        await expectAcknowledged(file, acked, [overflow[0]!]);
      } finally {
        diagnostics.unsubscribe(channel, subscriber);
      }
    });
  }
});

describe('WalnutFile against its close()', () => {
  it('operations in flight (write, writev full, writevLent, read, readLent, fsync, fdatasync, size, allocate, lockWithin and lock(timeout) on a range another descriptor holds) as close() is called in the same tick, after a turn, after 1 ms: each resolves or is WALNUT_CLOSED (lock: also WALNUT_BUSY), close() resolves, a second close() and later calls are WALNUT_CLOSED; writes that resolved are in the file', async () => {
    const waits: Array<(() => Promise<void>) | null> = [null, () => new Promise((r) => setImmediate(r)), () => new Promise((r) => setTimeout(r, 1))];
    for (let round = 0; round < 30; round++) {
      const file = path.join(dir, `w${n++}.bin`);
      const f = await WalnutFile.open(file, { create: true });
      const other = await WalnutFile.open(file);
      try {
        expect(other.tryLock(100, 1, 'exclusive')).toBe(true);
        const ops = {
          write: settle(f.write(Buffer.alloc(PAGE, 1), 0, PAGE, 0), 'write'),
          writev: settle(f.writev([Buffer.alloc(PAGE, 2)], PAGE, 'full'), 'writev'),
          writevLent: settle(f.writevLent([Buffer.alloc(PAGE, 3)], 2 * PAGE, 'data'), 'writevLent'),
          read: settle(f.read(Buffer.alloc(10), 0, 10, 0), 'read'),
          readLent: settle(f.readLent(Buffer.alloc(10), 0, 10, 0), 'readLent'),
          fsync: settle(f.fsync(), 'fsync'),
          fdatasync: settle(f.fdatasync(), 'fdatasync'),
          size: settle(f.size(), 'size'),
          allocate: settle(f.allocate(0, 4 * PAGE), 'allocate'),
          lockWithin: settle(f.lockWithin(100, 1, 'exclusive', 900_000), 'lockWithin'), // (0.9 s: close() must not wait it out)
          lock: settle(f.lock(100, 1, 'shared', 2000), 'lock'),
        };
        await waits[round % waits.length]?.();
        const closing = settle(f.close(), 'close');
        const again = settle(f.close(), 'close again');
        const later = settle(f.write(Buffer.alloc(1), 0, 1, 0), 'write after close');
        const outcomes = Object.fromEntries(await Promise.all(Object.entries(ops).map(async ([k, p]) => [k, await p] as const)));
        expect(await closing).toEqual({ ok: true, value: undefined });
        expect(await again).toMatchObject(CLOSED);
        expect(await later).toMatchObject(CLOSED);
        for (const [k, o] of Object.entries(outcomes)) if (!o.ok) expect([...(k === 'lock' ? ['WALNUT_BUSY'] : []), 'WALNUT_CLOSED'], `${k}: ${o.message}`).toContain(o.code);
        expect(outcomes['lockWithin']!.ok ? outcomes['lockWithin']!.value : false, 'the lock another descriptor holds was never had').toBe(false);
        const bytes = fs.readFileSync(file);
        if (outcomes['write']!.ok) expect(bytes[0]).toBe(1);
        if (outcomes['writev']!.ok) expect(bytes[PAGE]).toBe(2);
        if (outcomes['writevLent']!.ok) expect(bytes[2 * PAGE]).toBe(3);
      } finally {
        await other.close();
      }
    }
  });
});

describe('an export into a file, cut by close()', () => {
  // close-races.test.ts cuts one into a PassThrough; a WalnutFile target is written natively
  // (the base image and the records straight to the file), openExportOutput's Writable through Node
  for (const target of ['a WalnutFile', "openExportOutput's Writable"] as const) {
    for (const follow of [false, true]) {
      it(`${target}, ${follow ? 'follow' : 'one-shot'}, close() after 0..11 ms with commits in flight: done resolves or is WALNUT_CLOSED, the file holds whole records only, the database whole`, async () => {
        for (let round = 0; round < 8; round++) {
          const { file, overflow } = database();
          const store = await open(file);
          const link = await linkOf(store, overflow[0]!);
          const outPath = `${file}.ark`;
          const out = target === 'a WalnutFile' ? await WalnutFile.open(outPath, { create: true }) : openExportOutput(file, outPath);
          const done = settle(store.exportTo(out, { follow }).done, 'done');
          const commits = Array.from({ length: 6 }, (_, i) => settle(store.commit([{ pgno: overflow[0]!, data: overflowPage(link, 100 + i) }]), 'commit'));
          await new Promise((resolve) => setTimeout(resolve, (round * 1.5) % 12));
          expect(await settle(store.close(), 'close')).toEqual({ ok: true, value: undefined });
          const d = await done;
          if (!d.ok) expect(d, d.message).toMatchObject(CLOSED);
          for (const c of await Promise.all(commits)) if (!c.ok) expect(c, c.message).toMatchObject(CLOSED);
          // exportTo never ends its target: the caller does, once done settled (README)
          if (out instanceof WalnutFile) await out.close();
          else await new Promise<void>((resolve) => out.end(resolve));
          const bytes = fs.readFileSync(outPath);
          if (bytes.length > 0) expect([...WalStreamReader.fromBuffer(bytes)].length, `round ${round}: whole records`).toBeGreaterThan(0); // (a torn one throws Truncated)
          expect(sqliteIntegrity(file)).toEqual(['ok']);
        }
      });
    }
  }
});
