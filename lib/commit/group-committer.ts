/**
 * commit/group-committer.ts — GroupCommitter: many concurrent commits, few writes and syncs.
 *
 * Commits queue while a batch is being written. When the writer is free it takes everything
 * queued, up to maxBatchBytes of pages (a single larger commit still goes, alone), optionally
 * after waiting maxWaitMicros for more, and for that batch:
 *   1. holds the WRITE lock: a run of back-to-back batches takes it once (WalIndex.beginWriteRun,
 *      no read snapshot: under WRITE only this connection publishes headers, so the live header
 *      is the state to append to) and each later batch of the run re-validates the -shm header
 *      (both copies, checksum; no system call: writeRunHeader) instead of locking again,
 *   2. checks each transaction's conflict set (first committer wins) against frames committed
 *      since its snapshot and against earlier transactions of the same batch, and each
 *      conditional commit's base (no other connection committed since: WalIndex
 *      othersCommittedSince against the header read for the batch in step 1, so it reads no
 *      frame and no header again: WALs of any length and restarts by others cost nothing),
 *      then releases the
 *      transactions' snapshots (their reads are done; the check used their generation, not
 *      their read marks, which only had to keep that generation's frames until now), and awaits
 *      beforeAppend(frames, mxFrame) (the store's auto-checkpoint: with those marks gone it can copy everything),
 *   3. appends all accepted transactions in one native call (one pwritev; for synchronous
 *      'full' the fdatasync is in the same I/O-thread operation), each with its own commit
 *      frame, in submission order,
 *   4. indexes and publishes the new header (only after the write and sync succeeded), and in
 *      that same step tells onPublished (the store's sequenced commits are settled there:
 *      sequencer.ts),
 *   5. resolves the commits in order (a commit's CommitListener, the commit lane's, hears it
 *      first and numbers it; another lane member's commit has only the listener, no promise).
 * So no snapshot of the batch's own holds a WAL read mark when the append decides whether the
 * WAL can restart (WalIndex.appendAndPublish): a store whose only readers are its committing
 * transactions reuses its WAL. The snapshots still waiting in the queue or in the running batch
 * (committingSnapshots) are about to be released; the auto-checkpoint policy does not count
 * them as readers that pin the WAL.
 * The WRITE run ends (endWrite) when the queue is still empty a turn of the event loop after a
 * batch (an idle writer holds no lock; a lone committer's next commit, submitted once its
 * caller saw the result, keeps the run; a caller that knows no other commit is coming cuts that
 * turn, and the one before a first batch, short: noneToGather()), when something in this process waits for WRITE (index.writeWanted: a checkpoint in
 * full, restart or truncate mode), before a wait that is not the batch's own work (maxWaitMicros,
 * the beforeBatch hook's back-pressure; not the gatherBatch hook's wait, which is for commits
 * that join this batch, as the gathering turn is, and is bounded by its own time bound: the
 * commit lane's, lane.ts), on any failure, and after WRITE_RUN_MS even while the
 * queue stays full (a run spans at least two batches, so one lock round always serves two when
 * the queue stays full). Another connection's writer cannot be seen waiting (sqlite3 polls for
 * WRITE with non-blocking locks and sleeps; a walnut one waits blocked in the kernel), so the
 * bound is time: every WRITE_RUN_MS the lock is free for a turn of the event loop.
 * Fairness between walnut writers rests on that: a walnut connection waiting for WRITE (another
 * process, a store of its own or another lane beside this one) is woken by the kernel as it is
 * let go (wal-index.ts header) and takes it in that turn, so it commits within its busy timeout
 * beside a committer at full speed; from its commit on, the sharing below applies. (When each
 * batch took WRITE itself it was free for a few microseconds between any two batches; either
 * way a sqlite3 writer under walnut's full load, whose busy handler tries at 1..100 ms
 * intervals, gets WRITE only now and then, and between walnut's commits as soon as they pause.) Once another connection's commit was met (it got
 * WRITE), for OTHER_WRITER_MS after it the committer shares WRITE as SQLite's writers do: it
 * lets it go after every batch, and when commits are queued leaves it free OTHER_WRITER_GAP_MS
 * (a timer, not a turn) before taking it again, so that writer's busy handler finds it free.
 * So it does while the WAL is due to restart and another connection's follow export is all that
 * keeps this writer from restarting it (FOLLOWER_WAITS_MS): that export restarts it in the gap.
 * The -shm mapping (a truncation by another process would raise SIGBUS) is checked with an lseek
 * only where a run begins (header()); within a run no batch pays a system call for it: every
 * touch of the mapping is guarded (native/shm_guard.h), so a truncation makes the next header
 * read, lookup, index append or header publish fail with WALNUT_CORRUPT (ShmTruncated). Before
 * the write that rejects the batch; after it (appendAndPublish) its frames are invalidated and
 * stay unpublished, as any failed publish.
 * Another connection's checkpointer that waits for WRITE (SQLite's and walnut's full, restart
 * and truncate checkpoints take CKPT, then wait for WRITE, then, holding it, wait for readers)
 * is given WRITE (WalIndex.beginWriteRun holds back while one waits: checked where a run
 * begins, so within WRITE_RUN_MS of its arrival).
 * Snapshots held while waiting for WRITE: a commit waiting for WRITE while a read lock waits
 * for that commit would stall both until a busy timeout when WRITE is held by a checkpoint that
 * waits for readers. So while the connection waits for WRITE held by another connection, its
 * parked snapshots go (walnut/sql's kept views, the bases of its sequenced commits:
 * WalIndex.dropsParked), and, once such a checkpointer is seen (WalIndex.checkpointerWaiting),
 * the commits of the batch, and of the queue behind it, whose snapshot only their own end lets
 * go — a Transaction's snapshot, a store.commit() base (its caller may hold it until the commit
 * settles) — fail at once with
 * WALNUT_BUSY, reason CheckpointWaits, as SQLite fails a reader that wants to write while WRITE
 * is held (#failHeldSnapshots). A released base, and store.sequence()'s bases (a pipelining
 * writer goes on without waiting for its commit), wait as before: the base check reads headers,
 * not frames, so a WAL restarted meanwhile by that checkpoint is no commit and no conflict.
 * A batch that cannot take the locks within the busy timeout (WALNUT_BUSY) is rejected together
 * with every commit queued before its wait began: those waited as long, and rejecting them one
 * batch (one more timeout) at a time would stretch a writer held elsewhere, and close(), to a
 * timeout per batch.
 * Conditional commits overtaken while waiting for WRITE: a commit with a base (store.commit's
 * `base`, store.sequence's: walnut/sql's every commit) that another connection's commit has
 * overtaken can only fail once WRITE is had (OtherWriter). Before each sleep of the wait the
 * live header is met (WalIndex.othersCommitsNow, the same count the check under WRITE uses), and
 * such commits of the batch and the queue fail at once (#failOvertaken), breaking the chain:
 * beside a writer that takes WRITE again right after each commit they waited the busy timeout
 * to learn it, and walnut/sql starved (test/hostile/sql-fair-share-busy-writer).
 * The commit chain (fail-stop): a commit's place in the order is taken when it is submitted,
 * and every commit after it may have been built on its pages (a pipelining writer such as
 * walnut/sql builds the next transaction on the previous one before it is durable; a caller
 * that fires commit(a) then commit(b) means b after a). So when a commit that was taken into
 * the order fails (not a Transaction's: below) — its batch's write (EIO, ENOSPC, short write),
 * the busy timeout, a failure before the write, a conditional commit's conflict, a refusal known
 * only once the batch is built (frame counter, page 1's size) — the chain is broken: that commit rejects with its own
 * error and every commit after it — the rest of its batch, the queue, and each one submitted
 * until resumeCommits() — rejects with WALNUT_FAILED, reason ChainBroken (cause: the failure),
 * writing nothing. The caller discards what it built on the failed commit and then calls
 * resumeCommits(failure), which mends only the break that failure caused (not a newer one
 * an independent caller has not seen yet). Why explicit: "commits submitted before the caller
 * saw the rejection" cannot be observed (the rejection reaches its handler a microtask later,
 * other callers may submit in between, a pipelining writer's own state still holds the failed
 * pages); a broken chain that stays broken until acknowledged leaves no window.
 * What breaks it: a failed commit of the chain that is not a Transaction's (Pending.breaksChain).
 * A Transaction's commit breaks no chain, whatever it fails with before the store stops — its
 * first-committer-wins conflict, CheckpointWaits, the busy timeout, a refusal, its batch's write
 * error — and the commits after it go on (a broken chain still refuses Transactions, as every
 * commit). Why that is safe, i.e. no commit built on a failed one is ever acknowledged:
 *  (1) a commit is built on another's pages only by reading them through this store's
 *      snapshots (or by its caller, point 3); a Transaction's pages enter no snapshot before
 *      its batch is published: begin()'s snapshots and snapshot({ sequenced: false }) see
 *      published commits only, and the sequenced view (sequencer.ts), which every other
 *      snapshot adds, holds store.sequence()'s commits only. A failed commit is never published
 *      (a write or sync error publishes nothing; a failure between a whole write and its
 *      publish stops the store: #failBatch 'after write'); so no later commit — a sequenced one, walnut/sql's pipelined ones (they build on
 *      sequenced commits and their views), another Transaction — read its pages;
 *  (2) in its batch, a later Transaction whose conflict set met its pages (`written`) was
 *      failed as a conflict (retry), and one that passed did not depend on it;
 *  (3) a caller's own "b after a" was never promised for a Transaction: its commit fails with
 *      PageChanged while the commits after it go, so no caller can count on a later commit
 *      failing with it; any other failure of it leaves the store as that conflict does
 *      (nothing of it visible, its snapshot released);
 *  (4) the WAL: a failed write left its frames unpublished, their headers zeroed
 *      (WalFile.invalidateFrom: every frame's, so that no later batch shorter than it leaves a
 *      valid tail of it to a recovery), and the next batch appends at the published end over
 *      them, as it did after resumeCommits() (which mends only the chain).
 * Its failure answers its own caller; other callers lose nothing. (The soak's raw committers,
 * 64 Transactions beside python3's RESTART and TRUNCATE checkpoints, lost 111,463 commits to
 * ChainBroken against 7,106 written in 30 s, all from 4,710 CheckpointWaits failures.) A
 * commit() (a caller may build commit(b) on commit(a) it fired before) and a sequenced commit
 * (this store's snapshots see it at once) still break it. A lane member keeps the same rule for
 * its own chain (lane.ts).
 * Fault matrix (DESIGN.md section 4): a write error rejects that batch (WALNUT_IO/WALNUT_FULL)
 * and publishes nothing, the next batch overwrites the same offset (after resumeCommits(), or at
 * once when the batch held Transactions only); a sync error, or a write error whose frames
 * could not be invalidated, rejects the batch and every later call with WALNUT_FAILED (the store must be
 * reopened, which recovers; resumeCommits() cannot mend it; the batch's frames were
 * invalidated, or its commits get reason OutcomeUnknown: errors.ts).
 * Every other failure of the pipeline reaches exactly the commits of the batch concerned (and
 * breaks the chain), never an unhandled rejection: before the batch's frames are written (the
 * beforeBatch wait, the conflict lookup) it rejects that batch with its WalnutError; once
 * frames may be in the WAL but unpublished (the index append or publish failed) whether they
 * survive a reopen is unknown, so it fails the store as a sync error does (WALNUT_FAILED). An
 * error that is not a WalnutError is a walnut bug: the store fails too.
 * After close() every submit is refused with WALNUT_CLOSED.
 */
import { failureInFlight, isWalnutError, refusedOnLaterTurn, walnutError, WalnutError } from '../errors';
import { lockBytePage } from '../format/db-header';
import type { ShmHeader } from '../format/shm-header';
import { sameSalts } from '../format/wal-header';
import type { Snapshot } from '../wal-index/snapshot';
import type { WalIndex } from '../wal-index/wal-index';
import type { EventRing } from '../telemetry/events';
import { Histogram, type HistogramSummary } from '../telemetry/histogram';
import { stampPageTrailer } from '../wal/page-trailer';
import { MAX_FRAME, type WalPage, type WalTransaction } from '../wal/wal-file';
import type { Synchronous } from './options';
import { CommitChain } from './chain';
import type { PageCopies } from './page-arena';
import { minimumDbSize } from './pages';

export interface CommitResult {
  /** Position of this commit among this store's commits (1-based). */
  commitSeq: number;
  firstFrame: number;
  lastFrame: number;
  /** True when the commit is on stable storage now (synchronous 'full'). */
  durable: boolean;
}

/** What a transaction read or wrote, and the snapshot it did that in. */
export interface ConflictSet {
  pgnos: Iterable<number>;
  mxFrame: number;
  salts: [number, number];
  /**
   * The snapshot itself: its read mark keeps the generation's frames (a restart would hide
   * commits made after it) until the set is checked under WRITE; the committer releases it then.
   */
  snapshot?: Snapshot;
  /**
   * Another lane member's transaction (taken from the lane, without its snapshot): the
   * read-lock slot that snapshot holds in the member's connection until this commit settles.
   */
  readLock?: number;
}

/**
 * What a commit was built on, checked under WRITE: a Transaction's conflict set (first
 * committer wins, page by page), or a conditional commit's base snapshot (nothing committed by
 * another connection since it began). `held`: the caller may keep the base's read lock until
 * the commit settles (store.commit(); not store.sequence(), whose pipelining callers go on and
 * let their bases go themselves): see "Snapshots held while waiting for WRITE" above.
 */
export type CommitCheck = { conflict: ConflictSet } | { base: Snapshot; held?: boolean };

/**
 * Who hears a commit's outcome in place of (or before) its promise: the commit lane (lane.ts),
 * for the leader's own commits (their commitSeq counts that store's commits, whoever wrote
 * them) and for the commits it takes from other members (no promise at all). One object serves
 * many commits (`token` tells them apart), so a batch allocates no closure per commit.
 */
export interface CommitListener {
  /** The commit was written and published: returns the commitSeq its caller sees. */
  written(token: number, firstFrame: number, lastFrame: number, durable: boolean): number;
  /** The commit failed with `e` (called before its promise, if any, rejects). */
  failed(token: number, e: unknown): void;
  /**
   * Its store is closing (another lane member's, lane.ts): while it waits for WRITE held by
   * another connection, before its batch is written, it is withdrawn (#withdrawClosing).
   */
  closing?(token: number): boolean;
}

/**
 * What a committer counts its queued and batched commits in, one object that every Pending
 * shares (one reference per commit, not three: a batch makes 64 Pendings).
 */
interface PendingBooks {
  /** committingSnapshots: the conflict set's snapshot leaves it when the commit settles. */
  readonly committing: Set<Snapshot>;
  /** waitingBases: the base leaves it (one count) when the commit settles. */
  readonly bases: Map<Snapshot, number>;
  /** Per read-lock slot, lane members' snapshots (conflict.readLock): one less when the commit settles. */
  readonly memberReadLocks: Int32Array;
}

/**
 * One queued commit. A class whose methods settle it, not an object of closures: a batch makes
 * 64 of them, and their allocation is part of the JavaScript turnaround between two batches.
 * A commit with a listener and no caller waiting (submitTaken) has no promise either.
 */
class Pending {
  /** Resolved or rejected already (a later failure of its batch leaves it alone). */
  settled = false;
  readonly #resolve: ((r: CommitResult) => void) | null;
  readonly #reject: ((e: unknown) => void) | null;

  constructor(
    readonly pages: WalPage[],
    readonly dbSize: number | undefined,
    /** The smallest dbSize these pages allow (pages.ts minimumDbSize). */
    readonly minDbSize: number,
    readonly bytes: number,
    readonly conflict: ConflictSet | undefined,
    /** A conditional commit's base (store.commit's `base`). */
    readonly base: Snapshot | undefined,
    /** Its caller may hold the base's read lock until this settles (CommitCheck's `held`). */
    readonly baseHeld: boolean,
    /**
     * In this committer's chain (header comment). False for another lane member's commit
     * (lane.ts): it was built on that member's commits only, and that member keeps its own chain.
     */
    readonly chained: boolean,
    readonly enqueuedUs: number,
    /** The committer's books this commit is counted in until it settles (PendingBooks). */
    readonly books: PendingBooks,
    readonly listener: CommitListener | null,
    readonly token: number,
    /** Its promise's functions (GroupCommitter #enqueue returns the promise), null without a promise. */
    resolve: ((r: CommitResult) => void) | null,
    reject: ((e: unknown) => void) | null,
    /** Walnut's copies of the pages (page-arena.ts), released when this settles. */
    readonly copies: PageCopies | null,
  ) {
    this.#resolve = resolve;
    this.#reject = reject;
  }

  /**
   * Its failure breaks this committer's chain (header comment, "The commit chain"): a commit of
   * the chain that is not a Transaction's (a Transaction's, with its conflict set, was built on
   * durable commits only, and nothing could be built on it before it was published).
   */
  get breaksChain(): boolean {
    return this.chained && this.conflict === undefined;
  }

  /** Written as this committer's commit number `seq` (the listener's count replaces it). */
  resolve(seq: number, firstFrame: number, lastFrame: number, durable: boolean): void {
    this.#settle();
    const commitSeq = this.listener === null ? seq : this.listener.written(this.token, firstFrame, lastFrame, durable);
    this.#resolve?.({ commitSeq, firstFrame, lastFrame, durable });
  }

  reject(e: unknown): void {
    this.#settle();
    this.listener?.failed(this.token, e);
    this.#reject?.(e);
  }

  #settle(): void {
    if (this.settled) return; // once: the base's count below is not idempotent
    this.settled = true;
    // settled only once its append (if any) completed: nothing reads the copies any more
    this.copies?.release();
    const books = this.books;
    const snapshot = this.conflict?.snapshot;
    if (snapshot !== undefined) books.committing.delete(snapshot);
    const slot = this.conflict?.readLock;
    if (slot !== undefined) books.memberReadLocks[slot]!--;
    if (this.base !== undefined) {
      const n = books.bases.get(this.base)! - 1;
      if (n === 0) books.bases.delete(this.base);
      else books.bases.set(this.base, n);
    }
  }
}

export interface CommitMetrics {
  commits: number;
  batches: number;
  frames: number;
  bytes: number;
  fsyncs: number;
  conflicts: number;
  failedCommits: number;
  /** Times the commit chain broke (a sequenced commit failed; resumeCommits() mends it). */
  chainBreaks: number;
  /** Commits per batch. */
  batchSize: HistogramSummary;
  /** Microseconds per phase. */
  latency: Record<'queueWait' | 'serialize' | 'io' | 'publish' | 'commit', HistogramSummary>;
  /**
   * Why a batch was cut: the byte cap, the wait timer ran out, the queue was empty, or, before
   * a turn of the event loop passed, its committer said no other commit was coming
   * (store.sequence's `alone`). Counted for every batch taken from the queue, also one that
   * then wrote nothing (all conflicts or failures): the sum can exceed `batches` (those written).
   */
  wakeReasons: { sizeCap: number; timer: number; idle: number; alone: number };
}

const nowUs = (): number => performance.now() * 1000;

/** #writeBatch's `written` for a batch without conflict sets (nothing is ever added to it). */
const NO_PAGES_WRITTEN: Set<number> = new Set();

/**
 * A lone commit (the batch's only one, nobody else queued) of at most this many frames is
 * written and synced on the JS thread when no I/O is pending (WalIndex.appendInline, without a
 * promise, or appendAndPublish's `inline`): the I/O-thread round trip costs more than it hides
 * when nothing else can run meanwhile. Larger or concurrent batches always go through the I/O thread, so the event loop
 * keeps serving the committers that queue while a batch is synced.
 */
const INLINE_MAX_FRAMES = 16;

/**
 * Longest the event loop goes without a turn while a lone committer's commits skip their
 * gathering turn (noneToGather): past it the next gathering turn is let pass, so timers and I/O
 * of the rest of the process still run about every millisecond (a walnut/sql lone caller without
 * it: loop delay p50 5.3 ms, a 1 ms timer firing 600 times in 3 s instead of 2,790).
 */
const ALONE_MAX_MS = 1;
/** Longest a run of back-to-back batches keeps WRITE before letting it go for a turn (header comment). */
const WRITE_RUN_MS = 5;
/**
 * For this long after another connection's commit was met, WRITE is let go after every batch
 * and stays free OTHER_WRITER_GAP_MS before the next one takes it (header comment).
 */
const OTHER_WRITER_MS = 1000;
const OTHER_WRITER_GAP_MS = 1;
/**
 * For this long after this connection's writer found the WAL due to restart and only another
 * connection's follow export in the way (WalIndex.followerWaitsWithin), WRITE is shared the same
 * way: that follower restarts the WAL once it gets WRITE (export/follow.ts), and a run that kept
 * WRITE from batch to batch left it none (the WAL grew without bound: 109,216 frames in 5 s).
 */
const FOLLOWER_WAITS_MS = 100;
/**
 * How long a batch that would take WRITE leaves it free while such a follower waits for it
 * (it polls every millisecond: export/follow.ts), unless the WAL restarts sooner: a walnut/sql
 * writer's next commit took WRITE within a turn of the event loop, and the follower never got it.
 */
const FOLLOWER_GAP_MS = 5;

/** What a lane leader's committer asks of its lane (lane.ts) while a batch waits for WRITE. */
export interface LaneQueue {
  /** This store leads a lane that other stores share. */
  shared(): boolean;
  /** Takes what the other members queued into this committer's queue now. */
  take(): void;
  /** A lane member's store is closing (its commits here are withdrawn from a wait for another connection's WRITE). */
  closing(): boolean;
}

export class GroupCommitter {
  readonly #index: WalIndex;
  readonly #synchronous: Synchronous;
  readonly #maxBatchBytes: number;
  readonly #maxWaitMicros: number;
  readonly #onCommitted: (mxFrame: number) => void;
  readonly #beforeBatch: () => Promise<void> | null;
  readonly #gatherBatch: () => Promise<void> | null;
  /** A commit lane's queue (lane.ts): whether other members share it, and taking what they queued now. */
  readonly #laneQueue: LaneQueue | null;
  readonly #beforeAppend: (frames: number, mxFrame: number) => Promise<void> | null;
  readonly #events: EventRing | null;
  readonly #stampTrailers: boolean;
  /** The zero page #withRegrownZeros writes (read only). */
  #zeroPage: Uint8Array | null = null;
  readonly #onWritten: ((txns: WalTransaction[], firstFrame: number, salts: [number, number]) => void) | null;
  readonly #onPublished: ((txns: readonly WalTransaction[]) => void) | null;
  #queue: Pending[] = [];
  /** Snapshots the committer releases before its next append (see committingSnapshots). */
  readonly #committing = new Set<Snapshot>();
  /** The bases of the conditional commits not settled yet, with how many commits name each (see waitingBases). */
  readonly #bases = new Map<Snapshot, number>();
  /** Per read-lock slot, the lane members' transactions queued or in a batch here whose snapshot holds it (memberReadLockIn). */
  readonly #memberReadLocks = new Int32Array(5);
  /** The three above, as every Pending refers to them (PendingBooks). */
  readonly #books: PendingBooks = { committing: this.#committing, bases: this.#bases, memberReadLocks: this.#memberReadLocks };
  #running: Promise<void> | null = null;
  /**
   * The batch waiting in beginWriteRun (nothing of it written yet), and whether that wait, as
   * last seen, is for WRITE held by another connection (#withdrawClosing); null otherwise.
   */
  #writeWait: { batch: Pending[]; othersHold: boolean } | null = null;
  /** Ends the gathering turn the drain waits in, while it waits in one (noneToGather()). */
  #endGathering: (() => void) | null = null;
  /** The gathering turn's immediate while one is scheduled (#disarmTurn clears it). */
  #turnImmediate: NodeJS.Immediate | null = null;
  /**
   * The turn after a batch, scheduled before the batch's commits resolve (#armTurnAfterBatch)
   * so that it comes before any turn their callers schedule once they see the result.
   */
  #armedTurn: Promise<void> | null = null;
  /**
   * When (performance.now() ms) the current streak of gathering turns cut short by noneToGather()
   * began; null once the event loop turned (#loopTurned; ALONE_MAX_MS bounds a streak).
   */
  #aloneSince: number | null = null;
  /** When the WRITE run began (performance.now() ms), null when this committer holds no WRITE. */
  #runStart: number | null = null;
  /** Batches written in this WRITE run (a run spans at least two while the queue stays full). */
  #runBatches = 0;
  #failed: WalnutError | null = null;
  /** The chain is broken (header comment): the failure that broke it and what later commits get. */
  readonly #chain: CommitChain;
  #closed = false;
  #seq = 0;
  readonly #counters = { commits: 0, batches: 0, frames: 0, bytes: 0, fsyncs: 0, conflicts: 0, failedCommits: 0, chainBreaks: 0 };
  readonly #wake = { sizeCap: 0, timer: 0, idle: 0, alone: 0 };
  /** The last gathering turn was ended by noneToGather() (wakeReasons.alone for the batch it lets go). */
  #gatheringCut = false;
  readonly #hist = {
    batchSize: new Histogram(),
    queueWait: new Histogram(),
    serialize: new Histogram(),
    io: new Histogram(),
    publish: new Histogram(),
    commit: new Histogram(),
  };

  constructor(
    index: WalIndex,
    o: { synchronous: Synchronous; maxBatchBytes: number; maxWaitMicros: number; stampTrailers?: boolean; onCommitted?: (mxFrame: number) => void; onPublished?: (txns: readonly WalTransaction[]) => void; onWritten?: (txns: WalTransaction[], firstFrame: number, salts: [number, number]) => void; beforeBatch?: () => Promise<void> | null; gatherBatch?: () => Promise<void> | null; laneQueue?: LaneQueue; beforeAppend?: (frames: number, mxFrame: number) => Promise<void> | null; events?: EventRing },
  ) {
    this.#index = index;
    this.#chain = new CommitChain(index.dbPath);
    this.#synchronous = o.synchronous;
    this.#maxBatchBytes = o.maxBatchBytes;
    this.#maxWaitMicros = o.maxWaitMicros;
    this.#onCommitted = o.onCommitted ?? (() => undefined);
    this.#beforeBatch = o.beforeBatch ?? (() => null);
    this.#gatherBatch = o.gatherBatch ?? (() => null);
    this.#laneQueue = o.laneQueue ?? null;
    this.#beforeAppend = o.beforeAppend ?? (() => null);
    this.#events = o.events ?? null;
    this.#stampTrailers = o.stampTrailers ?? false;
    this.#onWritten = o.onWritten ?? null;
    this.#onPublished = o.onPublished ?? null;
  }

  /**
   * Queues validated pages (deduplicated, ascending pgno) as one transaction: its place in the
   * commit order is taken now. `check`: what it was built on (CommitCheck). `copies`: the
   * store's copies of the pages (page-arena.ts), released once the commit settles. `listener`
   * (with `token`): hears the outcome first and numbers the commit (CommitListener).
   */
  submit(pages: WalPage[], dbSize: number | undefined, check?: CommitCheck, copies: PageCopies | null = null, listener: CommitListener | null = null, token = 0): Promise<CommitResult> {
    const refused = this.#refusedAtSubmit(true);
    if (refused !== null) {
      copies?.release();
      return refusedOnLaterTurn(refused);
    }
    return this.#enqueue(pages, dbSize, check, true, listener, token, true, copies)!;
  }

  /**
   * Queues another lane member's commit (lane.ts): outside this committer's chain
   * (Pending.chained), no promise; `listener` hears its outcome (refused at once when the
   * committer is failed or closed).
   */
  submitTaken(pages: WalPage[], dbSize: number | undefined, check: CommitCheck | undefined, listener: CommitListener, token: number): void {
    const refused = this.#refusedAtSubmit(false);
    if (refused !== null) queueMicrotask(() => listener.failed(token, refused)); // as a rejection would: not inside the take
    else this.#enqueue(pages, dbSize, check, false, listener, token, false, null);
  }

  /** Why a commit is refused before it is queued (failed, closed, a broken chain), or null. */
  #refusedAtSubmit(chained: boolean): WalnutError | null {
    if (this.#failed) return this.#failed;
    if (this.#closed) return walnutError('WALNUT_CLOSED', 'the store is closed', { path: this.#index.dbPath });
    return chained ? this.#chain.refusal : null;
  }

  #enqueue(pages: WalPage[], dbSize: number | undefined, check: CommitCheck | undefined, chained: boolean, listener: CommitListener | null, token: number, withPromise: boolean, copies: PageCopies | null): Promise<CommitResult> | null {
    const conflict = check !== undefined && 'conflict' in check ? check.conflict : undefined;
    const base = check !== undefined && 'base' in check ? check.base : undefined;
    const baseHeld = check !== undefined && 'base' in check && check.held === true;
    // the trailer goes into the page buffer the committer writes: the store's copy, or a
    // pipelining caller's buffer handed over until its `release` (store.sequence)
    if (this.#stampTrailers) for (let i = 0; i < pages.length; i++) stampPageTrailer(pages[i]!.data);
    let bytes = 0;
    for (let i = 0; i < pages.length; i++) bytes += pages[i]!.data.length;
    const minDbSize = minimumDbSize(pages);
    const snapshot = conflict?.snapshot;
    if (snapshot !== undefined) this.#committing.add(snapshot);
    if (base !== undefined) this.#bases.set(base, (this.#bases.get(base) ?? 0) + 1);
    const slot = conflict?.readLock;
    if (slot !== undefined) this.#memberReadLocks[slot]!++;
    let resolve: ((r: CommitResult) => void) | null = null;
    let reject: ((e: unknown) => void) | null = null;
    const promise = withPromise
      ? new Promise<CommitResult>((res, rej) => {
          resolve = res;
          reject = rej;
        })
      : null;
    this.#queue.push(new Pending(pages, dbSize, minDbSize, bytes, conflict, base, baseHeld, chained, nowUs(), this.#books, listener, token, resolve, reject, copies));
    if (this.#running === null) this.#running = this.#drain();
    return promise;
  }

  /** Resolves when everything queued so far has been written (or failed). */
  async idle(): Promise<void> {
    while (this.#running !== null) await this.#running;
  }

  /** Refuses every later submit (WALNUT_CLOSED) and resolves once the queue is empty. */
  close(): Promise<void> {
    this.#closed = true;
    return this.idle();
  }

  get failed(): WalnutError | null {
    return this.#failed;
  }

  /** The failure that broke the commit chain, while it is broken (header comment), else null. */
  get chainBrokenBy(): unknown {
    return this.#chain.brokenBy;
  }

  /** What a commit of the chain gets while it is broken (WALNUT_FAILED, ChainBroken), else null. */
  get chainRefusal(): WalnutError | null {
    return this.#chain.refusal;
  }

  /**
   * Mends a broken chain: later commits are accepted again. With `failure`, only when that is
   * what broke it (the failed commit's error, or the WALNUT_FAILED ChainBroken refusal a later
   * commit got): a caller acknowledging an old failure never mends a newer break it has not
   * seen. True when the chain was broken and is mended now. A store stopped for good
   * (`failed`) stays stopped.
   */
  resumeCommits(failure?: unknown): boolean {
    return this.#chain.resume(failure);
  }

  /**
   * Commits the store had taken into the order failed (`failed`, with `failure`): every commit
   * after them — `rest` (the rest of their batch), the queue, and each commit submitted until
   * resumeCommits() — is refused with WALNUT_FAILED, reason ChainBroken (cause: the failure),
   * having written nothing. Only `failed` commits whose failure breaks the chain break it
   * (Pending.breaksChain: not a Transaction's, not another lane member's); when none did, `rest`
   * goes back to the head of the queue. Only commits of the chain are refused: another lane
   * member's commits (Pending.chained false) in `rest` go back to the head of the queue.
   */
  #breakChain(failure: unknown, failed: readonly Pending[], rest: Pending[]): void {
    const unchained = rest.filter((p) => !p.chained);
    if (!failed.some((p) => p.breaksChain)) {
      this.#queue.unshift(...rest); // nothing failed that a later commit could be built on: the rest goes on
      return;
    }
    this.#queue.unshift(...unchained);
    if (this.#chain.break(failure)) this.#counters.chainBreaks++;
    const refusal = this.#chain.refusal!;
    this.#rejectAll(rest.filter((p) => p.chained), refusal);
    const queued = this.#queue.splice(0);
    this.#queue.push(...queued.filter((p) => !p.chained));
    this.#rejectAll(queued.filter((p) => p.chained), refusal);
  }

  /**
   * Snapshots held only until the committer has checked their transaction's conflict set:
   * readers on their way out, not readers that keep the WAL from restarting (WalIndex.walReaders'
   * `except`).
   */
  get committingSnapshots(): ReadonlySet<Snapshot> {
    return this.#committing;
  }

  /**
   * The base snapshots of conditional commits not settled yet. Unlike committingSnapshots they
   * are the caller's (the committer never releases them), but their caller keeps each until its
   * commit settles: while such a commit waits for WRITE, its base is a reader that cannot end
   * (a checkpoint holding WRITE must not wait for it: CheckpointOptions.readersWaitingForWrite).
   */
  get waitingBases(): ReadonlyMap<Snapshot, number> {
    return this.#bases;
  }

  /**
   * A lane member's transaction queued or in a batch here holds its snapshot's read lock in
   * [slot, slot + n) of its own connection: like committingSnapshots, a reader that cannot end
   * while this committer waits for WRITE (first takes what the lane queued: those wait as long).
   */
  memberReadLockIn(slot: number, n: number): boolean {
    if (this.#laneQueue?.shared() !== true) return false;
    this.#laneQueue.take();
    for (let i = slot; i < slot + n && i < this.#memberReadLocks.length; i++) if (this.#memberReadLocks[i]! > 0) return true;
    return false;
  }

  /**
   * The caller knows no other commit will be submitted before those queued have settled (a lone
   * pipelining writer: walnut/sql with one caller): a turn of the event loop the drain waits in
   * for more commits to join a batch (#gatheringTurn) ends now. Such lone commits in a row keep
   * the event loop from turning (a lone caller's next commit comes in a microtask): once they
   * have lasted ALONE_MAX_MS, the next turn is let pass, or given (#aloneOverdue) when the
   * commit came before the drain waited one.
   */
  noneToGather(): void {
    const now = performance.now();
    if (this.#aloneSince === null) {
      // a streak begins; any turn of the event loop ends it
      this.#aloneSince = now;
      setImmediate(this.#loopTurned);
    }
    // past ALONE_MAX_MS of such cuts in a row, this turn is let pass: the event loop gets it
    // (a commit that came before the drain waited a turn at all: #aloneOverdue)
    if (this.#endGathering !== null && now - this.#aloneSince < ALONE_MAX_MS) this.#endGathering();
  }

  /**
   * Lone commits (noneToGather) have kept the event loop from turning for ALONE_MAX_MS: a
   * caller whose next commit comes before the drain would wait a turn for it never meets a
   * gathering turn to let pass, so the drain gives the loop that turn itself (WRITE and the
   * queued commit kept).
   */
  #aloneOverdue(): boolean {
    return this.#aloneSince !== null && performance.now() - this.#aloneSince >= ALONE_MAX_MS;
  }

  readonly #loopTurned = (): void => {
    this.#aloneSince = null;
  };

  /**
   * One turn of the event loop, for the commits submitted in it to join the next batch; ended
   * early by noneToGather() (a turn is ~10 µs of CPU here: a lone committer's whole cost per
   * commit is ~50).
   */
  #gatheringTurn(): Promise<void> {
    const armed = this.#armedTurn;
    if (armed !== null) {
      this.#armedTurn = null;
      return armed;
    }
    return this.#newTurn();
  }

  #newTurn(): Promise<void> {
    return new Promise((resolve) => {
      const turn = setImmediate(() => {
        this.#turnImmediate = null;
        this.#endGathering = null;
        this.#gatheringCut = false;
        resolve();
      });
      this.#turnImmediate = turn;
      this.#endGathering = () => {
        clearImmediate(turn);
        this.#turnImmediate = null;
        this.#endGathering = null;
        this.#gatheringCut = true;
        resolve();
      };
    });
  }

  /**
   * Schedules the turn the drain waits in after this batch (while nothing else is queued)
   * before the batch's commits resolve: WRITE is let go at its end, so a caller who lets one
   * turn pass after its commit resolved (`await new Promise(setImmediate)`, README) finds WRITE
   * free. Scheduled after the resolution (the drain's continuation runs after the callers'),
   * the caller's turn came first and a same-thread SQLite writer met WRITE still held.
   */
  #armTurnAfterBatch(): void {
    if (this.#armedTurn === null && this.#endGathering === null && this.#queue.length === 0) this.#armedTurn = this.#newTurn();
  }

  /** Drops an armed turn the drain does not wait in (more commits queued, a failure, another writer). */
  #disarmTurn(): void {
    if (this.#armedTurn === null) return;
    this.#armedTurn = null;
    if (this.#turnImmediate !== null) clearImmediate(this.#turnImmediate);
    this.#turnImmediate = null;
    this.#endGathering = null;
  }

  async #drain(): Promise<void> {
    try {
      // let every commit submitted in this event-loop turn join the first batch
      await this.#gatheringTurn();
      while (this.#queue.length > 0) {
        if (this.#maxWaitMicros > 0 && this.#queueBytes() < this.#maxBatchBytes) {
          this.#endWriteRun();
          await new Promise((resolve) => setTimeout(resolve, this.#maxWaitMicros / 1000));
        }
        let batch: Pending[] | null = null;
        try {
          const room = this.#beforeBatch();
          if (room !== null) {
            this.#endWriteRun(); // back-pressure is not this batch's work: others may write meanwhile
            await room;
          }
          // commits that join this batch (the commit lane's members resubmitting): WRITE is kept
          const joining = this.#gatherBatch();
          if (joining !== null) await joining;
          batch = this.#takeBatch();
          await this.#runBatch(batch);
        } catch (e) {
          // nothing of this batch was written (#writeBatch handles its own write stage)
          this.#disarmTurn();
          this.#endWriteRun();
          this.#failBatch(batch ?? this.#takeBatch(), e, 'before write');
        }
        // a lone committer's next commit often comes within the same turn of the event loop, once
        // its caller has seen this batch's result (walnut/sql's next transaction): the run waits
        // for it that one turn before it lets WRITE go (or less: noneToGather())
        // another connection writes too: WRITE goes after every batch, free for OTHER_WRITER_GAP_MS (header comment)
        const shared = this.#runStart !== null && (this.#index.otherWriterWithin(OTHER_WRITER_MS) || this.#index.followerWaitsWithin(FOLLOWER_WAITS_MS));
        if (!shared && this.#queue.length === 0 && this.#runStart !== null && this.#failed === null && !this.#index.writeWanted) await this.#gatheringTurn();
        else {
          this.#disarmTurn();
          if (this.#queue.length > 0 && this.#aloneOverdue()) await new Promise((resolve) => setImmediate(resolve));
        }
        const wanted = this.#index.writeWanted;
        if (this.#runStart !== null && (wanted || shared || this.#queue.length === 0 || this.#failed !== null || (++this.#runBatches >= 2 && performance.now() - this.#runStart > WRITE_RUN_MS))) {
          this.#endWriteRun();
          // the turn of the event loop in which WRITE is free (header comment)
          if (this.#queue.length > 0) await new Promise((resolve) => (shared ? setTimeout(resolve, OTHER_WRITER_GAP_MS) : setImmediate(resolve)));
          // a waiter in this process polls for WRITE (busy-handler sleeps): let it have it first
          while (wanted && this.#index.writeWanted) await new Promise((resolve) => setTimeout(resolve, 1));
        }
      }
    } finally {
      this.#disarmTurn();
      this.#endWriteRun();
      this.#running = null;
    }
  }

  #endWriteRun(): void {
    if (this.#runStart === null) return;
    this.#runStart = null;
    this.#index.endWrite();
  }

  /**
   * A failure outside the write and sync stages (section header): rejects the batch's commits
   * that are still pending. A WalnutError before the write leaves the committer working; any
   * other error, or one after frames may have reached the WAL, fails the store.
   */
  #failBatch(batch: Pending[], e: unknown, stage: 'before write' | 'after write'): void {
    this.#events?.emit('fault', () => ({ stage: `pipeline ${stage}`, code: (e as { code?: string }).code, message: (e as Error)?.message, path: this.#index.walPath }));
    if (stage === 'before write' && e instanceof WalnutError) {
      // not those a refusal in the batch sent back to the queue (#writeBatch): they go on, or
      // the chain's refusal reaches them there
      const queued = this.#queue.length === 0 ? null : new Set(this.#queue);
      const failed = queued === null ? batch : batch.filter((p) => !queued.has(p));
      this.#rejectAll(failed, e);
      this.#breakChain(e, failed, []);
      return;
    }
    this.#failed ??= walnutError('WALNUT_FAILED', `the commit pipeline failed ${stage === 'after write' ? 'after writing to the WAL, before publishing' : 'unexpectedly'} (${(e as Error)?.message ?? String(e)}); the store stopped and must be reopened (reopening recovers every acknowledged commit)`, { path: this.#index.walPath, cause: e });
    this.#rejectAll(batch, failureInFlight(this.#failed, e));
    this.#rejectAll(this.#queue.splice(0), this.#failed);
  }

  #queueBytes(): number {
    let b = 0;
    for (const p of this.#queue) b += p.bytes;
    return b;
  }

  #takeBatch(): Pending[] {
    let bytes = 0;
    let n = 0;
    while (n < this.#queue.length && (n === 0 || bytes + this.#queue[n]!.bytes <= this.#maxBatchBytes)) {
      bytes += this.#queue[n]!.bytes;
      n++;
    }
    if (n < this.#queue.length) this.#wake.sizeCap++;
    else if (this.#maxWaitMicros > 0) this.#wake.timer++;
    else if (this.#gatheringCut) this.#wake.alone++;
    else this.#wake.idle++;
    this.#gatheringCut = false;
    return this.#queue.splice(0, n);
  }

  /** Takes the queued commits submitted before `us` (the queue is in submission order). */
  #takeQueuedBefore(us: number): Pending[] {
    let n = 0;
    while (n < this.#queue.length && this.#queue[n]!.enqueuedUs <= us) n++;
    return this.#queue.splice(0, n);
  }

  async #runBatch(batch: Pending[]): Promise<void> {
    if (this.#failed) {
      for (const p of batch) p.reject(this.#failed);
      return;
    }
    const tStart = nowUs();
    let header: ShmHeader;
    try {
      // a close() cuts the wait only while nothing in it is another lane member's: the
      // member's store is open, and a close of the leader's (a worker shutting down) failed its
      // commits (WALNUT_BUSY LeaderClosed) beside another process's writer (interop/workers)
      // (after the commits of closing lane members were withdrawn: the close of one's store
      // need not wait with it; the waiting batch is only this store's then)
      const ownOnly = (): boolean => batch.every((p) => p.settled || p.chained) && this.#queue.every((p) => p.chained);
      if (this.#runStart === null) {
        // another connection's follower is to restart the WAL (FOLLOWER_WAITS_MS): its chance
        const gapEnd = performance.now() + FOLLOWER_GAP_MS;
        while (this.#index.followerWaitsWithin(FOLLOWER_WAITS_MS) && performance.now() < gapEnd) await new Promise((resolve) => setTimeout(resolve, 1));
        const wait = { batch, othersHold: false };
        this.#writeWait = wait;
        try {
          header = await this.#index.beginWriteRun((othersHold) => {
            wait.othersHold = othersHold;
            return this.#failHeldSnapshots(batch) || this.#failOvertaken(batch) || (othersHold && this.#withdrawClosing(batch));
          }, ownOnly);
        } finally {
          // a commit withdrawn up to here is left out below (filtered in this same step); none after
          this.#writeWait = null;
        }
        this.#runStart = performance.now();
        this.#runBatches = 0;
      } else {
        header = this.#index.writeRunHeaderSync() ?? (await this.#index.writeRunHeader(ownOnly)); // (a header damaged under the run: recovered, a wait cut as beginWriteRun's)
      }
    } catch (e) {
      this.#endWriteRun();
      // commits failed while waiting (#failHeldSnapshots) had their answer and broke the chain
      // then; when they were all the batch had, the wait ended there (no timeout, nobody to tell)
      const live = batch.filter((p) => !p.settled);
      if (live.length === 0) return;
      if (isWalnutError(e, 'WALNUT_CLOSED') && (e.reason === 'WriteWaitCut' || e.reason === 'RecoveryWaitCut')) {
        this.#rejectCutByClose([...live, ...this.#queue.splice(0)], e);
        return;
      }
      // the commits queued before this wait began have waited the whole busy timeout too:
      // they get the same answer now, not one more timeout per batch (or close()) each
      const failed = e instanceof WalnutError && e.code === 'WALNUT_BUSY' ? [...live, ...this.#takeQueuedBefore(tStart)] : live;
      this.#rejectAll(failed, e);
      this.#breakChain(e, failed, []);
      return;
    }
    // commits failed while waiting (#failHeldSnapshots) are out of the batch
    await this.#writeBatch(batch.some((p) => p.settled) ? batch.filter((p) => !p.settled) : batch, header, tStart);
  }

  /**
   * The store's close() cut the batch's wait for WRITE held by another connection, or for
   * another connection's CKPT or RECOVER to recover a torn wal-index header under it (reason
   * RecoveryWaitCut) (WalIndex.cutLockWaits): `cut` (the batch and the queue behind it, all of
   * which would wait for the same lock) fail now, nothing of them written: this store's own commits with `e`
   * (WALNUT_CLOSED, reason WriteWaitCut), the same answer as a commit made after close(), and
   * the chain breaks as for any failure (nothing is accepted after close() anyway); another lane
   * member's commits, whose store is still open, with WALNUT_BUSY, reason LeaderClosed (retry:
   * the lane's next leader takes it; it breaks that member's chain as a busy timeout would).
   * The wait is cut only while it holds none (#runBatch's ownOnly): a member's commit queued in
   * the moment of the cut is the only one answered so.
   * They waited out the rest of the busy timeout instead, and close() with them (20 s:
   * test/hostile/close-cuts-write-waits).
   */
  #rejectCutByClose(cut: Pending[], e: WalnutError): void {
    const own = cut.filter((p) => p.chained);
    this.#rejectAll(own, e);
    if (own.length < cut.length) {
      const busy = walnutError('WALNUT_BUSY', "the lane's leading store closed while this commit waited for SQLite's WAL write lock (WRITE), which another connection holds; nothing was written: commit it again", { path: this.#index.dbPath, reason: 'LeaderClosed' });
      this.#rejectAll(cut.filter((p) => !p.chained), busy);
    }
    if (own.some((p) => p.breaksChain) && this.#chain.break(e)) this.#counters.chainBreaks++;
  }

  /** Commits of the queue that failed while the batch ahead waited (withdrawn, refused) leave it, in place (the batch's are left out by #runBatch). */
  #dropSettledFromQueue(): void {
    if (this.#queue.some((p) => p.settled)) this.#queue.splice(0, this.#queue.length, ...this.#queue.filter((p) => !p.settled));
  }

  /**
   * A lane member's store began closing (lane.ts, on its `closing` wake-up, on whichever thread
   * leads): while this committer's batch waits for WRITE held by another connection, that
   * member's commits in the batch and the queue are withdrawn now (#withdrawClosing); otherwise
   * at the next such wait, if any (a batch being written, or about to take a free WRITE, keeps
   * them: they land, and the member's close waits for them as before).
   */
  withdrawClosing(): void {
    const wait = this.#writeWait;
    if (wait !== null && wait.othersHold) this.#withdrawClosing(wait.batch);
  }

  /**
   * The commits of lane members whose store is closing (CommitListener.closing), in the batch
   * waiting for WRITE held by another connection and in the queue behind it (the lane's queued
   * ones taken first: they would wait as long), fail now with WALNUT_CLOSED, reason
   * WriteWaitCut, as the closing store's own waiting commits do (WalIndex.cutLockWaits): its
   * close() no longer waits with this batch up to the busy timeout, to get WALNUT_BUSY. Only
   * before the batch's write: once beginWriteRun returned, the batch is filtered and
   * #writeWait cleared in one step, so a withdrawn commit is never written, and a commit being
   * written is never withdrawn (its store's close waits for its outcome). They are other stores'
   * commits: this store's chain is not touched, nor the other members'. True when none of the
   * batch is left (the wait ends).
   */
  #withdrawClosing(batch: Pending[]): boolean {
    const lane = this.#laneQueue;
    if (lane === null || !lane.closing()) return false;
    lane.take();
    const closing = (p: Pending): boolean => !p.settled && p.listener?.closing?.(p.token) === true;
    // (a batch emptied by a withdrawal on the lane's wake-up, withdrawClosing(), ends its wait here)
    if (!batch.some(closing) && !this.#queue.some(closing)) return batch.every((p) => p.settled);
    const e = walnutError('WALNUT_CLOSED', "the store closed while this commit waited in its commit lane for SQLite's WAL write lock (WRITE), which another connection holds; nothing was written", { path: this.#index.dbPath, reason: 'WriteWaitCut' });
    this.#rejectAll(batch.filter(closing), e);
    this.#rejectAll(this.#queue.filter(closing), e);
    // the withdrawn commits leave the queue (the batch's are left out by #runBatch)
    this.#dropSettledFromQueue();
    return batch.every((p) => p.settled);
  }

  /**
   * While the batch waits for WRITE held by another connection (called before each sleep of
   * that wait): when a checkpointer of another connection may be what holds it and waits for
   * this connection's readers (WalIndex.checkpointerWaiting()), the commits of the batch and of
   * the queue behind it whose snapshots still hold a read lock that only their commit's end
   * lets go — a Transaction's (the committer releases it once checked) and a store.commit()
   * base its caller holds —
   * fail at once with WALNUT_BUSY, reason CheckpointWaits, and a Transaction's snapshot is
   * released (header comment, "Snapshots held while waiting for WRITE"). Each breaks the chain
   * as any failure of a commit taken into the order does (a Transaction's breaks none). True
   * when none of the batch is left: the wait for WRITE ends (an empty batch waiting on would end
   * in a timeout nobody hears).
   */
  #failHeldSnapshots(batch: Pending[]): boolean {
    // in commit order: the batch, then the commits queued behind it (they wait for WRITE after
    // it, their snapshots held as long)
    // A lane leader: other members' transactions still queued in the lane (a busy leader takes
    // them only as it forms its next batch) hold their snapshots as long, and the checkpointer
    // waits for those too. Taken now, they fail here like those already taken; so there the
    // checkpointer is asked first, elsewhere only when some commit holds a snapshot.
    const lane = this.#laneQueue?.shared() === true;
    if (lane) {
      if (!this.#index.checkpointerWaiting()) return false;
      this.#laneQueue!.take();
    }
    const waiting = this.#queue.length === 0 ? batch : [...batch, ...this.#queue];
    if (!waiting.some((p) => !p.settled && this.#holdsSnapshot(p))) return false;
    if (!lane && !this.#index.checkpointerWaiting()) return false;
    for (let i = 0; i < waiting.length; i++) {
      const p = waiting[i]!;
      if (p.settled || !this.#holdsSnapshot(p)) continue;
      const e = walnutError('WALNUT_BUSY', "another connection's checkpoint holds the WAL write lock this commit needs and waits for the read lock of the snapshot it was built on (still held): waiting would stall both until a busy timeout (SQLite answers SQLITE_BUSY here); nothing was written: release the snapshot and build the commit again on a new one", { path: this.#index.dbPath, reason: 'CheckpointWaits' });
      this.#counters.failedCommits++;
      p.reject(e);
      if (p.conflict?.snapshot !== undefined) this.#releaseSnapshot(p.conflict.snapshot);
      // the chain breaks as #breakChain breaks it, for the commits after this one only: those
      // before it in `waiting` come first in the order and stay
      if (p.breaksChain) {
        if (this.#chain.break(e)) this.#counters.chainBreaks++;
        this.#rejectAll(waiting.slice(i + 1).filter((q) => q.chained), this.#chain.refusal);
      }
    }
    // the failed commits leave the queue (the batch's are left out by #runBatch)
    this.#dropSettledFromQueue();
    return batch.every((p) => p.settled);
  }

  /**
   * While the batch waits for WRITE held by another connection (before each sleep of that wait,
   * after #failHeldSnapshots): the conditional commits of the batch and of the queue behind it
   * whose base another connection's commit has overtaken meanwhile (WalIndex.othersCommitsNow)
   * fail at once with WALNUT_CONFLICT, reason OtherWriter, as #refusal fails them once WRITE is
   * had: nothing else can come of them. They waited the busy timeout for it instead, beside a
   * sqlite3-family writer that takes WRITE again right after each commit (its busy handler's
   * sleeps miss the short gaps), and the SQL writer opens no view while they are in flight:
   * walnut/sql's 64 callers of transaction() beside a python3 loop of INSERTs got 0 commits in
   * 9.5 of 10 s (each caller's retry came 5 s later; test/hostile/sql-fair-share-busy-writer).
   * Each breaks the chain as #failHeldSnapshots' failures do. True when none of the batch is left.
   */
  #failOvertaken(batch: Pending[]): boolean {
    const waiting = this.#queue.length === 0 ? batch : [...batch, ...this.#queue];
    if (!waiting.some((p) => !p.settled && p.base !== undefined)) return false;
    const met = this.#index.othersCommitsNow();
    for (let i = 0; i < waiting.length; i++) {
      const p = waiting[i]!;
      if (p.settled || p.base === undefined) continue;
      const at = this.#index.othersCommitsAt(p.base);
      if (at === undefined || at === met) continue; // (another store's base: checked under WRITE)
      const e = walnutError('WALNUT_CONFLICT', "another connection committed after this commit's base snapshot; nothing was written (it could have overwritten that commit): build it again on a new snapshot", { path: this.#index.dbPath, reason: 'OtherWriter' });
      this.#counters.conflicts++;
      p.reject(e);
      if (p.breaksChain) {
        if (this.#chain.break(e)) this.#counters.chainBreaks++;
        this.#rejectAll(waiting.slice(i + 1).filter((q) => q.chained), this.#chain.refusal);
      }
    }
    this.#dropSettledFromQueue();
    return batch.every((p) => p.settled);
  }

  /** The commit's snapshot holds a read lock that its caller lets go only once it settles. */
  #holdsSnapshot(p: Pending): boolean {
    // another lane member's transaction (taken from the lane: its conflict set travels without
    // the snapshot, lane.ts): that member keeps the snapshot's read mark until this settles.
    // Waiting would stall the checkpointer on it and this commit on the checkpointer until a
    // busy timeout, as for this store's own transactions (a chaos run: 20 s without a commit)
    // (readLock: sent only while the member's snapshot was still held when it submitted)
    if (p.conflict !== undefined && p.conflict.snapshot === undefined) return p.conflict.readLock !== undefined;
    const snap = p.conflict?.snapshot ?? (p.baseHeld ? p.base : undefined);
    return snap !== undefined && !snap.released;
  }

  #releaseSnapshot(snap: Snapshot): void {
    this.#committing.delete(snap);
    snap.release();
  }

  async #writeBatch(batch: Pending[], live: ShmHeader, tStart: number): Promise<void> {
    const gen = live;
    let lastChecked = -1;
    for (let i = 0; i < batch.length; i++) if (batch[i]!.conflict !== undefined) lastChecked = i;
    // pages written by the batch's earlier commits, kept only while a later commit has a
    // conflict set to check against them (none: the shared empty set, never added to)
    const written = lastChecked >= 0 ? new Set<number>() : NO_PAGES_WRITTEN;
    // the accepted commits: `batch` itself as long as none was left out (the common case makes
    // no array per batch); the first one left out at i makes it batch's first i
    let accepted = batch;
    const txns: WalTransaction[] = [];
    let dbSize = this.#index.databaseSize(live);
    let frames = 0;
    // the batch writes another lane member's commit (counted again as it is published, below)
    let forAnother = false;
    // past a refusal (#breakChain): the commits from here that went back to the queue, unchecked
    let requeuedFrom = batch.length;
    for (let i = 0; i < batch.length; i++) {
      const p = batch[i]!;
      if (p.conflict && this.#conflicts(p.conflict, gen, written)) {
        // first committer wins: a Transaction's expected answer; it broke no chain (header comment)
        this.#counters.conflicts++;
        p.reject(walnutError('WALNUT_CONFLICT', 'a page this transaction read or wrote was committed by another transaction after its snapshot', { path: this.#index.dbPath, reason: 'PageChanged' }));
        if (accepted === batch) accepted = batch.slice(0, i);
        continue;
      }
      const refusal = this.#refusal(p, gen, frames);
      if (refusal !== null) {
        if (refusal.code === 'WALNUT_CONFLICT') this.#counters.conflicts++;
        p.reject(refusal);
        if (accepted === batch) accepted = batch.slice(0, i);
        this.#breakChain(refusal, [p], batch.slice(i + 1));
        requeuedFrom = i + 1;
        break;
      }
      const top = p.pages[p.pages.length - 1]!.pgno; // sorted
      const size = p.dbSize ?? Math.max(dbSize, top);
      // page 1's in-header size: of this commit's page 1 (p.minDbSize), else, when the commit
      // shrinks the database, of the database's page 1 as the batch leaves it
      const header = p.pages[0]!.pgno !== 1 && size < dbSize ? await this.#page1DbSize(txns) : 0;
      if (size < Math.max(p.minDbSize, header)) {
        // only a page 1 can get here (an explicit dbSize was checked against the pages on submit)
        const e = walnutError('WALNUT_INVALID_ARGUMENT', `page 1's in-header database size ${Math.max(p.minDbSize, header)} is above the database size after this commit (${size}); SQLite would report the database corrupt`, { reason: 'dbSize' });
        p.reject(e);
        if (accepted === batch) accepted = batch.slice(0, i);
        this.#breakChain(e, [p], batch.slice(i + 1));
        requeuedFrom = i + 1;
        break;
      }
      const pages = size > dbSize ? this.#withRegrownZeros(p.pages, dbSize, size, gen, txns) : p.pages;
      if (i < lastChecked) for (const page of pages) written.add(page.pgno);
      if (!p.chained) {
        this.#index.noteCommitForAnother(); // before the later commits' base checks
        forAnother = true;
      }
      dbSize = size;
      txns.push(pages === p.pages ? { pages, dbSize } : { pages, dbSize, submitted: p.pages });
      if (accepted !== batch) accepted.push(p);
      frames += pages.length;
    }
    // every set checked (WRITE held): their read marks must not keep this append from restarting
    // the WAL. Not those of the transactions a refusal sent back to the queue: unchecked, they are
    // checked against frames committed since their snapshots in a later batch, and a restart
    // meanwhile (this very append's, once their marks were gone) would hide those frames from the
    // check (a lost update: test/unit/commit-chain.test.ts)
    for (let i = 0; i < batch.length; i++) {
      const p = batch[i]!;
      if (p.conflict?.snapshot !== undefined && (i < requeuedFrom || p.settled)) this.#releaseSnapshot(p.conflict.snapshot);
    }
    if (accepted.length === 0) return;
    // `gen` is still the live header: WRITE is held, and only this connection publishes under it
    // a failure rejects the batch: nothing is written yet; null: nothing to wait for
    const checkpointed = this.#beforeAppend(frames, gen.mxFrame);
    if (checkpointed !== null) await checkpointed;
    const tSerialized = nowUs();
    const full = this.#synchronous === 'full';
    let result;
    try {
      const lone = accepted.length === 1 && frames <= INLINE_MAX_FRAMES && this.#queue.length === 0;
      // onPublished: in the step that publishes, before any other code sees the new header (sequencer.ts)
      // A member's commit is counted for this store's bases twice: as it was taken (above: a
      // base that began before counts it, whatever the batch's fate) and again as it is
      // published. A snapshot this store takes while the batch is written and synced (its
      // thread is free meanwhile) records the first count but reads the state without the
      // member's commit: counted once only, a conditional commit on that base passed its check
      // and overwrote the member's commit (a counter page incremented by both got the same
      // value acknowledged twice: test/interop/lane-base-member.test.ts). The second count
      // makes such a base conflict (OtherWriter); a base taken after the publish sees both.
      const published =
        forAnother || this.#onPublished !== null
          ? () => {
              if (forAnother) this.#index.noteCommitForAnother(true); // and its data version (dataVersion())
              this.#onPublished?.(txns);
            }
          : undefined;
      // a lone commit on this thread without a promise when it can (WalIndex.appendInline)
      result = (lone ? this.#index.appendInline(txns, full ? 'data' : 'none', published) : null)
        ?? (await this.#index.appendAndPublish(txns, full ? 'data' : 'none', this.#synchronous === 'off' ? 'none' : 'data', lone, published));
    } catch (e) {
      if (this.#framesUnpublished(frames) || !(e instanceof WalnutError)) {
        this.#failBatch(accepted, e, 'after write');
        return;
      }
      const syscall = (e as { syscall?: string }).syscall;
      const ev = e as { code?: string; errno?: number };
      this.#events?.emit('fault', () => ({ stage: syscall === 'fdatasync' || syscall === 'fsync' ? 'sync' : 'write', code: ev.code, errno: ev.errno, path: this.#index.walPath, commits: accepted.length }));
      // A write error whose frames could not be invalidated (OutcomeUnknown: the zeroing's write
      // or sync failed) stops the store too: a failed sync may have dropped earlier unsynced
      // pages of the WAL (synchronous 'normal'), and the next sync would succeed over the loss
      const sync = syscall === 'fdatasync' || syscall === 'fsync';
      if (sync || (e as WalnutError).reason === 'OutcomeUnknown') {
        // Durability of the written frames is unknown: stop, as SQLite and PostgreSQL do.
        const what = sync ? 'a WAL sync failed' : "a WAL write failed and its frames could not be invalidated (the zeros' write or sync failed)";
        this.#failed = walnutError('WALNUT_FAILED', `${what}; the store stopped and must be reopened (reopening recovers every acknowledged commit)`, { path: this.#index.walPath, errno: (e as { errno?: number }).errno, cause: e });
        this.#rejectAll(accepted, failureInFlight(this.#failed, e));
        this.#rejectAll(this.#queue.splice(0), this.#failed);
      } else {
        this.#rejectAll(accepted, e);
        this.#breakChain(e, accepted, []);
      }
      return;
    }
    const tIo = nowUs();
    // before the commits resolve: their page buffers (the store's copies, taken buffers, lent
    // pipelining buffers) are released once they settle.
    // An observer's failure never fails commits that are already written.
    try {
      this.#onWritten?.(txns, result.firstFrame, this.#index.wal.salts);
    } catch (e) {
      this.#events?.emit('fault', () => ({ stage: 'observer', code: (e as { code?: string }).code, message: (e as Error).message }));
    }
    if (full) this.#counters.fsyncs++;
    this.#counters.batches++;
    this.#counters.frames += frames;
    this.#hist.batchSize.record(accepted.length);
    this.#hist.serialize.record(tSerialized - tStart);
    this.#hist.io.record(tIo - tSerialized);
    this.#events?.emit('commit', () => ({ commits: accepted.length, frames, bytes: accepted.reduce((n, p) => n + p.bytes, 0), ioMicros: Math.round(tIo - tSerialized), lastFrame: result.lastFrame }), false);
    this.#armTurnAfterBatch();
    let first = result.firstFrame;
    for (let i = 0; i < accepted.length; i++) {
      const p = accepted[i]!;
      const last = result.commitFrames[i]!;
      this.#counters.commits++;
      this.#counters.bytes += p.bytes;
      this.#hist.queueWait.record(tStart - p.enqueuedUs);
      p.resolve(++this.#seq, first, last, full);
      first = last + 1;
    }
    const tPublished = nowUs();
    this.#hist.publish.record(tPublished - tIo);
    for (const p of accepted) this.#hist.commit.record(tPublished - p.enqueuedUs);
    try {
      this.#onCommitted(result.lastFrame);
    } catch (e) {
      this.#events?.emit('fault', () => ({ stage: 'observer', code: (e as { code?: string }).code, message: (e as Error).message }));
    }
  }

  /**
   * The pages of a commit that grows the database from `from` to `to` pages, with a zero page
   * added for each page of (from, to] it does not write that may still hold bytes from before a
   * shrink: in the database file or the WAL (WalIndex.pagesHoldingOldBytes, `gen` the live
   * header) or written by an earlier commit of this batch (`txns`). "Pages past it read as
   * zeros": without them such a page read as its old bytes while the shrink was in the WAL,
   * and as zeros once a complete checkpoint had cut the file, so the same commits made
   * different databases depending on when a checkpoint ran (and sqlite3 read the old bytes
   * too). The lock-byte page is never written (SQLite never uses it). A commit that writes every
   * page it adds (SQLite's, walnut/sql's) costs one pass over its pages.
   */
  #withRegrownZeros(pages: readonly WalPage[], from: number, to: number, gen: ShmHeader, txns: readonly WalTransaction[]): readonly WalPage[] {
    let own = 0;
    for (const page of pages) if (page.pgno > from) own++;
    const lockByte = lockBytePage(this.#index.pageSize);
    if (own >= to - from - (lockByte > from && lockByte <= to ? 1 : 0)) return pages;
    const old = new Set(this.#index.pagesHoldingOldBytes(gen, from, to));
    for (const t of txns) for (const page of t.pages) if (page.pgno > from && page.pgno <= to) old.add(page.pgno);
    for (const page of pages) old.delete(page.pgno);
    old.delete(lockByte);
    if (old.size === 0) return pages;
    // a trailer of zeros is "not stamped" (page-trailer.ts): the page reads as zeros, trailer too
    if (this.#zeroPage === null || this.#zeroPage.length !== this.#index.pageSize) this.#zeroPage = new Uint8Array(this.#index.pageSize);
    const zero = this.#zeroPage;
    const out: WalPage[] = [...pages];
    for (const pgno of old) out.push({ pgno, data: zero });
    return out.sort((a, b) => a.pgno - b.pgno);
  }

  /**
   * The size page 1 (as the batch so far leaves it) requires: its in-header size when SQLite
   * trusts it, else 1. The database's page 1 is read through a snapshot of its own, released at
   * once (so that it does not keep the WAL from restarting); under WRITE it sees the live header.
   * Only shrinking commits get here.
   */
  async #page1DbSize(txns: readonly WalTransaction[]): Promise<number> {
    let page1: Uint8Array | undefined;
    for (const t of txns) if (t.pages[0]!.pgno === 1) page1 = t.pages[0]!.data;
    if (page1 === undefined) {
      const snap = await this.#index.beginRead();
      try {
        page1 = await snap.readRaw(1);
      } finally {
        snap.release();
      }
    }
    return minimumDbSize([{ pgno: 1, data: page1 }]);
  }

  /**
   * After appendAndPublish failed: did the WAL take this batch's `frames` frames without the
   * index publishing them? (The WAL file's frame counter advances only once its frames are
   * written and synced as asked; WRITE is held, so nobody else moved the published header.)
   */
  #framesUnpublished(frames: number): boolean {
    try {
      const live = this.#index.liveHeader();
      return live === null || this.#index.wal.mxFrame === live.mxFrame + frames;
    } catch {
      return true; // the index cannot even be read: assume the worst
    }
  }

  /**
   * Why a commit that passed its own page checks cannot go after the batch's first `frames`
   * frames over `live`, the header read under this WRITE (still the live one: only this
   * connection publishes while it holds WRITE), or null: a conditional commit whose base
   * another connection committed after (WALNUT_CONFLICT, reason OtherWriter), a frame counter
   * that would overflow (WALNUT_FULL).
   */
  #refusal(p: Pending, live: ShmHeader, frames: number): WalnutError | null {
    const mxFrame = live.mxFrame + frames;
    if (p.base !== undefined && this.#index.othersCommittedSince(p.base, live) !== false) {
      return walnutError('WALNUT_CONFLICT', 'another connection committed after this commit\'s base snapshot; nothing was written (it could have overwritten that commit): build it again on a new snapshot', { path: this.#index.dbPath, reason: 'OtherWriter' });
    }
    if (mxFrame + p.pages.length > MAX_FRAME) {
      return walnutError('WALNUT_FULL', 'the WAL frame counter would pass 2^32-1; checkpoint first', { path: this.#index.walPath });
    }
    return null;
  }

  /** First committer wins: did anything in the set change after the snapshot? */
  #conflicts(c: ConflictSet, live: { mxFrame: number; salts: [number, number] }, written: Set<number>): boolean {
    const sameGeneration = sameSalts(c.salts, live.salts);
    // A restarted WAL (new salts) holds only frames committed after the snapshot.
    const minFrame = sameGeneration ? c.mxFrame + 1 : 1;
    for (const pgno of c.pgnos) {
      if (written.has(pgno)) return true;
      if (live.mxFrame >= minFrame && this.#index.lookup(pgno, live.mxFrame, minFrame) !== 0) return true;
    }
    return false;
  }

  #rejectAll(list: Pending[], e: unknown): void {
    for (const p of list) {
      if (p.settled) continue;
      this.#counters.failedCommits++;
      p.reject(e);
    }
  }

  metrics(): CommitMetrics {
    return {
      ...this.#counters,
      batchSize: this.#hist.batchSize.summary(),
      latency: {
        queueWait: this.#hist.queueWait.summary(),
        serialize: this.#hist.serialize.summary(),
        io: this.#hist.io.summary(),
        publish: this.#hist.publish.summary(),
        commit: this.#hist.commit.summary(),
      },
      wakeReasons: { ...this.#wake },
    };
  }
}
