// Replication's verbs raced against close(), for the ones interop/replicate.test.ts and
// replica-close-while-starting do not race (those: close() with commits being published, close()
// before the worker is ready, stop() or close() right after replicateTo, a waitFor pending when the
// replica closes, start() against close()). Here, with a real nats-server:
//  - a ReplicationHandle (on a worker thread and on the store's loop): stop() and store.close()
//    in the same tick in both orders, stop() after close() began, stop() and close() each called
//    twice, close() twice alone, with six commits acknowledged and six in flight; metrics()
//    after. Every call settles within a hang guard, stop() resolves, close() resolves, no
//    'error' event, 'end' once, publishedSeq = exportedSeq; restoreFromNats gives a state the
//    primary passed through (the first j commits), j at least the commits acknowledged when
//    stop() was called (stop() publishes what is committed then), and with close() alone every
//    acknowledged commit: the primary's pages; sqlite3's integrity_check is ok on both;
//  - a Replica: close() called twice in the same tick, a waitFor made before close() and one
//    after close() began (WALNUT_CLOSED), lag() and the store getter after close
//    (WALNUT_CLOSED); the replica file is whole (integrity_check) and unlocked;
//  - the events: store.close(), stop() or both called from inside a 'published' or 'base'
//    listener (synchronously, inside the replication's emit), and a Replica's close() (twice)
//    from inside its 'applied' or 'rebase' listener: the same outcomes.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { open } from '../../lib/index';
import { openReplica, Replica } from '../../lib/replicate/replica';
import { restoreFromNats } from '../../lib/replicate/restore-nats';
import type { ReplicationHandle } from '../../lib/replicate/publisher';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { type Outcome, expectNoUnhandledRejections, settle } from '../helpers/outcomes';
import { pageHashes } from '../helpers/page-hashes';
import { linkOf, overflowRowDatabase, sqliteIntegrity } from '../helpers/sqlite-db';
import { tmpDir } from '../helpers/tmp';

if (NATS_SKIP !== null) console.warn(NATS_SKIP);
expectNoUnhandledRejections();

const dir = tmpDir();
let n = 0;
const HANG_MS = 30_000;
const PAGE = 4096;
const started: NatsNode[] = [];
afterAll(() => stopNats(started));

/** A SQLite database (one 16 KiB row) and its overflow pages, whose payload past the 4-byte link commits rewrite. */
function database(): { file: string; overflow: number[] } {
  const file = path.join(dir, `p${n++}.db`);
  return { file, overflow: overflowRowDatabase(file) };
}

function overflowPage(link: Uint8Array, v: number): Buffer {
  const b = Buffer.alloc(PAGE, v);
  b.set(link.subarray(0, 4), 0);
  return b;
}

/** A sqlite3 process writes the file (nothing of this process holds its write lock). */
function sqliteWrites(file: string): string {
  const r = spawnSync('sqlite3', [file, 'PRAGMA busy_timeout=500; CREATE TABLE IF NOT EXISTS probe(a); INSERT INTO probe VALUES (1);'], { encoding: 'utf8' });
  return r.status === 0 ? 'ok' : r.stderr.trim();
}

type How = 'stop() then close(), same tick' | 'close() then stop(), same tick' | 'stop() after close() began' | 'stop() twice, close() twice' | 'close() twice, no stop()';
const HOWS: How[] = ['stop() then close(), same tick', 'close() then stop(), same tick', 'stop() after close() began', 'stop() twice, close() twice', 'close() twice, no stop()'];

describe.skipIf(NATS_SKIP !== null)('a replication against store.close()', () => {
  for (const thread of [true, false]) {
    it(`${thread ? 'on a worker thread' : "on the store's loop"}: stop() and close() resolve at every interleaving, no 'error', 'end' once; the stream restores to the primary's pages`, async () => {
      const server = await startNatsServer();
      started.push(server);
      for (const how of HOWS) {
        const { file, overflow } = database();
        const store = await open(file, { autoCheckpoint: false });
        const links = await Promise.all(overflow.map((p) => linkOf(store, p)));
        const stream = `race-${thread}-${n}`;
        const r: ReplicationHandle = store.replicateTo({ servers: server.url, stream, thread, stopTimeoutMs: 20_000 });
        const errors: unknown[] = [];
        let ends = 0;
        r.on('error', (e: unknown) => errors.push(e));
        r.on('end', () => ends++);
        await r.ready;
        // twelve commits, each rewriting one overflow page (k % 4): six acknowledged, six in flight
        const writes = Array.from({ length: 12 }, (_, i) => ({ pgno: overflow[i % overflow.length]!, v: (i < 6 ? 10 : 14) + i }));
        const initial = overflow.map(() => 1); // (the row is 16 KiB of 1s)
        const stateAfter = (k: number): number[] => overflow.map((p, at) => writes.slice(0, k).filter((w) => w.pgno === p).at(-1)?.v ?? initial[at]!);
        const commit = (i: number) => store.commit([{ pgno: writes[i]!.pgno, data: overflowPage(links[i % overflow.length]!, writes[i]!.v) }]);
        for (let i = 0; i < 6; i++) await commit(i);
        let acked = 6;
        const inFlight = Array.from({ length: 6 }, (_, i) => settle(commit(6 + i).then(() => acked++), 'commit', HANG_MS));
        let ackedAtStop = 0;
        const stop = () => {
          ackedAtStop = acked;
          return settle(r.stop(), 'stop', HANG_MS);
        };
        const calls: Promise<Outcome>[] = [];
        if (how === 'stop() then close(), same tick') calls.push(stop(), settle(store.close(), 'close', HANG_MS));
        else if (how === 'close() then stop(), same tick') calls.push(settle(store.close(), 'close', HANG_MS), stop());
        else if (how === 'stop() after close() began') {
          const closing = settle(store.close(), 'close', HANG_MS);
          await new Promise((resolve) => setImmediate(resolve));
          calls.push(closing, stop());
        } else if (how === 'stop() twice, close() twice') calls.push(stop(), settle(r.stop(), 'stop', HANG_MS), settle(store.close(), 'close', HANG_MS), settle(store.close(), 'close', HANG_MS));
        else calls.push(settle(store.close(), 'close', HANG_MS), settle(store.close(), 'close', HANG_MS));
        const outcomes = await Promise.all(calls);
        for (const o of outcomes) expect(o, `${how}: ${o.ok ? '' : o.message}`).toEqual({ ok: true, value: undefined });
        for (const c of await Promise.all(inFlight)) if (!c.ok) expect(c, c.message).toMatchObject({ code: 'WALNUT_CLOSED', walnut: true });
        await new Promise((resolve) => setTimeout(resolve, 20)); // ('end' is emitted after stop() settles)
        expect(errors, how).toEqual([]);
        expect(ends, `${how}: 'end' once`).toBe(1);
        const m = r.metrics();
        expect(m.publishedSeq, how).toBe(m.exportedSeq);
        // the stream holds every commit that resolved: restored, it is the primary's state
        const primary = await open(file);
        const expected = await pageHashes(primary);
        await primary.close();
        const out = path.join(dir, `${stream}.restored.db`);
        await restoreFromNats(out, { servers: server.url, stream });
        const restored = await open(out);
        const snap = await restored.snapshot();
        const got = overflow.map((p) => snap.readSync(p)[100]!);
        snap.release();
        await restored.close();
        // a state the primary passed through: the first j commits, j at least those acknowledged
        // before stop() was called (all of them when only close() stopped it)
        const j = Array.from({ length: writes.length + 1 }, (_, k) => k).find((k) => stateAfter(k).every((v, p) => v === got[p]));
        expect(j, `${how}: ${got} is no state the primary passed through`).toBeDefined();
        expect(j!, `${how}: commits acknowledged before the stop are published`).toBeGreaterThanOrEqual(how === 'close() twice, no stop()' ? writes.length : ackedAtStop);
        if (how === 'close() twice, no stop()') {
          const whole = await open(out);
          expect(await pageHashes(whole), how).toEqual(expected);
          await whole.close();
        }
        expect(sqliteIntegrity(out)).toEqual(['ok']);
        expect(sqliteIntegrity(file)).toEqual(['ok']);
      }
    });
  }
});

describe.skipIf(NATS_SKIP !== null)('a Replica against its close()', () => {
  it('close() twice in the same tick resolves (both), waitFor made before close() and after it began rejects WALNUT_CLOSED, lag() answers, store is WALNUT_CLOSED; the replica file is whole and unlocked', async () => {
    const server = await startNatsServer();
    started.push(server);
    const { file, overflow } = database();
    const store = await open(file, { autoCheckpoint: false });
    const link = await linkOf(store, overflow[0]!);
    const r = store.replicateTo({ servers: server.url, stream: 'replica-race', stopTimeoutMs: 20_000 });
    await r.ready;
    for (let i = 0; i < 5; i++) await store.commit([{ pgno: overflow[0]!, data: overflowPage(link, 30 + i) }]);
    for (const when of ['same tick', 'after close() began (setImmediate)', 'after 2 ms', 'while a commit is being applied'] as const) {
      const replicaFile = path.join(dir, `replica${n++}.db`);
      const replica = await openReplica(replicaFile, { servers: server.url, stream: 'replica-race' });
      const errors: unknown[] = [];
      replica.on('error', (e: unknown) => errors.push(e));
      const seq = r.metrics().publishedSeq;
      await settle(replica.waitFor(seq), 'waitFor (caught up)', HANG_MS);
      if (when === 'while a commit is being applied') await store.commit([{ pgno: overflow[0]!, data: overflowPage(link, 40) }]);
      const pending = settle(replica.waitFor(seq + 1000), 'waitFor (never reached)', HANG_MS);
      const closes = [settle(replica.close(), 'close', HANG_MS), settle(replica.close(), 'close', HANG_MS)];
      let after: Promise<Outcome>;
      if (when === 'same tick' || when === 'while a commit is being applied') after = settle(replica.waitFor(seq + 1000), 'waitFor after close', HANG_MS);
      else {
        await new Promise((resolve) => (when === 'after 2 ms' ? setTimeout(resolve, 2) : setImmediate(resolve)));
        after = settle(replica.waitFor(seq + 1000), 'waitFor after close', HANG_MS);
      }
      const [a, b, p, q] = await Promise.all([...closes, pending, after]);
      expect([a, b], when).toEqual([{ ok: true, value: undefined }, { ok: true, value: undefined }]);
      expect(p, when).toMatchObject({ ok: false, code: 'WALNUT_CLOSED', walnut: true });
      expect(q, when).toMatchObject({ ok: false, code: 'WALNUT_CLOSED', walnut: true });
      expect(replica.lag()).toMatchObject({ appliedSeq: expect.any(Number) });
      expect(() => replica.store).toThrow(expect.objectContaining({ code: 'WALNUT_CLOSED' }));
      expect(errors, when).toEqual([]);
      expect(sqliteIntegrity(replicaFile), when).toEqual(['ok']);
      expect(fs.existsSync(replicaFile)).toBe(true);
      expect(sqliteWrites(replicaFile), when).toBe('ok');
    }
    await r.stop();
    await store.close();
  });
});

describe.skipIf(NATS_SKIP !== null)("close() and stop() called from inside replication's own events", () => {
  for (const thread of [true, false]) {
    it(`${thread ? 'on a worker thread' : "on the store's loop"}: store.close(), stop() or both from a 'published' or 'base' listener: they resolve, every commit settles, no 'error'; the stream restores to a state the primary passed through (with store.close() alone from 'published': every acknowledged commit)`, async () => {
      const server = await startNatsServer();
      started.push(server);
      for (const event of ['published', 'base'] as const) {
        for (const action of ['store.close()', 'stop()', 'both'] as const) {
          const { file, overflow } = database();
          const store = await open(file, { autoCheckpoint: false });
          const link = await linkOf(store, overflow[0]!);
          const stream = `event-${thread}-${n++}`;
          const r = store.replicateTo({ servers: server.url, stream, thread, stopTimeoutMs: 20_000 });
          const errors: unknown[] = [];
          r.on('error', (e: unknown) => errors.push(e));
          let fired: Promise<Outcome>[] | null = null;
          r.on(event, () => {
            if (fired !== null) return;
            // (synchronously, inside the replication's own emit)
            fired = action === 'store.close()' ? [settle(store.close(), 'close', HANG_MS)] : action === 'stop()' ? [settle(r.stop(), 'stop', HANG_MS)] : [settle(r.stop(), 'stop', HANG_MS), settle(store.close(), 'close', HANG_MS)];
          });
          await settle(r.ready, 'ready', HANG_MS);
          const commits = Array.from({ length: 10 }, (_, i) => settle(store.commit([{ pgno: overflow[0]!, data: overflowPage(link, 70 + i) }]), 'commit', HANG_MS));
          const outcomes = await Promise.all(commits);
          for (const o of outcomes) if (!o.ok) expect(o, o.message).toMatchObject({ code: 'WALNUT_CLOSED', walnut: true });
          // the event may come after the commits: wait for it (a hang guard)
          const deadline = Date.now() + HANG_MS;
          while (fired === null && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
          expect(fired, `'${event}' came`).not.toBeNull();
          for (const f of await Promise.all(fired!)) expect(f, `${event} ${action}`).toEqual({ ok: true, value: undefined });
          expect(await settle(r.stop(), 'stop after', HANG_MS)).toEqual({ ok: true, value: undefined });
          expect(await settle(store.close(), 'close after', HANG_MS)).toEqual({ ok: true, value: undefined });
          expect(errors, `${event} ${action}`).toEqual([]);
          const m = r.metrics();
          expect(m.publishedSeq).toBe(m.exportedSeq);
          const out = path.join(dir, `${stream}.restored.db`);
          await restoreFromNats(out, { servers: server.url, stream });
          expect(sqliteIntegrity(out)).toEqual(['ok']);
          const restored = await open(out);
          const snap = await restored.snapshot();
          const v = snap.readSync(overflow[0]!)[100]!;
          snap.release();
          await restored.close();
          const acknowledged = outcomes.flatMap((o, i) => (o.ok ? [70 + i] : []));
          expect([1, ...acknowledged], `${event} ${action}: ${v}`).toContain(v);
          if (event === 'published' && action === 'store.close()') expect(v).toBe(acknowledged.at(-1));
          expect(sqliteIntegrity(file)).toEqual(['ok']);
        }
      }
    });
  }

  for (const event of ['applied', 'rebase'] as const) {
    it(`a Replica's close() (twice) from inside its '${event}' listener: close resolves, start() resolves or is WALNUT_CLOSED, a later waitFor is WALNUT_CLOSED, no 'error'; the replica file is whole and unlocked`, async () => {
      const server = await startNatsServer();
      started.push(server);
      const { file, overflow } = database();
      const store = await open(file, { autoCheckpoint: false });
      const link = await linkOf(store, overflow[0]!);
      const r = store.replicateTo({ servers: server.url, stream: `replica-${event}`, stopTimeoutMs: 20_000 });
      await r.ready;
      for (let i = 0; i < 3; i++) await store.commit([{ pgno: overflow[0]!, data: overflowPage(link, 80 + i) }]);
      for (let round = 0; round < 3; round++) {
        const replicaFile = path.join(dir, `replica-${event}-${n++}.db`);
        const replica = new Replica(replicaFile, { servers: server.url, stream: `replica-${event}` });
        const errors: unknown[] = [];
        replica.on('error', (e: unknown) => errors.push(e));
        let closes: Promise<Outcome>[] | null = null;
        replica.on(event, () => {
          closes ??= [settle(replica.close(), 'close', HANG_MS), settle(replica.close(), 'close', HANG_MS)];
        });
        const started = settle(replica.start(), 'start', HANG_MS);
        const committed = settle(store.commit([{ pgno: overflow[0]!, data: overflowPage(link, 90 + round) }]), 'commit', HANG_MS);
        const s = await started;
        expect(await committed).toMatchObject({ ok: true });
        if (!s.ok) expect(s, s.message).toMatchObject({ code: 'WALNUT_CLOSED', walnut: true });
        const deadline = Date.now() + HANG_MS;
        while (closes === null && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
        expect(closes, `'${event}' came`).not.toBeNull();
        for (const c of await Promise.all(closes!)) expect(c).toEqual({ ok: true, value: undefined });
        expect(await settle(replica.waitFor(1e6), 'waitFor after', HANG_MS)).toMatchObject({ ok: false, code: 'WALNUT_CLOSED', walnut: true });
        expect(errors).toEqual([]);
        if (fs.existsSync(replicaFile)) {
          expect(sqliteIntegrity(replicaFile)).toEqual(['ok']);
          expect(sqliteWrites(replicaFile)).toBe('ok');
        }
      }
      await r.stop();
      await store.close();
    });
  }
});
