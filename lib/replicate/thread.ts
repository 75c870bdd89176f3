/**
 * replicate/thread.ts — store.replicateTo on a worker thread (the default): the publisher
 * (publisher.ts: the follow export's WAL reads, records, page deltas, hashing, the NATS client)
 * runs in a worker (worker.ts) with its own connection to the database, so the store's event
 * loop does its commits only. The handle here (ReplicationThread) is the same ReplicationHandle
 * as the in-thread publisher's, its events and metrics forwarded by messages.
 *
 * Invariants:
 *  - The worker's connection follows the WAL as any other connection's export does (follow.ts:
 *    the commits of this store, other stores and sqlite3 alike); the store pokes it after its
 *    own commits through a shared counter (Atomics.notify: no message, no wake-up of this loop),
 *    so it looks at once instead of at its next poll.
 *  - metrics() is the worker's latest report: sent every METRICS_MS, with each event, and at
 *    the end; publishedSeq moves with each 'published' event.
 *  - 'end' is emitted once, after the worker has exited (its connection closed). A worker that
 *    exits without having ended its replication (terminated, crashed) is an 'error',
 *    WALNUT_IO reason WorkerExited, then 'end'; ready rejects with it if it was pending. The
 *    store's commits never depend on the worker.
 *  - stop() asks the worker to publish what is committed and end (within stopTimeoutMs, as in
 *    publisher.ts); a worker that has not exited STOP_GRACE_MS after that is terminated.
 */
import * as path from 'node:path';
import { EventEmitter } from 'node:events';
import { Worker } from 'node:worker_threads';

import { walnutError, WalnutError, type WalnutErrorCode } from '../errors';
import type { ReplicateOptions, ReplicationHandle, ReplicationMetrics, Resolved } from './publisher';

/** How often the worker sends its metrics (ms). */
export const METRICS_MS = 50;
/** How long past stopTimeoutMs a stopping worker may take before it is terminated (ms). */
const STOP_GRACE_MS = 15_000;

/** What the worker needs: the database, the replication's options, the connection's options, the poke counter. */
export interface WorkerData {
  path: string;
  options: ReplicateOptions;
  busyTimeout: number;
  pokes: SharedArrayBuffer;
}

/** An error as it crosses threads (a WalnutError's code and details survive). */
export interface SentError {
  code: WalnutErrorCode | null;
  message: string;
  reason?: string;
  path?: string;
  errno?: number;
}

/** Messages from the worker. */
export type FromWorker =
  | { t: 'ready' }
  | { t: 'readyFailed'; error: SentError }
  | { t: 'metrics'; metrics: ReplicationMetrics }
  | { t: 'event'; name: 'published' | 'base' | 'lagExceeded'; payload: unknown }
  | { t: 'error'; error: SentError }
  | { t: 'end'; metrics: ReplicationMetrics };

/** Messages to the worker. */
export type ToWorker = { t: 'stop' };

export function sendError(e: unknown): SentError {
  if (e instanceof WalnutError) return { code: e.code, message: e.message, reason: e.reason, path: e.path, errno: e.errno };
  return { code: null, message: (e as Error)?.message ?? String(e) };
}

function receivedError(e: SentError): WalnutError {
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
  session: null, sessions: 0, exportedSeq: -1, publishedSeq: -1, lagCommits: 0, lagBytes: 0, lagMs: 0, bases: 0,
  fullFrames: 0, deltaFrames: 0, fullPageBytes: 0, deltaBytes: 0, lagResets: 0, lastError: null,
  messages: 0, bytesPublished: 0, publishRetries: 0, duplicates: 0, resyncs: 0, inFlight: 0, peakInFlight: 0,
});

export class ReplicationThread extends EventEmitter implements ReplicationHandle {
  readonly ready: Promise<void>;
  /** The worker (tests terminate it to see the handle survive that). */
  readonly worker: Worker;
  readonly #pokes: Int32Array;
  readonly #stopTimeoutMs: number;
  readonly #exited: Promise<void>;
  #metrics = emptyMetrics();
  #ended = false;
  #stopping = false;

  constructor(dbPath: string, options: ReplicateOptions, resolved: Resolved, busyTimeout: number) {
    super();
    this.#stopTimeoutMs = resolved.stopTimeoutMs;
    const pokes = new SharedArrayBuffer(4);
    this.#pokes = new Int32Array(pokes);
    const data: WorkerData = { path: dbPath, options: { ...options, thread: false }, busyTimeout, pokes };
    this.worker = new Worker(workerFile(), { workerData: data });
    let settle: { resolve: () => void; reject: (e: unknown) => void } | null = null;
    this.ready = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
    this.ready.catch(() => undefined);
    const readied = (e?: WalnutError): void => {
      if (e === undefined) settle?.resolve();
      else settle?.reject(e);
      settle = null;
    };
    this.worker.on('message', (m: FromWorker) => {
      if (m.t === 'ready') readied();
      else if (m.t === 'readyFailed') readied(receivedError(m.error));
      else if (m.t === 'metrics' || m.t === 'end') {
        this.#metrics = m.metrics;
        if (m.t === 'end') this.#ended = true;
      } else if (m.t === 'error') this.#error(receivedError(m.error));
      else if (m.t === 'event') {
        if (m.name === 'published') this.#metrics.publishedSeq = Math.max(this.#metrics.publishedSeq, (m.payload as { seq: number }).seq);
        this.emit(m.name, m.payload);
      }
    });
    // an exception the worker did not catch: it exits next
    this.worker.on('error', (e) => this.#error(walnutError('WALNUT_IO', `replication worker failed: ${e.message}`, { reason: 'WorkerExited', cause: e })));
    this.#exited = new Promise<void>((resolve) => {
      this.worker.once('exit', (code) => {
        if (!this.#ended) {
          const e = walnutError('WALNUT_IO', `the replication worker exited (code ${code}) before its replication ended`, { reason: 'WorkerExited', path: dbPath });
          readied(e);
          this.#error(e);
        }
        readied(walnutError('WALNUT_CLOSED', 'the replication ended before it was ready', { path: dbPath }));
        this.#ended = true;
        resolve();
        this.emit('end');
      });
    });
  }

  metrics(): ReplicationMetrics {
    return { ...this.#metrics };
  }

  poke(): void {
    Atomics.add(this.#pokes, 0, 1);
    Atomics.notify(this.#pokes, 0);
  }

  async stop(): Promise<void> {
    if (!this.#stopping) {
      this.#stopping = true;
      this.worker.postMessage({ t: 'stop' } satisfies ToWorker);
      const t = setTimeout(() => void this.worker.terminate(), this.#stopTimeoutMs + STOP_GRACE_MS);
      void this.#exited.then(() => clearTimeout(t));
    }
    await this.#exited;
  }

  #error(e: WalnutError): void {
    this.#metrics.lastError = `${e.code}: ${e.message}`;
    if (this.listenerCount('error') > 0) this.emit('error', e);
  }
}
