/**
 * replicate/publisher.ts — Replication (store.replicateTo): every commit of the database, as
 * the export's follow mode sees them (this store's and other processes' alike), published in
 * order to a NATS JetStream stream (layout in nats.ts), with base images from time to time.
 *
 * Invariants:
 *  - A session is one follow export (exporter.ts) and its numbering of commits: the session's
 *    first base image is the export's own (the state after commit N), then commits N+1, N+2, ...
 *    with no gap and none twice. The session's start S (the last commit of the export's first
 *    pass: the database as it found it) is marked on the first log message that ends at or past
 *    it, or on a message of no records when every commit through S was cut before the pass's
 *    flush told S (Session.startSeq; nats.ts Walnut-Session-Start), and the first base's final
 *    part says the log marks it (Walnut-Start-Marked). Messages go out in order, up to
 *    `maxInFlight` of them awaiting their acks (pipeline.ts): each expects its predecessor's Nats-Msg-Id as the stream's last
 *    message, so none is stored before the one ahead of it; a failed message is sent again,
 *    with those behind it, same bytes and same Nats-Msg-Id, so a publish whose ack was lost
 *    is dropped by the stream (duplicate window), never stored twice. A message's records
 *    leave the queue, and publishedSeq moves, only once it and all before it are stored.
 *  - Commits never wait for the network: the export's sink only queues records (memory), or
 *    waits for room, which keeps the export (never a commit) waiting, the records in the WAL.
 *    It waits while the queue would pass half of `maxLagBytes` and the stream acknowledges
 *    (it stored a message within STALLED_MS of the wait's start or of the last message stored:
 *    Session.#stalled), and always during an export's first pass: a
 *    backlog the export reads faster than the stream stores it (a starved publisher catching
 *    up) stays in the WAL instead of abandoning the session (it did: 16 MB released at once
 *    into a 4 MiB bound, a new session and base image). When the stream stalls (the sink has
 *    waited STALLED_MS and nothing was stored) the sink stops waiting, and once the records queued and not yet
 *    acknowledged pass `maxLagBytes` the session is abandoned (its queue dropped, its export
 *    stopped, event 'lagExceeded'), so that an outage does not keep the WAL from restarting;
 *    a new session starts, after a passive checkpoint, with a new base image, as soon as the
 *    stream answers again. Replicas re-base onto it (replica.ts). Memory is bounded by
 *    maxLagBytes plus the base image being published (next point but two: a window, not the
 *    database's size).
 *  - The backlog ahead of the queue (metrics().exportBehindBytes: WAL frames committed and
 *    not yet read by the export, and with the worker the records handed to it and not yet
 *    taken) has the same bound, with another policy (behind.ts): past maxLagBytes, event
 *    'exportBehind' (the metrics) once per crossing, again only after it fell below half,
 *    counted in exportBehindExceeded; nothing is dropped, no session abandoned, no commit
 *    waits. That backlog is committed and durable in the WAL, read as the publisher takes it;
 *    it grows when the publisher's thread gets too little CPU (background: true under load),
 *    and abandoning the session would not shrink it: the next session begins with a base
 *    image of the whole database, read and published by that same thread, and the commits
 *    made meanwhile wait in the WAL again (more work for the thread that is already behind,
 *    and the replicas re-base). What it costs is the WAL's size: once 64 MiB of it is unread
 *    the WAL no longer restarts (follow.ts), and it grows until the export catches up. It is
 *    watched on the store's thread (thread.ts), every BEHIND_CHECK_MS.
 *  - Later base images (every `baseEveryMs`, and every `baseEveryCommits` commits once the log
 *    since the last base is at least half that base's size: a base of a large database after
 *    every few thousand small commits was most of what was published; and, in a stream with a
 *    max age, once the newest is half that age old, commits or not: #baseAging) are read from a
 *    snapshot of the store at a commit boundary (salts, mxFrame), which the export's own
 *    records map to the session's commit number S. Any log message acknowledged before the
 *    snapshot was taken holds commits <= S only, so commits after S are in messages from
 *    Walnut-Log-From = (last such message) + 1 on. Such a base ends with the generation's
 *    WAL_HEADER anchored at S's commit frame, so base + the log's commits after S is an
 *    export stream restore.ts takes as it is (restore-nats.ts).
 *  - stop() publishes every commit durable in the database when it is called (its export's last
 *    pass reads the WAL after the call; a stop() during the store's close() is made once close() has
 *    settled its commits: store.ts #stopAfterCommitsSettle), within stopTimeoutMs: called before the
 *    first session began, it still connects (until that deadline, which also ends a connect
 *    attempt or a retry pause in progress: nats.ts unlessInterrupted), starts that session and
 *    lets its export make one pass; no session starts after stop() but one after a session the
 *    lag bound abandoned (its queue was dropped: the next session's base and one pass are
 *    stop()'s flush), until the deadline (past it, commits exported and not stored are an
 *    error StopTimeout, not silence). `ready` resolves once a
 *    session has begun (its export's first record), and rejects if the replication ended first.
 *  - Such a later base does not hold the log up: its parts (of at most LATER_BASE_PART_BYTES,
 *    256 KiB: a log message sent behind a part waits until the part is stored) go out one at a
 *    time, after the log messages cut meanwhile (Session.laterBases), so log messages may be stored between
 *    its first and final part (readers skip them: replica.ts, restore-nats.ts). Queued ahead of
 *    the log in the ordered pipeline, a base of a 12 MB database held every commit behind it
 *    until all its parts were stored. A session's first base stays ahead of its log (the log
 *    starts after its final part). Nor does its read: a part's records are read from the
 *    snapshot when the part is cut, between acks (base-image.ts; read in one go into fresh
 *    memory, a 12 MB base held the worker's loop, and every ack, for 50-440 ms).
 *  - No base image is held whole (it was: a 979 MiB database took the publisher to 1.25 GiB
 *    RSS). A later base is read from its snapshot a part at a time as the part is cut (#basePart:
 *    the part, and records read ahead until one does not fit), so it holds ~2 parts; its
 *    snapshot is held until the final part is stored or the base is dropped (#endBase), and its
 *    read mark keeps the WAL from restarting that long (README). BASE_META goes first: the base
 *    is queued only once the export has seen the snapshot's commit (#snapshotBase). A session's
 *    first base is queued at the export's BASE_META, ahead of the log, and its parts are cut as
 *    the export's records fill them; the export's sink waits (room()) while FIRST_BASE_WINDOW of
 *    it is accepted and not yet stored and some of it is in messages (records that do not fill
 *    a part yet are never waited on: the pump cuts none of them before more come); once the stream
 *    has stalled (STALLED_MS) with the WAL the export has not read past maxLagBytes, the session
 *    is abandoned there, as past the log's bound (the wait is inside the export's first pass,
 *    whose snapshot kept the WAL from restarting for the whole outage). Parts are
 *    framed when cut and their records' memory given back (BufferPool). baseHeldBytes counts it.
 *  - A message's body is framed once (a base part's when first sent) in memory of a BufferPool
 *    (buffers.ts), which takes it back once the message is stored: the NATS client hands it to
 *    the socket without a copy (nats.ts writeWithoutCopy), and a connection writes in order,
 *    so an answer on it means every earlier send on it, of this body too, was written (the
 *    kernel has the bytes); a dropped connection's unwritten sends are never written.
 *    A body still held by the client past a lost connection, sent again once it is back, was
 *    stored under its id already: the stream drops it (duplicate window) or refuses it (it
 *    names a predecessor that is no longer the stream's last), whatever its bytes are by then.
 *  - The queued log records (each commit's FRAMES or PAGE_DELTA and COMMIT_META, encoded
 *    straight into it) are carved from a session's RecordArena (buffers.ts) and released as
 *    their messages are stored: a fresh ArrayBuffer per record (~20 MB/s at 5,000 commits/s)
 *    ran garbage collections on the publisher's loop for V8's external memory, acks waiting.
 *    They are queued framed as a message body frames them (u64 length, payload), a commit's
 *    records one entry (a commit past half a message several; a WAL_HEADER one alone), read
 *    in place from the export's framing (appendFramed): a message body is the magic and its
 *    entries' bytes. An entry per record was a view, an object and two copies per record.
 *  - With `delta` (default) a frame whose page has a previous version in the stream goes as
 *    PAGE_DELTA when that is smaller (export/page-delta.ts). The session's export encodes them
 *    (its sink's SinkPageDeltas, framing.ts): natively, inside the WAL read on the store's side
 *    (native/commit_records.h delta mode, the versions kept there, per export = per session),
 *    with runs of whole frames cut to half a message; the session queues the records as they
 *    come. Encoded here, from the plain records, every commit's page crossed to the worker and
 *    was compared, hashed and copied again in JavaScript on the publisher's thread.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';

import { describeValue, refuseExtraArguments } from '../arguments';
import { walnutError, WalnutError } from '../errors';
import { LONGEST_TIMER_MS } from '../longest-timer';
import { be32, FRAME_HEADER_SIZE } from '../format/frame-header';
import type { ExportOptions } from '../export/exporter';
import { checkFramed, PAGE_DELTAS, StreamMagic, type SinkPageDeltas, type WalRecordSink } from '../export/framing';
import { BASE_PAGES_HEADER, basePagesRecord, commitMetaSeq, commitMetaTimeMs, decodeRecord, encodeBaseMetaRecord, encodeWalHeaderRecord, KIND, type ChainAnchor } from '../export/records';
import type { ExportHandle } from '../export/stream';
import type { Snapshot } from '../wal-index/snapshot';
import { BaseImageStream } from './base-image';
import { BehindWatch } from './behind';
import { BufferPool, RecordArena } from './buffers';
import { emitApart } from './listeners';
import { checkOptionNames, checkServers, checkStreamName, connectNats, ensureStream, frameInto, framedSize, HEADER, integerOption, subjectsOf, type NatsLink, type StreamLimits, type Subjects } from './nats';
import { OrderedPublishes, type Outgoing, type PipelineStats } from './pipeline';

export interface ReplicateOptions extends StreamLimits {
  /** NATS server URL(s): 'nats://127.0.0.1:4222' or a list / comma-separated list. */
  servers: string | string[];
  /** The JetStream stream (created when missing, subjects walnut.<stream>.>). */
  stream: string;
  /**
   * A base image after this many ms (default 600,000), or after this many commits (default 10,000)
   * once the log published since the last base is at least half that base's size, whichever first.
   */
  baseEveryCommits?: number;
  baseEveryMs?: number;
  /**
   * Records queued and not yet acknowledged past which the session is abandoned ('lagExceeded',
   * default 64 MiB). Also the bound of the backlog ahead of the export (exportBehindBytes), past
   * which 'exportBehind' is emitted and nothing else is done (publisher.ts header: why).
   */
  maxLagBytes?: number;
  /** Largest message body (default 900 KiB); at most the server's max_payload (1 MiB by default) less 4 KiB for headers, whatever is asked. */
  maxMessageBytes?: number;
  /** Messages published and not yet acknowledged at once (default 16; 1 = one at a time). */
  maxInFlight?: number;
  /** Delta-encode pages sent again (default true), keeping at most deltaCacheBytes of previous versions (default 64 MiB). */
  delta?: boolean;
  deltaCacheBytes?: number;
  /** How often the export looks for other processes' commits (ms, default 20). */
  pollMs?: number;
  /** How long stop() may spend publishing what is queued (ms, default 5,000). */
  stopTimeoutMs?: number;
  /**
   * Publish from a worker thread (default true; the store's event loop then does its commits
   * and the export's WAL reads only: thread.ts), or false: on this event loop. Stores in
   * lockingMode 'exclusive' always publish here (the worker reads base images through a
   * connection of its own).
   */
  thread?: boolean;
  /**
   * Run the worker thread in the kernel's background class (default false; Linux SCHED_IDLE,
   * elsewhere nothing changes): it takes a CPU only when the commit path's threads leave one
   * free, so a commit's wake-up after its fdatasync never waits behind the publisher. Not the
   * default: where other threads keep every CPU busy the publisher all but stops (weight 3
   * against 1,024; measured, a few hundred of 30,000 commits published, stop() past
   * stopTimeoutMs), with its backlog in the WAL (metrics().exportBehindBytes, event
   * 'exportBehind' past maxLagBytes), not in the queue 'lagExceeded' bounds. Only with
   * the worker: refused (reason background) with thread: false or on a store in lockingMode
   * 'exclusive', which run the publisher on the store's loop.
   */
  background?: boolean;
}

/** The pipeline's counters (messages, bytesPublished, publishRetries, duplicates, resyncs, inFlight, peakInFlight: pipeline.ts), and: */
export interface ReplicationMetrics extends Omit<PipelineStats, 'lastError'> {
  session: string | null;
  sessions: number;
  /** The newest commit queued (exported) and the newest acknowledged by the stream, in the session's numbering. */
  exportedSeq: number;
  publishedSeq: number;
  /** Commits and bytes queued, not yet acknowledged. */
  lagCommits: number;
  lagBytes: number;
  /** Age of the oldest unacknowledged commit (ms; 0 when none). */
  lagMs: number;
  /**
   * Bytes committed and not yet queued, so not in lagBytes: WAL frames the session's export has
   * not read yet (ExportHandle.behindBytes; from the export's snapshot on, its base image's
   * read included), and with the worker thread the records handed to it and not yet taken
   * (each commit counted once). Near 0 while the publisher keeps up; it grows when the
   * publisher's thread gets too little CPU. Past maxLagBytes: event 'exportBehind' (see the header).
   */
  exportBehindBytes: number;
  /** Times exportBehindBytes passed maxLagBytes (each an 'exportBehind' event), and the largest it was read. */
  exportBehindExceeded: number;
  exportBehindPeakBytes: number;
  bases: number;
  /**
   * Bytes of base images the publisher holds now (records read from the export or a snapshot,
   * in parts not yet stored in the stream) and the most it held: bounded by a window
   * (FIRST_BASE_WINDOW, 8 MiB, for a session's first base; one part of 256 KiB and a record
   * read ahead for a later one), not by the database's size (a base was held whole).
   */
  baseHeldBytes: number;
  baseHeldPeakBytes: number;
  /** Frames sent whole and as PAGE_DELTA, and the page bytes each way. */
  fullFrames: number;
  deltaFrames: number;
  fullPageBytes: number;
  deltaBytes: number;
  /** Sessions abandoned past maxLagBytes. */
  lagResets: number;
  lastError: string | null;
}

/** What replication needs of a store (commit/store.ts implements it). */
export interface ReplicationSource {
  readonly path: string;
  readonly pageSize: number;
  exportTo(sink: WalRecordSink, options: ExportOptions): ExportHandle;
  snapshot(): Promise<Snapshot>;
  checkpoint(mode: 'passive'): Promise<unknown>;
  /** The export's backlog is counted, and its bound watched, by another thread's handle (thread.ts): none here. */
  behindCountedElsewhere?: boolean;
  /** With behindCountedElsewhere: whether that backlog is past maxLagBytes, as the other thread last said. */
  behindOver?: () => boolean;
}

/**
 * The handle store.replicateTo returns. Events: 'lagExceeded' (metrics: the session abandoned),
 * 'exportBehind' (metrics: exportBehindBytes passed maxLagBytes; nothing abandoned or dropped),
 * 'base' ({ seq, session }),
 * 'published' ({ session, seq, ageMs, queuedMs, ackMs }: commits through seq are stored in the
 * stream, the last of them queued by the export ageMs ago; of that, queuedMs until the message
 * holding it last went to the server, ackMs until the stream acknowledged that message (or a
 * later one, which proves it stored); the rest waited for messages ahead of it), 'error'
 * (WalnutError, not fatal), 'end' (stopped, disconnected).
 */
export interface ReplicationHandle extends EventEmitter {
  /**
   * Resolves once the stream exists and the first session's export has begun; rejects
   * (WALNUT_CLOSED when stopped) if the replication ends before any session began.
   */
  readonly ready: Promise<void>;
  /** Takes no arguments (one is refused: WALNUT_INVALID_ARGUMENT, reason options). */
  metrics(): ReplicationMetrics;
  /**
   * Publishes every commit durable in the database when it is called (this store's and other
   * processes', read from the WAL by a last pass of the follow export made after the call), within
   * stopTimeoutMs, then disconnects; called before the replication is ready, it still connects,
   * starts a session and publishes (a flush). Commits made after the call may be published too.
   * Called during the store's close(), it is made once close() has settled the store's commits,
   * stopTimeoutMs counting from there (store.ts #stopAfterCommitsSettle).
   * A number (or bigint) is refused, WALNUT_INVALID_ARGUMENT reason options, nothing stopped: it
   * reads as a timeout, which is replicateTo's stopTimeoutMs (stop(60000) kept the default 5 s
   * without a word); any other argument is taken (arguments.ts: a verb that ends something is
   * handed to emitters as a callback).
   */
  stop(): Promise<void>;
}

/**
 * The refusal of an argument a replication's stop() does not take (ReplicationHandle.stop), or
 * null: the first argument, when it is a number or a bigint.
 */
export function stopArgumentError(first: unknown): WalnutError | null {
  if (typeof first !== 'number' && typeof first !== 'bigint') return null;
  return walnutError('WALNUT_INVALID_ARGUMENT', `replication.stop() takes no timeout (given ${describeValue(first)}): its deadline is replicateTo's option stopTimeoutMs`, { reason: 'options' });
}

export interface Resolved {
  servers: string[];
  stream: string;
  limits: StreamLimits;
  baseEveryCommits: number;
  baseEveryMs: number;
  maxLagBytes: number;
  maxMessageBytes: number;
  maxInFlight: number;
  delta: boolean;
  deltaCacheBytes: number;
  pollMs: number;
  stopTimeoutMs: number;
  thread: boolean;
  background: boolean;
}

const REPLICATE_OPTIONS = ['servers', 'stream', 'replicas', 'maxBytes', 'maxAgeMs', 'duplicateWindowMs', 'baseEveryCommits', 'baseEveryMs', 'maxLagBytes', 'maxMessageBytes', 'maxInFlight', 'delta', 'deltaCacheBytes', 'pollMs', 'stopTimeoutMs', 'thread', 'background'] as const;

/** The options with their defaults; WALNUT_INVALID_ARGUMENT (reason: the option) for a bad one. */
export function resolveReplicateOptions(o: ReplicateOptions): Resolved {
  if (typeof o !== 'object' || o === null) throw walnutError('WALNUT_INVALID_ARGUMENT', 'replicateTo needs options { servers, stream }', { reason: 'options' });
  checkOptionNames(o, REPLICATE_OPTIONS, 'replicateTo');
  const int = (name: keyof ReplicateOptions, dflt: number, min: number, max?: number): number => integerOption(o, name, dflt, min, max);
  for (const name of ['delta', 'thread', 'background'] as const) {
    if (o[name] !== undefined && typeof o[name] !== 'boolean') throw walnutError('WALNUT_INVALID_ARGUMENT', `replication option ${name} must be true or false`, { reason: name });
  }
  // the class is the worker's: asked for with no worker, it was silently not had
  if (o.background === true && o.thread === false) throw walnutError('WALNUT_INVALID_ARGUMENT', 'replication option background: true needs the worker thread (thread: true)', { reason: 'background' });
  return {
    servers: checkServers(o.servers),
    stream: checkStreamName(o.stream),
    limits: streamLimits(int),
    baseEveryCommits: int('baseEveryCommits', 10_000, 1),
    baseEveryMs: int('baseEveryMs', 600_000, 1),
    maxLagBytes: int('maxLagBytes', 64 << 20, 1 << 20),
    maxMessageBytes: int('maxMessageBytes', 900 << 10, 64 << 10, 64 << 20),
    maxInFlight: int('maxInFlight', 16, 1, 1024),
    delta: o.delta ?? true,
    deltaCacheBytes: int('deltaCacheBytes', 64 << 20, 0),
    pollMs: int('pollMs', 20, 1, 60_000),
    stopTimeoutMs: int('stopTimeoutMs', 5000, 0),
    thread: o.thread ?? true,
    background: o.background ?? false,
  };
}

/** The largest age or window the server takes: it reads them as int64 nanoseconds. */
const MAX_NANOS_MS = Math.floor((2 ** 63 - 1) / 1e6);

/**
 * The stream's limits. nats-server refuses a duplicate window longer than the max age ("duplicates
 * window can not be larger then max age"): the default window (2 min) is at most maxAgeMs, and
 * one given past it is refused here, as is an age below the window's 1 s floor or an age or
 * window past int64 nanoseconds. Sent as they
 * were, the stream was refused at every attempt (StreamUnavailable every 20 s, never ready).
 */
function streamLimits(int: (name: keyof ReplicateOptions, dflt: number, min: number, max?: number) => number): StreamLimits {
  const maxAgeMs = int('maxAgeMs', 0, 0, MAX_NANOS_MS);
  // the window's own floor (1 s): an age below it leaves no window to take
  if (maxAgeMs > 0 && maxAgeMs < 1000) throw walnutError('WALNUT_INVALID_ARGUMENT', `replication option maxAgeMs must be 0 (unlimited) or at least 1000, not ${maxAgeMs}`, { reason: 'maxAgeMs' });
  const duplicateWindowMs = int('duplicateWindowMs', maxAgeMs > 0 ? Math.min(120_000, maxAgeMs) : 120_000, 1000, MAX_NANOS_MS);
  if (maxAgeMs > 0 && duplicateWindowMs > maxAgeMs) {
    throw walnutError('WALNUT_INVALID_ARGUMENT', `replication option duplicateWindowMs (${duplicateWindowMs}) must not be longer than maxAgeMs (${maxAgeMs}): the server refuses such a stream`, { reason: 'duplicateWindowMs' });
  }
  return { replicas: int('replicas', 1, 1, 5), maxBytes: int('maxBytes', -1, -1), maxAgeMs, duplicateWindowMs };
}

/** metrics().lastError for `e`: its message, which names its code once (walnutError's form). */
export function lastErrorLine(e: WalnutError): string {
  return e.message.startsWith(`${e.code}: `) ? e.message : `${e.code}: ${e.message}`;
}

/** The resolved options as plain ReplicateOptions (they resolve to themselves): what crosses to a worker thread, whatever else the caller's object held. */
export function plainOptions(r: Resolved): ReplicateOptions {
  const { limits, ...rest } = r;
  return { ...rest, ...limits };
}

/**
 * A queued log entry: records framed as in a message body (u64 length, payload, ...), a commit's
 * (its FRAMES or PAGE_DELTA and its COMMIT_META) or part of one, or a WAL_HEADER alone;
 * `seq`/`time` when it ends with the commit's COMMIT_META.
 */
interface LogEntry {
  framed: Uint8Array;
  seq: bigint | null;
  time: number;
}

/**
 * A base image being published: its records not yet cut into parts, the commit it is the state
 * after, where its log goes on. Never held whole (see the header): a session's first base gets
 * its records from the export as they come (Session.#acceptBase), a later base reads them from
 * its snapshot as each part is cut (`source`).
 */
interface BaseItem {
  /** Records not yet cut into parts (BASE_PAGES ones in Replication's pool of base records). */
  payloads: Uint8Array[];
  /** Every record is in `payloads` or cut already (the export's BASE_END came; `source` has no more). */
  complete: boolean;
  /** A later base's snapshot, read a record at a time (null: a session's first base). */
  source: BaseImageStream | null;
  /** Parts cut so far, and the first (its stream sequence names the base in the parts after it). */
  partsCut: number;
  firstPart: Sent | null;
  /** The base's size (its pages' bytes), once known. */
  bytes: number;
  /** Called once the base is stored or dropped (a later base's snapshot released then). */
  finished: (() => void) | null;
  seq: bigint;
  /** When the export saw that commit (unix ms). */
  time: number;
  /** Null for a session's first base: its log starts after the base's own messages. */
  logFrom: number | null;
  /**
   * Base images of the session before this one at the same commit (an idle session's, taken
   * for a stream that drops messages by age: Replication #baseAging): its parts' message ids
   * say so, else the stream dropped them as duplicates of the earlier one's (same ids).
   */
  again: number;
}

/** A commit boundary: where the WAL was (generation, frame, chain value) and its number and time. */
interface CommitPoint {
  key: string;
  seq: bigint;
  time: number;
  header: Uint8Array | null;
  anchor: ChainAnchor;
}

/** A message of the session in the pipeline, and what it takes from the queue once stored. */
interface Sent extends Outgoing {
  /** Queue entries, their bytes and the commits they complete. */
  take: number;
  takeBytes: number;
  commits: number;
  /** The commit a log message ends with (null: it ends inside one). */
  endSeq: bigint | null;
  /** On a base image's final part. */
  base: BaseItem | null;
  /** A part of a later base (Session.laterBases), not of the log queue. */
  later: boolean;
  /** When the export queued the commit it ends with (performance.now()). */
  queuedAt: number;
  /** A session's first base's part: its records' framed bytes (Session.baseUnstored). */
  baseBytes: number;
  /** The body once framed (see the header). */
  framed: Uint8Array | null;
}

/** Where the pump is cutting the queue into messages: queue entries in the pipeline, the last commit cut, parts since. */
interface Cut {
  part: number;
  lastSeq: bigint;
  covered: number;
  /** The log bytes of the covered entries (as queuedBytes counts them). */
  coveredBytes: number;
}

/**
 * While messages are in flight, log records wait up to this long (ms, from when the first of
 * them was queued) to go in a larger message, unless LOG_HOLD_BYTES are waiting: each message
 * cost the worker ~0.3 ms of CPU under load (the request, its headers, the ack's parsing, a
 * write to the socket) and the nats-server more (~5.5 µs per commit at ~70 commits a message).
 * With nothing in flight a message goes at once (a trickle of commits waits for nothing).
 */
const LOG_HOLD_MS = 4;
const LOG_HOLD_BYTES = 256 << 10;

/** Stored messages' bodies kept for reuse (a few messages' worth). */
const BODY_POOL_BYTES = 16 << 20;
/**
 * A later base image's parts hold at most this (or maxMessageBytes when smaller): a log message
 * sent behind a part is stored only after it (the chain), and behind 900 KiB parts it waited for
 * its ack p50 26 ms against 4.7 ms with none ahead (session 9, loaded VM). A session's first base
 * keeps maxMessageBytes: nothing of the log is behind it.
 */
const LATER_BASE_PART_BYTES = 256 << 10;
/** Room left in a message for its headers (session, ids, expected last id, base headers: a few hundred bytes). */
const MESSAGE_HEADER_ROOM = 4 << 10;
/** Blocks of queued log records kept for reuse (a few messages' worth; the queue itself may hold up to maxLagBytes). */
const RECORD_POOL_BYTES = 16 << 20;
/** Base images' records kept for reuse once framed into their part (a few parts' worth). */
const BASE_POOL_BYTES = 8 << 20;
/**
 * A session's first base: the export waits while this many bytes of its records are queued or
 * in messages not yet stored (its sink's room()), so that the base is never held whole (it was:
 * a 979 MiB database took the publisher's RSS to 1.25 GiB); ~9 parts of 900 KiB in flight.
 */
const FIRST_BASE_WINDOW = 8 << 20;

const sameKey = (salts: [number, number], frame: number): string => `${salts[0]}:${salts[1]}:${frame}`;

const STREAM_MAGIC = StreamMagic.V1.bytes();

/**
 * A stream that stored no message of the session for this long (ms) is stalled: the sink stops
 * waiting for room, and the lag bound may abandon the session (see the header). Acks come every
 * few ms while it stores; a retried publish pauses up to 2 s (nats.ts backoff).
 */
const STALLED_MS = 3000;

/** One session: the export's records in, messages out (see the header). */
class Session {
  readonly id = randomBytes(8).toString('hex');
  readonly queue: (LogEntry | BaseItem)[] = [];
  /** Later base images (see the header) waiting to go out, the oldest first; its parts not yet handed to the pipeline; whether one of them is in it. */
  readonly laterBases: BaseItem[] = [];
  partInFlight = false;
  /** The first base's records accepted from the export and not yet stored, and of those the ones cut into messages (FIRST_BASE_WINDOW). */
  baseUnstored = 0;
  baseInFlight = 0;
  /** Bytes of base records held (ReplicationMetrics.baseHeldBytes): read, not yet stored. */
  baseHeld = 0;
  queuedBytes = 0;
  queuedCommits = 0;
  exportedSeq = -1n;
  publishedSeq = -1n;
  /** The stream sequence of the last log message acknowledged. */
  lastLogStreamSeq = 0;
  /** Commits and log bytes since the last base; the last base's bytes and time. */
  commitsSinceBase = 0;
  logBytesSinceBase = 0;
  lastBaseBytes = 0;
  lastBaseAt = performance.now();
  /** The commit of the newest base image taken, and how many before it were taken at that commit (BaseItem.again). */
  lastBaseSeq = -1n;
  sameSeqBases = 0;
  baseRunning = false;
  /** When the stream last stored a message of this session (the session's start before the first). */
  lastStoredAt = performance.now();
  /** The export's base image is coming (its first records), and its item once BASE_META came. */
  #inBase = true;
  #initialBase: BaseItem | null = null;
  // where the export is: generation salts, frame number, database size
  #salts: [number, number] = [0, 0];
  #frame = 0;
  /** What this session's export encodes its commits as (see the header). */
  readonly deltas: SinkPageDeltas;
  /** The queued log records' memory (buffers.ts; released as messages are stored: shift()). */
  readonly arena: RecordArena;
  /** Commit boundaries (salts:frame) -> seq and time, recorded while a base snapshot is mapped. */
  recording: Map<string, CommitPoint> | null = null;
  /** The current generation's WAL header, and the checksum field of the last commit frame. */
  #walHeader: Uint8Array | null = null;
  #commitChecksum0 = 0;
  #commitChecksum1 = 0;
  /**
   * The last commit's boundary as fields (`last` makes its CommitPoint): an object, its anchor
   * and its key string for every commit were a good part of the publisher's garbage.
   */
  #lastSeq: bigint | null = null;
  #lastTime = 0;
  #lastSalts: [number, number] = [0, 0];
  #lastFrame = 0;
  #lastHeader: Uint8Array | null = null;
  #lastChecksum0 = 0;
  #lastChecksum1 = 0;

  /** The last commit the export queued, or null before the first. */
  get last(): CommitPoint | null {
    if (this.#lastSeq === null) return null;
    const frame = this.#lastFrame;
    return { key: sameKey(this.#lastSalts, frame), seq: this.#lastSeq, time: this.#lastTime, header: this.#lastHeader, anchor: { frame, checksum: [this.#lastChecksum0, this.#lastChecksum1] } };
  }
  abandoned = false;
  wake: (() => void) | null = null;

  /** `begin`: called at the export's first sink call (the session has begun: its export has its snapshot). */
  constructor(readonly r: Replication, opts: Resolved, begin: () => void) {
    this.deltas = { versionBudget: opts.delta ? opts.deltaCacheBytes : 0, runFrames: Math.max(1, Math.floor((r.messageBytes >>> 1) / (FRAME_HEADER_SIZE + r.pageSize))) };
    this.arena = new RecordArena(r.recordMemory);
    this.#begin = begin;
  }

  #begin: (() => void) | null;
  #began(): void {
    this.#begin?.();
    this.#begin = null;
  }

  /**
   * The export's sink. It waits for room while `incoming` bytes would take the queue past half
   * of maxLagBytes (unless no commit's end is queued: a record is taken whatever its size, since
   * only a message ending at a commit, or a commit larger than a message, can be acknowledged to
   * make room; a queue of only a WAL_HEADER, which goes out with the commit after it, waited for
   * itself whenever one record was larger than half the bound): during the
   * export's first pass (the base image and the WAL as it was: bounded by the WAL's size, read
   * under the export's snapshot) always, so a new session does not abandon itself replaying an
   * unpublished WAL; in follow mode while the stream stores messages (see the header: a
   * backlog caught up waits in the WAL). Past maxLagBytes the session is abandoned (#push).
   * Neither blocks a commit: a waiting export only keeps the WAL from restarting.
   */
  sink(): WalRecordSink & { [PAGE_DELTAS]: SinkPageDeltas } {
    // not >>> 1: the option goes up to Number.MAX_SAFE_INTEGER, and 2^32 >>> 1 is 0 (a first pass
    // waiting forever behind its WAL_HEADER)
    const half = Math.floor(this.r.options.maxLagBytes / 2);
    // (and, during the export's base image, while FIRST_BASE_WINDOW of it is not yet stored and
    // some of it is in messages that will be: records that do not fill a part yet are never
    // waited on, since the pump cuts no part of them before more come)
    const window = Math.max(FIRST_BASE_WINDOW, 4 * this.r.messageBytes);
    const full = (incoming: number): boolean =>
      !this.abandoned && !this.pumpEnded && ((this.#inBase && this.baseInFlight > 0 && this.baseUnstored + incoming > window) || (this.queuedCommits > 0 && this.queuedBytes + incoming > half && !this.#insideCommit() && (!this.following || !this.#stalled())));
    const room = async (incoming: number): Promise<void> => {
      this.wake?.(); // what is queued goes out meanwhile
      while (full(incoming)) {
        // the first base's window, the stream stalled and the WAL the export has not read past
        // maxLagBytes: the session is abandoned, as the log's queue past it is (see the header).
        // The export waits inside its first pass, whose snapshot keeps the WAL from restarting:
        // it waited there for the whole outage, another process's writes growing the WAL without
        // bound (TRUNCATE busy), where the base held whole went on to the log and its lag bound
        if (this.#inBase && this.baseInFlight > 0 && this.#stalled() && this.r.exportBehindOver()) {
          this.r.abandon(this);
          break;
        }
        await new Promise<void>((resolve) => {
          this.room = resolve;
          setTimeout(resolve, 100);
        });
      }
    };
    // record by record: a WAL read's records (4 MiB, a hand-over's as much) waited for as one
    // took a queue of maxLagBytes below ~9 MiB past its bound whenever a backlog was read
    const take = async (payloads: Iterable<Uint8Array>): Promise<void> => {
      this.#began();
      for (const p of payloads) {
        if (full(p.length + 8)) await room(p.length + 8);
        this.accept(p); // (copies what it keeps; the caller's memory stays put until this resolves)
      }
      this.wake?.();
    };
    // the export's framed records read in place, a commit's records queued as one entry, one
    // copy (see #pushFramed); waits for room as take() does, only where an entry begins (inside
    // a commit full() never waits)
    const takeFramed = async (framed: Uint8Array, records: number): Promise<void> => {
      checkFramed(framed, records);
      this.#began();
      const entryCap = this.r.messageBytes >>> 1;
      // the clock read once per call (and after a wait), not per commit: a hand-over's commits
      // arrive together, and two reads per commit (the global \`performance\` a getter each time)
      // were ~18% of this loop on the worker
      let now = performance.now();
      let start = -1; // where the entry being gathered begins (-1: none)
      for (let at = 0; at < framed.length; ) {
        const length = be32(framed, at + 4);
        const end = at + 8 + length;
        const kind = framed[at + 8];
        const plain = this.#inBase || (kind !== KIND.FRAMES && kind !== KIND.PAGE_DELTA && kind !== KIND.COMMIT_META);
        if (start >= 0 && (plain || end - start > entryCap)) {
          this.#pushFramed(framed, start, at, null, 0); // a commit's first records (one larger than half a message spans entries)
          start = -1;
        }
        if (start < 0 && full(length + 8)) {
          await room(length + 8);
          now = performance.now();
        }
        if (plain) {
          this.accept(framed.subarray(at + 8, end));
        } else {
          if (this.abandoned) throw walnutError('WALNUT_CLOSED', 'the replication session was abandoned');
          if (start < 0) start = at;
          if (kind === KIND.FRAMES) this.#passFrames(framed, at + 8, length);
          else if (kind === KIND.PAGE_DELTA) this.#passDelta(framed, at + 8, length);
          else {
            const seq = this.#commitMeta(framed, at + 8, length);
            this.#pushFramed(framed, start, end, seq, now);
            start = -1;
            this.r.maybeBase(this, now);
          }
        }
        at = end;
      }
      if (start >= 0) this.#pushFramed(framed, start, framed.length, null, 0);
      this.wake?.();
    };
    return {
      [PAGE_DELTAS]: this.deltas,
      appendRecord: async (p) => {
        this.#began();
        if (full(p.length + 8)) await room(p.length + 8);
        this.accept(p);
        if (p[0] === KIND.COMMIT_META) this.wake?.();
      },
      // a WAL read's records at once
      appendRecords: (payloads) => take(payloads),
      appendFramed: (framed, records) => takeFramed(framed, records),
      // the exporter flushes once its first pass is out, and after each pass from then on
      flush: async () => {
        this.#began();
        if (!this.following) this.#markStart();
        this.following = true;
        this.wake?.();
      },
    };
  }

  /**
   * The queue ends inside a commit (its frames so far, not its COMMIT_META): the sink does not
   * wait then, since a message ends at a commit when one fits and a commit smaller than a
   * message is not sent until its end is queued (a wait there would wait for itself). A commit
   * larger than maxLagBytes still abandons the session (#push), as documented.
   */
  #insideCommit(): boolean {
    const last = this.queue[this.queue.length - 1];
    return last !== undefined && 'framed' in last && last.seq === null && last.framed[8] !== KIND.WAL_HEADER;
  }

  /**
   * The stream has stalled: the sink has waited for room STALLED_MS since its wait began or the
   * stream last stored a message, whichever came later. Not the time since the last message
   * stored alone: a publisher idle, or starved of CPU (a paused or background worker), for
   * longer than that had stored nothing for as long without asking the stream anything, and its
   * backlog, caught up at once, was taken as a stall: queued past maxLagBytes, the session
   * abandoned ('lagExceeded', a new base image) instead of waiting in the WAL. Called only when
   * the sink would wait.
   */
  #stalled(): boolean {
    const now = performance.now();
    if (this.#waitingSince < this.lastStoredAt) this.#waitingSince = now; // a wait begins
    return now - this.#waitingSince >= STALLED_MS;
  }
  /** When the sink's wait for room began (its first wait since the stream last stored a message). */
  #waitingSince = -Infinity;

  /**
   * The session's start (nats.ts Walnut-Session-Start): the commit S whose state is the
   * database as the export found it (the last commit of its first pass, or its base's when the
   * WAL held none), known at the pass's flush; and whether no message has carried it yet. A
   * replica re-basing onto this session's first base applies the base and the commits through S
   * as one commit: it went back to the base's older state (where the last checkpoint stopped,
   * behind another connection's read transaction) and climbed back commit by commit.
   */
  startSeq: bigint | null = null;
  startMarkDue = false;

  /** The first pass is queued (its flush): the session's start is the last commit queued. */
  #markStart(): void {
    this.startSeq = this.exportedSeq;
    this.startMarkDue = true;
    this.wake?.();
  }

  /** In follow mode (see sink()); who waits for room in the queue. */
  following = false;
  room: (() => void) | null = null;
  /**
   * The publisher no longer takes from the queue (#pump returned: stop()'s deadline passed, or
   * the stream refused the session), so the sink waits for room no more. It waited on, for
   * acknowledgements of messages that were no longer sent, and the export it was called from
   * never ended: stop() and close() did not return (a first pass over a WAL larger than half of
   * maxLagBytes, the server gone).
   */
  pumpEnded = false;

  /** Queues one record of the export; copies what it keeps (the export reuses `payload`'s memory). */
  accept(payload: Uint8Array): void {
    if (this.abandoned) throw walnutError('WALNUT_CLOSED', 'the replication session was abandoned');
    const kind = payload[0];
    if (this.#inBase) {
      this.#acceptBase(payload);
      return;
    }
    if (kind === KIND.WAL_HEADER) {
      const rec = decodeRecord(payload);
      if (rec.kind !== 'walHeader') return;
      const dv = new DataView(rec.header.buffer, rec.header.byteOffset, 32);
      this.#salts = [dv.getUint32(16), dv.getUint32(20)];
      this.#frame = rec.anchor?.frame ?? 0;
      this.#walHeader = new Uint8Array(rec.header);
      this.#push({ framed: this.#copyFramed(payload), seq: null, time: 0 });
    } else if (kind === KIND.FRAMES) {
      this.#passFrames(payload, 0, payload.length);
      this.#push({ framed: this.#copyFramed(payload), seq: null, time: 0 });
    } else if (kind === KIND.PAGE_DELTA) {
      this.#passDelta(payload, 0, payload.length);
      this.#push({ framed: this.#copyFramed(payload), seq: null, time: 0 });
    } else if (kind === KIND.COMMIT_META) {
      const seq = this.#commitMeta(payload, 0, payload.length);
      this.#push({ framed: this.#copyFramed(payload), seq, time: performance.now() });
      this.r.maybeBase(this);
    }
  }

  /** A COMMIT_META record at `start` of `bytes` (`length` bytes) passed: the commit's boundary and number (its seq). */
  #commitMeta(bytes: Uint8Array, start: number, length: number): bigint {
    const seq = commitMetaSeq(bytes, start, length);
    this.#lastSeq = seq;
    this.#lastTime = commitMetaTimeMs(bytes, start);
    this.#lastSalts = this.#salts; // replaced, never changed in place
    this.#lastFrame = this.#frame;
    this.#lastHeader = this.#walHeader;
    this.#lastChecksum0 = this.#commitChecksum0;
    this.#lastChecksum1 = this.#commitChecksum1;
    if (this.recording !== null) {
      const point = this.last!;
      this.recording.set(point.key, point);
    }
    this.exportedSeq = seq;
    this.queuedCommits++;
    this.commitsSinceBase++;
    return seq;
  }

  /** A record of the export kept in the queue, framed (the export reuses its memory). */
  #copyFramed(payload: Uint8Array): Uint8Array {
    const out = this.arena.take(payload.length + 8);
    out.fill(0, 0, 4);
    out[4] = payload.length >>> 24;
    out[5] = (payload.length >>> 16) & 0xff;
    out[6] = (payload.length >>> 8) & 0xff;
    out[7] = payload.length & 0xff;
    out.set(payload, 8);
    return out;
  }

  /**
   * Records framed at `from`..`to` of the export's `bytes` queued as one entry (a commit's, or
   * its first records), copied once. Each record an entry of its own, copied into the arena and
   * again into the message body, was a view, an entry and a copy per record on the worker
   * (perf: the records' accept ~12% of its thread, session 32).
   */
  #pushFramed(bytes: Uint8Array, from: number, to: number, seq: bigint | null, time: number): void {
    const out = this.arena.take(to - from);
    out.set(bytes.subarray(from, to));
    this.#push({ framed: out, seq, time });
  }
  /**
   * BASE_META .. BASE_END of the export: the session's first base image, queued at its
   * BASE_META (ahead of the log) and filled as its records come; the pump cuts its parts as
   * they fill, and the sink waits while FIRST_BASE_WINDOW of it is not yet stored (sink()).
   */
  #acceptBase(payload: Uint8Array): void {
    const rec = decodeRecord(payload);
    const cap = this.r.messageBytes >>> 1;
    let item = this.#initialBase;
    if (rec.kind === 'baseMeta') {
      item = this.#initialBase = { payloads: [], complete: false, source: null, partsCut: 0, firstPart: null, bytes: 0, finished: null, seq: rec.seq, time: Number(rec.timeMs), logFrom: null, again: 0 };
      this.#push(item);
    }
    if (item === null) throw walnutError('WALNUT_INVALID_FRAMING', `the export's base image began with a ${rec.kind} record, not BASE_META`, { reason: 'BaseMetaMissing' });
    if (rec.kind === 'basePages') {
      const size = rec.pages.length / rec.count;
      const per = Math.max(1, Math.floor(cap / size));
      for (let i = 0; i < rec.count; i += per) {
        const count = Math.min(per, rec.count - i);
        const out = basePagesRecord(rec.firstPgno + i, count, size, this.r.basePool);
        out.set(rec.pages.subarray(i * size, (i + count) * size), BASE_PAGES_HEADER);
        this.#baseRecord(item, out);
      }
    } else {
      this.#baseRecord(item, new Uint8Array(payload));
    }
    if (rec.kind === 'baseEnd') {
      item.complete = true;
      item.bytes = rec.dbSize * this.r.pageSize;
      this.lastBaseBytes = item.bytes;
      this.lastBaseSeq = item.seq;
      this.#inBase = false;
      this.#initialBase = null;
      this.exportedSeq = item.seq;
    }
    this.wake?.();
  }

  #baseRecord(item: BaseItem, record: Uint8Array): void {
    item.payloads.push(record);
    this.baseUnstored += record.length + 8;
    this.r.holdBase(this, record.length + 8);
  }

  /**
   * A FRAMES record at `start` of `bytes` (`length` bytes; the export cut it to half a message:
   * runFrames) passed. Reads the frame headers in place: this runs for every commit sent whole.
   */
  #passFrames(bytes: Uint8Array, start: number, length: number): void {
    const frameSize = FRAME_HEADER_SIZE + this.r.pageSize;
    let frames = 0;
    for (let at = start + 1; at + frameSize <= start + length; at += frameSize, frames++) this.#passFrame(bytes, at);
    const m = this.r.counters;
    m.fullFrames += frames;
    m.fullPageBytes += frames * frameSize;
  }

  /** A PAGE_DELTA record at `start` of `bytes` (`length` bytes) passed. */
  #passDelta(bytes: Uint8Array, start: number, length: number): void {
    this.#passFrame(bytes, start + 1);
    this.r.counters.deltaFrames++;
    this.r.counters.deltaBytes += length;
  }

  /** The frame whose 24-byte header is at `at` of `bytes` (whole or as a PAGE_DELTA) passed: where the export is in the WAL. */
  #passFrame(bytes: Uint8Array, at: number): void {
    this.#frame++;
    if (be32(bytes, at + 4) === 0) return; // not a commit frame
    this.#commitChecksum0 = be32(bytes, at + 16);
    this.#commitChecksum1 = be32(bytes, at + 20);
  }

  /** Log records count against maxLagBytes; base images (FIRST_BASE_WINDOW) do not. */
  #push(item: LogEntry | BaseItem): void {
    this.queue.push(item);
    if (!('payloads' in item)) {
      this.queuedBytes += item.framed.length;
      this.logBytesSinceBase += item.framed.length;
    }
    if (this.following && this.queuedBytes > this.r.options.maxLagBytes) this.r.abandon(this);
    // following, the pump is woken once per WAL read of the export (sink()), not per record:
    // a message per read, not per commit
    if (!this.following || 'payloads' in item) this.wake?.();
  }

  /** A base image read by the replication (not the export's): beside the log, not in its queue (see the header). */
  pushBase(item: BaseItem): void {
    this.laterBases.push(item);
    this.lastBaseBytes = item.bytes;
    this.wake?.();
  }

  /** Removes what a message took from the queue's head. */
  shift(n: number, bytes: number, commits: number): void {
    for (const e of this.queue.splice(0, n)) if ('framed' in e) this.arena.release(e.framed);
    this.queuedBytes -= bytes;
    this.queuedCommits -= commits;
    this.room?.();
  }
}

function pipeStats(pipe: OrderedPublishes | null): Omit<PipelineStats, 'lastError'> {
  const { lastError: _, ...stats } = pipe?.stats ?? { messages: 0, bytesPublished: 0, publishRetries: 0, duplicates: 0, resyncs: 0, inFlight: 0, peakInFlight: 0, lastError: null };
  return stats;
}

export class Replication extends EventEmitter implements ReplicationHandle {
  readonly options: Resolved;
  readonly ready: Promise<void>;
  readonly counters = { fullFrames: 0, deltaFrames: 0, fullPageBytes: 0, deltaBytes: 0 };
  readonly #source: ReplicationSource;
  readonly #subjects: Subjects;
  /** Message bodies' memory, and later base images' records' (see the header). */
  readonly #bodies = new BufferPool(BODY_POOL_BYTES);
  readonly basePool = new BufferPool(BASE_POOL_BYTES);
  /** Blocks of the sessions' queued records (RecordArena). */
  readonly recordMemory = new BufferPool(RECORD_POOL_BYTES);
  #link: NatsLink | null = null;
  /** A base image cut by the stream's retention was reported (#checkBaseKept). */
  #toldRetention = false;
  #pipe: OrderedPublishes | null = null;
  #session: Session | null = null;
  #export: ExportHandle | null = null;
  #stopping = false;
  #stopDeadline = Infinity;
  /** Aborted once stop()'s deadline has passed (connecting and creating the stream end then: nats.ts). */
  readonly #deadline = new AbortController();
  #deadlineTimer: ReturnType<typeof setTimeout> | null = null;
  #done: Promise<void>;
  #m = { sessions: 0, bases: 0, baseHeldPeakBytes: 0, lagResets: 0, lastError: null as string | null };
  /** maxMessageBytes within what the server takes (#fitMessageBytes), for the session being published. */
  #messageBytes: number;
  /** The stream's max_msg_size (-1: none), as ensureStream found it. */
  #streamMaxMsgSize = -1;
  /** The stream's max_age in ms (0: none), as ensureStream found it (see #baseAging). */
  #streamMaxAgeMs = 0;
  /** The bound on exportBehindBytes (behind.ts); not started when another thread counts it. */
  readonly #behind: BehindWatch;

  /** `options` resolved by resolveReplicateOptions (the caller has checked them already). */
  constructor(source: ReplicationSource, options: Resolved) {
    super();
    this.options = options;
    this.#messageBytes = options.maxMessageBytes;
    this.#source = source;
    this.#subjects = subjectsOf(this.options.stream);
    this.#behind = new BehindWatch(options.maxLagBytes, () => this.#export?.behindBytes() ?? 0, () => this.emit('exportBehind', this.metrics()));
    if (source.behindCountedElsewhere !== true) this.#behind.start();
    let ready!: () => void;
    let failed!: (e: unknown) => void;
    this.ready = new Promise<void>((res, rej) => {
      ready = res;
      failed = rej;
    });
    this.ready.catch(() => undefined);
    let began = false;
    const begin = (): void => {
      began = true;
      ready();
    };
    this.#done = this.#run(begin)
      .then(() => {
        if (!began) failed(walnutError('WALNUT_CLOSED', 'the replication stopped before its first session began', { path: source.path }));
      }, (e) => {
        failed(e);
        if (!(began === false && e instanceof WalnutError && e.code === 'WALNUT_CLOSED' && this.#stopping)) this.#error(e); // ready tells a stop before it began
      })
      .finally(() => {
        if (this.#deadlineTimer !== null) clearTimeout(this.#deadlineTimer);
        this.#behind.stop(); // nothing is emitted after 'end'
        this.emit('end');
      });
  }

  /** The largest message body this session builds: maxMessageBytes, or less when the server takes less. */
  get messageBytes(): number {
    return this.#messageBytes;
  }

  /**
   * maxMessageBytes within the server's max_payload (its INFO; 1 MiB unless configured) and an
   * existing stream's max_msg_size, less room for the headers. A message past either is refused at every try
   * ('max_payload size exceeded'): with maxMessageBytes 4 MiB against a default server, or the
   * default 900 KiB against one configured for 512 KiB, nothing was ever published (publishedSeq
   * stayed at 0, lastError the refusal, no 'error' until stop() timed out) while the commits
   * queued up to the lag bound, session after session. A server too small for one page's frame
   * (a message holds at least one record) is refused for good: WALNUT_INVALID_ARGUMENT.
   */
  #fitMessageBytes(): number {
    const payload = this.#link?.nc.info?.max_payload;
    const want = this.options.maxMessageBytes;
    const serverMax = Math.min(typeof payload === 'number' && payload > 0 ? payload : Infinity, this.#streamMaxMsgSize > 0 ? this.#streamMaxMsgSize : Infinity);
    if (serverMax === Infinity) return want;
    const least = 8 + 9 + FRAME_HEADER_SIZE + this.pageSize; // a message of one FRAMES record of one frame
    if (serverMax - MESSAGE_HEADER_ROOM < least) {
      throw walnutError('WALNUT_INVALID_ARGUMENT', `the NATS server or the stream ${this.options.stream} takes messages of at most ${serverMax} bytes (the server's max_payload, the stream's max_msg_size): too small for one frame of a ${this.pageSize}-byte page and its headers (${least + MESSAGE_HEADER_ROOM} bytes); raise it`, { reason: 'maxMessageBytes' });
    }
    // (a maxMessageBytes below one record still sends that record alone, as before)
    return Math.min(want, serverMax - MESSAGE_HEADER_ROOM);
  }

  /** See LATER_BASE_PART_BYTES. */
  get #laterPartBytes(): number {
    return Math.min(this.messageBytes, LATER_BASE_PART_BYTES);
  }

  get pageSize(): number {
    return this.#source.pageSize;
  }

  metrics(): ReplicationMetrics {
    if (arguments.length > 0) refuseExtraArguments('replication.metrics', 'no arguments', 0, arguments);
    const s = this.#session;
    const oldest = s?.queue.find((e): e is LogEntry => 'seq' in e && e.seq !== null && !('payloads' in e));
    return {
      session: s?.id ?? null,
      exportedSeq: Number(s?.exportedSeq ?? -1n),
      publishedSeq: Number(s?.publishedSeq ?? -1n),
      lagCommits: s?.queuedCommits ?? 0,
      lagBytes: s?.queuedBytes ?? 0,
      lagMs: oldest === undefined ? 0 : Math.round(performance.now() - oldest.time),
      exportBehindBytes: this.#behind.saw(this.#export?.behindBytes() ?? 0),
      exportBehindExceeded: this.#behind.exceeded,
      exportBehindPeakBytes: this.#behind.peakBytes,
      baseHeldBytes: s?.baseHeld ?? 0,
      ...this.#m,
      ...this.counters,
      ...pipeStats(this.#pipe),
      lastError: this.#pipe?.stats.lastError ?? this.#m.lastError,
    };
  }

  async stop(): Promise<void> {
    const refused = stopArgumentError(arguments[0]);
    if (refused !== null) throw refused;
    if (!this.#stopping) {
      this.#stopping = true;
      this.#stopDeadline = performance.now() + this.options.stopTimeoutMs;
      this.#deadlineTimer = setTimeout(() => {
        this.#stopDeadline = -Infinity; // passed, whatever the clock's rounding says
        this.#deadline.abort();
      }, Math.min(this.options.stopTimeoutMs, LONGEST_TIMER_MS));
      this.#export?.stop();
      this.#session?.wake?.();
    }
    await this.#done;
  }

  /** Whether the WAL the session's export has not read (exportBehindBytes) is past maxLagBytes. */
  exportBehindOver(): boolean {
    if (this.#source.behindCountedElsewhere === true) return this.#source.behindOver?.() ?? false;
    return (this.#export?.behindBytes() ?? 0) > this.options.maxLagBytes;
  }

  /** Abandons a session past maxLagBytes (see the header). */
  abandon(s: Session): void {
    if (s.abandoned) return;
    this.#m.lagResets++;
    emitApart(this, 'lagExceeded', this.metrics());
    this.#drop(s);
  }

  /** Abandons a session (its queue dropped, its export to stop): the next one begins with a base image. */
  #drop(s: Session): void {
    if (s.abandoned) return;
    s.abandoned = true;
    s.queue.length = 0;
    this.#endLaterBases(s);
    s.queuedBytes = s.queuedCommits = s.baseUnstored = s.baseInFlight = s.baseHeld = 0;
    s.wake?.();
  }

  /** After a commit: start a base image when one is due (one at a time). */
  maybeBase(s: Session, now = performance.now()): void {
    if (s.baseRunning || this.#stopping) return;
    const byCommits = s.commitsSinceBase >= this.options.baseEveryCommits && s.logBytesSinceBase * 2 >= s.lastBaseBytes;
    if (!byCommits && !this.#baseAging(s, now) && now - s.lastBaseAt < this.options.baseEveryMs) return;
    s.baseRunning = true;
    // a store closed under the base's read (its snapshot released) ends the replication: no base, and nothing to report
    void this.#snapshotBase(s).catch((e) => (e instanceof WalnutError && e.code === 'WALNUT_CLOSED' ? undefined : this.#error(e))).finally(() => {
      s.baseRunning = false;
    });
  }

  /**
   * In a stream that drops messages by age (max_age), whether the session's newest base image is
   * half that age old: a base image is due then, commits or not, taken by the pump of an idle
   * session too, so that the stream always holds one. Taken only after commits, the stream of
   * a primary idle for longer than its max age held no base image at all: restores failed
   * NoBase and a new replica waited (openReplica did not resolve), until the primary's next
   * commit and, past it, its next base image (baseEveryMs, 10 min, after the last one).
   */
  #baseAging(s: Session, now: number): boolean {
    return this.#streamMaxAgeMs > 0 && s.publishedSeq >= 0n && now - s.lastBaseAt >= this.#streamMaxAgeMs / 2;
  }

  #error(e: unknown): void {
    const w = e instanceof WalnutError ? e : walnutError('WALNUT_IO', `replication: ${(e as Error)?.message ?? String(e)}`, { cause: e });
    this.#m.lastError = lastErrorLine(w);
    if (this.listenerCount('error') > 0) emitApart(this, 'error', w);
  }

  /**
   * Sessions until stop(): the first one even when stop() came before it (its export's one pass
   * is the flush: what was committed before stop() is published), none after stop() but the one
   * that follows a session abandoned by the lag bound (the flush then). `begin`
   * is called once a session's export has begun. Connecting and creating the stream are given
   * up only once stop()'s deadline has passed.
   */
  async #run(begin: () => void): Promise<void> {
    const stopped = (): boolean => this.#stopping && performance.now() > this.#stopDeadline;
    this.#link = await connectNats(this.options.servers, stopped, `walnut replicate ${this.#source.path}`, (e) => this.#error(e), this.#deadline.signal);
    try {
      const { lastSeq, maxMsgSize, maxAgeMs } = await ensureStream(this.#link, this.options.stream, this.options.limits, stopped, this.#deadline.signal, (e) => this.#error(e));
      this.#streamMaxMsgSize = maxMsgSize;
      this.#streamMaxAgeMs = maxAgeMs;
      this.#pipe = new OrderedPublishes(this.#link, this.options.stream, lastSeq, this.options.maxInFlight, undefined, (e) => this.#error(e));
      // A session's first base image is its export's: the oldest state the WAL holds. After the
      // primary's restart (its process killed, or closed while another connection kept the WAL)
      // that is where the last checkpoint stopped, older than what replicas of the earlier
      // session applied: re-based onto it, they went back in time (a reader of the replica saw
      // 1,288 commits vanish) until the new session's log caught them up. A passive checkpoint
      // first makes it the newest state (unless a reader holds the WAL), as after an abandoned session.
      await this.#source.checkpoint('passive').catch(() => undefined);
      // `flush`: a session starts even after stop() (its export's one pass publishes what was
      // committed before it): the first one, and one after a session the lag bound abandoned
      // (whose queue was dropped: without the next session's base, stop() resolved with the
      // commits since the abandoned one's last stored message never published)
      for (let flush = true; flush || !this.#stopping; ) {
        this.#messageBytes = this.#fitMessageBytes(); // the server connected now (a cluster's nodes may differ)
        const s = new Session(this, this.options, begin);
        this.#session = s;
        this.#m.sessions++;
        const exp = this.#source.exportTo(s.sink(), { follow: true, pollMs: this.options.pollMs });
        this.#export = exp;
        if (this.#stopping) exp.stop(); // stop() came first: one pass, then the export ends
        const exportEnded = exp.done.then(
          () => null,
          (e: unknown) => e,
        );
        try {
          await this.#pump(s, exportEnded);
        } catch (e) {
          // the pipeline refused (another primary on the stream): the session's export ends too
          exp.stop();
          await exportEnded;
          throw e;
        }
        exp.stop();
        const e = await exportEnded;
        if (e !== null && !s.abandoned && !(e instanceof WalnutError && e.code === 'WALNUT_CLOSED')) this.#error(e);
        if (e instanceof WalnutError && e.code === 'WALNUT_CLOSED' && !s.abandoned) break; // the store closed
        // said, not silent: stop() resolves, but these commits are not in the stream
        // an abandoned session's export ended where the lag bound cut it: the commits after its
        // exportedSeq were never read, so the range is open (it named publishedSeq+1..exportedSeq,
        // and commits the store acknowledged after those were in neither the stream nor a word)
        const unstored = s.abandoned ? `${s.publishedSeq + 1n} on (the lag bound abandoned the session; its export read through ${s.exportedSeq}, none after)` : `${s.publishedSeq + 1n}..${s.exportedSeq}`;
        if (stopped() && (s.abandoned || s.publishedSeq < s.exportedSeq)) this.#error(walnutError('WALNUT_IO', `replication stop(): stopTimeoutMs (${this.options.stopTimeoutMs} ms) passed before commits ${unstored} of session ${s.id} were stored in the stream`, { reason: 'StopTimeout' }));
        flush = s.abandoned && !stopped(); // (its export ended WALNUT_CLOSED: abandoned)
        // abandoned: the next session starts once the stream answers again (its base would be
        // dropped too), after a passive checkpoint, so that its export replays little of the WAL
        if (flush) {
          await ensureStream(this.#link, this.options.stream, this.options.limits, stopped, this.#deadline.signal, (e) => this.#error(e)).catch(() => undefined);
          await this.#source.checkpoint('passive').catch(() => undefined);
        }
      }
    } finally {
      await this.#link.nc.close().catch(() => undefined);
    }
  }

  /**
   * Publishes the session's queue in order until the session is abandoned, or its export has
   * ended and the queue is empty, or stop()'s deadline passed. Queued records become messages
   * as soon as the pipeline has room (so a backlog makes large messages, a trickle small
   * ones); they leave the queue once stored (pipeline.ts), which is when publishedSeq moves.
   */
  async #pump(s: Session, exportEnded: Promise<unknown>): Promise<void> {
    let ended = false;
    void exportEnded.then(() => {
      ended = true;
      s.wake?.();
    });
    const pipe = this.#pipe!;
    const cut: Cut = { part: 0, lastSeq: s.publishedSeq, covered: 0, coveredBytes: 0 };
    let settling: Promise<Outgoing[]> | null = null;
    try {
      while (!s.abandoned) {
        if (this.#stopping && performance.now() > this.#stopDeadline) return;
        if (!s.baseRunning && this.#baseAging(s, performance.now())) this.maybeBase(s); // an idle session's (#baseAging)
        let hold = 0;
        while (pipe.room && cut.covered < s.queue.length) {
          hold = pipe.size > 0 && !ended && !this.#stopping ? this.#holdLog(s, cut) : 0;
          if (hold > 0) break;
          const next = this.#cut(s, cut, ended);
          if (next.length === 0) break;
          for (const m of next) pipe.add(m);
        }
        // the session's start, every commit through it cut already: a message of no records says it
        // (what is left queued is of later commits, or a WAL_HEADER that waits for the next one)
        if (s.startMarkDue && pipe.room && cut.lastSeq >= s.startSeq!) pipe.add(this.#startMark(s, cut));
        // a later base's next part, behind the log messages cut so far (one part in the pipeline
        // at a time), read from its snapshot now (base-image.ts)
        if (pipe.room && !s.partInFlight && s.laterBases.length > 0) {
          const base = s.laterBases[0]!;
          let part: Sent | null = null;
          try {
            part = this.#basePart(s, base, false);
          } catch (e) {
            // its snapshot could not be read (released by a store that closed: nothing to report)
            s.laterBases.shift();
            this.#endBase(s, base);
            if (!(e instanceof WalnutError && e.code === 'WALNUT_CLOSED')) this.#error(e);
          }
          if (part !== null) {
            pipe.add(part);
            s.partInFlight = true;
          }
        }
        if (pipe.size === 0 && ended && cut.covered === s.queue.length && s.laterBases.length === 0) return;
        settling ??= pipe.size === 0 ? null : pipe.settle();
        // the oldest message's answer, or (while the pipeline has room) more to send
        let wake!: () => void;
        const woke = new Promise<null>((resolve) => (wake = () => resolve(null)));
        if (pipe.room) s.wake = wake;
        const timer = setTimeout(wake, hold > 0 ? hold : 100);
        let stored: Outgoing[] | null;
        try {
          stored = await (settling === null ? woke : Promise.race([settling, woke]));
        } catch (e) {
          if (!(e instanceof WalnutError && e.reason === 'StreamLost')) throw e;
          // the stream lost stored messages of this session: it cannot be continued there (a
          // replica or restore would meet the hole); a new session follows, as after the lag bound
          this.#error(e);
          this.#drop(s);
          break;
        } finally {
          // the turn's timer goes with it: left to fire, each of the pump's turns (~2 per
          // message) woke this thread once more 100 ms later, for nothing
          clearTimeout(timer);
        }
        s.wake = null;
        if (stored === null) continue;
        settling = null;
        for (const m of stored) this.#stored(s, m as Sent, cut);
      }
    } finally {
      if (s.abandoned || this.#stopping) pipe.drop();
      this.#endLaterBases(s); // (their snapshots released: nothing more of them goes out)
      if (s.abandoned || this.#stopping) s.baseHeld = 0; // (the parts dropped with the pipeline)
      s.pumpEnded = true;
      s.room?.();
    }
  }

  /**
   * How long (ms) the log records not yet cut should wait for more (LOG_HOLD_MS), or 0 when
   * they go now: a base image is next, or LOG_HOLD_BYTES wait, or the first of them waited
   * long enough. Called only while messages are in flight.
   */
  #holdLog(s: Session, cut: Cut): number {
    if (s.queuedBytes - cut.coveredBytes >= LOG_HOLD_BYTES) return 0;
    for (let i = cut.covered; i < s.queue.length; i++) {
      const e = s.queue[i]!;
      if ('payloads' in e) return 0;
      if (e.seq !== null) return Math.max(0, LOG_HOLD_MS - (performance.now() - e.time));
    }
    return 0; // no commit's end queued: #cut waits for it anyway
  }

  /**
   * The next message(s) from the queue after what the pipeline holds: a log message, or a
   * base image's parts; none while the queue ends inside a commit that fits in a message
   * (the rest is on its way) unless the export has ended.
   */
  #cut(s: Session, cut: Cut, ended: boolean): Sent[] {
    const head = s.queue[cut.covered]!;
    if ('payloads' in head) {
      // a session's first base: its next part once its records fill one (or the last, once all came)
      const part = this.#basePart(s, head, true);
      if (part === null) return [];
      if (part.base !== null) {
        cut.covered++;
        if (head.seq > cut.lastSeq) {
          cut.lastSeq = head.seq; // its log goes on with commit seq + 1
          cut.part = 0;
        }
      }
      return [part];
    }
    // a log message: queued records up to maxMessageBytes, ending at a commit when one fits
    const cap = this.messageBytes - 8;
    let n = 0;
    let bytes = 0;
    let commitEnd = 0;
    let commitBytes = 0;
    let commits = 0;
    let full = false;
    for (let i = cut.covered; i < s.queue.length; i++) {
      const e = s.queue[i]!;
      full = 'payloads' in e || (n > 0 && bytes + e.framed.length > cap);
      if ('payloads' in e || full) break;
      n++;
      bytes += e.framed.length;
      if (e.seq !== null) {
        commitEnd = n;
        commitBytes = bytes;
        commits++;
      }
    }
    if (commitEnd === 0 && !full && !ended) return [];
    const take = commitEnd > 0 ? commitEnd : n;
    const from = cut.covered;
    const entries = s.queue as LogEntry[]; // (from..from + take are log entries: the loop above)
    cut.covered += take;
    cut.coveredBytes += commitEnd > 0 ? commitBytes : bytes;
    const endSeq = commitEnd > 0 ? entries[from + commitEnd - 1]!.seq! : cut.lastSeq;
    const msgId = `${s.id}:${endSeq}.${commitEnd > 0 ? 0 : ++cut.part}`;
    const first = String(cut.lastSeq + 1n);
    if (commitEnd > 0) {
      cut.lastSeq = endSeq;
      cut.part = 0;
    }
    const headers: Record<string, string> = { [HEADER.SESSION]: s.id, [HEADER.FIRST_COMMIT]: first };
    if (s.startMarkDue && commitEnd > 0 && endSeq >= s.startSeq!) {
      s.startMarkDue = false;
      headers[HEADER.SESSION_START] = String(s.startSeq);
    }
    // the entries are framed already: the body is the magic and their bytes
    const size = 8 + (commitEnd > 0 ? commitBytes : bytes);
    const body = this.#bodies.take(size).subarray(0, size);
    body.set(STREAM_MAGIC, 0);
    for (let i = from, at = 8; i < from + take; i++) {
      const framed = entries[i]!.framed;
      body.set(framed, at);
      at += framed.length;
    }
    return [{ subject: this.#subjects.log, body: () => body, framed: body, msgId, headers: () => headers, after: null, take, takeBytes: commitEnd > 0 ? commitBytes : bytes, commits: commitEnd > 0 ? commits : 0, endSeq: commitEnd > 0 ? endSeq : null, base: null, later: false, queuedAt: commitEnd > 0 ? entries[from + commitEnd - 1]!.time : 0, baseBytes: 0 }];
  }

  /**
   * A log message of no records naming the session's start (Session.startSeq), whose commits
   * the messages cut before it hold (cut.lastSeq is past it).
   */
  #startMark(s: Session, cut: Cut): Sent {
    s.startMarkDue = false;
    const headers = { [HEADER.SESSION]: s.id, [HEADER.FIRST_COMMIT]: String(cut.lastSeq + 1n), [HEADER.SESSION_START]: String(s.startSeq) };
    const body = this.#bodies.take(8).subarray(0, 8);
    body.set(STREAM_MAGIC, 0);
    return { subject: this.#subjects.log, body: () => body, framed: body, msgId: `${s.id}:${s.startSeq}.start`, headers: () => headers, after: null, take: 0, takeBytes: 0, commits: 0, endSeq: null, base: null, later: false, queuedAt: 0, baseBytes: 0 };
  }

  /**
   * A base image's next part (at most maxMessageBytes, or LATER_BASE_PART_BYTES for a later
   * base), or null while the records that have come do not fill one and more are due (a
   * session's first base: the export's records still coming). Records are packed as they
   * come, a part closed when the next record does not fit; the part holding the last record
   * is the final one. Its body is framed now, its BASE_PAGES records given back to the pool.
   * Parts after the first name its stream sequence. `queued`: the base is an entry of the log
   * queue (a session's first), its final part takes it. A later base's records are read from
   * its snapshot here (throws what that read throws).
   */
  #basePart(s: Session, base: BaseItem, queued: boolean): Sent | null {
    const cap = (queued ? this.messageBytes : this.#laterPartBytes) - 8;
    if (base.source !== null) {
      // read ahead until a record does not fit (or there are no more): then the part is known whole
      let have = 0;
      for (const p of base.payloads) have += p.length + 8;
      while (!base.complete && have <= cap) {
        const rec = base.source.next();
        if (rec === null) base.complete = true;
        else {
          base.payloads.push(rec);
          have += rec.length + 8;
          this.holdBase(s, rec.length + 8);
        }
      }
    }
    let n = 0;
    let bytes = 0;
    for (const p of base.payloads) {
      if (n > 0 && bytes + p.length + 8 > cap) break;
      n++;
      bytes += p.length + 8;
    }
    const final = base.complete && n === base.payloads.length;
    if (n === 0 || (!final && n === base.payloads.length)) return null; // more may fit: its records are still coming
    const records = base.payloads.splice(0, n);
    const i = base.partsCut++;
    const extra: Record<string, string> = { [HEADER.SESSION]: s.id, [HEADER.BASE_SEQ]: String(base.seq), [HEADER.BASE_TIME]: String(base.time), [HEADER.BASE_PART]: String(i) };
    if (final) {
      extra[HEADER.BASE_FINAL] = '1';
      // a session's first base: its log starts after the base (a reader takes the final part's
      // sequence + 1), and marks the session's start (Session.startSeq)
      if (base.logFrom !== null) extra[HEADER.LOG_FROM] = String(base.logFrom);
      else extra[HEADER.START_MARKED] = '1';
    }
    const headers = i === 0 ? () => extra : (first: number) => ({ ...extra, [HEADER.BASE_FIRST]: String(first) });
    const framed = frameInto(this.#bodies.take(framedSize(records)), records);
    for (const p of records) if (p[0] === KIND.BASE_PAGES) this.basePool.give(p.buffer as ArrayBuffer);
    const sent: Sent = { subject: this.#subjects.base, body: () => framed, framed, msgId: `${s.id}:base${base.seq}${base.again > 0 ? `r${base.again}` : ''}.${i}`, headers, after: base.firstPart, take: final && queued ? 1 : 0, takeBytes: 0, commits: 0, endSeq: null, base: final ? base : null, later: !queued, queuedAt: 0, baseBytes: bytes };
    base.firstPart ??= sent;
    if (queued) s.baseInFlight += bytes;
    return sent;
  }

  /** `bytes` more of a base image's records held by session `s` (ReplicationMetrics.baseHeldBytes). */
  holdBase(s: Session, bytes: number): void {
    s.baseHeld += bytes;
    if (s.baseHeld > this.#m.baseHeldPeakBytes) this.#m.baseHeldPeakBytes = s.baseHeld;
  }

  /** A later base is stored, or dropped: its snapshot released, its #snapshotBase told. */
  #endBase(s: Session, base: BaseItem): void {
    base.source?.release();
    for (const p of base.payloads) {
      s.baseHeld -= p.length + 8;
      if (p[0] === KIND.BASE_PAGES) this.basePool.give(p.buffer as ArrayBuffer);
    }
    base.payloads.length = 0;
    base.finished?.();
    base.finished = null;
  }

  /** Every later base of the session dropped (#endBase): the session is abandoned, or its pump ended. */
  #endLaterBases(s: Session): void {
    for (const base of s.laterBases.splice(0)) this.#endBase(s, base);
    s.partInFlight = false;
  }

  /** A message is stored: what it took leaves the queue; publishedSeq moves at a commit's end. */
  #stored(s: Session, m: Sent, cut: Cut): void {
    s.lastStoredAt = performance.now();
    if (m.framed !== null) this.#bodies.give(m.framed.buffer as ArrayBuffer);
    m.framed = null;
    s.baseHeld -= m.baseBytes;
    if (!m.later) {
      s.baseUnstored -= m.baseBytes; // (before shift(): it wakes a sink waiting for room)
      s.baseInFlight -= m.baseBytes;
    }
    s.shift(m.take, m.takeBytes, m.commits);
    cut.covered -= m.take;
    cut.coveredBytes -= m.takeBytes;
    if (m.later) {
      s.partInFlight = false;
      if (m.base !== null) this.#endBase(s, s.laterBases.shift()!); // every part is stored (the chain): its snapshot is released
    }
    if (m.base !== null) {
      if (m.later) s.lastBaseAt = performance.now();
      if (m.base.seq > s.publishedSeq) s.publishedSeq = m.base.seq;
      const firstPart = (m.after ?? m).seq;
      if (firstPart !== undefined && !this.#toldRetention) void this.#checkBaseKept(firstPart, m.base.seq);
      this.#m.bases++;
      emitApart(this, 'base', { seq: Number(m.base.seq), session: s.id });
      return;
    }
    if (m.subject === this.#subjects.log) s.lastLogStreamSeq = m.seq!;
    if (m.endSeq === null) return;
    s.publishedSeq = m.endSeq;
    if (this.listenerCount('published') > 0) {
      const now = performance.now();
      const sentAt = m.sentAt ?? now;
      emitApart(this, 'published', { session: s.id, seq: Number(m.endSeq), ageMs: now - m.queuedAt, queuedMs: sentAt - m.queuedAt, ackMs: (m.storedAt ?? now) - sentAt });
    }
  }

  /**
   * A second after a base image's last part is stored: a stream that no longer holds its first part (its
   * retention, max_bytes or max_age, holds less than one base image) has no whole base image for
   * replicas and restores, ever; said once ('error' WALNUT_IO reason RetentionTooSmall). It was
   * silent: the publisher went on, openReplica waited for a base for ever, restores failed NoBase.
   */
  async #checkBaseKept(firstPart: number, baseSeq: bigint): Promise<void> {
    // a second later: the stream's limits may be applied after the ack (seen: still whole at the ack, cut after)
    await new Promise((resolve) => setTimeout(resolve, 1000).unref());
    const info = await this.#link?.jsm.streams.info(this.options.stream).catch(() => null);
    if (info === undefined || info === null || info.state.first_seq <= firstPart || this.#toldRetention) return;
    this.#toldRetention = true;
    const age = info.config.max_age > 0 ? `, max_age ${info.config.max_age / 1e6} ms` : '';
    this.#error(walnutError('WALNUT_IO', `the JetStream stream ${this.options.stream} dropped the first part of base image ${baseSeq} (message ${firstPart}; the stream now begins at ${info.state.first_seq}) within a second of its last part: its retention (max_bytes ${info.config.max_bytes}${age}) holds less than one base image, so replicas and restores find none whole; raise maxBytes / maxAgeMs (keep two base images and the log between them)`, { reason: 'RetentionTooSmall' }));
  }

  /**
   * Takes a snapshot for a base image and queues the base under the commit it is the state
   * after, once the export has seen that commit; its parts are read from the snapshot as they
   * are cut (#basePart, base-image.ts), and the snapshot is held, its read mark keeping the WAL
   * from restarting, until the base's final part is stored or the base is dropped: this resolves
   * then (Session.baseRunning until then: one later base at a time).
   */
  async #snapshotBase(s: Session): Promise<void> {
    s.recording = new Map();
    const lastAtStart = s.last;
    const mark = s.lastLogStreamSeq;
    const snap = await this.#source.snapshot();
    let queued: Promise<void> | null = null;
    try {
      const gen = snap.generation;
      if (snap.mxFrame === 0) return; // the state of a restarted, empty WAL: no frame names it; try at the next due time
      const key = sameKey(gen.salts, snap.mxFrame);
      s.lastBaseAt = performance.now();
      s.commitsSinceBase = s.logBytesSinceBase = 0;
      // the commit whose frame ends the snapshot: seen before (the last at start), or since
      const deadline = performance.now() + 10_000;
      let hit: CommitPoint | undefined;
      for (;;) {
        hit = lastAtStart?.key === key ? lastAtStart : s.recording.get(key);
        if (hit !== undefined) break;
        if (s.abandoned || this.#stopping || performance.now() > deadline) return;
        await new Promise((r) => setTimeout(r, 5));
      }
      s.recording = null;
      if (s.abandoned || this.#stopping || s.pumpEnded) return; // (a base queued now would never go out, its snapshot held)
      // the WAL_HEADER (anchored at the commit's frame) lets the log after it continue the
      // generation in a restore (restore.ts checks the chain from there); replicas skip it
      const header = hit.header === null ? [] : [encodeWalHeaderRecord(hit.header, hit.anchor)];
      const again = hit.seq === s.lastBaseSeq ? ++s.sameSeqBases : (s.sameSeqBases = 0);
      s.lastBaseSeq = hit.seq;
      // two records to a part, with their framing and the base's other records beside them
      const per = Math.max(1, Math.floor((this.#laterPartBytes - 64) / (2 * snap.pageSize)));
      const source = new BaseImageStream(snap, per, this.basePool, [encodeBaseMetaRecord(hit.seq, BigInt(hit.time))], header);
      const item: BaseItem = { payloads: [], complete: false, source, partsCut: 0, firstPart: null, bytes: source.bytes, finished: null, seq: hit.seq, time: hit.time, logFrom: mark + 1, again };
      queued = new Promise<void>((resolve) => (item.finished = resolve));
      s.pushBase(item);
    } finally {
      s.recording = null;
      if (queued === null) snap.release();
    }
    await queued;
  }
}

export function startReplication(source: ReplicationSource, options: Resolved): Replication {
  return new Replication(source, options);
}
