// close() of a commit-lane *member* whose commits the leader's batch holds while it waits for
// SQLite's WAL write lock (WRITE) held by another process (a python3 sqlite3 process in BEGIN
// IMMEDIATE, told to commit only later; busyTimeout 20 s). Before, the member's close waited with
// the leader up to the busy timeout (7.7 s of 8 measured) and its commits then failed
// WALNUT_BUSY. Now (SharedLane.announceClose, GroupCommitter.withdrawClosing) its close settles
// within CLOSE_MS_AT_MOST (an honest, generous bound), its commits in the waiting batch and those
// still queued reject WALNUT_CLOSED, reason WriteWaitCut, nothing of them written, and the
// leader's and another member's commits are untouched: they land once the holder lets go, and
// their chains are whole (their next commits land). Same thread, and a member in a worker_thread
// (main-thread leader) or the other way round. Then a race: a member's close() at random points
// of its and the leader's commits, with WRITE held by another connection (a store's write lease,
// let go at a random point) or free: every commit either landed (its pages as committed, seen
// by a fresh store and its markers by python3) or rejected (none of its pages), never both,
// never half; the leader's always land.
// And a crowd: three members, a worker_threads member and the leader closing at random points of
// one another's commits beside a python3 process holding WRITE (two rounds in three): the same,
// each member's close prompt, and the survivors' next commits land (chains whole).
// The database: rows whose blobs span overflow chains (better-sqlite3); commits rewrite overflow
// pages (the chain link kept) with a marker per page, so python3 finds each in the blobs and
// PRAGMA integrity_check stays ok.
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';

import { describe, expect, it } from 'vitest';

import { SharedLane } from '../../lib/commit/lane';
import { open, type Store } from '../../lib/commit/store';
import { holdWrite } from '../helpers/busy-writer';
import { BUSY_TIMEOUT_MS, CLOSE_MS_AT_MOST, outcome, sleep } from '../helpers/close-cut';
import { HELPERS, pythonSqlite } from '../helpers/children';
import { overflowChainDatabase, sqliteIntegrity, type OverflowPage } from '../helpers/sqlite-db';
import { tmpDir } from '../helpers/tmp';
import { seededRandom } from '../helpers/wal-damage';

/** Past the quick tries of the leader's wait for WRITE: it blocks in the kernel by then. */
const INTO_THE_WAIT_MS = 300;
const PAGE_SIZE = 4096;
const HOLDER_SQL = 'INSERT INTO t(w) VALUES (-1)';
const RACE_ROUNDS = 60;
const CROWD_ROUNDS = 12;

const dir = tmpDir();

interface Commit {
  pages: Array<{ pgno: number; data: Buffer }>;
  /** One per page, in its payload: python3 finds it in the row's blob once the page landed. */
  markers: string[];
}

/** A WAL database of `rows` rows of 4-page blobs in t(id, v, w), and its overflow pages (each with its chain link). */
function laneDatabase(name: string, rows: number): { file: string; slots: OverflowPage[] } {
  const file = path.join(dir, `${name}.db`);
  return { file, slots: overflowChainDatabase(file, rows, PAGE_SIZE) };
}

/** Hands out commits of `pageCount` pages, each page a slot no other commit of the database writes. */
function commits(slots: OverflowPage[]): (pageCount: number) => Commit {
  let at = 0;
  return (pageCount) => {
    const c: Commit = { pages: [], markers: [] };
    for (let j = 0; j < pageCount; j++) {
      const s = slots[at++];
      if (s === undefined) throw new Error('the test database ran out of overflow pages');
      const marker = `<lanecut ${s.pgno}>`;
      const data = Buffer.alloc(PAGE_SIZE, 0x2d);
      data.writeUInt32BE(s.next, 0); // the chain link stays
      data.write(marker, 64, 'latin1');
      c.pages.push({ pgno: s.pgno, data });
      c.markers.push(marker);
    }
    return c;
  };
}

/** Per commit, per page: the page as a fresh store (its own connection) reads it is the one committed. */
async function landed(file: string, list: Commit[]): Promise<boolean[][]> {
  const store = await open(file, { shareLane: false });
  try {
    const snap = await store.snapshot();
    try {
      const out: boolean[][] = [];
      for (const c of list) out.push(await Promise.all(c.pages.map(async (p) => (await snap.read(p.pgno)).equals(p.data))));
      return out;
    } finally {
      snap.release();
    }
  } finally {
    await store.close();
  }
}

/** Per commit, per page: python3's sqlite3 finds the page's marker in a row's blob. */
async function pythonFinds(file: string, list: Commit[]): Promise<boolean[][]> {
  const markers = list.flatMap((c) => c.markers);
  const out = await pythonSqlite(file, `blobs = [bytes(r[0]) for r in c.execute('SELECT v FROM t WHERE v IS NOT NULL')]\nfor m in ${JSON.stringify(markers)}:\n  print(1 if any(m.encode('latin1') in b for b in blobs) else 0)`);
  const found = out.split('\n').map((l) => l === '1');
  let at = 0;
  return list.map((c) => c.markers.map(() => found[at++]!));
}

/** The pattern landed() and pythonFinds() should give: each commit's pages all true (it landed) or all false. */
const expected = (list: Commit[], ok: boolean[]): boolean[][] => list.map((c, i) => c.pages.map(() => ok[i]!));

/** A settled flag for `p` (it never rejects: outcome()). */
function watch(p: Promise<string>): { settled: () => boolean } {
  let done = false;
  void p.then(() => (done = true));
  return { settled: () => done };
}

async function timedClose(close: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await close();
  return performance.now() - t0;
}

/** A store in a worker_thread (lane-close-member-worker.js), driven by messages. */
class WorkerStore {
  readonly #worker: Worker;
  /** Each message the worker posted, by key, until asked for (#next). */
  readonly #arrived = new Map<string, unknown[]>();
  readonly #waiters = new Map<string, { resolve: (m: unknown[]) => void; reject: (e: Error) => void }>();
  #failure: Error | null = null;
  #closeAsked = false;
  #ids = 0;

  constructor(file: string) {
    this.#worker = new Worker(path.join(HELPERS, 'lane-close-member-worker.js'), { workerData: { db: file, busyTimeout: BUSY_TIMEOUT_MS } });
    this.#worker.on('message', (m: unknown[]) => {
      if (m[0] === 'error') this.#fail(new Error(String(m[1])));
      const key = m[0] === 'outcome' ? `outcome ${String(m[1])}` : String(m[0]);
      const waiter = this.#waiters.get(key);
      this.#waiters.delete(key);
      if (waiter === undefined) this.#arrived.set(key, m);
      else waiter.resolve(m);
    });
    this.#worker.on('error', (e) => this.#fail(e));
    // (it exits by itself once its store closed; a message still awaited then never comes)
    this.#worker.on('exit', () => this.#rejectWaiters(new Error('the worker exited')));
  }

  #fail(e: Error): void {
    this.#failure ??= e;
    this.#rejectWaiters(e);
  }

  #rejectWaiters(e: Error): void {
    for (const w of this.#waiters.values()) w.reject(e);
    this.#waiters.clear();
  }

  #next(key: string): Promise<unknown[]> {
    const m = this.#arrived.get(key);
    if (m !== undefined) {
      this.#arrived.delete(key);
      return Promise.resolve(m);
    }
    if (this.#failure !== null) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => this.#waiters.set(key, { resolve, reject }));
  }

  /** Resolves once the worker's store is open: whether it leads its lane. */
  async opened(): Promise<boolean> {
    return (await this.#next('open'))[1] as boolean;
  }

  commit(c: Commit): Promise<string> {
    const id = this.#ids++;
    const answer = this.#next(`outcome ${id}`).then((m) => m[2] as string);
    this.#worker.postMessage(['commit', id, c.pages.map((p) => ({ pgno: p.pgno, data: new Uint8Array(p.data) }))]);
    return answer;
  }

  /** Closes the store in the worker (once): how long its close() took there (ms). */
  async close(): Promise<number> {
    if (this.#closeAsked) return 0;
    this.#closeAsked = true;
    const closed = this.#next('closed');
    this.#worker.postMessage(['close']);
    return (await closed)[1] as number;
  }

  /** Ends the worker: a failure it reported (not its exit) is thrown. */
  async exit(): Promise<void> {
    const failure = this.#failure;
    await this.#worker.terminate();
    if (failure !== null) throw failure;
  }
}

describe("a lane member's close() while the leader's batch holding its commits waits for another process's WRITE (busyTimeout 20 s)", () => {
  it('same thread: the close settles at once, its commits reject WALNUT_CLOSED WriteWaitCut, nothing of them written; the leader\'s and another member\'s land once the holder lets go, chains whole', async () => {
    const { file, slots } = laneDatabase('same-thread', 8);
    const commit = commits(slots);
    const leader = await open(file, { busyTimeout: BUSY_TIMEOUT_MS });
    const closing = await open(file, { busyTimeout: BUSY_TIMEOUT_MS });
    const other = await open(file, { busyTimeout: BUSY_TIMEOUT_MS });
    expect([leader, closing, other].map((s) => s.metrics().lane?.leader)).toEqual([true, false, false]);
    const holder = await holdWrite(file, HOLDER_SQL);
    const own = commit(2);
    const others = commit(1);
    const mine = [commit(1), commit(2)];
    const late = commit(1);
    const afterwards = [commit(1), commit(1)];
    try {
      const ownOutcome = outcome(leader.commit(own.pages));
      const othersOutcome = outcome(other.commit(others.pages));
      const mineOutcomes = mine.map((c) => outcome(closing.commit(c.pages)));
      await sleep(INTO_THE_WAIT_MS); // the leader's batch holds them all and waits for WRITE
      mineOutcomes.push(outcome(closing.commit(late.pages))); // queued in the lane behind that batch
      await sleep(10);
      const ms = await timedClose(() => closing.close());
      expect(ms, `the member's close() took ${ms.toFixed(0)} ms`).toBeLessThan(CLOSE_MS_AT_MOST);
      expect(await Promise.all(mineOutcomes)).toEqual(Array(3).fill('WALNUT_CLOSED/WriteWaitCut'));
      const waiting = [watch(ownOutcome), watch(othersOutcome)];
      await sleep(50);
      expect(waiting.map((w) => w.settled()), 'the others still wait for WRITE').toEqual([false, false]);
      holder.commit();
      expect([await ownOutcome, await othersOutcome]).toEqual(['ok', 'ok']);
      // their chains are whole: the next commits land
      expect([await outcome(leader.commit(afterwards[0]!.pages)), await outcome(other.commit(afterwards[1]!.pages))]).toEqual(['ok', 'ok']);
    } finally {
      await holder.stop();
      await closing.close(); // (the same promise when the test closed it)
      await other.close();
      await leader.close();
    }
    expect(SharedLane.count()).toBe(0);
    const list = [own, others, ...mine, late, ...afterwards];
    const ok = [true, true, false, false, false, true, true];
    expect(await landed(file, list)).toEqual(expected(list, ok));
    expect(await pythonFinds(file, list)).toEqual(expected(list, ok));
    expect(await pythonSqlite(file, 'print(c.execute("SELECT count(*) FROM t WHERE w = -1").fetchone()[0])')).toBe('1'); // the holder's row
    expect(sqliteIntegrity(file)).toEqual(['ok']);
  });

  for (const memberIn of ['worker', 'main'] as const) {
    it(`worker_threads: a member in the ${memberIn} thread (the leader in the other) closes at once, its commits WriteWaitCut; the leader's land`, async () => {
      const { file, slots } = laneDatabase(`thread-${memberIn}`, 6);
      const commit = commits(slots);
      // the first store opened leads
      let worker: WorkerStore | null = null;
      let main: Store | null = null;
      const holder = await holdWrite(file, HOLDER_SQL);
      const own = [commit(1), commit(2)];
      const mine = [commit(2), commit(1)];
      const afterwards = commit(1);
      try {
        if (memberIn === 'main') {
          worker = new WorkerStore(file);
          expect(await worker.opened()).toBe(true);
          main = await open(file, { busyTimeout: BUSY_TIMEOUT_MS });
        } else {
          main = await open(file, { busyTimeout: BUSY_TIMEOUT_MS });
          worker = new WorkerStore(file);
          expect(await worker.opened()).toBe(false);
        }
        expect(main.metrics().lane?.leader).toBe(memberIn === 'worker');
        const w = worker;
        const m = main;
        const leaderCommit = (c: Commit): Promise<string> => (memberIn === 'worker' ? outcome(m.commit(c.pages)) : w.commit(c));
        const memberCommit = (c: Commit): Promise<string> => (memberIn === 'worker' ? w.commit(c) : outcome(m.commit(c.pages)));
        const ownOutcomes = own.map(leaderCommit);
        const mineOutcomes = mine.map(memberCommit);
        await sleep(INTO_THE_WAIT_MS);
        const ms = memberIn === 'worker' ? await w.close() : await timedClose(() => m.close());
        expect(ms, `the member's close() took ${ms.toFixed(0)} ms`).toBeLessThan(CLOSE_MS_AT_MOST);
        expect(await Promise.all(mineOutcomes)).toEqual(['WALNUT_CLOSED/WriteWaitCut', 'WALNUT_CLOSED/WriteWaitCut']);
        const waiting = ownOutcomes.map(watch);
        await sleep(50);
        expect(waiting.map((w) => w.settled()), "the leader's still wait for WRITE").toEqual([false, false]);
        holder.commit();
        expect(await Promise.all(ownOutcomes)).toEqual(['ok', 'ok']);
        expect(await leaderCommit(afterwards)).toBe('ok'); // its chain is whole
      } finally {
        await holder.stop();
        await main?.close();
        await worker?.close();
        await worker?.exit();
      }
      const list = [...own, ...mine, afterwards];
      const ok = [true, true, false, false, true];
      expect(await landed(file, list)).toEqual(expected(list, ok));
      expect(await pythonFinds(file, list)).toEqual(expected(list, ok));
      expect(sqliteIntegrity(file)).toEqual(['ok']);
    });
  }

  it(`a race: a member's close() at random points of commits, WRITE held elsewhere or free (${RACE_ROUNDS} rounds): each commit landed or rejected, never both, never half`, async () => {
    // 60 rounds, at most 1 + 4 commits of at most 2 pages each: 600 pages, 4 per row
    const { file, slots } = laneDatabase('race', 160);
    const commit = commits(slots);
    const rand = seededRandom(0x1a4ec);
    const leader = await open(file, { busyTimeout: BUSY_TIMEOUT_MS });
    // another connection of this process: its write lease holds WRITE as python3's BEGIN IMMEDIATE does
    const holder = await open(file, { busyTimeout: BUSY_TIMEOUT_MS, shareLane: false });
    const all: Commit[] = [];
    const allOk: boolean[] = [];
    const cut = { rounds: 0, withdrawn: 0 };
    try {
      for (let round = 0; round < RACE_ROUNDS; round++) {
        const member = await open(file, { busyTimeout: BUSY_TIMEOUT_MS });
        const held = rand(3) > 0; // two rounds in three: WRITE held elsewhere
        if (held) await holder.holdWriteLease();
        const own = commit(1 + rand(2));
        const mine = Array.from({ length: 1 + rand(4) }, () => commit(1 + rand(2)));
        const ownOutcome = outcome(leader.commit(own.pages));
        const mineOutcomes: Array<Promise<string>> = [];
        // the member's commits, then its close(), each after a random pause (none, a microtask, a turn, a timer)
        const pause = (): Promise<void> | undefined => [undefined, Promise.resolve(), new Promise<void>((resolve) => setImmediate(resolve)), sleep(rand(15))][rand(4)];
        for (const c of mine) {
          mineOutcomes.push(outcome(member.commit(c.pages)));
          await pause();
        }
        // the holder lets go at a random point: before the close, during it, or after it settled
        const letGo = rand(3);
        const closing = member.close();
        if (held && letGo === 0) holder.releaseWriteLease();
        await pause();
        if (held && letGo === 1) holder.releaseWriteLease();
        await closing;
        if (held && letGo === 2) holder.releaseWriteLease();
        const outcomes = await Promise.all(mineOutcomes);
        for (const o of outcomes) expect(['ok', 'WALNUT_CLOSED/WriteWaitCut']).toContain(o);
        // with WRITE free throughout, nothing waits: every commit lands, as before
        if (!held) expect(outcomes.every((o) => o === 'ok'), outcomes.join(', ')).toBe(true);
        expect(await ownOutcome).toBe('ok');
        const list = [own, ...mine];
        const ok = [true, ...outcomes.map((o) => o === 'ok')];
        expect(await landed(file, list), `round ${round}: ${outcomes.join(', ')}`).toEqual(expected(list, ok));
        all.push(...list);
        allOk.push(...ok);
        const withdrawn = ok.filter((o) => !o).length;
        if (withdrawn > 0) cut.rounds++;
        cut.withdrawn += withdrawn;
      }
    } finally {
      await holder.close();
      await leader.close();
    }
    // the race did what it is for: some closes met commits waiting for WRITE and withdrew them
    expect(cut.rounds, JSON.stringify(cut)).toBeGreaterThan(0);
    expect(await pythonFinds(file, all)).toEqual(expected(all, allOk));
    expect(await landed(file, all)).toEqual(expected(all, allOk));
    expect(sqliteIntegrity(file)).toEqual(['ok']);
  });

  it(`a race of many: three members and a worker_threads member closing at random points, the leader too, python3 holding WRITE or not (${CROWD_ROUNDS} rounds): each commit landed or rejected, never both, never half; survivors' chains whole`, async () => {
    const { file, slots } = laneDatabase('crowd', CROWD_ROUNDS * 18);
    const commit = commits(slots);
    const rand = seededRandom(0xc40d);
    const all: Commit[] = [];
    const outcomes: Array<Promise<string>> = [];
    const closeMs: number[] = [];
    for (let round = 0; round < CROWD_ROUNDS; round++) {
      const stores: Store[] = [];
      for (let i = 0; i < 4; i++) stores.push(await open(file, { busyTimeout: BUSY_TIMEOUT_MS })); // stores[0] leads
      const worker = rand(2) === 0 ? new WorkerStore(file) : null;
      if (worker !== null) expect(await worker.opened()).toBe(false);
      const holder = rand(3) > 0 ? await holdWrite(file, HOLDER_SQL) : null;
      const closed = new Set<number>(); // 0..3 the stores, 4 the worker
      const closes: Array<Promise<void>> = [];
      for (let k = 0; k < 12; k++) {
        const who = rand(worker === null ? 4 : 5);
        if (!closed.has(who)) {
          const c = commit(1 + rand(2));
          all.push(c);
          outcomes.push(who === 4 ? worker!.commit(c) : outcome(stores[who]!.commit(c.pages)));
        }
        const act = rand(10);
        const closing = act < 2 ? rand(4) : act === 2 ? 4 : -1;
        if (closing >= 0 && !closed.has(closing) && (closing < 4 || worker !== null)) {
          closed.add(closing);
          // (the leader's close waits while its batch holds the others' commits: not timed)
          closes.push(closing === 4 ? worker!.close().then((ms) => void closeMs.push(ms)) : timedClose(() => stores[closing]!.close()).then((ms) => void (closing > 0 && closeMs.push(ms))));
        } else if (act === 3 && rand(3) === 0) holder?.commit(); // (told once, whatever the calls)
        await [undefined, Promise.resolve(), new Promise<void>((resolve) => setImmediate(resolve)), sleep(rand(20))][rand(4)];
      }
      await sleep(rand(50));
      holder?.commit();
      await Promise.all(closes);
      for (let i = 0; i < 4; i++) {
        if (closed.has(i)) continue;
        const c = commit(1);
        all.push(c);
        const o = await outcome(stores[i]!.commit(c.pages));
        expect(o, `round ${round}: a survivor's next commit`).toBe('ok'); // its chain is whole
        outcomes.push(Promise.resolve(o));
      }
      await holder?.stop();
      for (let i = 0; i < 4; i++) if (!closed.has(i)) await stores[i]!.close();
      await worker?.close();
      await worker?.exit();
    }
    expect(SharedLane.count()).toBe(0);
    const settled = await Promise.all(outcomes);
    for (const o of settled) expect(['ok', 'WALNUT_CLOSED/WriteWaitCut', 'WALNUT_CLOSED']).toContain(o);
    expect(settled).toContain('WALNUT_CLOSED/WriteWaitCut');
    expect(Math.max(...closeMs), 'a member\'s close').toBeLessThan(CLOSE_MS_AT_MOST);
    const ok = settled.map((o) => o === 'ok');
    expect(await landed(file, all)).toEqual(expected(all, ok));
    expect(await pythonFinds(file, all)).toEqual(expected(all, ok));
    expect(sqliteIntegrity(file)).toEqual(['ok']);
  });
});
