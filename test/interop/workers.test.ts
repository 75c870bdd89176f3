// Issue #21: the worker_threads of a process share one commit lane per database file
// (lib/commit/lane.ts, native/commit_lane.h). Real workers, real processes, real SQLite checks.
//
// The database is built by SQLite (better-sqlite3): rows whose blobs span overflow chains. The
// workers commit overflow pages (the link to the next page kept, the rest stamped with worker,
// slot and commit number), so PRAGMA integrity_check stays meaningful after every test.
import { createHook } from 'node:async_hooks';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';

import { open } from '../../lib/index';
import { SharedLane } from '../../lib/commit/lane';
import { killAfterFirstAck, readLines } from '../helpers/child-lines';
import { HELPERS, runNode, sqliteWriters } from '../helpers/children';
import { growWal, segmentEnd, shmMxFrame, untilWalMoves } from '../helpers/large-wal';
import { Database } from '../helpers/sqlite';
import { overflowChainDatabase, sqliteIntegrity } from '../helpers/sqlite-db';
import { tmpDir } from '../helpers/tmp';
import { seededRandom } from '../helpers/wal-damage';

interface Slot {
  pgno: number;
  next: number;
}

/** A WAL database of `rows` rows of 4-page blobs (sqlite-db.ts overflowChainDatabase), and its overflow pages. */
function laneDatabase(dir: string, name: string, rows = 12, pageSize = 4096): { file: string; slots: Slot[] } {
  const file = path.join(dir, `${name}.db`);
  return { file, slots: overflowChainDatabase(file, rows, pageSize) };
}

type Message = [string, unknown?, unknown?];

interface Run {
  worker: Worker;
  messages: Message[];
  /** Highest acknowledged k per slot. */
  acks: number[];
  /** Resolves at the worker's exit; rejects on an 'error' message or a worker error. */
  exited: Promise<void>;
  waitFor(kind: string): Promise<Message>;
}

function startWorker(workerData: Record<string, unknown>): Run {
  const worker = new Worker(path.join(HELPERS, 'lane-worker.js'), { workerData });
  const messages: Message[] = [];
  const acks: number[] = [];
  const waiters: Array<{ kind: string; resolve: (m: Message) => void }> = [];
  let fail: (e: Error) => void = () => undefined;
  const exited = new Promise<void>((resolve, reject) => {
    fail = reject;
    worker.on('exit', () => resolve());
    worker.on('error', reject);
  });
  exited.catch(() => undefined);
  worker.on('message', (m: Message) => {
    messages.push(m);
    if (m[0] === 'ack') acks[m[1] as number] = m[2] as number;
    if (m[0] === 'error') fail(new Error(String(m[1])));
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (waiters[i]!.kind === m[0]) waiters.splice(i, 1)[0]!.resolve(m);
    }
  });
  const waitFor = (kind: string): Promise<Message> => {
    const seen = messages.find((m) => m[0] === kind);
    if (seen) return Promise.resolve(seen);
    return Promise.race([new Promise<Message>((resolve) => waiters.push({ kind, resolve })), exited.then(() => Promise.reject(new Error(`worker exited before '${kind}'`)))]);
  };
  return { worker, messages, acks, exited, waitFor };
}

/** The stamp (k) of each slot's page as the database has it now (read through a fresh store). */
async function stamps(file: string, slots: Slot[]): Promise<number[]> {
  const store = await open(file, { shareLane: false });
  try {
    const snap = await store.snapshot();
    const out: number[] = [];
    for (const s of slots) {
      const page = await snap.read(s.pgno);
      out.push(page.readUInt32BE(0) === s.next ? page.readUInt32BE(12) : -1);
    }
    snap.release();
    return out;
  } finally {
    await store.close();
  }
}

function until(check: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const poll = (): void => (check() ? resolve() : void setTimeout(poll, 5));
    poll();
  });
}

/** A page for `s`: filled with k, the slot's stamp in its first 4 bytes. */
function page(s: Slot, k: number): Buffer {
  const d = Buffer.alloc(4096, k);
  d.writeUInt32BE(s.next, 0);
  return d;
}

describe('worker_threads share one commit lane per database file (#21)', () => {
  it('two stores in one thread: the first writes the second\'s commits; conflicts across them', async () => {
    const dir = tmpDir('walnut-lanes-');
    const { file, slots } = laneDatabase(dir, 'one-thread', 4);
    const a = await open(file);
    const b = await open(file);
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).commit([{ pgno: slots[i % 8]!.pgno, data: page(slots[i % 8]!, i) }])));
    // each store numbers its own commits
    expect(results.filter((_, i) => i % 2 === 0).map((r) => r.commitSeq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(a.metrics().commits).toBe(40); // a's committer wrote all of them
    expect(b.metrics().commits).toBe(0);
    expect(b.metrics().lane).toMatchObject({ leader: false, members: 2, commits: 40 });
    expect(b.metrics({ format: 'prometheus' })).toMatch(/^walnut_lane_members 2$/m);
    const t1 = a.begin();
    const t2 = b.begin();
    await t1.read(slots[0]!.pgno);
    await t2.read(slots[0]!.pgno);
    t1.write(slots[0]!.pgno, page(slots[0]!, 1));
    t2.write(slots[0]!.pgno, page(slots[0]!, 2));
    const r = await Promise.allSettled([t2.commit(), t1.commit()]);
    expect(r.filter((x) => x.status === 'fulfilled')).toHaveLength(1);
    expect(r.filter((x) => x.status === 'rejected').map((x) => (x as PromiseRejectedResult).reason.code)).toEqual(['WALNUT_CONFLICT']);
    // the leader closes first: b takes over
    await a.close();
    await b.commit([{ pgno: slots[1]!.pgno, data: page(slots[1]!, 9) }]);
    expect(b.metrics().lane).toMatchObject({ leader: true, members: 1 });
    expect(b.metrics().commits).toBe(1);
    await b.close();
    expect(SharedLane.count()).toBe(0);
    expect(sqliteIntegrity(file)).toEqual(['ok']);
    // shareLane: false stays alone; holdWriteLease needs to lead the lane
    const c = await open(file);
    const d = await open(file);
    const alone = await open(file, { shareLane: false });
    expect(alone.metrics().lane).toBeUndefined();
    await expect(d.holdWriteLease()).rejects.toMatchObject({ code: 'WALNUT_INVALID_ARGUMENT', reason: 'shareLane' });
    await Promise.all([alone.close(), d.close(), c.close()]);
    expect(SharedLane.count()).toBe(0);
  });


  it('a member\'s pages are copied as commit() is called: 200 one-page commits in one turn from one reused buffer, taken and settled together (past the leader\'s first outcome array), each lands as given', async () => {
    const dir = tmpDir('walnut-lanes-');
    const { file, slots } = laneDatabase(dir, 'reused-buffer', 56);
    expect(slots.length).toBeGreaterThanOrEqual(201);
    const a = await open(file);
    const b = await open(file);
    // one buffer for every commit, rewritten right after each commit() returns
    const data = Buffer.alloc(4096);
    const pending: Array<Promise<{ commitSeq: number; firstFrame: number; lastFrame: number }>> = [];
    for (let k = 1; k <= 200; k++) {
      data.fill(k);
      data.writeUInt32BE(slots[k]!.next, 0);
      data.writeUInt32BE(k, 12);
      pending.push(b.commit([{ pgno: slots[k]!.pgno, data }]));
    }
    data.fill(0xee);
    // and a two-page commit (the general path) from the same buffer and a second one
    const other = page(slots[0]!, 7);
    data.fill(201);
    data.writeUInt32BE(slots[201]!.next, 0);
    data.writeUInt32BE(201, 12);
    const wide = b.commit([{ pgno: slots[0]!.pgno, data: other }, { pgno: slots[201]!.pgno, data }]);
    data.fill(0xee);
    other.fill(0xee);
    const results = await Promise.all(pending);
    expect(results.map((r) => r.commitSeq)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    for (let i = 1; i < results.length; i++) expect(results[i]!.firstFrame).toBe(results[i - 1]!.lastFrame + 1);
    expect((await wide).commitSeq).toBe(201);
    expect(b.metrics().lane).toMatchObject({ leader: false, commits: 201 });
    await Promise.all([b.close(), a.close()]);
    expect(SharedLane.count()).toBe(0);
    expect(await stamps(file, slots.slice(0, 202))).toEqual([0x07070707, ...Array.from({ length: 201 }, (_, i) => i + 1)]);
    expect(sqliteIntegrity(file)).toEqual(['ok']);
  });

  it('a leader alone in the lane: a store that joins while it commits back to back is served at once; the lane counts every batch', async () => {
    const dir = tmpDir('walnut-lanes-');
    const { file, slots } = laneDatabase(dir, 'alone', 4);
    const a = await open(file);
    let b: Awaited<ReturnType<typeof open>> | null = null;
    let joining = false;
    const joined: Array<Promise<unknown>> = [];
    let own = 0;
    // 16 committers on a; after 5 of a's batches (it leads alone) b joins and commits 24 times
    await Promise.all(Array.from({ length: 16 }, async (_, w) => {
      for (let i = 0; i < 40; i++) {
        await a.commit([{ pgno: slots[w % 8]!.pgno, data: page(slots[w % 8]!, i) }]);
        own++;
        if (!joining && a.metrics().batches >= 5) {
          joining = true;
          b = await open(file);
          const member = b;
          joined.push(...Array.from({ length: 24 }, (_, k) => member.commit([{ pgno: slots[8 + (k % 4)]!.pgno, data: page(slots[8 + (k % 4)]!, k) }])));
        }
      }
    }));
    expect(b).not.toBeNull();
    expect(joined).toHaveLength(24);
    expect((await Promise.all(joined)).map((r) => (r as { commitSeq: number }).commitSeq)).toEqual(Array.from({ length: 24 }, (_, i) => i + 1));
    const m = a.metrics();
    expect(own).toBe(640);
    expect(m.commits).toBe(640 + 24); // a's committer wrote b's commits too
    expect(m.lane).toMatchObject({ leader: true, members: 2, commits: 640 + 24, batches: m.batches });
    const mine = m.lane!.perMember.find((p) => p.member === m.lane!.member)!;
    expect(mine.commits).toBe(640);
    await b!.close();
    await a.close();
    expect(SharedLane.count()).toBe(0);
    expect(sqliteIntegrity(file)).toEqual(['ok']);
  });

  it('a member schedules no JavaScript of its own per turn: its commits through a worker\'s lane create no Immediate (the end of its turn of submits is seen natively), each resolves once, in order', async () => {
    const dir = tmpDir('walnut-lanes-');
    const { file, slots } = laneDatabase(dir, 'turns', 4);
    // the leader: a worker that commits once and holds its store open
    const leader = startWorker({ db: file, w: 1, slots: slots.slice(0, 1), commits: 1, holdOpen: true });
    expect((await leader.waitFor('open'))[1]).toBe(true);
    await leader.waitFor('done');
    const member = await open(file);
    expect(member.metrics().lane?.leader).toBe(false);
    const immediates: string[] = [];
    const hook = createHook({ init: (_id, type) => void (type === 'Immediate' && immediates.push(type)) }).enable();
    const seqs: number[] = [];
    try {
      // 30 turns: 4 commits submitted together, awaited together
      for (let turn = 0; turn < 30; turn++) {
        const results = await Promise.all(slots.slice(1, 5).map((s) => member.commit([{ pgno: s.pgno, data: page(s, turn + 1) }])));
        seqs.push(...results.map((r) => r.commitSeq));
      }
    } finally {
      hook.disable();
    }
    expect(immediates).toEqual([]); // a setImmediate per turn before
    expect(seqs).toEqual(Array.from({ length: 120 }, (_, i) => i + 1));
    expect(member.metrics().lane).toMatchObject({ leader: false, members: 2 });
    // a three-page commit behind a one-page one in the same take: each page lands at its own number
    const [s1, s2, s3, s4] = slots.slice(1, 5) as [Slot, Slot, Slot, Slot];
    await Promise.all([member.commit([{ pgno: s1.pgno, data: page(s1, 31) }]), member.commit([{ pgno: s4.pgno, data: page(s4, 34) }, { pgno: s2.pgno, data: page(s2, 32) }, { pgno: s3.pgno, data: page(s3, 33) }])]);
    await member.close();
    leader.worker.postMessage('close');
    await leader.exited;
    expect(SharedLane.count()).toBe(0);
    // page(s, k): every byte k past the link
    expect(await stamps(file, [s1, s2, s3, s4])).toEqual([0x1f1f1f1f, 0x20202020, 0x21212121, 0x22222222]);
    expect(sqliteIntegrity(file)).toEqual(['ok']);
  });

  it('the leader\'s close() racing its own and a member\'s commits: each settles once, numbered in order; the member\'s all land', async () => {
    const dir = tmpDir('walnut-lanes-');
    const { file, slots } = laneDatabase(dir, 'close-race', 4);
    for (const closeAfter of [0, 1, 7]) {
      const a = await open(file);
      const b = await open(file);
      expect(a.metrics().lane).toMatchObject({ leader: true, members: 2 });
      const k = 100 + closeAfter;
      const own = Array.from({ length: 64 }, (_, i) => a.commit([{ pgno: slots[i % 4]!.pgno, data: page(slots[i % 4]!, k) }]).then((r) => r, (e: unknown) => e as Error));
      const member = Array.from({ length: 64 }, (_, i) => b.commit([{ pgno: slots[4 + (i % 4)]!.pgno, data: page(slots[4 + (i % 4)]!, k) }]));
      for (let t = 0; t < closeAfter; t++) await new Promise((resolve) => setImmediate(resolve));
      const closed = a.close();
      // submitted once close() began: the leader's own are refused, the member's go on (b leads once a left)
      own.push(...Array.from({ length: 8 }, () => a.commit([{ pgno: slots[0]!.pgno, data: page(slots[0]!, 1) }]).then((r) => r, (e: unknown) => e as Error)));
      member.push(...Array.from({ length: 16 }, (_, i) => b.commit([{ pgno: slots[4 + (i % 4)]!.pgno, data: page(slots[4 + (i % 4)]!, k) }])));
      const mine = await Promise.all(own);
      // the leader's own: each resolved (numbered 1, 2, ... in submission order) or refused as closed
      const done = mine.filter((r) => !(r instanceof Error)) as Array<{ commitSeq: number }>;
      expect(done.map((r) => r.commitSeq)).toEqual(done.map((_, i) => i + 1));
      for (const e of mine.filter((r) => r instanceof Error)) expect((e as { code?: string }).code).toBe('WALNUT_CLOSED');
      expect(done).toHaveLength(64); // close() lets what was queued before it finish
      expect(mine.slice(64).every((r) => r instanceof Error)).toBe(true);
      // the member's: every one lands (written by the leader before it left, or by b leading after)
      expect((await Promise.all(member)).map((r) => r.commitSeq)).toEqual(Array.from({ length: 80 }, (_, i) => i + 1));
      await closed;
      await b.commit([{ pgno: slots[8]!.pgno, data: page(slots[8]!, k) }]);
      expect(b.metrics().lane).toMatchObject({ leader: true, members: 1 });
      await b.close();
      expect(SharedLane.count()).toBe(0);
      const got = await stamps(file, slots.slice(0, 9));
      const stamp = page(slots[0]!, k).readUInt32BE(12);
      expect(got.slice(4)).toEqual([stamp, stamp, stamp, stamp, stamp]);
      expect(got.slice(0, 4)).toEqual([stamp, stamp, stamp, stamp]);
    }
    expect(sqliteIntegrity(file)).toEqual(['ok']);
  });
  it('a member\'s commits queued before the leader forms its batch join that batch; queued while it writes, the next one', async () => {
    const dir = tmpDir('walnut-lanes-');
    const { file, slots } = laneDatabase(dir, 'join', 4);
    const a = await open(file);
    const b = await open(file);
    const before = a.metrics().batches;
    // From a socket's read callback (libuv's poll phase, not an async handle's): the leader's
    // committer forms its batch in this turn's check phase, before the wake-up b's submit sends
    // could be handled (the next poll phase). The leader takes what members queued as it forms a
    // batch, so one batch holds both.
    const server = net.createServer((socket) => socket.end('x'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const first = await new Promise<Array<Promise<unknown>>>((resolve) => {
      const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
      client.once('data', () => {
        resolve([a.commit([{ pgno: slots[0]!.pgno, data: page(slots[0]!, 1) }]), b.commit([{ pgno: slots[1]!.pgno, data: page(slots[1]!, 1) }])]);
        client.destroy();
      });
    });
    server.close();
    await Promise.all(first);
    expect(a.metrics().batches - before).toBe(1);
    expect(b.metrics().lane).toMatchObject({ batches: 1, crossMemberBatches: 1 });
    // b commits while a's batch is being written: a takes them once that batch is done (no
    // wake-up needed, none lost)
    const writing = a.commit([{ pgno: slots[0]!.pgno, data: page(slots[0]!, 2) }]);
    await new Promise((resolve) => setImmediate(resolve));
    const rest = [2, 3, 4].map((k) => b.commit([{ pgno: slots[1 + (k % 3)]!.pgno, data: page(slots[1 + (k % 3)]!, k) }]));
    await Promise.all([writing, ...rest]);
    expect(b.metrics().lane!.commits).toBe(6);
    expect(a.metrics().commits).toBe(6);
    // a member commit larger than the leader's take buffer (1 MiB): it gets a buffer of its own
    const wide = [{ pgno: slots[1]!.pgno, data: page(slots[1]!, 5) }, ...Array.from({ length: 299 }, (_, i) => ({ pgno: 1000 + i, data: Buffer.alloc(4096, i & 0xff) }))];
    await b.commit(wide);
    const snap = await a.snapshot();
    expect((await snap.read(1000 + 298)).equals(Buffer.alloc(4096, 298 & 0xff))).toBe(true);
    expect((await snap.read(slots[1]!.pgno)).equals(page(slots[1]!, 5))).toBe(true);
    snap.release();
    await b.close();
    await a.close();
    expect(SharedLane.count()).toBe(0);
    expect(sqliteIntegrity(file)).toEqual(['ok']);
  });

  it('a member\'s commit enters the lane when its code returns to the event loop: the leader\'s commit made later in the same turn is written first, and wins a conflict', async () => {
    const dir = tmpDir('walnut-lanes-');
    const { file, slots } = laneDatabase(dir, 'turn-order', 4);
    const a = await open(file);
    const b = await open(file);
    expect(a.metrics().lane?.leader).toBe(true);
    const member = b.commit([{ pgno: slots[0]!.pgno, data: page(slots[0]!, 1) }]);
    const leader = a.commit([{ pgno: slots[1]!.pgno, data: page(slots[1]!, 1) }]);
    const [rb, ra] = await Promise.all([member, leader]);
    expect(ra.lastFrame).toBeLessThan(rb.firstFrame);
    // two transactions on one snapshot of slot s's page, each writing it (with k, k + 1)
    const rivals = async (x: typeof a, y: typeof a, s: Slot, k: number) => {
      const [tx, ty] = [x.begin(), y.begin()];
      await tx.read(s.pgno);
      await ty.read(s.pgno);
      tx.write(s.pgno, page(s, k));
      ty.write(s.pgno, page(s, k + 1));
      return [tx, ty] as const;
    };
    // the member's transaction commits first in call order; the lane's order is the leader's first
    const [t1, t2] = await rivals(a, b, slots[2]!, 1);
    const r = await Promise.allSettled([t2.commit(), t1.commit()]);
    expect(r.map((x) => x.status)).toEqual(['rejected', 'fulfilled']);
    expect((r[0] as PromiseRejectedResult).reason).toMatchObject({ code: 'WALNUT_CONFLICT', reason: 'PageChanged' });
    // within one member's turn its own order holds: its first transaction wins
    const [t3, t4] = await rivals(b, b, slots[3]!, 3);
    const r2 = await Promise.allSettled([t3.commit(), t4.commit()]);
    expect(r2.map((x) => x.status)).toEqual(['fulfilled', 'rejected']);
    await b.close();
    await a.close();
    expect(await stamps(file, slots.slice(2, 4))).toEqual([0x01010101, 0x03030303]); // page(s, k): every byte k
    expect(sqliteIntegrity(file)).toEqual(['ok']);
  });

  it('worker.terminate() of a member whose commits never left its turn (it blocks after commit()): they never enter the lane or the WAL, the leader commits on and closes, no lane leaks', async () => {
    const dir = tmpDir('walnut-lanes-');
    const { file, slots } = laneDatabase(dir, 'stall');
    const a = await open(file);
    const before = await stamps(file, slots.slice(0, 2));
    const run = startWorker({ db: file, w: 1, slots: slots.slice(0, 2), commits: 1, mode: 'stall' });
    await run.waitFor('stalled');
    // the leader's own batches go on; the stalled member's commits are in none of them
    for (let k = 1; k <= 8; k++) await a.commit([{ pgno: slots[4]!.pgno, data: page(slots[4]!, k) }]);
    const lane = a.metrics().lane!;
    expect({ members: lane.members, commits: lane.commits }).toEqual({ members: 2, commits: 8 });
    await run.worker.terminate();
    await run.exited;
    await until(() => a.metrics().lane!.members === 1);
    await a.commit([{ pgno: slots[5]!.pgno, data: page(slots[5]!, 9) }]);
    expect(a.metrics().lane!.commits).toBe(9);
    await a.close();
    expect(SharedLane.count()).toBe(0);
    expect(await stamps(file, slots.slice(0, 2))).toEqual(before);
    expect(await stamps(file, [slots[4]!, slots[5]!])).toEqual([0x08080808, 0x09090909]);
    expect(sqliteIntegrity(file)).toEqual(['ok']);
  });

  it('a sync error in the leader stops the leader only: another member leads, its commits go on', async () => {
    const dir = tmpDir('walnut-lanes-');
    const file = path.join(dir, 'fault.db');
    const { code, stdout, stderr } = await runNode(path.join(HELPERS, 'lane-fault-child.js'), [file], { WALNUT_FAULT_INJECTION: '1' });
    expect(code, stderr).toBe(0);
    const r = JSON.parse(stdout) as { batch: Array<{ ok: boolean; code?: string }>; after: Record<'leader' | 'follower', { ok: boolean; code?: string }>; followerLeads: boolean };
    expect(r.batch[0]).toEqual({ ok: false, code: 'WALNUT_FAILED' });
    expect(r.after.leader).toEqual({ ok: false, code: 'WALNUT_FAILED' }); // until reopened, as ever
    expect(r.after.follower).toEqual({ ok: true, durable: true });
    expect(r.followerLeads).toBe(true);
    const store = await open(file, { shareLane: false });
    const snap = await store.snapshot();
    expect((await snap.read(5)).equals(Buffer.alloc(4096, 4))).toBe(true);
    snap.release();
    await store.close();
  });

  for (const n of [4, 8]) {
    it(`${n} workers x 4 committers: one leader writes everyone's commits, nothing lost`, async () => {
      const dir = tmpDir('walnut-lanes-');
      const { file, slots } = laneDatabase(dir, `w${n}`);
      const commits = 25;
      const runs = Array.from({ length: n }, (_, w) => startWorker({ db: file, w, slots: slots.slice(w * 4, w * 4 + 4), commits, holdOpen: true }));
      const opened = await Promise.all(runs.map((r) => r.waitFor('open')));
      expect(opened.filter((m) => m[1] === true)).toHaveLength(1);
      await Promise.all(runs.map((r) => r.waitFor('done')));
      // every worker is done and nobody has closed: the first leader wrote every commit
      for (const r of runs) r.worker.postMessage('metrics');
      const done = await Promise.all(runs.map((r) => r.waitFor('metrics')));
      const writers = done.filter((m) => (m[2] as number) > 0);
      expect(writers).toHaveLength(1);
      expect(writers[0]![2]).toBe(n * 4 * commits);
      const lane = done[0]![1] as { members: number; commits: number; perMember: Array<{ commits: number }> };
      expect(lane.members).toBe(n);
      expect(lane.commits).toBe(n * 4 * commits);
      expect(lane.perMember.map((p) => p.commits)).toEqual(Array(n).fill(4 * commits));
      for (const r of runs) r.worker.postMessage('close');
      await Promise.all(runs.map((r) => r.exited));
      expect(SharedLane.count()).toBe(0);
      expect(await stamps(file, slots.slice(0, n * 4))).toEqual(Array(n * 4).fill(commits));
      expect(sqliteIntegrity(file)).toEqual(['ok']);
    });

    it(`${n} workers: conflicting transactions across workers, exactly one wins each round`, async () => {
      const dir = tmpDir('walnut-lanes-');
      const { file, slots } = laneDatabase(dir, `c${n}`, 2);
      const barrier = new SharedArrayBuffer(4);
      const rounds = 8;
      const runs = Array.from({ length: n }, (_, w) => startWorker({ db: file, w, slots: [slots[0]], mode: 'conflict', rounds, barrier, workers: n }));
      await Promise.all(runs.map((r) => r.exited));
      for (let round = 0; round < rounds; round++) {
        const outcomes = runs.map((r) => r.messages.find((m) => m[0] === 'round' && m[1] === round)?.[2]);
        expect(outcomes.filter((o) => o === 'won'), `round ${round}: ${outcomes.join(',')}`).toHaveLength(1);
        expect(outcomes.filter((o) => o === 'WALNUT_CONFLICT')).toHaveLength(n - 1);
      }
      expect(SharedLane.count()).toBe(0);
      expect(sqliteIntegrity(file)).toEqual(['ok']);
    });
  }

  /** One run of lane-terminate-child.js (8 members terminated mid-commit) serves the next two tests. */
  let terminateRun: Promise<{ file: string; r: Awaited<ReturnType<typeof runNode>> }> | null = null;
  const terminatingMembers = (): NonNullable<typeof terminateRun> =>
    (terminateRun ??= (async () => {
      const dir = tmpDir('walnut-lanes-');
      const { file, slots } = laneDatabase(dir, 'terminate-member');
      return { file, r: await runNode(path.join(HELPERS, 'lane-terminate-child.js'), [file, JSON.stringify(slots.slice(1, 4)), String(slots[0]!.pgno), '8']) };
    })());

  it('worker.terminate() of a member while the leader settles its commits, 8 times: no crash (the outcomes delivered to a worker whose JS had stopped were written through a null typed array: SIGSEGV), the leader commits on and closes, the database stays whole', async () => {
    const { file, r } = await terminatingMembers();
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    expect(r.stdout).toMatch(/^done \{.*\}\n$/);
    expect(sqliteIntegrity(file)).toEqual(['ok']);
  });

  it('the lane counts every commit its leader wrote: a terminated member\'s commits written after it left are in lane.commits and lane.batches (they were dropped: fewer than the committer wrote)', async () => {
    const { r } = await terminatingMembers();
    expect(r.code).toBe(0);
    const done = JSON.parse(r.stdout.slice('done '.length)) as { commits: number; written: number; batches: number; lane: { commits: number; batches: number } };
    expect(done.written).toBeGreaterThan(done.commits); // members' commits were written too
    expect({ commits: done.lane.commits, batches: done.lane.batches }).toEqual({ commits: done.written, batches: done.batches });
  });

  it('worker.terminate() of the leader and of a follower during commits: the others go on, no lane leaks', async () => {
    const dir = tmpDir('walnut-lanes-');
    const { file, slots } = laneDatabase(dir, 'terminate');
    const commits = 120;
    const runs = Array.from({ length: 4 }, (_, w) => startWorker({ db: file, w, slots: slots.slice(w * 2, w * 2 + 2), commits }));
    const opened = await Promise.all(runs.map((r) => r.waitFor('open')));
    const leader = opened.findIndex((m) => m[1] === true);
    const follower = (leader + 1) % 4;
    await until(() => runs.every((r) => r.acks.length === 2 && r.acks.every((k) => k >= 10)));
    const leaderAcks = [...runs[leader]!.acks];
    await Promise.all([runs[leader]!.worker.terminate(), runs[follower]!.worker.terminate()]);
    const survivors = runs.filter((_, w) => w !== leader && w !== follower);
    await Promise.all(survivors.map((r) => r.exited)); // each finished its 120 commits and closed
    for (const r of survivors) {
      expect(r.messages.filter((m) => m[0] === 'closed')).toHaveLength(1);
      // the only failure a survivor may see: its commit was in the terminated leader's batch
      expect(r.messages.filter((m) => m[0] !== 'ack' && m[0] !== 'orphaned' && m[0] !== 'open' && m[0] !== 'done' && m[0] !== 'closed')).toEqual([]);
    }
    expect(SharedLane.count()).toBe(0);
    const found = await stamps(file, slots.slice(0, 8));
    for (const [w, r] of runs.entries()) {
      for (let s = 0; s < 2; s++) {
        const k = found[w * 2 + s]!;
        if (r === runs[leader] || r === runs[follower]) {
          // acknowledged commits are there; at most the one in flight beyond them
          const acked = r === runs[leader] ? Math.max(leaderAcks[s]!, r.acks[s]!) : r.acks[s]!;
          expect(k).toBeGreaterThanOrEqual(acked);
          expect(k).toBeLessThanOrEqual(acked + 1);
        } else {
          expect(k).toBe(commits);
        }
      }
    }
    expect(sqliteIntegrity(file)).toEqual(['ok']);
  });

  it('two processes x 4 workers on one database: integrity ok, no commit lost', async () => {
    const dir = tmpDir('walnut-lanes-');
    const { file, slots } = laneDatabase(dir, 'two-procs');
    const commits = 30;
    const perProcess = [0, 1].map((p) => Array.from({ length: 4 }, (_, w) => slots.slice(p * 16 + w * 4, p * 16 + w * 4 + 2)));
    const outputs = await Promise.all(perProcess.map((slotsOf) => new Promise<string>((resolve) => {
      const child = spawn(process.execPath, [path.join(HELPERS, 'lane-child.js'), file, JSON.stringify(slotsOf), String(commits)], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.on('close', () => resolve(out)); // its whole output ('exit' can come first: children.ts runNode)
    })));
    for (const out of outputs) {
      expect(out).not.toMatch(/^error/m);
      const done = /^done (.*)$/m.exec(out);
      expect(done).not.toBeNull();
      // in each process one store led its lane: every worker's commits went through it
      const metrics = JSON.parse(done![1]!) as Array<{ perMember: Array<{ commits: number }> } | null>;
      expect(metrics.every((m) => m !== null)).toBe(true);
    }
    const used = perProcess.flat(2);
    expect(await stamps(file, used)).toEqual(Array(used.length).fill(commits));
    expect(sqliteIntegrity(file)).toEqual(['ok']);
  });

  it('a WAL past 16,000 frames (5 -shm segments) while python3 writes from another process: 4 workers commit through one lane, 4 more run conflicting transactions; integrity ok, every acknowledged commit present, one winner per round, the writer\'s rows all there', async () => {
    const dir = tmpDir('walnut-lanes-');
    const { file, slots } = laneDatabase(dir, 'scale', 12, 1024);
    // 12,000 frames first, fast: the database's own pages committed again unchanged (one store of its own, open to the end)
    const builder = await open(file, { shareLane: false, autoCheckpoint: false, keepWal: true });
    await growWal(builder, 12_000);
    // the builder stays open until the workers closed: under load python3's writer can end before
    // they have opened, and its close as the last connection would checkpoint and reset the WAL
    expect(shmMxFrame(file)).toBeLessThan(segmentEnd(2)); // segments 0-2: the next two boundaries are crossed below, with everyone writing

    // python3 (SQLite's own library, wal_autocheckpoint 0) inserts rows beside the lane the whole time
    const python = sqliteWriters(file, 1, 3, 0);
    await untilWalMoves(file, shmMxFrame(file)); // python3's first commit lands before the workers start (see untilWalMoves)
    const commits = 550; // 4 workers x 2 slots x 550 one-page commits: past 16,350 frames (segment 4) with walnut's alone
    const committers = Array.from({ length: 4 }, (_, w) => startWorker({ db: file, w, slots: slots.slice(1 + w * 2, 3 + w * 2), commits, holdOpen: true, autoCheckpoint: false }));
    const barrier = new SharedArrayBuffer(4);
    const rounds = 24;
    const conflicting = Array.from({ length: 4 }, (_, i) => startWorker({ db: file, w: 4 + i, slots: [slots[0]], mode: 'conflict', rounds, barrier, workers: 4, holdOpen: true, autoCheckpoint: false }));
    const runs = [...committers, ...conflicting];
    await Promise.all(runs.map((r) => r.waitFor('done')));
    const pythonCommits = await python;
    // nobody has closed nor checkpointed: the WAL holds every frame
    expect(shmMxFrame(file)).toBeGreaterThan(segmentEnd(3));
    expect(fs.statSync(`${file}-shm`).size).toBeGreaterThanOrEqual(5 * 32_768);
    for (const r of runs) r.worker.postMessage('metrics');
    const lanes = await Promise.all(runs.map((r) => r.waitFor('metrics')));
    expect(lanes.map((m) => (m[1] as { members: number }).members)).toEqual(Array(8).fill(8)); // one lane
    for (const r of runs) r.worker.postMessage('close');
    await Promise.all(runs.map((r) => r.exited));
    await builder.close();
    expect(SharedLane.count()).toBe(0);

    // first-committer-wins across workers, whatever python3 committed meanwhile
    let last = -1;
    for (let round = 0; round < rounds; round++) {
      const outcomes = conflicting.map((r) => r.messages.find((m) => m[0] === 'round' && m[1] === round)?.[2]);
      expect(outcomes.filter((o) => o === 'won'), `round ${round}: ${outcomes.join(',')}`).toHaveLength(1);
      expect(outcomes.filter((o) => o === 'WALNUT_CONFLICT')).toHaveLength(3);
      last = 4 + outcomes.indexOf('won');
    }
    expect(await stamps(file, slots.slice(0, 9))).toEqual([rounds, ...Array(8).fill(commits)]);
    const check = new Database(file, { readonly: true });
    const head = await (async () => {
      const store = await open(file, { shareLane: false });
      const s = await store.snapshot();
      const p = await s.read(slots[0]!.pgno);
      s.release();
      await store.close();
      return p.readUInt32BE(4);
    })();
    expect(head).toBe(last); // the last round's winner wrote it
    expect(check.prepare('SELECT count(*) AS n FROM t WHERE w = 1').get()).toEqual({ n: pythonCommits });
    check.close();
    expect(pythonCommits).toBeGreaterThan(0);
    expect(sqliteIntegrity(file)).toEqual(['ok']);
  });

  it('SIGKILL crash trials with 4 workers: every acknowledged commit is present', async () => {
    const dir = tmpDir('walnut-lanes-');
    const rand = seededRandom(20261130);
    let acked = 0;
    for (let trial = 0; trial < 4; trial++) {
      const { file, slots } = laneDatabase(dir, `crash${trial}`);
      const slotsOf = Array.from({ length: 4 }, (_, w) => slots.slice(w * 4, w * 4 + 4));
      const acks = new Map<string, number>();
      await new Promise<void>((resolve, reject) => {
        const child = spawn(process.execPath, [path.join(HELPERS, 'lane-child.js'), file, JSON.stringify(slotsOf), '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
        const kill = killAfterFirstAck(child, 30 + rand(250));
        const ended = readLines(child, (line) => {
          kill.line(line);
          if (line.startsWith('ack ')) {
            const [, w, s, k] = line.split(' ');
            acks.set(`${w}/${s}`, Number(k));
          } else if (line.startsWith('error')) reject(new Error(line));
        });
        void ended.then(({ signal }) => {
          kill.cancel();
          if (signal === 'SIGKILL') resolve();
          else reject(new Error(`child exited without SIGKILL (${signal})`));
        });
      });
      // the kill came only after a first acknowledgement (killAfterFirstAck), on any machine
      expect(acks.size, `trial ${trial}: commits acknowledged before the kill`).toBeGreaterThan(0);
      const found = await stamps(file, slotsOf.flat());
      for (let w = 0; w < 4; w++) {
        for (let s = 0; s < 4; s++) {
          const ack = acks.get(`${w}/${s}`) ?? 0;
          acked += ack;
          const k = found[w * 4 + s]!;
          // before its first commit the page holds SQLite's own bytes (stamp read as anything): only check once acked
          if (ack > 0) {
            expect(k, `trial ${trial} worker ${w} slot ${s}`).toBeGreaterThanOrEqual(ack);
            expect(k).toBeLessThanOrEqual(ack + 1);
          }
        }
      }
      expect(sqliteIntegrity(file)).toEqual(['ok']);
    }
    console.log(`lane crash trials: 4 trials, ${acked} acknowledged commits checked`); // (how many is the machine's speed)
  });
});
