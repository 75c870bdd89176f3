/**
 * commit/lane.ts — SharedLane: the stores of one process on one database file share one commit
 * lane (issue #21; the native lane and its invariants: native/commit_lane.h).
 *
 * Every store (shareLane, the default) joins the lane of its database file, keyed by the file's
 * (device, inode) and by the options its commits depend on (synchronous, fec) and its real path
 * (the -wal's name: hard links of one inode have separate WALs, so separate lanes). The first member
 * leads: its GroupCommitter writes the lane's commits. Another member's commit() (a store in
 * another worker_thread, or a second store in the same thread) is copied into the lane (and
 * once more, when taken, into one of the leader's take buffers, recycled once every commit in it
 * settled: a commit's page bytes are not used after it settles). The leader's own commits are
 * copied by its store (commit/page-arena.ts) before they get here.
 * The leader takes every queued commit into its own committer when that forms a batch
 * (gather()), or, when its committer is idle, is woken for it; the commits join its batches
 * (one pwritev, one fdatasync for all), and it settles each with its result, which the native
 * lane delivers to the submitting member's event loop (one wake-up per member per batch; the
 * lane counts them: metrics().lane.wakeups). So:
 *  - order: commits reach the leader's committer in lane order and are written in that order,
 *    each member's in its own order. Lane order is the order in which commits enter the lane: a
 *    member's commit() goes into its own native buffer and enters the lane with the rest of its
 *    turn when its code returns to the event loop (commit_lane.h), not when commit() is called;
 *  - first committer wins across members: a member's transaction carries its snapshot's
 *    generation (mxFrame, salts) and its read/write set; the leader checks it under WRITE as
 *    it checks its own (group-committer.ts). The member keeps its snapshot (its read mark)
 *    until its commit settles, so the WAL cannot restart past it before the check;
 *  - commitSeq counts this store's own commits, whoever wrote them;
 *  - the leader's options apply to the batches (groupCommit, autoCheckpoint: its store runs
 *    the lane's auto-checkpoints); every member still has its own wal-index connection (reads,
 *    snapshots, checkpoint(), its own read marks), so other processes see one connection per
 *    store of which only the leader writes.
 * A leader alone in the lane (native `alone`: no other store of this file in the process) makes
 * no native call per batch: nothing to gather, and its batches reach the lane's metrics in
 * arrears (with the next settle, metrics() or leaving).
 * A leader whose committer failed (WALNUT_FAILED) resigns at once: the others go on under a new
 * leader, the failed store refuses commits until reopened, as before.
 * Leaving: close() first announces it (announceClose: every member's committer that holds this
 * store's commits in a wait for WRITE held by another connection withdraws them, WALNUT_CLOSED
 * WriteWaitCut, before that batch's write), waits until this store's own commits settled
 * (leading meanwhile if it leads or becomes leader), then resigns (another member takes over and is woken), lets the
 * committer finish what it took, settles that, and leaves. A worker that ends without close()
 * leaves abandoned (native cleanup hook): see commit_lane.h for what happens to its commits.
 */
import { refusedOnLaterTurn, walnutError, WalnutError } from '../errors';
import { NativeCommitLane, type NativeCommitLane as NativeLane, type NativeFileHandle, type NativeLaneMetrics } from '../native';
import type { WalPage } from '../wal/wal-file';
import { CommitChain } from './chain';
import type { CommitCheck, CommitListener, CommitResult, ConflictSet, GroupCommitter } from './group-committer';
import { LaneWaiters } from './lane-waiters';
import type { PageCopies } from './page-arena';

/** The lane's counters, as one member sees them (Store.metrics().lane). */
export interface LaneMetrics {
  /** This store's member id, and whether it leads now. */
  member: number;
  leader: boolean;
  /** Stores in the lane now (all threads of this process). */
  members: number;
  /** The leader's batches, and the commits in them (of every member). */
  batches: number;
  commits: number;
  /** Batches with commits of two or more members. */
  crossMemberBatches: number;
  /** Members with commits in a batch, on average. */
  membersPerBatch: number;
  leaderChanges: number;
  /** Commits failed with WALNUT_CLOSED (LeaderExited) because the leader's worker ended mid-batch. */
  abandonedCommits: number;
  /** Members' turns of commits published into the lane (one lane lock each, however many commits). */
  publishes: number;
  /** Threads the lane woke (one uv_async_send each; coalesced per member), and of them the leader's. */
  wakeups: number;
  leaderWakeups: number;
  /** Per member: its commits, the batches it had commits in, and their ratio. */
  perMember: Array<{ member: number; commits: number; batches: number; commitsPerBatch: number }>;
}

/**
 * What a store hands its commits to: its committer directly, or the lane. `copies`: the store's
 * copies of the pages (page-arena.ts), released by the sink once the commit settled.
 */
export interface CommitSink {
  submit(pages: WalPage[], dbSize: number | undefined, check?: CommitCheck, copies?: PageCopies | null): Promise<CommitResult>;
}

type Failure = [number, string, string, string, number];
/** A transaction's conflict set as the native lane takes it: mxFrame, salts, pgnos, and the read-lock slot its snapshot holds. */
type LaneConflict = [number, number, number, Uint32Array] | [number, number, number, Uint32Array, number];
/** A taken commit's failure for settle(): [id, member, code, message, reason, errno]. */
type TakenFailure = [number, number, string, string, string, number];

/** Per settled commit in the wake-up's ok array: id, first, last, durable. */
const OK_FIELDS = 4;
/** Per taken commit written, in settle()'s ok array: id, member (its submitter), first, last, durable. */
const SETTLE_OK_FIELDS = 5;
const TAKE_FIELDS = 11;
/**
 * The leader holds a batch back for members whose last commits it just settled at most as long
 * as its batches take from formation to settlement (write + sync, measured: waiting longer than
 * another batch would take is worse than writing one), within these bounds (ms).
 */
const GATHER_MIN_MS = 0.5;
const GATHER_MAX_MS = 4;

/**
 * Take buffers: the leader's copy of what it takes (native take(into)) goes into one of these,
 * recycled once every commit in it settled (a commit's page bytes are not used after it settles,
 * as the store's own copies of its pages: commit/page-arena.ts). A fresh buffer per take cost ~50x its copy.
 */
const TAKE_BUFFER_BYTES = 1 << 20;
const TAKE_BUFFERS_KEPT = 4;

const NO_OUTCOMES = new Float64Array(0);
const NO_PAGE = new Uint8Array(0);
/**
 * #queueFlush's microtask is a reaction to this settled promise, not a queueMicrotask(): Node's
 * queueMicrotask makes an AsyncResource (an async id, its init hooks, a bound function) for every
 * call, ~4 µs of the leader's JavaScript per batch of 64 (bench/README.md, session 27). The
 * reaction runs at the same place in the microtask queue.
 */
const SETTLED = Promise.resolve();

interface Taken {
  meta: Float64Array;
  buffer: Uint8Array;
}

export class SharedLane implements CommitSink {
  readonly #native: NativeLane;
  readonly #committer: GroupCommitter;
  readonly #path: string;
  readonly #pageSize: number;
  #leader: boolean;
  #resigned = false;
  /** This store's commits submitted through the native lane, by lane id. */
  readonly #waiting = new LaneWaiters();
  #whenSettled: (() => void) | null = null;
  /** commitSeq of this store's commits. */
  #seq = 0;
  /**
   * Leader: outcomes of taken commits (SETTLE_OK_FIELDS numbers each, #okCount of them), settled
   * together once per microtask turn (one batch); the array is reused (the native settle copies it).
   */
  #ok = new Float64Array(SETTLE_OK_FIELDS * 64);
  #okCount = 0;
  #failed: TakenFailure[] = [];
  #own = 0;
  #flushQueued = false;
  /** Leader alone in the lane: its batches and commits since the last settle (#settleAlone). */
  #aloneBatches = 0;
  #aloneCommits = 0;
  /** Leader: the last batch gather() formed found the lane with no other member. */
  #formedAlone = false;
  /** Leader: ends the wait of the committer's gather() (null: none waits). */
  #gathered: (() => void) | null = null;
  /** Leader: when the last batch was formed (performance.now()), and batches' recent span, ms. */
  #formedAt = 0;
  #batchMs = 1;
  /** Leader: a Rest is due when the committer goes idle (#watchIdle). */
  #watching = false;
  #left = false;
  /** Leader: take buffers no commit in flight uses. */
  readonly #spare: Uint8Array[] = [];
  /** Members whose store is closing (native closingMembers(), read again on each `closing` or `lead` wake-up). */
  #closing: ReadonlySet<number> = new Set();
  #announcedClose = false;
  /** This member's own chain, broken while it submitted through the lane (#breakOwnChain). */
  readonly #chain: CommitChain;
  /** #submitPages' arrays for a one-page commit. */
  readonly #onePgno = new Uint32Array(1);
  readonly #onePage: Uint8Array[] = [NO_PAGE];

  /**
   * Leader: hears its own commits' outcomes (the committer numbers them by this store's count,
   * and this batch's settle reports them to the lane) before their callers do; no promise or
   * closure per commit.
   */
  readonly #ownCommits: CommitListener = {
    written: () => {
      this.#own++;
      this.#queueFlush();
      return ++this.#seq;
    },
    failed: () => this.#resignIfFailed(),
  };

  /** Joins the lane of `db` (a NativeFile handle of the database file). */
  constructor(db: NativeFileHandle, key: string, pageSize: number, committer: GroupCommitter, path: string) {
    this.#committer = committer;
    this.#path = path;
    this.#chain = new CommitChain(path);
    this.#pageSize = pageSize;
    this.#native = new NativeCommitLane(db, key, pageSize, this.#onEvents);
    this.#leader = this.#native.leader;
  }

  /** Lanes in this process (tests: none is leaked). */
  static count(): number {
    return NativeCommitLane.count();
  }

  get leader(): boolean {
    return this.#leader;
  }

  /** The failure that broke this member's own chain while it submitted through the lane (#breakOwnChain). */
  get chainBrokenBy(): unknown {
    return this.#chain.brokenBy;
  }

  /** What this member's commits get while its own chain is broken (WALNUT_FAILED, ChainBroken), else null. */
  get chainRefusal(): WalnutError | null {
    return this.#chain.refusal;
  }

  /** Mends this member's own chain (GroupCommitter.resumeCommits' rules). */
  resumeCommits(failure?: unknown): boolean {
    return this.#chain.resume(failure);
  }

  /**
   * A commit this member handed to the lane failed: its later commits were built on it, so
   * they are refused (WALNUT_FAILED, reason ChainBroken) until resumeCommits(), as a
   * committer's chain does (group-committer.ts). The leader keeps another member's commits
   * out of its own chain; the cost, said plainly: this member's commits already handed to the
   * lane when the failure happened are not refused (they go on as the leader takes them).
   * WALNUT_CLOSED breaks nothing, nor does any failure of a Transaction's commit (`transaction`):
   * nothing was built on it (the committer's rule, group-committer.ts "The commit chain").
   */
  #breakOwnChain(e: unknown, transaction: boolean): void {
    if (transaction || (e as { code?: string }).code === 'WALNUT_CLOSED') return;
    this.#chain.break(e);
  }


  submit(pages: WalPage[], dbSize: number | undefined, check?: CommitCheck, copies: PageCopies | null = null): Promise<CommitResult> {
    const refusal = this.#chain.refusal;
    if (refusal !== null) {
      copies?.release();
      return refusedOnLaterTurn(refusal);
    }
    if (this.#leader) {
      this.#resignIfFailed(); // a failed committer refuses this commit: the others go on under another leader
      return this.#committer.submit(pages, dbSize, check, copies, this.#ownCommits);
    }
    if (check !== undefined && 'base' in check) {
      // store.commit refuses base on a lane member before it gets here
      return Promise.reject(walnutError('WALNUT_INVALID_ARGUMENT', 'a conditional commit (base) needs a store with a commit path of its own: open it with shareLane: false', { reason: 'shareLane' }));
    }
    const conflict = check?.conflict;
    let id: number;
    try {
      // with the read-lock slot its snapshot holds until this settles: the leader's own checkpoint
      // under WRITE must not wait for it (GroupCommitter.memberReadLockIn)
      let c: LaneConflict | null = null;
      if (conflict !== undefined) {
        const set: [number, number, number, Uint32Array] = [conflict.mxFrame, conflict.salts[0], conflict.salts[1], Uint32Array.from(conflict.pgnos)];
        c = conflict.snapshot !== undefined && !conflict.snapshot.released ? [...set, conflict.snapshot.readLock] : set;
      }
      id = this.#submitPages(pages, dbSize ?? 0, c);
    } catch (e) {
      this.#breakOwnChain(e, conflict !== undefined);
      return Promise.reject(e);
    } finally {
      copies?.release(); // the native submit copied the pages (a store copies only for its own committer: Store#copyPages)
    }
    // a failure breaks this member's chain before it rejects (#onEvents)
    return this.#waiting.add(id, conflict !== undefined);
  }

  /**
   * The native submit (it copies the pages and their numbers at once). A one-page commit goes
   * through this member's two one-slot arrays, not two new ones per commit (each worker's
   * isolate scavenges on its own: GC costs the lane cases several times one thread's CPU per
   * commit, bench/README.md #21).
   */
  #submitPages(pages: WalPage[], dbSize: number, conflict: LaneConflict | null): number {
    if (pages.length === 1) {
      this.#onePgno[0] = pages[0]!.pgno;
      this.#onePage[0] = pages[0]!.data;
      try {
        return this.#native.submit(this.#onePgno, this.#onePage, dbSize, conflict);
      } finally {
        this.#onePage[0] = NO_PAGE; // the caller's buffer is not kept alive by this member
      }
    }
    const pgnos = new Uint32Array(pages.length);
    const data: Uint8Array[] = new Array(pages.length);
    for (let i = 0; i < pages.length; i++) {
      pgnos[i] = pages[i]!.pgno;
      data[i] = pages[i]!.data;
    }
    return this.#native.submit(pgnos, data, dbSize, conflict);
  }

  /**
   * close(), before it waits for anything: this store is closing. Its commits that a committer
   * of the lane (the leader's, or a resigned leader's finishing its batch; in this thread or
   * another) holds while waiting for WRITE held by another connection are withdrawn there
   * (GroupCommitter.withdrawClosing) and reject WALNUT_CLOSED, reason WriteWaitCut, nothing of
   * them written; so resign() need not wait for that WRITE up to the busy timeout. Those being
   * written, or that find WRITE free, land as before. Once only; after leave() nothing.
   */
  announceClose(): void {
    if (this.#announcedClose || this.#left) return;
    this.#announcedClose = true;
    this.#native.closing();
    // (the native lane wakes every other member; this one reads the set itself: it may lead,
    // or lead later, and hold its own commits taken from the lane)
    this.#readClosing();
  }

  /** A lane member's store is closing: committers holding its commits withdraw them from a wait for another connection's WRITE. */
  get hasClosingMembers(): boolean {
    return this.#closing.size > 0;
  }

  /** Whether the store of lane member `member` is closing (announceClose). */
  memberClosing(member: number): boolean {
    return this.#closing.has(member);
  }

  #readClosing(): void {
    if (this.#left) return;
    const members = this.#native.closingMembers();
    this.#closing = members.length === 0 ? new Set() : new Set(members);
    if (this.#closing.size > 0) this.#committer.withdrawClosing();
  }

  /**
   * close(), first step: waits until this store's own lane commits settled (leading meanwhile
   * when it leads), then resigns: the lane's next commits go to another member.
   */
  async resign(): Promise<void> {
    if (this.#waiting.size > 0) await new Promise<void>((resolve) => (this.#whenSettled = resolve));
    this.#resigned = true; // takes nothing more from the lane (gather, rest and wake-ups check it)
    if (this.#leader) {
      // What this committer already took is written (or failed) BEFORE the lead passes on: a
      // new leader's committer would otherwise race this one for WRITE with the commits queued
      // after them, and whichever got it first wrote first. A member's commit taken here and
      // waiting for WRITE (another connection held it) was written after that member's next
      // commit to the same page, which the new leader took: the acknowledged later commit was
      // overwritten by the earlier one (a chaos run lost acknowledged commits in 5 of 24 runs,
      // a terminated worker's last commit landing after its successor's; the handover test
      // misordered 6 of 6 rounds). Meanwhile the lane queues members' commits for the next leader.
      await this.#committer.idle();
      this.#flush();
    }
    this.#settleAlone();
    this.#native.resign();
  }

  /**
   * A leader whose committer failed (WALNUT_FAILED: a sync error, or the pipeline after a write)
   * refuses every later commit until its store is reopened; the lane's other members need not:
   * another member leads from here (it appends after the published header, as a new
   * connection would).
   */
  #resignIfFailed(): void {
    if (this.#committer.failed === null || !this.#leader || this.#resigned) return;
    this.#resigned = true;
    this.#native.resign();
  }

  /** close(), last step (after the committer finished what it took): settles and leaves. */
  leave(): void {
    this.#flush();
    this.#settleAlone();
    this.#left = true;
    this.#native.leave();
  }

  /**
   * The committer's hook before each batch (null: go now): takes what members queued (a busy
   * leader is not woken for it: commit_lane.h). A member whose commits the last batch settled
   * submits its next ones a thread hop later than the leader's own committers, which resubmit
   * in the same turn: without waiting, batches would alternate between the leader's commits
   * and the others' (measured: 15 commits per fdatasync instead of 60 for 4 workers x 16). So
   * the leader waits until those members ended their turn of submits, at most as long as a
   * batch takes (GATHER_MIN_MS..GATHER_MAX_MS).
   */
  gather(): Promise<void> | null {
    if (!this.#leader || this.#resigned || this.#left) return null;
    if (this.#native.alone) {
      // nobody to take from or wait for: no native call per batch. A store that joins meanwhile
      // is taken from at the next batch; its Publish wakes this leader when the lane counts it
      // idle (a leader the lane counts busy has #watchIdle armed: it rests once idle)
      this.#formedAt = 0;
      this.#formedAlone = true;
      return null;
    }
    this.#formedAlone = false;
    if (this.#flushQueued) this.#flush(); // the batch just written: its members are awaited now
    const r = this.#takeInto((into) => this.#native.gather(true, into));
    this.#watchIdle();
    if (!r.wait) {
      this.#formedAt = performance.now();
      return null;
    }
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => this.#endGather(true), Math.min(GATHER_MAX_MS, Math.max(GATHER_MIN_MS, this.#batchMs)));
      this.#gathered = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /**
   * Leader, its committer waiting for WRITE: takes what members queued into the committer now
   * (GroupCommitter's takeQueued: their transactions' snapshots are held meanwhile).
   */
  takeQueued(): void {
    if (this.takesFromOthers) this.#takeInto((into) => this.#native.take(into));
  }

  /** This store leads, and other stores share the lane (a read of the native member count). */
  get takesFromOthers(): boolean {
    return this.#leader && !this.#resigned && !this.#left && !this.#native.alone;
  }

  /** Ends the gather's wait; `timedOut`: the members still awaited are not waited for. */
  #endGather(timedOut: boolean): void {
    const done = this.#gathered;
    if (done === null) return;
    this.#gathered = null;
    this.#formedAt = performance.now();
    if (timedOut && this.#leader && !this.#resigned && !this.#left) this.#takeInto((into) => this.#native.gather(false, into));
    done();
  }

  /**
   * Leader: once the committer is idle, takes what members queued meanwhile, or tells the lane
   * that the next submit must wake this leader (Lane::Rest). Armed whenever the lane counts this
   * leader busy, so no submit is left unwoken.
   */
  #watchIdle(): void {
    if (this.#watching) return;
    this.#watching = true;
    const rest = (): void => {
      this.#watching = false;
      if (this.#leader && !this.#resigned && !this.#left) this.#takeInto((into) => this.#native.rest(into));
    };
    this.#committer.idle().then(rest, rest);
  }

  metrics(): LaneMetrics {
    this.#settleAlone();
    const m: NativeLaneMetrics = this.#native.metrics();
    return {
      member: this.#native.member,
      leader: this.#leader && !this.#resigned,
      members: m.members,
      batches: m.batches,
      commits: m.commits,
      crossMemberBatches: m.crossMemberBatches,
      membersPerBatch: m.batches === 0 ? 0 : m.memberSlotsInBatches / m.batches,
      leaderChanges: m.leaderChanges,
      abandonedCommits: m.abandonedCommits,
      publishes: m.publishes,
      wakeups: m.wakeups,
      leaderWakeups: m.leaderWakeups,
      perMember: m.perMember.map((p) => ({ ...p, commitsPerBatch: p.batches === 0 ? 0 : p.commits / p.batches })),
    };
  }

  /** The native lane's wake-up (never throws: an exception here would be uncaught). */
  readonly #onEvents = (ok: Float64Array, failed: Failure[], lead: boolean, work: boolean, gathered: boolean, closing: boolean): void => {
    try {
      for (let i = 0; i + OK_FIELDS <= ok.length; i += OK_FIELDS) {
        const id = ok[i]!;
        if (!this.#waiting.has(id)) continue;
        this.#waiting.resolve(id, { commitSeq: ++this.#seq, firstFrame: ok[i + 1]!, lastFrame: ok[i + 2]!, durable: ok[i + 3] === 1 });
        this.#settledOne();
      }
      for (const [id, code, message, reason, errno] of failed) {
        if (!this.#waiting.has(id)) continue;
        const e = new WalnutError(message, { code: code as WalnutError['code'], path: this.#path, ...(reason ? { reason } : {}), ...(errno ? { errno } : {}) });
        this.#breakOwnChain(e, this.#waiting.isTransaction(id));
        this.#waiting.reject(id, e);
        this.#settledOne();
      }
      if (lead && !this.#resigned) this.#leader = true;
      if (closing || lead) this.#readClosing();
      if ((lead || work || gathered) && this.#leader && !this.#resigned) this.#takeInto((into) => this.#native.take(into));
      if (gathered) this.#endGather(false);
    } catch (e) {
      // a walnut bug: never let it escape into the process as an uncaught exception
      process.emitWarning(`walnut commit lane: ${(e as Error)?.stack ?? String(e)}`);
    }
  };

  /** A commit of this member settled: resign() waits for the last one. */
  #settledOne(): void {
    if (this.#waiting.size === 0 && this.#whenSettled !== null) {
      const done = this.#whenSettled;
      this.#whenSettled = null;
      queueMicrotask(done);
    }
  }

  /**
   * Leader: commits taken from the lane (by `take`, into a spare take buffer) into this store's
   * committer, in lane order.
   */
  #takeInto<T extends Taken>(take: (into: Uint8Array) => T): T {
    const into = this.#spare.pop() ?? new Uint8Array(TAKE_BUFFER_BYTES);
    const taken = take(into);
    this.#hand(taken, into);
    return taken;
  }

  #hand({ meta, buffer: taken }: Taken, into: Uint8Array): void {
    if (meta.length === 0) {
      this.spare(into); // nothing taken (the usual gather of a lone or busy leader)
      return;
    }
    this.#watchIdle();
    // `into` holds the commits (else nothing was taken or they did not fit: taken is a new buffer)
    const listener = new TakenCommits(this, meta, taken === into ? meta.length / TAKE_FIELDS : 0, into);
    const size = this.#pageSize;
    const buffer = taken.buffer;
    // one u32 view of the whole take for every commit's page numbers (blocks are 4-aligned), not one per commit
    const words = new Uint32Array(buffer, taken.byteOffset, taken.byteLength >>> 2);
    for (let m = 0; m < meta.length; m += TAKE_FIELDS) {
      const count = meta[m + 1]!;
      const at = taken.byteOffset + meta[m + 9]!;
      const pgnoAt = (meta[m + 9]! + count * size) >>> 2;
      const pages: WalPage[] = new Array(count);
      for (let j = 0; j < count; j++) pages[j] = { pgno: words[pgnoAt + j]!, data: new Uint8Array(buffer, at + j * size, size) };
      const conflict: ConflictSet | undefined = meta[m + 4] === 1
        ? { pgnos: new Uint32Array(buffer, at + count * size + count * 4, meta[m + 2]!), mxFrame: meta[m + 5]!, salts: [meta[m + 6]!, meta[m + 7]!], ...(meta[m + 10]! >= 0 ? { readLock: meta[m + 10]! } : {}) }
        : undefined;
      const dbSize = meta[m + 3]! === 0 ? undefined : meta[m + 3]!;
      this.#committer.submitTaken(pages, dbSize, conflict === undefined ? undefined : { conflict }, listener, m);
    }
  }

  /**
   * A taken commit (lane id `id`, of lane member `member`) was written: its outcome goes to its
   * member with this batch's settle.
   */
  takenWritten(id: number, member: number, firstFrame: number, lastFrame: number, durable: boolean): void {
    if ((this.#okCount + 1) * SETTLE_OK_FIELDS > this.#ok.length) {
      const grown = new Float64Array(this.#ok.length * 2);
      grown.set(this.#ok);
      this.#ok = grown;
    }
    const at = this.#okCount++ * SETTLE_OK_FIELDS;
    this.#ok[at] = id;
    this.#ok[at + 1] = member;
    this.#ok[at + 2] = firstFrame;
    this.#ok[at + 3] = lastFrame;
    this.#ok[at + 4] = durable ? 1 : 0;
    this.#queueFlush();
  }

  /** A taken commit failed: as takenWritten, with the failure. */
  takenFailed(id: number, member: number, e: unknown): void {
    this.#resignIfFailed();
    const w = e as { code?: string; message?: string; reason?: string; errno?: number };
    this.#failed.push([id, member, w.code ?? 'WALNUT_FAILED', w.message ?? String(e), w.reason ?? '', w.errno ?? 0]);
    this.#queueFlush();
  }

  /** A take buffer no commit uses any more: kept for a later take (TAKE_BUFFERS_KEPT). */
  spare(into: Uint8Array): void {
    if (this.#spare.length < TAKE_BUFFERS_KEPT) this.#spare.push(into);
  }

  /**
   * The outcomes resolved in one turn are one batch's: the committer resolves a batch's commits
   * in one synchronous loop, and this flush runs after their reactions.
   */
  #queueFlush(): void {
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    void SETTLED.then(this.#flushBound);
  }

  /** #flush as a reaction (#queueFlush; it never throws: a walnut bug would be an unhandled rejection, as it was an uncaught exception). */
  readonly #flushBound = (): void => this.#flush();

  #flush(): void {
    this.#flushQueued = false;
    if (this.#okCount === 0 && this.#failed.length === 0 && this.#own === 0) return;
    if (this.#formedAt > 0) this.#batchMs += ((performance.now() - this.#formedAt) - this.#batchMs) / 8;
    // (a batch gather() formed alone is counted so without asking the lane again: one who joined
    // since had no commit in it)
    if (this.#okCount === 0 && this.#failed.length === 0 && (this.#formedAlone || this.#native.alone)) {
      // a batch of this store's own commits, nobody else in the lane: counted here, reported to
      // the lane's metrics with the next settle (#settleAlone), not with a native call per batch
      this.#aloneBatches++;
      this.#aloneCommits += this.#own;
      this.#own = 0;
      return;
    }
    this.#settleAlone();
    const ok = this.#okCount === 0 ? NO_OUTCOMES : this.#ok.subarray(0, this.#okCount * SETTLE_OK_FIELDS);
    const failed = this.#failed;
    const own = this.#own;
    this.#okCount = 0;
    if (failed.length > 0) this.#failed = [];
    this.#own = 0;
    this.#native.settle(ok, failed, own);
  }

  /** Reports the batches #flush counted while this leader was alone (before any other settle, metrics() and leaving). */
  #settleAlone(): void {
    if (this.#aloneBatches === 0) return;
    const batches = this.#aloneBatches;
    const commits = this.#aloneCommits;
    this.#aloneBatches = 0;
    this.#aloneCommits = 0;
    this.#native.settle(NO_OUTCOMES, [], commits, batches);
  }
}

/**
 * The commits of one take, as the leader's committer settles them (CommitListener, token: the
 * commit's offset in the take's meta, which holds its lane id and member): each outcome goes to
 * the lane, and the take buffer is spare again once every commit in it settled (`inFlight`; 0
 * when the commits are not in `into`, which is spare at once).
 */
class TakenCommits implements CommitListener {
  #inFlight: number;

  constructor(
    readonly lane: SharedLane,
    readonly meta: Float64Array,
    inFlight: number,
    readonly into: Uint8Array,
  ) {
    this.#inFlight = inFlight;
    if (inFlight === 0) lane.spare(into);
  }

  written(at: number, firstFrame: number, lastFrame: number, durable: boolean): number {
    this.#settled();
    this.lane.takenWritten(this.meta[at]!, this.meta[at + 8]!, firstFrame, lastFrame, durable);
    return 0; // no caller sees it: the member numbers its own commits
  }

  failed(at: number, e: unknown): void {
    this.#settled();
    this.lane.takenFailed(this.meta[at]!, this.meta[at + 8]!, e);
  }

  closing(at: number): boolean {
    return this.lane.memberClosing(this.meta[at + 8]!);
  }

  #settled(): void {
    if (this.#inFlight > 0 && --this.#inFlight === 0) this.lane.spare(this.into);
  }
}
