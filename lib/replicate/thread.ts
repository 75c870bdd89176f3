/**
 * replicate/thread.ts — store.replicateTo on a worker thread (the default): the publisher
 * (publisher.ts: records queued and cut into messages, page deltas and hashes, base images,
 * the NATS client) runs in a worker (worker.ts), so the store's event loop does its commits and
 * the follow export's WAL reads only. The handle here (ReplicationThread) is the same
 * ReplicationHandle as the in-thread publisher's, its events and metrics forwarded by messages.
 *
 * Invariants:
 *  - The follow export runs on the store's own connection (its frames are handed over at a WAL
 *    restart, follow.ts, and its commits poke it, as for any export): a follower on another
 *    connection would hold a read slot that keeps this connection's writer from ever restarting
 *    the WAL (measured: 184 MB of WAL in 4 s under 64 committers). The worker asks for an export
 *    ('export'/'exportStop'); its sink calls cross as messages, in order (records and flushes held and
 *    sent together: at most one message per HANDOVER_MS while the export's passes come faster,
 *    the first at once, at once past HANDOVER_BYTES; what is held when the export ends goes
 *    before its end), the records packed into transferred buffers (ARKHEXP1 framing, no clone
 *    of the export's blocks). The export's commit records arrive framed from its native WAL read,
 *    encoded as the worker's session asks (its sink's SinkPageDeltas, sent with 'export': pages
 *    sent again as PAGE_DELTA, so a one-page commit crosses as ~100 bytes, not its page), and are
 *    copied there once (packFramed). The worker's answer transfers the buffers back (its sink copied what it keeps) and
 *    later calls pack into them (BufferPool, buffers.ts); answers travel with the worker's
 *    next message (Ack: the 'published' events, themselves held up to METRICS_MS; the metrics every METRICS_MS), on their own only
 *    past ACK_BYTES or with a refusal: memory touched for the first time costs a
 *    page fault per 4 KiB (~5 µs on the 2-vCPU VM, measured, against ~0.1 µs for the copy), and
 *    every commit's page crosses here. A call resolves at once while the calls the worker has not answered ('ack') hold
 *    at most MAX_UNACKED_BYTES, else once they hold less: the export goes on reading without a
 *    round trip per pass, and runs no further ahead of the publisher than that. A call the
 *    worker's sink refused fails the next call (and the one waiting), which ends the export.
 *  - Base images are read from the worker's own connection's snapshots (same WAL, same
 *    wal-index: same commit boundaries); its checkpoints too. That connection never commits.
 *  - metrics() is the worker's latest report: sent every METRICS_MS, with each event, and at
 *    the end; publishedSeq moves with each 'published' event of the report's session, and
 *    exportedSeq and the lag with it (publishedSeq <= exportedSeq, as in-thread).
 *  - 'end' is emitted once, after the worker has exited (its connection closed). A worker that
 *    exits without having ended its replication (terminated, crashed) is an 'error',
 *    WALNUT_IO reason WorkerExited (one, an uncaught exception's message in it), then 'end';
 *    ready rejects with it if it was pending; the exports it asked for are stopped. The store's
 *    commits never depend on the worker.
 *  - stop() asks the worker to publish what is committed and end (within stopTimeoutMs, as in
 *    publisher.ts); a worker that has not exited STOP_GRACE_MS after that is terminated. A worker
 *    still opening its connection has that open's waits cut, as close() cuts them (below), and
 *    ends as one stopped before it began (worker.ts).
 *  - The store's close() cuts the worker's connection's waits for other connections' locks as it
 *    cuts its own (cutLockWaits: 'cut'), its open's too: an open waiting for a torn wal-index
 *    header another process holds WRITE or RECOVER over ends at once, and the replication ends
 *    as one stopped before it began (ready rejects WALNUT_CLOSED, reason RecoveryWaitCut; no
 *    'error'), as the store's loop's publisher does there. close() waited for that open the rest
 *    of the busy timeout, or stopTimeoutMs + STOP_GRACE_MS, then terminated the worker.
 *  - The backlog ahead of the export (metrics().exportBehindBytes) is counted here, on the
 *    store's thread, whatever the worker gets of a CPU: the WAL frames the export has not read
 *    (ExportHandle.unreadBytes, which leaves out those of a sink call not yet settled) plus the
 *    records handed to the worker and not yet taken (held and unanswered), each commit once.
 *    Its bound (behind.ts: 'exportBehind' past maxLagBytes) is watched here too: a worker
 *    starved of CPU would tell it last.
 */
import * as path from 'node:path';
import { EventEmitter } from 'node:events';
import { Worker } from 'node:worker_threads';

import { refuseExtraArguments } from '../arguments';
import { walnutError, WalnutError, type WalnutErrorCode } from '../errors';
import type { ExportOptions } from '../export/exporter';
import { checkRecordLength, PAGE_DELTAS, StreamMagic, type SinkPageDeltas, type WalRecordSink } from '../export/framing';
import { be32 } from '../format/frame-header';
import type { ExportHandle } from '../export/stream';
import { BehindWatch } from './behind';
import { BufferPool } from './buffers';
import { frameInto, framedSize } from './nats';
import { LONGEST_TIMER_MS } from '../longest-timer';
import { lastErrorLine, plainOptions, stopArgumentError, type ReplicateOptions, type ReplicationHandle, type ReplicationMetrics, type Resolved } from './publisher';

/** How often the worker sends its metrics (ms). */
export const METRICS_MS = 50;
/** Records sent to the worker and not yet taken by its sink, past which the export waits (see the header). */
const MAX_UNACKED_BYTES = 8 << 20;
/**
 * Hand-over buffers kept for reuse: what may be unanswered at once (MAX_UNACKED_BYTES, plus the
 * call past it and the one held), in buffers of a power of two (an export read of 4 MiB packs
 * into 8 MiB). Kept to MAX_UNACKED_BYTES, the pool turned most of them away under 64
 * committers, and each read's records went into fresh memory (page faults: ~25 µs per 4 KiB
 * on the VM; session 11: all 39 packs of a lag run fresh, 113 MB).
 */
const HANDOVER_POOL_BYTES = 4 * MAX_UNACKED_BYTES;
/** At most one hand-over message per this many ms while the export's passes come faster (see #startExport). */
const HANDOVER_MS = 3;
/** Held records past which they cross at once. */
const HANDOVER_BYTES = 1 << 20;
/**
 * Held records (without their pass's flush yet), with those posted in the last one or two
 * HANDOVER_WINDOW_MS, past which they wait up to HANDOVER_MS for the flush, not 1 ms (a busy
 * export: ~2 MB/s, ~22,000 one-page commits/s sent as deltas): at 64 committers a pass outlasts 1 ms, and a third of the hand-overs were a pass's
 * records alone, then its flush with the rest (each a message, a wake-up of the worker and, with
 * nothing in flight, a NATS message of its own; bench/README.md "#22 session 32"). Below it
 * (~170 one-page commits sent as deltas; at 5,000 commits/s a pass holds ~20) they wait 1 ms as
 * before: waiting longer there put ~2 ms on the replica lag's p50. (By the last post alone a
 * third of those hand-overs stayed: a busy pass's last post may hold a few records only.)
 */
const HANDOVER_BATCH_BYTES = 32 << 10;
const HANDOVER_WINDOW_MS = 16;
/** How long past stopTimeoutMs a stopping worker may take before it is terminated (ms). */
const STOP_GRACE_MS = 15_000;

/** What the worker needs: the database (and its file's identity), the replication's options, its connection's options. */
export interface WorkerData {
  path: string;
  identity: { dev: number; ino: number };
  options: ReplicateOptions;
  busyTimeout: number;
  /** The store was opened read-only: so is the worker's connection (its checkpoints are refused; commit/read-only.ts). */
  readOnly: boolean;
}

/** An error as it crosses threads (a WalnutError's code and details survive). */
export interface SentError {
  code: WalnutErrorCode | null;
  message: string;
  reason?: string;
  path?: string;
  errno?: number;
}

/** A sink call of the export `id`: records (packed, see packRecords; `flush`: then a flush) or a flush. */
export type SinkCall = { t: 'records'; id: number; call: number; packed: Uint8Array[]; flush: boolean } | { t: 'flush'; id: number; call: number };

/** Messages from the worker. */
export type FromWorker =
  | { t: 'ready' }
  | { t: 'readyFailed'; error: SentError }
  | { t: 'metrics'; metrics: ReplicationMetrics }
  | { t: 'event'; name: 'published' | 'base' | 'lagExceeded'; payload: unknown }
  | { t: 'error'; error: SentError }
  | { t: 'end'; metrics: ReplicationMetrics | null }
  | { t: 'export'; id: number; options: ExportOptions; deltas: SinkPageDeltas | null }
  | { t: 'exportStop'; id: number }
  | { t: 'acks' };

/**
 * A sink call answered (with the refusal, if the sink refused it) and its hand-over buffer
 * back. The worker sends its answers along with its next message (a 'published' event, the
 * metrics), or on their own once they hold ACK_BYTES or carry a refusal (see the header).
 */
export interface Ack {
  id: number;
  call: number;
  error?: SentError;
  spares?: ArrayBuffer[];
}

/** What a message from the worker may carry besides its own content: answers to sink calls, and 'published' events held back (worker.ts PUBLISHED_MS), which came before it. */
export type FromWorkerWithAcks = FromWorker & { acks?: Ack[]; published?: unknown[] };

/** Answered bytes the worker may hold back (half the bound: the export never waits for answers held back). */
export const ACK_BYTES = MAX_UNACKED_BYTES >>> 1;

/** Messages to the worker. */
export type ToWorker = { t: 'stop' } | { t: 'cut' } | SinkCall | { t: 'exportDone'; id: number; error?: SentError } | { t: 'behind'; over: boolean };

/** Records as one buffer to be transferred (ARKHEXP1 framing), in memory of `pool` (see the header). */
export function packRecords(pool: BufferPool, payloads: readonly Uint8Array[]): Uint8Array {
  return frameInto(pool.take(framedSize(payloads)), payloads);
}

/**
 * Records already framed (u64 length, payload, ...: the exporter's native framing) as one buffer
 * to be transferred, in memory of `pool`: the magic, then `framed` as it is (one copy; with the
 * pages sent again as PAGE_DELTA, a commit's records are ~100 bytes, not its pages).
 */
export function packFramed(pool: BufferPool, framed: Uint8Array): Uint8Array {
  const packed = pool.take(8 + framed.length);
  packed.set(MAGIC_BYTES, 0);
  packed.set(framed, 8);
  return packed;
}

const MAGIC_BYTES = StreamMagic.V1.bytes();

/**
 * The records packRecords packed, as views of `packed`: the framing read in place (the
 * stream reader's parser made a DataView, a BigInt and an iterator result per record, and the
 * worker unpacks every commit's records). Lengths are checked as the reader checks them.
 */
export function unpackRecords(packed: Uint8Array): Uint8Array[] {
  checkPackedMagic(packed);
  const records: Uint8Array[] = [];
  for (let at = 8; at < packed.length; ) {
    const length = checkedLength(packed, at);
    records.push(packed.subarray(at + 8, at + 8 + length));
    at += 8 + length;
  }
  return records;
}

/**
 * How many records packRecords or packFramed packed (checked as unpackRecords checks them),
 * with no view of them: a sink that reads framed records in place (appendFramed) takes
 * `packed.subarray(8)` and this count.
 */
export function packedRecords(packed: Uint8Array): number {
  checkPackedMagic(packed);
  let n = 0;
  for (let at = 8; at < packed.length; n++) at += 8 + checkedLength(packed, at);
  return n;
}

function checkPackedMagic(packed: Uint8Array): void {
  if (StreamMagic.recognize(packed.subarray(0, 8)) === null) throw walnutError('WALNUT_INVALID_FRAMING', 'HeaderMissing: the hand-over buffer does not start with ARKHEXP1', { reason: 'HeaderMissing' });
}

/** The length of the record framed at `at` of `packed`, checked (WALNUT_INVALID_FRAMING). */
function checkedLength(packed: Uint8Array, at: number): number {
  const length = packed.length - at >= 8 && be32(packed, at) === 0 ? be32(packed, at + 4) : -1;
  if (length < 0 || length > packed.length - at - 8) throw walnutError('WALNUT_INVALID_FRAMING', 'Truncated: a record runs past the hand-over buffer', { reason: 'Truncated' });
  checkRecordLength(length);
  return length;
}

export function sendError(e: unknown): SentError {
  if (e instanceof WalnutError) return { code: e.code, message: e.message, reason: e.reason, path: e.path, errno: e.errno };
  return { code: null, message: (e as Error)?.message ?? String(e) };
}

export function receivedError(e: SentError): WalnutError {
  if (e.code === null) return walnutError('WALNUT_IO', `replication: ${e.message}`);
  const message = e.message.startsWith(`${e.code}: `) ? e.message.slice(e.code.length + 2) : e.message;
  const details: { reason?: string; path?: string; errno?: number } = {};
  if (e.reason !== undefined) details.reason = e.reason;
  if (e.path !== undefined) details.path = e.path;
  if (e.errno !== undefined) details.errno = e.errno;
  return walnutError(e.code, message, details);
}

/** dist/replicate/worker.js beside this file's compiled self (from lib/*.ts, under a test runner: dist's). */
function workerFile(): string {
  return __filename.endsWith('.ts') ? path.resolve(__dirname, '../../dist/replicate/worker.js') : path.join(__dirname, 'worker.js');
}

const emptyMetrics = (): ReplicationMetrics => ({
  session: null, sessions: 0, exportedSeq: -1, publishedSeq: -1, lagCommits: 0, lagBytes: 0, lagMs: 0, exportBehindBytes: 0, exportBehindExceeded: 0, exportBehindPeakBytes: 0, bases: 0, baseHeldBytes: 0, baseHeldPeakBytes: 0,
  fullFrames: 0, deltaFrames: 0, fullPageBytes: 0, deltaBytes: 0, lagResets: 0, lastError: null,
  messages: 0, bytesPublished: 0, publishRetries: 0, duplicates: 0, resyncs: 0, inFlight: 0, peakInFlight: 0,
});

/** What the handle needs of the store: its follow exports (store.exportTo). */
export type ExportTo = (sink: WalRecordSink, options: ExportOptions) => ExportHandle;

/** An export the worker asked for: its sink calls not yet answered (their bytes), the call waiting for room, the first refusal. */
interface RemoteExport {
  handle: ExportHandle | null;
  calls: number;
  unacked: Map<number, number>;
  unackedBytes: number;
  waiting: { resolve: () => void; reject: (e: unknown) => void } | null;
  failed: unknown;
  /** Records held for the next hand-over message. */
  heldBytes: () => number;
}

export class ReplicationThread extends EventEmitter implements ReplicationHandle {
  readonly ready: Promise<void>;
  /** The worker (tests terminate it to see the handle survive that). */
  readonly worker: Worker;
  readonly #stopTimeoutMs: number;
  readonly #exited: Promise<void>;
  readonly #exportTo: ExportTo;
  readonly #exports = new Map<number, RemoteExport>();
  readonly #path: string;
  /** Hand-over buffers back from the worker (see the header). */
  readonly #buffers = new BufferPool(HANDOVER_POOL_BYTES);
  #metrics = emptyMetrics();
  /** The bound on exportBehindBytes (behind.ts), read on this thread. */
  readonly #behind: BehindWatch;
  /** What the worker was last told of the backlog against maxLagBytes ('behind'). */
  #behindOver = false;
  #ended = false;
  #gone = false;
  #stopping = false;
  #cut = false;

  /** `identity`: the device and inode of the database file the store has open (fstat of its descriptor). */
  constructor(dbPath: string, identity: { dev: number; ino: number }, exportTo: ExportTo, resolved: Resolved, busyTimeout: number, readOnly = false) {
    super();
    this.#stopTimeoutMs = resolved.stopTimeoutMs;
    this.#exportTo = exportTo;
    this.#path = dbPath;
    // each reading past maxLagBytes or back under it told to the worker ('behind'): a session
    // stalled in its first base is abandoned on it (publisher.ts Session room())
    const read = (): number => {
      const bytes = this.#behindBytes();
      const over = bytes > resolved.maxLagBytes;
      if (over !== this.#behindOver) {
        this.#behindOver = over;
        this.#post({ t: 'behind', over });
      }
      return bytes;
    };
    this.#behind = new BehindWatch(resolved.maxLagBytes, read, () => this.emit('exportBehind', this.metrics()));
    const data: WorkerData = { path: dbPath, identity, options: plainOptions(resolved), busyTimeout, readOnly }; // the caller's object may hold what cannot be cloned
    this.worker = new Worker(workerFile(), { workerData: data });
    this.#behind.start();
    let settle: { resolve: () => void; reject: (e: unknown) => void } | null = null;
    this.ready = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
    this.ready.catch(() => undefined);
    const readied = (e?: WalnutError): void => {
      if (e === undefined) settle?.resolve();
      else settle?.reject(e);
      settle = null;
    };
    this.worker.on('message', (m: FromWorkerWithAcks) => {
      if (m.acks !== undefined) for (const a of m.acks) this.#answered(a);
      // 'published' events held back by the worker (worker.ts) happened before this message
      if (m.published !== undefined) {
        for (const payload of m.published) {
          this.#published(payload as { session: string; seq: number });
          this.emit('published', payload);
        }
      }
      if (m.t === 'ready') readied();
      else if (m.t === 'readyFailed') readied(receivedError(m.error));
      else if (m.t === 'metrics' || m.t === 'end') {
        if (m.metrics !== null) this.#metrics = { ...m.metrics, lastError: m.metrics.lastError ?? this.#metrics.lastError };
        if (m.t === 'end') this.#ended = true;
      } else if (m.t === 'error') this.#error(receivedError(m.error));
      else if (m.t === 'event') {
        if (m.name === 'published') this.#published(m.payload as { session: string; seq: number });
        this.emit(m.name, m.payload);
      } else if (m.t === 'export') this.#startExport(m.id, m.options, m.deltas);
      else if (m.t === 'exportStop') void this.#exports.get(m.id)?.handle?.stop().catch(() => undefined);
    });
    // an exception the worker did not catch: it exits next, and its exit tells it (one error)
    let crash: Error | null = null;
    this.worker.on('error', (e) => (crash ??= e));
    this.#exited = new Promise<void>((resolve) => {
      this.worker.once('exit', (code) => {
        this.#gone = true;
        if (!this.#ended) {
          const why = crash === null ? `exited (code ${code})` : `failed (${crash.message})`;
          const e = walnutError('WALNUT_IO', `the replication worker ${why} before its replication ended`, { reason: 'WorkerExited', path: dbPath, ...(crash === null ? {} : { cause: crash }) });
          readied(e);
          this.#error(e);
        }
        readied(walnutError('WALNUT_CLOSED', 'the replication ended before it was ready', { path: dbPath }));
        // the exports it asked for end: their sink calls would never be answered
        const gone = walnutError('WALNUT_CLOSED', 'the replication worker has exited', { path: dbPath });
        for (const ex of this.#exports.values()) {
          ex.failed ??= gone;
          ex.waiting?.reject(ex.failed);
          ex.waiting = null;
          void ex.handle?.stop().catch(() => undefined);
        }
        this.#ended = true;
        this.#behind.stop(); // nothing is emitted after 'end'
        resolve();
        this.emit('end');
      });
    });
  }

  /** The worker's latest report, with what waits on this thread counted now (exportBehindBytes: the WAL the export has not read, the records not yet taken) and its bound's counts. */
  metrics(): ReplicationMetrics {
    if (arguments.length > 0) refuseExtraArguments('replication.metrics', 'no arguments', 0, arguments);
    const behind = this.#behind.saw(this.#behindBytes());
    return { ...this.#metrics, exportBehindBytes: behind, exportBehindExceeded: this.#behind.exceeded, exportBehindPeakBytes: this.#behind.peakBytes };
  }

  /**
   * The WAL frames the exports have not read, and the records they handed over and the worker
   * has not taken (see the header). behindBytes() in place of unreadBytes() counted the frames
   * of a sink call not yet settled here too: with the worker paused, 24.7 MB for 12.4 MB
   * committed (a pass of three WAL reads, two handed over and waiting).
   */
  #behindBytes(): number {
    let behind = 0;
    for (const ex of this.#exports.values()) behind += (ex.handle?.unreadBytes() ?? 0) + ex.unackedBytes + ex.heldBytes();
    return behind;
  }

  /** A sink call the worker answered: its buffer back to the pool, its bytes no longer held against the export. */
  #answered(a: Ack): void {
    if (a.spares !== undefined) for (const spare of a.spares) this.#buffers.give(spare);
    const ex = this.#exports.get(a.id);
    if (ex === undefined) return;
    ex.unackedBytes -= ex.unacked.get(a.call) ?? 0;
    ex.unacked.delete(a.call);
    if (a.error !== undefined) ex.failed ??= receivedError(a.error);
    if (ex.failed !== null) ex.waiting?.reject(ex.failed);
    else if (ex.unackedBytes <= MAX_UNACKED_BYTES) ex.waiting?.resolve();
    if (ex.failed !== null || ex.unackedBytes <= MAX_UNACKED_BYTES) ex.waiting = null;
  }

  async stop(): Promise<void> {
    const refused = stopArgumentError(arguments[0]);
    if (refused !== null) throw refused;
    if (!this.#stopping) {
      this.#stopping = true;
      this.#post({ t: 'stop' });
      const t = setTimeout(() => void this.worker.terminate(), Math.min(this.#stopTimeoutMs + STOP_GRACE_MS, LONGEST_TIMER_MS));
      void this.#exited.then(() => clearTimeout(t));
    }
    await this.#exited;
  }

  /**
   * The store's close() began (or walnut/sql announced it: store.ts #cutLockWaits): the worker's
   * connection's waits for other connections' locks end, as the store's own do, its open's
   * included (worker.ts; see the header).
   */
  cutLockWaits(): void {
    if (this.#cut) return;
    this.#cut = true;
    this.#post({ t: 'cut' });
  }

  #post(m: ToWorker, transfer?: ArrayBuffer[]): void {
    if (!this.#gone) this.worker.postMessage(m, transfer);
  }

  /** A follow export of the store for the worker's session (see the header). */
  #startExport(id: number, options: ExportOptions, deltas: SinkPageDeltas | null): void {
    const ex: RemoteExport = { handle: null, calls: 0, unacked: new Map(), unackedBytes: 0, waiting: null, failed: null, heldBytes: () => heldBytes };
    this.#exports.set(id, ex);
    /** Posts a sink call (WALNUT_CLOSED / the first refusal once the export failed). */
    const send = (m: SinkCall, bytes: number, transfer?: ArrayBuffer[]): void => {
      if (this.#gone) ex.failed ??= walnutError('WALNUT_CLOSED', 'the replication worker has exited', { path: this.#path });
      if (ex.failed !== null) throw ex.failed;
      ex.unacked.set(m.call, bytes);
      ex.unackedBytes += bytes;
      this.#post(m, transfer);
    };
    /** The export goes on at once while the unanswered calls hold at most MAX_UNACKED_BYTES, else once they hold less. */
    const room = (): Promise<void> => {
      if (this.#gone) ex.failed ??= walnutError('WALNUT_CLOSED', 'the replication worker has exited', { path: this.#path });
      if (ex.failed !== null) return Promise.reject(ex.failed);
      if (ex.unackedBytes <= MAX_UNACKED_BYTES) return Promise.resolve();
      return new Promise<void>((resolve, reject) => (ex.waiting = { resolve, reject }));
    };
    // the export's records and flushes are held and cross together: at the flush that ends an
    // export pass, at most one message per HANDOVER_MS (the first at once), or at once past
    // HANDOVER_BYTES, or by a timer (records without their flush yet): a message between threads
    // cost the store's thread ~30-100 µs of CPU under load (its postMessage was 12-15% of that
    // thread's busy time at 64 committers, one per export pass), and each pass of a few commits
    // was a message of its own
    const held: Uint8Array[] = [];
    let heldBytes = 0;
    let heldFlush = false;
    let lastPost = -Infinity;
    /** Records posted (bytes) in this HANDOVER_WINDOW_MS since windowAt, and in the one before: the export is busy past HANDOVER_BATCH_BYTES. */
    let windowAt = -Infinity;
    let windowBytes = 0;
    let lastWindowBytes = 0;
    let timer: ReturnType<typeof setTimeout> | null = null;
    const postHeld = (): void => {
      if (timer !== null) clearTimeout(timer);
      timer = null;
      lastPost = performance.now();
      const flush = heldFlush;
      heldFlush = false;
      if (held.length === 0) {
        if (flush) send({ t: 'flush', id, call: ++ex.calls }, 0);
        return;
      }
      const packed = held.splice(0);
      const bytes = heldBytes;
      heldBytes = 0;
      if (lastPost - windowAt > HANDOVER_WINDOW_MS) {
        lastWindowBytes = lastPost - windowAt > 2 * HANDOVER_WINDOW_MS ? 0 : windowBytes;
        windowBytes = 0;
        windowAt = lastPost;
      }
      windowBytes += bytes;
      send({ t: 'records', id, call: ++ex.calls, packed, flush }, bytes, packed.map((p) => p.buffer as ArrayBuffer));
    };
    /**
     * `now`: a flush (an export pass ends) or past HANDOVER_BYTES; else the pass's flush is due
     * soon and the records wait for it: 1 ms at least, and up to HANDOVER_MS from the first of
     * them while the export is busy (the records posted in the last window or two and these hold
     * HANDOVER_BATCH_BYTES: see there).
     */
    const postSoon = (now: boolean): Promise<void> => {
      const since = performance.now() - lastPost;
      const wait = now ? HANDOVER_MS - since : heldBytes + windowBytes + lastWindowBytes >= HANDOVER_BATCH_BYTES ? HANDOVER_MS : Math.max(1, HANDOVER_MS - since);
      if (wait <= 0 || heldBytes >= HANDOVER_BYTES) {
        try {
          postHeld();
        } catch (e) {
          return Promise.reject(e);
        }
      } else {
        // a refusal seen when the timer posts fails the export's next call (room())
        timer ??= setTimeout(() => {
          timer = null;
          try {
            postHeld();
          } catch {
            ex.waiting?.reject(ex.failed);
            ex.waiting = null;
          }
        }, wait);
      }
      return room();
    };
    const hold = (packed: Uint8Array): Promise<void> => {
      held.push(packed);
      heldBytes += packed.length;
      return postSoon(false);
    };
    // the export's commit records come framed (and delta-encoded, as the worker's session asks:
    // `deltas`) from its native WAL read: one copy into hand-over memory
    const sink: WalRecordSink & { [PAGE_DELTAS]?: SinkPageDeltas } = {
      appendRecord: (p) => hold(packRecords(this.#buffers, [p])),
      appendRecords: (payloads) => hold(packRecords(this.#buffers, payloads)),
      appendFramed: (framed) => hold(packFramed(this.#buffers, framed)),
      flush: () => {
        heldFlush = true;
        return postSoon(true);
      },
    };
    if (deltas !== null) sink[PAGE_DELTAS] = deltas;
    const ended = (e?: unknown): void => {
      // what the export handed over before it ended goes first
      if (ex.failed === null && (held.length > 0 || heldFlush)) {
        try {
          postHeld();
        } catch {
          // the export failed meanwhile: exportDone tells the worker
        }
      }
      if (timer !== null) clearTimeout(timer);
      timer = null;
      this.#exports.delete(id);
      this.#post(e === undefined ? { t: 'exportDone', id } : { t: 'exportDone', id, error: sendError(e) });
    };
    try {
      ex.handle = this.#exportTo(sink, options);
    } catch (e) {
      ended(e);
      return;
    }
    ex.handle.done.then(() => ended(), ended);
  }

  /**
   * A 'published' event between two reports moves publishedSeq, and with it what the report
   * said of the lag: exportedSeq is at least publishedSeq (the publisher publishes only what it
   * exported), and no lag is left once they meet. An event of a session the report does not
   * name yet waits for the report.
   */
  #published({ session, seq }: { session: string; seq: number }): void {
    const m = this.#metrics;
    if (m.session !== session || seq <= m.publishedSeq) return;
    m.publishedSeq = seq;
    m.exportedSeq = Math.max(m.exportedSeq, seq);
    m.lagCommits = m.exportedSeq - seq;
    if (m.lagCommits === 0) m.lagBytes = m.lagMs = 0;
  }

  #error(e: WalnutError): void {
    this.#metrics.lastError = lastErrorLine(e);
    if (this.listenerCount('error') > 0) this.emit('error', e);
  }
}
