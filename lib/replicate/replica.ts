/**
 * replicate/replica.ts — openReplica: a local database kept equal to a primary's replication
 * stream (publisher.ts; layout in nats.ts), through walnut's own commit path.
 *
 * Invariants:
 *  - The replica file is always a valid WAL-mode SQLite database at a commit boundary of the
 *    primary: a first base image is built in a temporary file and renamed in (restore.ts);
 *    after that every change is one walnut commit holding whole commits of the primary (a
 *    batch of consecutive ones: the pages they write, last version each, and the size after
 *    the last), so a reader (sqlite3, walnut) sees the state after some primary commit. A
 *    batch in which a commit shrank the database and a later one grew it back writes zeros over
 *    the pages in between that no commit after the shrink wrote: the primary reads them as
 *    zeros, and writes no zero frames for them once its WAL restarted (nothing old left on its
 *    side), while the replica's own file still held their pre-shrink bytes.
 *  - Commits apply in order, each once: a commit is applied only when its COMMIT_META
 *    verified (xxh3-128 of its frames, PAGE_DELTAs rebuilt first) and its sequence is the one
 *    after the state applied; anything at or before that state is skipped.
 *  - Resuming: the position file (position.ts) holds the applied state and, during a batch,
 *    the intent written and synced before the batch's commit. On reopen the database decides:
 *    the batch's pages and size as the intent's witness says => the state after it, else the
 *    state before it (the commit did not reach the WAL). A batch whose page list does not fit
 *    the position file even as runs is witnessed by the whole database after it ('all').
 *    Reading then resumes from that state's
 *    log message (a commit cut across messages is read again from its first). A position
 *    whose database is gone is no state to resume: the replica is built anew from a base image.
 *  - Batching: a batch is applied once the message that ends it was the newest the server had
 *    (info.pending 0) and no further message is queued locally, or at the batch limits. Each
 *    message is sent as soon as it is stored, so its pending is 0 even while the replica is
 *    behind; without the local queue's count every message was a batch of its own, and the
 *    two fdatasyncs per batch capped the apply rate below a 5,000 commits/s primary (its lag
 *    then grew for as long as the load lasted). The local count may be off by one (the client's
 *    accounting after a status callback), so a held batch is applied after HOLD_MS without a
 *    message.
 *  - Re-basing: a message of another session (the primary started a new one), a gap in the
 *    commits (retention dropped what the replica needed) or a commit that does not verify
 *    makes the replica apply the newest base image as one commit (the pages of it that differ
 *    from the replica's: every page 1..its size is the base's after it; see the last point), then
 *    read on from that base's Walnut-Log-From. A new session's first base image is the state
 *    where the primary's last checkpoint stopped (older than what the replica may have applied
 *    of the session before, when another connection's read transaction stopped that
 *    checkpoint); the session's start (nats.ts Walnut-Session-Start: the base and the WAL's
 *    commits as of then, every commit of the session before included) is what a reader may
 *    see next. So a first base that says its log marks the start (Walnut-Start-Marked) is not
 *    applied alone: it and the log's commits through the start are one batch, one commit
 *    (its witness the pages it writes, as a re-base's), held past the batch limits and the end of the log until the
 *    commits through the mark are read, and applied then. Dropped unapplied when the reading
 *    starts over (the log is read again from the applied state: the re-base comes again). A
 *    first base without the mark (a stream of walnut before it), and a re-base after a gap or
 *    an unreadable commit, apply the base alone, as before; but not a session's first base
 *    whose start the replica could not read (a gap in the log between that base and the mark,
 *    or a message there unreadable after a replay): applied alone it went back in time. The
 *    replica stays at its state, says so once ('error' BehindRetention / Unreadable,
 *    lag().stalledBy), and re-bases onto the next base image past the start: a later base of
 *    that session (a snapshot of the primary, at a commit boundary past the start), or the
 *    next session's start. A log that ends before the mark (a primary that stopped in its
 *    first pass) is told once ('error' StartUnmarked, lag().stalledBy) and the start stays
 *    held: no count of commits or idle time says where the start was (README's known limit);
 *    a later base of that session, or the next session, ends it.
 *  - A wait for a base image is never silent: one whose parts are gone (a stream whose
 *    retention holds less than one: the primary says RetentionTooSmall) is told once, onRetry
 *    while openReplica waits, 'error' after (WALNUT_IO reason BaseGone, lag().stalledBy). A new
 *    replica whose newest base image stops short of its final part with no part more at the
 *    next look (a primary killed while publishing it) takes the newest whole one before it.
 *  - A base image is read one part at a time (#baseChunks), never held whole: a new replica's
 *    first one goes into restore()'s temporary file as its parts arrive (restore.ts: pages
 *    written at their offsets, BASE_END's hash checked before the rename): a part gone or not
 *    fetched fails that restore, nothing renamed in, and the newest base is looked for again
 *    (a bad hash fails openReplica, WALNUT_CORRUPT, as before). A live replica's re-base keeps
 *    only the base's pages that differ from its own (compared part by part against a snapshot
 *    of its file, which nothing else writes; page 1 always) and applies them as one batch
 *    (Batch.diff: not 'all', since the pages it leaves out equal the base's already, and its
 *    witness is the pages it writes): memory for what changed since the replica's state, not
 *    the database (which it held ~2.4 times over). Its batch is lent to the store
 *    (store.sequence() with `release`), not copied: snapshots of replica.store see it from
 *    when it is sequenced, before it is durable (other connections, once it is written); a
 *    write that fails then stops the replica for good, as any failed apply does, and those
 *    snapshots fail their reads (store.ts, sequence()).
 */
import { extraArgumentError, readInput, refuseExtraArguments, describeValue } from '../arguments';
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';

import type { JsMsg, StoredMsg } from '@nats-io/jetstream';

import { Xxh3Stream } from '../checksum';
import type { Store } from '../commit/store';
import { resolveOptions, type OpenOptions } from '../commit/options';
import { walnutError, WalnutError } from '../errors';
import { FRAME_HEADER_SIZE } from '../format/frame-header';
import { hashBytes } from '../export/exporter';
import { StreamMagic, WalStreamReader } from '../export/framing';
import { applyPageDelta, deltaPgno, PageVersions } from '../export/page-delta';
import { decodeRecord } from '../export/records';
import { restore } from '../export/restore';
import { open as openStore } from '../open'; // with the extensions its options ask for (fec: the sidecar)
import type { Snapshot } from '../wal-index/snapshot';
import { emitApart } from './listeners';
import { backoff, checkOptionNames, checkServers, checkStreamName, connectNats, HEADER, integerOption, isBasePart, lastMessageOn, lastWalnutMessageOn, messageAt, QUICK_API_TIMEOUT_MS, refuseForeignStream, subjectsOf, natsUnreachable, type NatsLink, type Subjects } from './nats';
import { ReplicaPosition, type AppliedState, type PositionRecord } from './position';
import { baseImages } from './restore-nats';

export interface ReplicaOptions {
  servers: string | string[];
  stream: string;
  /** Options of the replica's own store (walnut open()). */
  open?: OpenOptions;
  /** How long openReplica waits for NATS and the stream before it fails (ms, default 30,000). */
  connectTimeoutMs?: number;
  /**
   * Told while openReplica retries a server that does not answer: WALNUT_IO, reason Unreachable,
   * naming the servers (reason StreamUnavailable, naming the stream, while the servers answer but
   * the stream is not there), at the first failed attempt and about every 20 s after (as replicateTo's
   * 'error'), until it connects or connectTimeoutMs passes. Without it that wait is silent: the
   * replica has no 'error' listener before openReplica resolves. Also told once, WALNUT_IO reason
   * BaseGone, while the stream's newest base image lacks a part (retention cut it) and
   * openReplica waits for a whole one. Called synchronously; a throw from it fails openReplica.
   */
  onRetry?: (error: WalnutError) => void;
  /** A batch (one walnut commit) holds at most this many primary commits / pages (defaults 1,000 / 8,192). */
  maxBatchCommits?: number;
  maxBatchPages?: number;
  /** Pages as last applied kept in memory as the bases of PAGE_DELTAs (default 64 MiB; past it they are read from the file). */
  pageCacheBytes?: number;
}

export interface ReplicaLag {
  session: string | null;
  /** The primary commit (in the session's numbering) the replica file is at. */
  appliedSeq: number;
  /** Log messages the stream held past the last one read, when it was read. */
  pendingMessages: number;
  /** For the last batch applied: when it was applied less when the primary's export saw its last commit (ms). */
  lagMs: number;
  appliedCommits: number;
  batches: number;
  rebases: number;
  /** Log messages of another primary's session skipped (a stream takes one primary: see #isForeign). */
  foreignMessages: number;
  /**
   * Why the replica applies nothing now and waits for a base image, or null while it reads on:
   * the reason of the WalnutError it told as the wait began (BehindRetention, Unreadable,
   * BaseGone: see #newestBase; StartUnmarked: #startUnmarked). Its state meanwhile is the one it
   * had (session, appliedSeq).
   */
  stalledBy: string | null;
}

interface Base {
  session: string;
  seq: number;
  /** When the primary's export saw commit `seq` (Walnut-Base-Time, ms since the epoch). */
  time: number;
  logNext: number;
  /**
   * Its records as export stream bytes (the magic, then each part's framed records), each part
   * fetched as it is read (#baseChunks): the base is never held whole. Throws BaseUnread when a
   * part is gone or could not be fetched.
   */
  chunks: () => AsyncGenerator<Uint8Array>;
  /** A session's first base image whose log marks the session's start (see the header). */
  startMarked: boolean;
}

/**
 * A base image's part was not there to read (`partGone`: no longer in the stream; `failed`: a
 * request that failed) while the base was being read: #newestBase looks again (and says so
 * once for a part gone). Thrown inside restore() it comes back as its cause (restore.ts
 * sourceFailure), the temporary file removed, nothing renamed in.
 */
class BaseUnread extends Error {
  constructor(readonly why: 'partGone' | 'failed') {
    super(why === 'partGone' ? 'a part of the base image is no longer in the stream' : 'a part of the base image could not be read');
  }
}

function baseUnread(e: unknown): BaseUnread | null {
  if (e instanceof BaseUnread) return e;
  const cause = (e as { cause?: unknown } | null)?.cause;
  return cause instanceof BaseUnread ? cause : null;
}

const STREAM_MAGIC = StreamMagic.V1.bytes();

/**
 * A new session's start the reading left unapplied (its base read, its commits through the mark
 * not all read) when a gap or an unreadable message stopped it: `mark` the start's commit, once
 * read. Its first base applied alone is an older state (see the header), so #newestBase waits past it.
 */
interface StartLeft {
  session: string;
  mark: number | null;
}

/** A new session's first base image read, the batch that goes on with its log through the session's start (see the header). */
interface SessionStart {
  batch: Batch;
  /** When the primary's export saw the base's commit (Walnut-Base-Time). */
  time: number;
  why: string;
}

/** A primary commit being read: its frames in order, rebuilt where they came as deltas. */
interface Txn {
  pages: Map<number, Uint8Array>;
  hash: Xxh3Stream;
  dbSize: number;
  /** The log message it began in. */
  startLog: number;
}

interface Batch {
  pages: Map<number, Uint8Array>;
  dbSize: number;
  /** The smallest size a commit of the batch left (pages past it that the batch does not write read as zeros after it). */
  low: number;
  commits: number;
  timeMs: number;
  to: AppliedState;
  /**
   * A re-base's batch holding only the base's pages that differ from the replica's (#rebasePages):
   * the pages it does not list equal the base's already, so it is applied as a batch of those
   * pages (its witness theirs), not as the whole database.
   */
  diff?: boolean;
}

/**
 * Why only a base image past the applied state helps a re-base (see #rebase): the commits after
 * it are gone from the stream (BehindRetention), or a log message after it cannot be read, even
 * after a re-base and a replay (Unreadable).
 */
type Stuck = 'BehindRetention' | 'Unreadable';

/** A re-base is due; `gap`: the commits after the applied state are gone (only a newer base image helps). */
class Rebase extends Error {
  constructor(message: string, readonly gap = false) {
    super(message);
  }
}

/** How long a replica's reading may stay silent while the log has newer messages. */
const WATCHDOG_MS = 1500;

/** How long a batch held for locally queued messages waits for the next one (see the header). */
const HOLD_MS = 2;
const HELD_QUIET = Symbol('quiet');

function witness(pages: readonly Uint8Array[], dbSize: number): string {
  const h = new Xxh3Stream();
  for (const p of pages) h.update(p);
  return witnessOf(h, dbSize);
}

/** The witness once the pages are hashed into `h`: the size after them, then the digest. */
function witnessOf(h: Xxh3Stream, dbSize: number): string {
  const size = new Uint8Array(4);
  new DataView(size.buffer).setUint32(0, dbSize);
  h.update(size);
  return Buffer.from(hashBytes(h)).toString('hex');
}

/** Whether `last` (a base image's final part) is a session's first base whose log marks the session's start (nats.ts Walnut-Start-Marked). */
function isStartMarked(last: StoredMsg): boolean {
  return !last.header.get(HEADER.LOG_FROM) && last.header.get(HEADER.START_MARKED) === '1';
}

/**
 * Whether the base image whose newest part is `last` is, for a replica that could not read the
 * start `left` (see StartLeft), one that goes back in time applied alone: that session's first
 * base, or one before its start. Any later base image of it is a snapshot of the primary taken
 * after its export found the database, at or past the start.
 */
function startBefore(last: StoredMsg, left: StartLeft): boolean {
  if (last.header.get(HEADER.SESSION) !== left.session) return false;
  return isStartMarked(last) || (left.mark !== null && Number(last.header.get(HEADER.BASE_SEQ)) < left.mark);
}

export class Replica extends EventEmitter {
  readonly path: string;
  readonly #servers: string[];
  readonly #stream: string;
  readonly #subjects: Subjects;
  readonly #options: ReplicaOptions;
  readonly #connectTimeoutMs: number;
  readonly #onRetry: ((error: WalnutError) => void) | undefined;
  readonly #maxBatchCommits: number;
  readonly #maxBatchPages: number;
  /** The replica's pages as last applied (a cache of the file, for PAGE_DELTA bases). */
  readonly #versions: PageVersions;
  #cachedDbSize = Infinity;
  #link: NatsLink | null = null;
  #store: Store | null = null;
  #position: ReplicaPosition | null = null;
  /** The database file the path names, beside which the position file is (#start: ReplicaPosition.fileOf). */
  #file = '';
  #applied: AppliedState | null = null;
  #closed = false;
  /** Why the reading stopped for good (#stop), or null. */
  #stoppedBy: Error | null = null;
  #stopIter: (() => void) | null = null;
  /**
   * Rejects WALNUT_CLOSED once close() is called: a base image part's fetch races it
   * (#baseChunks). close() waited for the fetch under way, which a stalled server (SIGSTOP, a
   * partition) answers only at the request's timeout: 4.8 s for a re-base's part.
   */
  #cutFetch: (() => void) | null = null;
  readonly #closing: Promise<never> = (() => {
    const closing = new Promise<never>((_, reject) => {
      this.#cutFetch = () => reject(walnutError('WALNUT_CLOSED', 'the replica closed', { path: this.path }));
    });
    closing.catch(() => undefined); // (no fetch racing it when close() comes: not unhandled)
    return closing;
  })();
  #done: Promise<void> = Promise.resolve();
  /** start() under way or ended (never rejects), for close() to wait for. */
  #starting: Promise<void> = Promise.resolve();
  #lag: ReplicaLag = { session: null, appliedSeq: -1, pendingMessages: 0, lagMs: 0, appliedCommits: 0, batches: 0, rebases: 0, foreignMessages: 0, stalledBy: null };
  #toldForeign = false;
  /** Whether a message of no walnut session was told (see #isForeign). */
  #toldOtherClient = false;
  /** Sessions the replica was at and moved on from (a waitFor of one is due at once). */
  readonly #sessionsLeft = new Set<string>();
  #waiters: { session: string | null; seq: number; resolve: () => void; reject: (e: Error) => void }[] = [];
  /**
   * When the primary's export saw the applied state's commit (ms since the epoch; 0 when not
   * known: a replica resumed before its first batch). A base image of another session older
   * than this is not a newer primary session (see #newestBase).
   */
  #appliedTime = 0;
  /** Why the watchdog found a re-base due (a newer session's base image, its log empty), or null. */
  #rebaseDue: string | null = null;
  /** The last log message read (stream sequence) and when (for the watchdog). */
  #lastRead = { seq: 0, at: 0 };
  /** The log message (stream sequence) whose reading last failed WALNUT_CORRUPT / INVALID_FRAMING (see #consumeLoop). */
  #unreadableAt = 0;
  /** A new session's first base image #rebase read, for #consume to go on with (see the header). */
  #sessionStart: SessionStart | null = null;
  /** The session whose start #consume is reading (its base read, the mark not yet reached), or null. */
  #startingSession: string | null = null;
  /** The start the last reading left unapplied, or null (see StartLeft). */
  #startLeft: StartLeft | null = null;

  constructor(path: string, options: ReplicaOptions) {
    super();
    if (typeof path !== 'string' || path.length === 0) throw walnutError('WALNUT_INVALID_ARGUMENT', 'the replica path must be a non-empty string', { reason: 'path' });
    this.path = path;
    this.#options = options;
    if (typeof options !== 'object' || options === null) throw walnutError('WALNUT_INVALID_ARGUMENT', 'openReplica needs options { servers, stream }', { reason: 'options' });
    checkOptionNames(options, ['servers', 'stream', 'open', 'connectTimeoutMs', 'onRetry', 'maxBatchCommits', 'maxBatchPages', 'pageCacheBytes'], 'openReplica');
    this.#servers = checkServers(options.servers);
    this.#stream = checkStreamName(options.stream);
    // a deadline of NaN never passes: a junk timeout waited forever for an unreachable server
    this.#connectTimeoutMs = integerOption(options, 'connectTimeoutMs', 30_000, 0);
    if (options.onRetry !== undefined && typeof options.onRetry !== 'function') {
      throw walnutError('WALNUT_INVALID_ARGUMENT', `openReplica's option onRetry must be a function, not ${describeValue(options.onRetry)}`, { reason: 'onRetry' });
    }
    this.#onRetry = options.onRetry;
    this.#maxBatchCommits = integerOption(options, 'maxBatchCommits', 1000, 1);
    this.#versions = new PageVersions(integerOption(options, 'pageCacheBytes', 64 << 20, 0));
    this.#maxBatchPages = integerOption(options, 'maxBatchPages', 8192, 1);
    if (options.open !== undefined && (typeof options.open !== 'object' || options.open === null)) {
      throw walnutError('WALNUT_INVALID_ARGUMENT', "openReplica's option open must be walnut open() options", { reason: 'open' });
    }
    // open()'s own checks, before anything connects or is restored: a misspelt store option
    // (open: { busyTimout }) was refused only once the replica's base image was in place
    resolveOptions(options.open);
    this.#subjects = subjectsOf(this.#stream);
  }

  /** The replica's store (read it through snapshots; writing to it breaks replication). */
  get store(): Store {
    if (this.#store === null) throw walnutError('WALNUT_CLOSED', 'the replica is not open');
    return this.#store;
  }

  lag(): ReplicaLag {
    if (arguments.length > 0) refuseExtraArguments('replica.lag', 'no arguments', 0, arguments);
    return { ...this.#lag };
  }

  /**
   * Resolves once the replica is at commit `seq` or later (of `session`, when given, or a later
   * session: one it moves on to, or at once for a session it was at and left); rejects with
   * WALNUT_CLOSED when the replica closes first.
   */
  waitFor(seq: number, session: string | null = null): Promise<void> {
    if (arguments.length > 2) {
      const refused = extraArgumentError('replica.waitFor', 'a commit number and a session', 2, arguments);
      if (refused !== null) return Promise.reject(refused);
    }
    if (!Number.isSafeInteger(seq) || seq < 0) return Promise.reject(walnutError('WALNUT_INVALID_ARGUMENT', `waitFor: seq must be a commit number (an integer >= 0), not ${describeValue(seq)}`, { reason: 'seq' }));
    if (session !== null && typeof session !== 'string') return Promise.reject(walnutError('WALNUT_INVALID_ARGUMENT', 'waitFor: session must be a session id (a string) or null', { reason: 'session' }));
    if (this.#reached(seq, session) || (session !== null && session !== this.#applied?.session && this.#sessionsLeft.has(session))) return Promise.resolve();
    if (this.#stoppedBy !== null) return Promise.reject(this.#stoppedBy);
    if (this.#closed) return Promise.reject(this.#closedError());
    return new Promise((resolve, reject) => this.#waiters.push({ session, seq, resolve, reject }));
  }

  #closedError(): Error {
    return walnutError('WALNUT_CLOSED', 'the replica closed before reaching that commit', { path: this.path });
  }

  #reached(seq: number, session: string | null): boolean {
    const a = this.#applied;
    return a !== null && (session === null || a.session === session) && a.seq >= seq;
  }

  /**
   * Takes the replica's position file (one replica per path), connects (giving up after
   * connectTimeoutMs), puts the first base image in place or resumes; resolves when the
   * replica is open and reading. Rejects WALNUT_CLOSED when close() is called meanwhile: close()
   * waits for it, and it stops at its next step and lets go of what it took. It went on past a
   * close(): a raw TypeError (the position file close() had let go of), or it resolved after
   * close() had, its store opened after the release and never closed (the file's WAL write
   * lock held for the rest of the process).
   */
  start(): Promise<void> {
    const started = this.#start();
    this.#starting = started.catch(() => undefined);
    return started;
  }

  /** WALNUT_CLOSED when close() was called while start() was under way (see start). */
  #stillOpening(): void {
    if (this.#closed) throw walnutError('WALNUT_CLOSED', 'the replica was closed while it was opening', { path: this.path });
  }

  async #start(): Promise<void> {
    this.#stillOpening();
    // the position file sits beside the database file, the path's links followed (position.ts fileOf)
    this.#file = ReplicaPosition.fileOf(this.path);
    const existed = fs.existsSync(this.path);
    if (existed && !ReplicaPosition.exists(this.#file)) {
      throw walnutError('WALNUT_INVALID_ARGUMENT', `${this.path} exists and is not a replica (no ${ReplicaPosition.pathOf(this.#file)}); choose a new path`, { path: this.path, reason: 'NotAReplica' });
    }
    const { position, record } = ReplicaPosition.open(this.#file, this.#stream);
    this.#position = position;
    try {
      const deadline = performance.now() + this.#connectTimeoutMs;
      const given = (): boolean => this.#closed || performance.now() > deadline;
      this.#link = await connectNats(this.#servers, given, `walnut replica ${this.path}`, this.#onRetry).catch((e) => {
        throw natsUnreachable(this.#servers, e);
      });
      this.#stillOpening();
      await this.#waitForStream(given);
      this.#stillOpening();
      // a position without its database (removed, its <db>-replica left behind; a rename of a
      // first base image lost with the power) holds a state no file has: a new replica. Resumed,
      // open() made an empty database and the commits after that state went onto it: a replica
      // without the base's pages (sqlite3: "no such table"), silently, appliedSeq as the primary's
      if (record === null || record.state === 'creating' || record.applied === null || !existed) {
        await this.#createFromBase(existed);
      } else {
        this.#store = await this.#openStore();
        this.#stillOpening();
        this.#setApplied(await this.#resolveIntent(record));
      }
      this.#stillOpening();
    } catch (e) {
      // a replica never created (no database at its path: the servers unreachable, no base
      // image) leaves no position file behind, as a refused open() leaves no -wal/-shm; removed
      // while its lock is held, so another replica opening the path meanwhile is not affected
      if (!fs.existsSync(this.path)) fs.rmSync(ReplicaPosition.pathOf(this.#file), { force: true });
      await this.#release();
      // closed meanwhile: what failed then (a connection attempt given up, a step cut short) is the close
      if (this.#closed && !(e instanceof WalnutError && e.code === 'WALNUT_CLOSED')) throw walnutError('WALNUT_CLOSED', 'the replica was closed while it was opening', { path: this.path, cause: e });
      throw e;
    }
    // closed meanwhile (a re-base waiting for a base image ends WALNUT_CLOSED): not a failure
    this.#done = this.#consumeLoop().catch((e) => {
      if (!this.#closed) this.#stop(e);
    });
    void this.#watchConnection();
    void this.#watchdog();
  }

  /**
   * After a reconnect (a server restarted, a cluster node lost) the reading starts over from
   * the applied state at once, instead of waiting for the consumer's missed heartbeats.
   */
  async #watchConnection(): Promise<void> {
    const link = this.#link;
    if (link === null) return;
    for await (const s of link.nc.status()) {
      if (this.#closed) return;
      if (s.type === 'reconnect') this.#stopIter?.();
    }
  }

  /**
   * A consumer whose server went away (a cluster node lost, the connection elsewhere) is
   * noticed by the client only after missed heartbeats (seconds): every second, when nothing
   * arrived for WATCHDOG_MS while the log has messages past the last read, read again.
   * Also, when nothing arrived for WATCHDOG_MS, a newest complete base image of another session
   * than the applied one means the primary began a new session whose log is still empty (it
   * publishes its base first, its log with its next commit): re-base onto it now. Waiting for
   * that session's first log message kept the replica without the commits its base carries
   * (those of an abandoned session, or made while no replication ran) for as long as the
   * primary stayed idle. Likewise a base image of the applied session past the applied state
   * while the log holds nothing from where the replica reads on (retention dropped the commits
   * it needs, and no later message comes to show the gap): re-base onto it now.
   * Each look that read the stream emits 'watchdog' { reread, rebase } (what it found due: the
   * log read again, why a re-base is due, or neither), so that a caller (a test) waits for the
   * replica to have looked at the stream instead of sleeping for it.
   */
  async #watchdog(): Promise<void> {
    while (!this.#closed) {
      await new Promise((r) => setTimeout(r, 1000));
      if (this.#closed || this.#stopIter === null || performance.now() - this.#lastRead.at < WATCHDOG_MS) continue;
      let read = true; // both lookups answered (a failed one is taken for no message, and no look is told)
      const unread = (): null => ((read = false), null);
      let lookupFailure: unknown = null;
      const last = await lastMessageOn(this.#link!, this.#stream, this.#subjects.log, true).catch((e: unknown) => ((lookupFailure = e), unread()));
      if (!read && !this.#closed && this.#stopIter !== null) {
        // the server does not answer (wedged, or the stream's leader gone): the consumer's client
        // retries its own requests after a reconnect without a word (nats.js's consume: its
        // consumer info and re-creation, each timing out, then a backoff, for ever), so the
        // replica said nothing while it read nothing (test/hostile/replica-errors-walnut: a
        // server stopped right as the client came back). Said, at most once per WATCHDOG_MS of
        // silence, and the reading starts over (it meets the same timeout and says so too).
        if (performance.now() - this.#lastNotAnswered >= WATCHDOG_MS) {
          this.#lastNotAnswered = performance.now();
          const why = (lookupFailure as Error | null)?.message ?? String(lookupFailure);
          this.#fail(walnutError('WALNUT_IO', `the JetStream stream ${this.#stream} did not answer the replica's lookup while nothing arrived (${why}; the quick API timeout is ${QUICK_API_TIMEOUT_MS} ms); reading again`, { reason: 'nats', cause: lookupFailure }));
        }
        this.#lastRead.at = performance.now();
        this.#stopIter();
        continue;
      }
      if (last !== null && last.seq > this.#lastRead.seq && performance.now() - this.#lastRead.at >= WATCHDOG_MS) {
        this.#lastRead.at = performance.now();
        this.#stopIter?.();
        if (!this.#closed) emitApart(this, 'watchdog', { reread: true, rebase: null });
        continue;
      }
      const base = await lastMessageOn(this.#link!, this.#stream, this.#subjects.base, true).catch(unread);
      const rebase = this.#rebaseDueFor(last, base);
      if (rebase !== null) {
        this.#lastRead.at = performance.now();
        this.#rebaseDue = rebase;
        this.#stopIter?.();
      } else if (read && this.#startingSession !== null) this.#startUnmarked(this.#startingSession);
      if (read && !this.#closed) emitApart(this, 'watchdog', { reread: false, rebase });
    }
  }

  /** Why the stream's newest log message `last` and base image `base` make a re-base due now, or null (see #watchdog). */
  #rebaseDueFor(last: StoredMsg | null, base: StoredMsg | null): string | null {
    const session = base?.header.get(HEADER.SESSION);
    const applied = this.#applied;
    if (base === null || base.header.get(HEADER.BASE_FINAL) !== '1' || !session || applied === null || performance.now() - this.#lastRead.at < WATCHDOG_MS) return null;
    const baseSeq = Number(base.header.get(HEADER.BASE_SEQ));
    // its base read already, the replica waits for the log to mark its start (a primary that
    // died before it did begins another session): re-based again and again, the base was read
    // whole from the stream every few seconds for nothing. A later base of that session is a
    // snapshot past the start: re-based onto, it ends the wait
    if (session === this.#startingSession) return isStartMarked(base) ? null : `base image ${baseSeq} of session ${session}, past its start, while its log has not marked the start`;
    if (session !== applied.session && !(Number(base.header.get(HEADER.BASE_TIME)) < this.#appliedTime)) return `the primary began session ${session}`;
    if (session === applied.session && baseSeq > applied.seq && (last === null || last.seq < applied.logNext)) {
      // the commits after the applied state are gone from the log (retention: an idle
      // primary's log aged out while this replica was closed) and a base image past them is
      // there: no log message will ever come to tell the gap, and the replica stayed behind,
      // without a word, until the primary's next commit
      return `commits ${applied.seq + 1}..${baseSeq} are no longer in the stream's log; its base image ${baseSeq} is`;
    }
    return null;
  }

  /**
   * The log of `session`, whose start the replica holds, ends before the start's mark (nothing
   * read for WATCHDOG_MS, nothing newer in the stream): told once per session, 'error' WALNUT_IO
   * reason StartUnmarked and lag().stalledBy until the start is applied or the reading starts
   * over. A primary that stopped in its session's first pass, after its first base image and
   * before the mark, and never began another session leaves the replica there: the commits read
   * so far may not reach the state the replica has (README, known limits).
   */
  #startUnmarked(session: string): void {
    if (this.#toldUnmarked === session) return;
    this.#toldUnmarked = session;
    this.#lag.stalledBy = 'StartUnmarked';
    this.#fail(walnutError('WALNUT_IO', `the log of the primary's session ${session} has had nothing new for ${WATCHDOG_MS / 1000} s and has not marked the session's start (Walnut-Session-Start): the replica holds that session's first base image and the commits after it unapplied (applied without the start they may be older than its state) and stays at commit ${this.#applied!.seq} of session ${this.#applied!.session} until the mark, a later base image of that session or a new session is published (a primary that stopped during its session's first pass leaves it there until it begins another)`, { path: this.path, reason: 'StartUnmarked' }));
  }
  /** The session #startUnmarked told of last. */
  #toldUnmarked: string | null = null;

  /** A wait told with `reason` (lag().stalledBy) is over. */
  #unstall(reason: string): void {
    if (this.#lag.stalledBy === reason) this.#lag.stalledBy = null;
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#cutFetch?.();
    const cut = this.#closedError();
    for (const w of this.#waiters.splice(0)) w.reject(cut);
    this.#stopIter?.();
    await this.#starting; // a start() under way stops at its next step (see start)
    await this.#done;
    await this.#release();
  }

  async #release(): Promise<void> {
    await this.#store?.close().catch(() => undefined);
    this.#store = null;
    this.#position?.close();
    this.#position = null;
    await this.#link?.nc.close().catch(() => undefined);
    this.#link = null;
  }

  /** When the watchdog last said the stream did not answer (#watchdog). */
  #lastNotAnswered = -Infinity;

  #fail(e: unknown): void {
    if (this.listenerCount('error') > 0) emitApart(this, 'error', e);
  }

  /**
   * The reading stopped for good (the replica's own store failed: a full disk, a failed sync):
   * waiters for commits it will now never apply get the failure, as does every later waitFor
   * (they waited forever, silently without an 'error' listener).
   */
  #stop(e: unknown): void {
    this.#stoppedBy = e instanceof Error ? e : walnutError('WALNUT_IO', `the replica stopped: ${String(e)}`, { path: this.path });
    for (const w of this.#waiters.splice(0)) w.reject(this.#stoppedBy);
    this.#fail(e);
  }

  /**
   * Waits for the stream (until `given()`); refuses one that does not take walnut's subjects
   * (another application's stream of that name), as replicateTo does: a base image was waited
   * for on a subject it can never hold, forever and without a word.
   */
  async #waitForStream(given: () => boolean): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      let info;
      try {
        info = await this.#link!.jsm.streams.info(this.#stream);
      } catch (e) {
        if (given()) throw walnutError('WALNUT_IO', `the JetStream stream ${this.#stream} is not there: ${(e as Error).message}`, { reason: 'stream', cause: e });
        // told as the servers' silence is (onRetry): `walnut replica --stream` of a stream not
        // created yet waited the whole connectTimeoutMs without a word
        if (this.#onRetry !== undefined && attempt % 10 === 0) this.#onRetry(walnutError('WALNUT_IO', `the JetStream stream ${this.#stream} is not there (${(e as Error).message}); waiting for it (a primary creates it as it starts replicating)`, { reason: 'StreamUnavailable', cause: e }));
        await backoff(attempt);
        continue;
      }
      refuseForeignStream(this.#stream, info.config.subjects);
      return;
    }
  }

  /**
   * A wait for another session than the applied one is due once the replica moves on to another
   * session (a later one: it never goes back to an older one). It was due at any batch: a
   * waitFor(seq, newSession) made while the replica was still applying the old session's last
   * commits resolved at the next of them, before the replica had the new session's commit.
   */
  #setApplied(a: AppliedState): void {
    const left = this.#applied !== null && this.#applied.session !== a.session ? this.#applied.session : null;
    if (left !== null) this.#sessionsLeft.add(left);
    this.#applied = a;
    this.#lag.session = a.session;
    this.#lag.appliedSeq = a.seq;
    const due = this.#waiters.filter((w) => this.#reached(w.seq, w.session) || (w.session !== null && w.session !== a.session && left !== null));
    this.#waiters = this.#waiters.filter((w) => !due.includes(w));
    for (const w of due) w.resolve();
  }

  /**
   * A log message of a session other than the one `reading` (the applied one, or the new
   * session whose start is being read: see the header): a new session of the primary (it
   * published its base image first: re-base onto it), or, when the newest base image is still
   * the session being read's, another primary writing to the same stream, whose messages are
   * skipped ('error' WALNUT_CONFLICT reason OtherPrimary, once) — re-basing on each of them
   * made the replica re-base over and over without applying anything. A message with no
   * Walnut-Session at all is another client's (`nats pub walnut.S.log`), skipped the same way
   * but told as what it is (reason ForeignMessage, once): it was told as "another walnut
   * primary (session )", for a primary that did not exist, and then a real one was not told.
   */
  async #isForeign(session: string, streamSeq: number, reading: string): Promise<boolean> {
    const last = await lastWalnutMessageOn(this.#link!, this.#stream, this.#subjects.base).catch(() => null);
    if (last === null || last.header.get(HEADER.SESSION) !== reading) return false;
    this.#lag.foreignMessages++;
    if (session === '') {
      if (!this.#toldOtherClient) {
        this.#toldOtherClient = true;
        this.#fail(walnutError('WALNUT_CONFLICT', `another client's message (no Walnut-Session: no walnut primary's) on ${this.#subjects.log}, stream sequence ${streamSeq}: skipped, as such messages are`, { reason: 'ForeignMessage' }));
      }
    } else if (!this.#toldForeign) {
      this.#toldForeign = true;
      this.#fail(walnutError('WALNUT_CONFLICT', `another walnut primary (session ${session}) publishes to the JetStream stream ${this.#stream}: its messages are skipped; a stream takes one primary`, { reason: 'OtherPrimary' }));
    }
    return true;
  }

  /**
   * `use` of the newest complete base image in the stream (waits for one); `use` reads its parts
   * (Base.chunks, fetched one at a time: the base is never held whole here), and a part gone or
   * not fetched there (BaseUnread, also as restore()'s cause) makes it look again, as a part found
   * gone before the base was used did (whole or not is known only once every part is read). With `after` (a live
   * replica's applied state), a base image of another session older than that state is waited
   * past: it is not a newer session of the primary but an older one's, the newest left in a
   * stream that lost its later messages (a cluster's new leader that had not caught up);
   * re-based onto it, the replica went back to a state 160,000 rows older (the primary begins
   * a new session on such a stream: publisher.ts, StreamLost). With `after.seq` (a gap) a base
   * of the applied session not past it, and with `after.startLeft` one before that start, are
   * waited past (#stall says why, once); so is a base one of whose parts is gone.
   */
  async #newestBase<T>(use: (base: Base) => Promise<T>, after: { session: string; time: number; seq: number | null; startLeft: StartLeft | null } | null = null, why = '', stuck: Stuck = 'BehindRetention'): Promise<T> {
    let told = false;
    let unfinished = -1; // the stream sequence of the newest base message when it was a part short of its final one
    try {
      for (let attempt = 0; ; attempt++) {
        if (this.#closed) throw walnutError('WALNUT_CLOSED', 'the replica closed');
        let last = await lastWalnutMessageOn(this.#link!, this.#stream, this.#subjects.base).catch(() => null);
        // A new replica, and the newest base image's parts stop short of its final one, with no
        // part more since the last look: its primary died while publishing it (or is away). The
        // newest whole base image before it is taken, as restoreFromNats takes it; a new replica
        // waited for ever, silently, until the primary came back and finished a base image
        if (after === null && last !== null && last.header.get(HEADER.BASE_FINAL) !== '1') {
          if (last.seq === unfinished) last = (await this.#newestWholeBase(last.seq).catch(() => null)) ?? last;
          else unfinished = last.seq;
        }
        const older = after !== null && last !== null && last.header.get(HEADER.SESSION) !== after.session && Number(last.header.get(HEADER.BASE_TIME)) < after.time;
        // after a gap: a base of the applied session at or before the applied state (see #rebase)
        const notPast = after !== null && after.seq !== null && last !== null && last.header.get(HEADER.SESSION) === after.session && Number(last.header.get(HEADER.BASE_SEQ)) <= after.seq;
        // after a gap in the start of a session being read: that session's first base, or a base before its start
        const beforeStart = after?.startLeft != null && last !== null && startBefore(last, after.startLeft);
        if ((notPast || beforeStart) && !told) {
          told = true;
          this.#stall(stuck === 'BehindRetention' ? this.#behindRetention(why, after!.seq!, beforeStart ? after!.startLeft : null) : this.#unreadable(why, after!.seq!, beforeStart ? after!.startLeft : null));
        }
        const base = notPast || beforeStart || last === null || last.header.get(HEADER.BASE_FINAL) !== '1' || older ? null : this.#baseOf(last);
        let unread: BaseUnread | null = null;
        if (base !== null) {
          try {
            return await use(base);
          } catch (e) {
            unread = baseUnread(e);
            if (unread === null) throw e;
          }
        }
        // retention cut it (a stream holding less than one base image: the primary says
        // RetentionTooSmall): a new replica waited for ever without a word
        if (unread?.why === 'partGone' && last !== null && !told) {
          told = true;
          this.#stall(walnutError('WALNUT_IO', `the stream's newest base image (commit ${last.header.get(HEADER.BASE_SEQ)} of session ${last.header.get(HEADER.SESSION)}) lost a part (no longer in the stream ${this.#stream}: its retention holds less than one base image, or it was deleted); the replica waits for a whole one (raise the stream's max_bytes / max_age: keep two base images and the log between them)`, { path: this.path, reason: 'BaseGone' }));
        }
        await backoff(Math.min(attempt, 3)); // none yet, or one being published
      }
    } finally {
      this.#lag.stalledBy = null;
    }
  }

  /** The final part of the newest base image whose final part is at or before stream sequence `upTo` (headers), or null. */
  async #newestWholeBase(upTo: number): Promise<StoredMsg | null> {
    const bases = await baseImages(this.#link!, this.#stream, this.#subjects.base, upTo);
    const newest = bases[bases.length - 1];
    return newest === undefined ? null : messageAt(this.#link!, this.#stream, newest.last);
  }

  /** Told once as a wait for a base image begins (lag().stalledBy meanwhile): onRetry while openReplica waits (no 'error' listener yet), else 'error'. */
  #stall(e: WalnutError): void {
    this.#lag.stalledBy = e.reason ?? e.code;
    if (this.#store === null && this.#onRetry !== undefined) this.#onRetry(e);
    else this.#fail(e);
  }

  /** After a gap: the applied state is `seq`, and (`start`) the start of a new session was being read. */
  #behindRetention(why: string, seq: number, start: StartLeft | null): WalnutError {
    if (start === null) return walnutError('WALNUT_IO', `${why}, and the stream's newest base image is not past commit ${seq} the replica is at: it stays there until the primary publishes its next base image (keep more of the stream: its retention dropped what the replica needed)`, { path: this.path, reason: 'BehindRetention' });
    return walnutError('WALNUT_IO', `${why} while the replica read the start of the primary's session ${start.session} (its first base image and its log's commits through the start, applied as one): that base alone is an older state than the replica's, which stays at commit ${seq} of session ${this.#applied!.session} until the primary publishes its next base image (keep more of the stream: its retention dropped what the replica needed)`, { path: this.path, reason: 'BehindRetention' });
  }

  /** A log message unreadable again after a re-base (see #consumeLoop), as #behindRetention. */
  #unreadable(why: string, seq: number, start: StartLeft | null): WalnutError {
    const where = start === null ? `the stream's newest base image is not past commit ${seq} the replica is at: it stays there` : `the replica was reading the start of the primary's session ${start.session} (its first base image and its log's commits through the start, applied as one; that base alone is an older state than the replica's): it stays at commit ${seq} of session ${this.#applied!.session}`;
    return walnutError('WALNUT_CORRUPT', `the JetStream stream ${this.#stream}'s log message ${this.#unreadableAt} cannot be read again after a re-base (${why}), and ${where} until the primary publishes its next base image (is another client publishing to walnut.${this.#stream}.log?)`, { path: this.path, reason: 'Unreadable' });
  }

  /**
   * The base image whose final part is `last`; its parts are read as `chunks()` is (#baseChunks).
   */
  #baseOf(last: StoredMsg): Base {
    const h = last.header;
    const from = h.get(HEADER.LOG_FROM);
    return { session: h.get(HEADER.SESSION), seq: Number(h.get(HEADER.BASE_SEQ)), time: Number(h.get(HEADER.BASE_TIME)) || 0, logNext: from ? Number(from) : last.seq + 1, chunks: () => this.#baseChunks(last), startMarked: isStartMarked(last) };
  }

  /**
   * The base image whose final part is `last`, as export stream bytes, one part at a time (each
   * fetched when the one before it has been taken): throws BaseUnread 'partGone' when one of its
   * parts is no longer in the stream (its parts are stored before its final one: not one being
   * published), 'failed' when one could not be fetched. Read whole first (its records, then
   * one message framing them all, for restore()), a new replica held the base twice: maxRSS
   * 2.2 GiB for a 979 MiB database.
   */
  async *#baseChunks(last: StoredMsg): AsyncGenerator<Uint8Array> {
    const h = last.header;
    const session = h.get(HEADER.SESSION);
    const part = Number(h.get(HEADER.BASE_PART));
    const first = part === 0 ? last.seq : Number(h.get(HEADER.BASE_FIRST));
    const seq = Number(h.get(HEADER.BASE_SEQ));
    yield STREAM_MAGIC;
    let next = 0; // the part due (parts are numbered 0..part, in stream order)
    for (let s = first; s <= last.seq; s++) {
      if (this.#closed) throw walnutError('WALNUT_CLOSED', 'the replica closed', { path: this.path });
      const m = s === last.seq ? last : await Promise.race([messageAt(this.#link!, this.#stream, s).catch(() => 'failed' as const), this.#closing]);
      if (m === 'failed') throw new BaseUnread('failed');
      // a log message published between the base's parts (publisher.ts), another client's
      // message (isBasePart), or one gone from there (deleted, lost): not a part. The parts'
      // own numbers tell whether the base is whole; a message gone among them, or another
      // client's there, was taken for a missing part, the base for one being published, and
      // waited past for ever (openReplica hung)
      if (m === null || !isBasePart(m, this.#subjects.base, session, seq)) continue;
      if (Number(m.header.get(HEADER.BASE_PART)) !== next) throw new BaseUnread('partGone');
      if (m.data.length < 8) throw walnutError('WALNUT_INVALID_FRAMING', `message ${s} of the JetStream stream ${this.#stream} (part ${next} of the base image of commit ${seq}) is no export stream fragment`, { reason: 'HeaderMissing' });
      yield m.data.subarray(8); // its framed records, after its own magic
      next++;
    }
    if (next !== part + 1) throw new BaseUnread('partGone');
  }

  /**
   * The replica's store, holding the WAL write lock until it closes (store.holdWriteLease()):
   * the file is the primary's copy, so another connection's write (sqlite3 run on the replica
   * by mistake) is refused (SQLITE_BUSY) instead of acknowledged and then overwritten by the
   * next batch (test/hostile/replica-foreign-writer). Its own connection (shareLane: false), so
   * that another store of this process on the file neither writes through it nor leads it.
   */
  async #openStore(): Promise<Store> {
    const store = await openStore(this.path, { ...this.#options.open, shareLane: false });
    try {
      await store.holdWriteLease();
    } catch (e) {
      await store.close().catch(() => undefined);
      throw e;
    }
    return store;
  }

  /** A new replica: the newest base image, built aside and renamed in (restore.ts). */
  async #createFromBase(replace: boolean): Promise<void> {
    await this.#position!.write({ state: 'creating', applied: null, intent: null });
    this.#stillOpening();
    // the base's parts go into restore()'s temporary file as they are read: a part gone or
    // not read fails it before BASE_END (nothing renamed in), and the newest base is looked for again
    const base = await this.#newestBase(async (b) => {
      this.#stillOpening();
      await restore(b.chunks(), this.path, { force: replace });
      return b;
    });
    this.#stillOpening();
    const applied = { session: base.session, seq: base.seq, logNext: base.logNext };
    await this.#position!.write({ state: 'ready', applied, intent: null });
    this.#stillOpening();
    this.#store = await this.#openStore();
    this.#setApplied(applied);
    this.#appliedTime = base.time;
    this.emit('rebase', { session: base.session, seq: base.seq });
  }

  /** After a restart: which side of its last batch the database is on (see the header). */
  async #resolveIntent(record: PositionRecord): Promise<AppliedState> {
    const intent = record.intent;
    let applied = record.applied!;
    if (intent !== null) {
      const snap = await this.#store!.snapshot();
      try {
        if (snap.dbSize === intent.dbSize) {
          // hashed page by page: an intent of 'all' (a re-base, or a batch too large to list)
          // names every page of the database, too many to hold at once
          const h = new Xxh3Stream();
          if (intent.pages === 'all') for (let p = 1; p <= intent.dbSize; p++) h.update(snap.readSync(p));
          else for (const p of intent.pages) h.update(snap.readSync(p));
          if (witnessOf(h, intent.dbSize) === intent.witness) applied = intent.to;
        }
      } finally {
        snap.release();
      }
      await this.#position!.write({ state: 'ready', applied, intent: null });
    }
    return applied;
  }

  /** Applies a batch as one walnut commit, its intent synced first. */
  async #apply(batch: Batch, all = false): Promise<void> {
    if (all) this.#zeroUnwritten(batch);
    else if (batch.low < batch.dbSize) await this.#zeroRegrown(batch);
    const pgnos = [...batch.pages.keys()].sort((a, b) => a - b);
    const pages = pgnos.map((p) => batch.pages.get(p)!);
    let record: PositionRecord = { state: 'ready', applied: this.#applied, intent: { to: batch.to, dbSize: batch.dbSize, pages: all ? 'all' : pgnos, witness: witness(pages, batch.dbSize) } };
    // a batch's page list too long for the position file even as runs (one primary commit of
    // hundreds of thousands of scattered pages: a batch never splits a commit) is witnessed by
    // the whole database after it instead; refused, it stopped the replica for good (position.ts)
    if (!ReplicaPosition.fits(record)) record = { ...record, intent: { ...record.intent!, pages: 'all', witness: await this.#wholeWitness(batch) } };
    await this.#position!.write(record);
    const writes = pgnos.map((pgno, i) => ({ pgno, data: pages[i]! }));
    // a re-base's batch (up to every page of the database) is lent to the store, not copied: its
    // pages are changed by no one (views of the fetched parts, or copies of their own)
    if (all || batch.diff === true) await this.#store!.sequence(writes, { dbSize: batch.dbSize, release: () => undefined }).durable;
    else await this.#store!.commit(writes, { dbSize: batch.dbSize });
    if (all) this.#versions.clear();
    else if (batch.low < this.#cachedDbSize) this.#versions.truncate(batch.low);
    this.#cachedDbSize = batch.dbSize;
    for (let i = 0; i < pgnos.length; i++) this.#versions.set(pgnos[i]!, pages[i]!);
    this.#setApplied(batch.to);
    this.#lag.batches++;
    this.#lag.appliedCommits += batch.commits;
    if (batch.timeMs > 0) {
      this.#lag.lagMs = Math.max(0, Date.now() - batch.timeMs);
      this.#appliedTime = batch.timeMs;
    }
    emitApart(this, 'applied', { session: batch.to.session, seq: batch.to.seq, commits: batch.commits, lagMs: this.#lag.lagMs });
  }

  /**
   * A whole-database batch (all of a base image's pages and the commits after it; a re-base's
   * holds only the pages that differ, Batch.diff, and is not one) writes every
   * page up to its size, its witness the whole database's: the pages no commit after the base
   * wrote past a shrink below them, or past the base's size, read as zeros on the primary.
   */
  #zeroUnwritten(batch: Batch): void {
    const pageSize = this.#store!.pageSize;
    for (let pgno = 1; pgno <= batch.dbSize; pgno++) if (!batch.pages.has(pgno)) batch.pages.set(pgno, new Uint8Array(pageSize));
  }

  /**
   * A batch that shrank the database to `low` and grew it back: the pages past `low` the batch
   * does not write, up to the replica's own size before it, become zero pages of the batch (the
   * primary's state there; the replica's file still held the pre-shrink bytes, and its commit
   * of a size below its own is no regrowth its committer would zero). Pages past its own size
   * need nothing: its committer zeros what could hold old bytes when the size grows past them.
   */
  async #zeroRegrown(batch: Batch): Promise<void> {
    const snap = await this.#store!.snapshot();
    const own = snap.dbSize;
    snap.release();
    const end = Math.min(own, batch.dbSize);
    if (end <= batch.low) return;
    const pageSize = this.#store!.pageSize;
    for (let pgno = batch.low + 1; pgno <= end; pgno++) if (!batch.pages.has(pgno)) batch.pages.set(pgno, new Uint8Array(pageSize)); // one buffer each (the commit may take them)
  }

  /**
   * The witness of the whole database after `batch` (pages 1..dbSize, as resolveIntent reads
   * them for an intent of 'all'): the batch's pages, the others as the replica has them now
   * (nothing but #apply writes its store), zeros past its size.
   */
  async #wholeWitness(batch: Batch): Promise<string> {
    const snap = await this.#store!.snapshot();
    try {
      const pageSize = this.#store!.pageSize;
      const h = new Xxh3Stream();
      const chunk = Buffer.alloc(256 * pageSize);
      for (let first = 1; first <= batch.dbSize; first += 256) {
        const count = Math.min(256, batch.dbSize - first + 1);
        const have = Math.max(0, Math.min(count, snap.dbSize - first + 1));
        if (have > 0) snap.readPagesIntoSync(first, have, chunk);
        chunk.fill(0, have * pageSize, count * pageSize);
        for (let i = 0; i < count; i++) h.update(batch.pages.get(first + i) ?? chunk.subarray(i * pageSize, (i + 1) * pageSize));
        if (first % (256 * 64) === 1) await new Promise((r) => setImmediate(r)); // the loop turns (acks, heartbeats) during a long read
      }
      return witnessOf(h, batch.dbSize);
    } finally {
      snap.release();
    }
  }

  /**
   * Re-bases a live replica on the newest base image (one commit of the whole database). After
   * a `gap` (the commits after the applied state are no longer in the stream) only a base image
   * past the applied state helps: one of the applied session at or before it is waited past
   * (said once, an 'error' WALNUT_IO reason BehindRetention). It was applied: the stream's
   * retention had cut the log a newest base image goes on with (a later base's parts are
   * published behind the log of its first commits), so the replica re-based onto that base
   * over and over (a whole-database commit each, ~7 a second) and went no further; a base of
   * the applied session older than the applied state took it back. After a gap or an unreadable
   * message in the start of a new session being read (`startLeft`), that session's first base
   * and any base of it before the start are waited past too (see the header).
   */
  async #rebase(why: string, gap: Stuck | false = false, startLeft: StartLeft | null = null): Promise<void> {
    const applied = this.#applied!;
    // (its parts fetched one at a time, and only the pages that differ from the replica's kept
    // for the one commit that applies them: #rebasePages)
    const { base, pages, dbSize } = await this.#newestBase((b) => this.#rebasePages(b), { session: applied.session, time: this.#appliedTime, seq: gap !== false ? applied.seq : null, startLeft }, why, gap || undefined);
    const batch: Batch = { pages, dbSize, low: dbSize, commits: 0, timeMs: 0, to: { session: base.session, seq: base.seq, logNext: base.logNext }, diff: true };
    // a new session's start: the base goes on with its log's commits through the mark (see the header)
    if (base.startMarked && gap === false) this.#sessionStart = { batch, time: base.time, why };
    else await this.#applyRebase(batch, base.time, why);
  }

  /**
   * The pages of a base image that differ from the replica's (compared as each part arrives,
   * against a snapshot of the replica: nothing else writes it), and page 1 always; the base
   * checked against its BASE_END (page count, XXH3-128 of all its pages) before anything is
   * applied. Applied as one batch (Batch.diff), they leave every page 1..dbSize equal to the
   * base's. Held whole (every page, views of every fetched part, then the commit's copy), a
   * re-base of a 979 MiB database took the replica to 2.3 GiB maxRSS; now it holds the pages
   * that changed since its state (a primary's restart: few; a VACUUM: all of them, once).
   */
  async #rebasePages(base: Base): Promise<{ base: Base; pages: Map<number, Uint8Array>; dbSize: number }> {
    const pageSize = this.#store!.pageSize;
    const snap = await this.#store!.snapshot();
    try {
      const own = snap.dbSize;
      const RUN = 256;
      const mine = new Uint8Array(RUN * pageSize);
      const pages = new Map<number, Uint8Array>();
      const hash = new Xxh3Stream();
      let seen = 0;
      let dbSize = -1;
      for await (const payload of WalStreamReader.from(base.chunks())) {
        const rec = decodeRecord(payload);
        if (rec.kind === 'basePages') {
          const size = rec.pages.length / rec.count;
          // the primary's page size changed (journal_mode DELETE, page_size, VACUUM, WAL again; or
          // another database on the stream): the replica's file cannot follow. It stopped with its
          // store's "page 1 has 1024 bytes; the page size is 4096", which said neither why nor what to do
          if (size !== pageSize) {
            throw walnutError('WALNUT_INVALID_ARGUMENT', `the primary's page size is now ${size} bytes (session ${base.session}), the replica's ${pageSize}: a replica cannot change its page size; remove ${this.path} and ${ReplicaPosition.pathOf(this.#file)}, then open the replica again (it is created from the newest base image)`, { path: this.path, reason: 'PageSizeChanged' });
          }
          if (rec.firstPgno !== seen + 1) throw walnutError('WALNUT_CORRUPT', `the stream's newest base image has page ${rec.firstPgno} where page ${seen + 1} was due`);
          hash.update(rec.pages);
          for (let i = 0; i < rec.count; i += RUN) {
            const first = rec.firstPgno + i;
            const n = Math.min(RUN, rec.count - i);
            const have = Math.max(0, Math.min(n, own - first + 1));
            if (have > 0) snap.readPagesIntoSync(first, have, mine.subarray(0, have * pageSize));
            const differ: number[] = [];
            for (let j = 0; j < n; j++) {
              const page = rec.pages.subarray((i + j) * size, (i + j + 1) * size);
              if (first + j === 1 || j >= have || !Buffer.from(page.buffer, page.byteOffset, size).equals(Buffer.from(mine.buffer, j * pageSize, pageSize))) differ.push(j);
            }
            // a few pages copied (the part's message can go), most of them kept as views of it (a
            // copy each would hold them twice until the message is collected)
            const copy = differ.length * 2 < n;
            for (const j of differ) {
              const page = rec.pages.subarray((i + j) * size, (i + j + 1) * size);
              pages.set(first + j, copy ? page.slice() : page);
            }
          }
          seen += rec.count;
        } else if (rec.kind === 'baseEnd') {
          if (rec.dbSize !== seen || !Buffer.from(hashBytes(hash)).equals(Buffer.from(rec.hash))) throw walnutError('WALNUT_CORRUPT', 'the stream\'s newest base image does not match its BASE_END hash');
          dbSize = rec.dbSize;
        }
      }
      if (dbSize < 0) throw walnutError('WALNUT_CORRUPT', 'the stream\'s newest base image has no BASE_END');
      return { base, pages, dbSize };
    } finally {
      snap.release();
    }
  }

  /** Applies a re-base's batch (a base image's pages that differ from the replica's, and the commits after it when it is a session's start) as one commit. */
  async #applyRebase(batch: Batch, baseTime: number, why: string): Promise<void> {
    this.#lag.rebases++;
    await this.#apply(batch, batch.diff !== true);
    if (batch.commits === 0) this.#appliedTime = baseTime;
    emitApart(this, 'rebase', { session: batch.to.session, seq: batch.to.seq, why });
  }

  /** Reads the log from the applied state's message on, applying batches; re-bases when it must. */
  async #consumeLoop(): Promise<void> {
    for (let attempt = 0; !this.#closed; ) {
      try {
        const due = this.#rebaseDue;
        this.#rebaseDue = null;
        if (due !== null) throw new Rebase(due);
        await this.#consume();
        attempt = 0;
      } catch (e) {
        if (this.#closed) return;
        if (e instanceof Rebase) {
          await this.#rebase(e.message, e.gap && 'BehindRetention', e.gap ? this.#startLeft : null);
          continue;
        }
        if (e instanceof WalnutError && (e.code === 'WALNUT_CORRUPT' || e.code === 'WALNUT_INVALID_FRAMING')) {
          // A commit that does not verify is re-based past (a replay from the base may read it).
          // The same log message failing again after that is in the stream itself (another
          // client's message on the log subject, a record this version cannot read): re-based
          // onto the same base image again, the replica met it again, for ever (a whole-database
          // commit and an 'error' each time, ~200 a second). It waits for a base image past it.
          const again = this.#lastRead.seq === this.#unreadableAt;
          this.#unreadableAt = this.#lastRead.seq;
          if (!again) this.#fail(e);
          await this.#rebase(e.message, again && 'Unreadable', again ? this.#startLeft : null);
          continue;
        }
        // the replica's own store failed, or refused the batch (WALNUT_INVALID_ARGUMENT: what the
        // primary committed does not fit the replica's open options, a database past its
        // maxPageCount; nothing else here throws it): each try of the batch meets the same
        // refusal, which was retried for ever, an 'error' ~5 times a second, waitFor() pending
        if (e instanceof WalnutError && (e.code === 'WALNUT_CLOSED' || e.code === 'WALNUT_FAILED' || e.code === 'WALNUT_IO' || e.code === 'WALNUT_FULL' || e.code === 'WALNUT_INVALID_ARGUMENT')) throw e;
        // the NATS client's own errors ("timeout" while a server restarts or a cluster elects a
        // leader, JetStream API errors) were emitted as they were: plain Errors, no code
        this.#fail(e instanceof WalnutError ? e : walnutError('WALNUT_IO', `reading the JetStream stream ${this.#stream} failed: ${(e as Error)?.message ?? String(e)}; retrying`, { reason: 'nats', cause: e }));
        await backoff(Math.min(attempt++, 2)); // at most 200 ms: a cluster's new stream leader is taken within that
      }
    }
  }

  async #consume(): Promise<void> {
    const applied = this.#applied!;
    const start = this.#sessionStart;
    this.#sessionStart = null; // (the reading starting over drops it: see the header)
    // quick: after a stream leader is lost this is retried until the new one answers
    const consumer = await this.#link!.quick.js.consumers.get(this.#stream, { filter_subjects: this.#subjects.log, deliver_policy: 'by_start_sequence' as never, opt_start_seq: Math.max(1, start?.batch.to.logNext ?? applied.logNext) });
    const messages = await consumer.consume({ expires: 5000 });
    this.#stopIter = () => void messages.close().catch(() => undefined);
    this.#lastRead.at = performance.now();
    if (this.#closed) this.#stopIter();
    const maxCommits = this.#maxBatchCommits;
    const maxPages = this.#maxBatchPages;
    const pageSize = this.#store!.pageSize;
    let txn: Txn | null = null;
    let batch: Batch | null = start?.batch ?? null;
    // the batch is a new session's start (its base and commits): Walnut-Session-Start once read
    let whole = start !== null;
    this.#startingSession = start?.batch.to.session ?? null;
    let mark: number | null = null;
    /** The start's batch waits for the commits through the mark, whatever the batch limits or the log's end say; it is applied as soon as it holds them. */
    const holding = (): boolean => whole && (mark === null || batch!.to.seq < mark);
    let next: number | null = null; // the commit the next record belongs to
    const view: { snap: Snapshot | null } = { snap: null }; // the replica's state, for delta bases (until the next batch)
    const done = (): number => batch?.to.seq ?? this.#applied!.seq;
    /** The page as the stream had it before this record: this commit's, the batch's, or the replica's (cached, else read). */
    const previous = async (pgno: number): Promise<Uint8Array> => {
      const p = txn!.pages.get(pgno) ?? batch?.pages.get(pgno);
      if (p !== undefined) return p;
      if (batch !== null && pgno > batch.low) return new Uint8Array(pageSize); // dropped by a shrink in this batch, not written since
      const v = this.#versions.get(pgno);
      if (v !== undefined) return v;
      const snap = (view.snap ??= await this.#store!.snapshot());
      if (pgno > snap.dbSize) return new Uint8Array(pageSize);
      const page = snap.readSync(pgno);
      this.#versions.set(pgno, page);
      return page;
    };
    const iterator = messages[Symbol.asyncIterator]();
    let nextStep: Promise<IteratorResult<JsMsg>> | null = null;
    let held = false; // a finished batch waits for messages queued locally (see the header)
    const applyBatch = async (): Promise<void> => {
      held = false;
      if (txn !== null) batch!.to.logNext = txn.startLog; // a commit cut across messages is read again from its first
      view.snap?.release();
      view.snap = null;
      if (whole) {
        whole = false;
        this.#startingSession = null;
        this.#unstall('StartUnmarked');
        await this.#applyRebase(batch!, start!.time, start!.why);
      } else await this.#apply(batch!);
      batch = null;
    };
    try {
      for (;;) {
        nextStep ??= iterator.next();
        const step = held ? await Promise.race([nextStep, new Promise<typeof HELD_QUIET>((r) => setTimeout(r, HOLD_MS, HELD_QUIET).unref())]) : await nextStep;
        if (step === HELD_QUIET) {
          if (this.#closed) break;
          await applyBatch();
          continue;
        }
        nextStep = null;
        if (step.done === true) break;
        const m = step.value;
        if (this.#closed) break;
        this.#lastRead = { seq: m.seq, at: performance.now() };
        const session = m.headers?.get(HEADER.SESSION) ?? '';
        const first = Number(m.headers?.get(HEADER.FIRST_COMMIT));
        const reading = batch?.to.session ?? this.#applied!.session; // (a start's batch is the new session's)
        if (session !== reading) {
          if (await this.#isForeign(session, m.seq, reading)) continue;
          throw new Rebase(`the primary began session ${session}`);
        }
        if (whole && m.headers?.has(HEADER.SESSION_START)) mark = Number(m.headers.get(HEADER.SESSION_START));
        if (next === null || first !== next) {
          // a fresh read, or the first message after an earlier partial one was read again
          if (first > done() + 1) throw new Rebase(`commits ${done() + 1}..${first - 1} are no longer in the stream`, true);
          next = first;
          txn = null;
        }
        for (const payload of WalStreamReader.fromBuffer(m.data)) {
          const rec = decodeRecord(payload);
          const skip = next <= done();
          if (rec.kind === 'frames' || rec.kind === 'pageDelta') {
            if (skip) continue;
            txn ??= { pages: new Map(), hash: new Xxh3Stream(), dbSize: 0, startLog: m.seq };
            const frames: Uint8Array[] = [];
            if (rec.kind === 'frames') {
              const frameSize = FRAME_HEADER_SIZE + pageSize;
              if (rec.frames.length % frameSize !== 0) throw walnutError('WALNUT_CORRUPT', `a FRAMES record of ${rec.frames.length} bytes does not hold whole ${pageSize}-byte frames`);
              for (let at = 0; at < rec.frames.length; at += frameSize) frames.push(rec.frames.subarray(at, at + frameSize));
            } else {
              frames.push(applyPageDelta(rec, await previous(deltaPgno(rec.frameHeader))));
            }
            for (const f of frames) {
              const dv = new DataView(f.buffer, f.byteOffset, 8);
              txn.hash.update(f);
              txn.pages.set(dv.getUint32(0), f.subarray(FRAME_HEADER_SIZE));
              if (dv.getUint32(4) !== 0) txn.dbSize = dv.getUint32(4);
            }
          } else if (rec.kind === 'commitMeta') {
            if (Number(rec.seq) !== next) throw walnutError('WALNUT_CORRUPT', `COMMIT_META ${rec.seq} where commit ${next} was due`);
            next++;
            if (skip) {
              txn = null;
              continue;
            }
            if (txn === null || txn.dbSize === 0 || !Buffer.from(hashBytes(txn.hash)).equals(Buffer.from(rec.hash))) throw walnutError('WALNUT_CORRUPT', `commit ${rec.seq} does not match its COMMIT_META`);
            batch ??= { pages: new Map(), dbSize: 0, low: Infinity, commits: 0, timeMs: 0, to: { session, seq: 0, logNext: 0 } };
            // only the pages within the commit's size: a SQLite transaction that spilled pages to
            // the WAL before its commit shrank the database (auto_vacuum=FULL, a DELETE beside a
            // small cache_size) holds frames past its commit frame's size, which no reader ever
            // reads (SQLite's checkpoint skips them). Kept, the batch's walnut commit was refused
            // (WALNUT_INVALID_ARGUMENT, dbSize below a page it writes) and retried forever: the
            // replica applied nothing again (1,404 such frames in a 3,000-row DELETE, cache_size 5)
            for (const [pgno, page] of txn.pages) if (pgno <= txn.dbSize) batch.pages.set(pgno, page);
            if (txn.dbSize < batch.dbSize) for (const pgno of batch.pages.keys()) if (pgno > txn.dbSize) batch.pages.delete(pgno);
            batch.dbSize = txn.dbSize;
            batch.low = Math.min(batch.low, txn.dbSize);
            batch.commits++;
            batch.timeMs = Number(rec.timeMs);
            batch.to = { session, seq: Number(rec.seq), logNext: m.seq + 1 };
            txn = null;
            // at a limit: applied now, mid-message (the message is read again from its first
            // commit after a restart; those applied are skipped). Checked only once the message
            // was read, a batch took all of a message's commits: maxBatchCommits 1 applied
            // batches of 112 commits, and the default 1,000 one of a message's thousands
            if (!holding() && (whole || batch.commits >= maxCommits || batch.pages.size >= maxPages)) {
              batch.to.logNext = m.seq;
              await applyBatch();
            }
          }
        }
        this.#lag.pendingMessages = m.info.pending;
        held = false;
        if (batch === null || holding()) continue;
        if (whole || batch.commits >= maxCommits || batch.pages.size >= maxPages) await applyBatch();
        else if (m.info.pending === 0) {
          if (messages.getPending() > 0) held = true;
          else await applyBatch();
        }
      }
    } finally {
      this.#startLeft = whole ? { session: this.#startingSession!, mark } : null;
      this.#startingSession = null;
      this.#unstall('StartUnmarked');
      void iterator.return?.(undefined).catch(() => undefined);
      view.snap?.release();
      this.#stopIter = null;
      await messages.close().catch(() => undefined);
    }
  }
}

/** Opens (creating or resuming) a replica of the stream at `path`; resolves once it is reading. */
export async function openReplica(path: string, options: ReplicaOptions): Promise<Replica> {
  if (arguments.length > 2) refuseExtraArguments('openReplica', 'a path and options', 2, arguments);
  const r = readInput('options', () => new Replica(path, options));
  await r.start();
  return r;
}
