/**
 * replicate/worker.ts — the body of the replication worker (thread.ts): runs the publisher
 * (publisher.ts) with the store's follow exports fed from the store's thread (each sink call a
 * message, answered once the publisher's sink has taken it), and base images and checkpoints
 * from a connection of its own; forwards the publisher's events and metrics to the handle.
 *
 * Invariants: the connection never commits, never checkpoints on its own account
 * (autoCheckpoint off) and never removes the WAL (keepWal: the store is open beside it); it is
 * no member of the store's commit lane (shareLane off: commit/lane.ts; a member that never
 * commits still made the store's leader gather, take and rest natively every batch: +17% of
 * that thread's CPU per commit, bench/README.md "#22 session 31"); it
 * opens only the database the store has open (same file identity: a path since renamed or
 * replaced is refused, never created). It closes after the publisher has ended, then the worker
 * exits; 'end' is the last message. Its waits for other connections' locks, its open's included,
 * end when the store's close() begins ('cut': LockWaitCut, thread.ts), and the open's when stop()
 * comes while it is still opening ('stop'): an open cut there ends the replication as a stop
 * before it began (readyFailed WALNUT_CLOSED, no 'error').
 */
import * as fs from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';

import { isWalnutError, walnutError } from '../errors';
import type { ExportOptions, ExportStats } from '../export/exporter';
import { pageDeltasOf, type WalRecordSink } from '../export/framing';
import type { ExportHandle } from '../export/stream';
import { setThreadBackground } from '../native';
import { openCuttable } from '../open';
import { LockWaitCut } from '../wal-index/wal-index';
import { resolveReplicateOptions, startReplication, type ReplicationHandle, type ReplicationMetrics } from './publisher';
import { ACK_BYTES, METRICS_MS, packedRecords, receivedError, sendError, unpackRecords, type Ack, type FromWorker, type FromWorkerWithAcks, type ToWorker, type WorkerData } from './thread';

const data = workerData as WorkerData;
/**
 * How long a 'published' event may wait for a message to go with (ms): the metrics' period, so
 * that they go with the metrics (held 10 ms, they still went alone ~100 times a second at 64
 * committers: NATS acks come about that often).
 */
const PUBLISHED_MS = METRICS_MS;
const port = parentPort!;
/** Answers to sink calls not sent yet, and their bytes: they go with the next message (thread.ts Ack). */
let acks: Ack[] = [];
let ackBytes = 0;
/**
 * 'published' events not sent yet: they go with the next message, or after PUBLISHED_MS (one
 * message per stored NATS message cost this thread a postMessage and the store's thread a
 * wake-up each, ~140-300 a second at 64 committers); never after a later message.
 */
let published: unknown[] = [];
let publishedTimer: ReturnType<typeof setTimeout> | null = null;
const send = (m: FromWorker): void => {
  if (publishedTimer !== null) clearTimeout(publishedTimer);
  publishedTimer = null;
  if (acks.length === 0 && published.length === 0) return port.postMessage(m);
  const out: FromWorkerWithAcks = { ...m };
  if (published.length > 0) {
    out.published = published;
    published = [];
  }
  const spares: ArrayBuffer[] = [];
  if (acks.length > 0) {
    out.acks = acks;
    for (const a of acks) if (a.spares !== undefined) spares.push(...a.spares);
    acks = [];
    ackBytes = 0;
  }
  port.postMessage(out, spares);
};

/**
 * The store's exports this worker asked for: their sinks (the publisher's sessions), the last
 * sink call (each runs after the one before it, and the export's end after all of them: the
 * store's thread sends calls without waiting for their answers), and their ends.
 */
const remoteExports = new Map<number, { sink: WalRecordSink; last: Promise<void>; resolve: (s: ExportStats) => void; reject: (e: unknown) => void }>();
let exportIds = 0;
let replication: ReplicationHandle | null = null;
let stopping = false;
/** Whether the store's thread last said the export's backlog is past maxLagBytes (thread.ts 'behind'). */
let behindOver = false;
/** The connection's waits for other connections' locks, from its open on: the store's close() cuts them ('cut', see the header). */
const waitCut = new LockWaitCut();

port.on('message', (m: ToWorker) => {
  if (m.t === 'stop') {
    stopping = true;
    // still opening its connection: the open's waits for other connections' locks end now, as
    // close()'s 'cut' ends them, and the replication ends as one stopped before it began (main's
    // catch). stop() waited for the open the rest of the busy timeout, or stopTimeoutMs + 15 s,
    // then terminated the worker (test/hostile/stop-cuts-replication-open)
    if (replication === null) waitCut.cut();
    void replication?.stop();
  } else if (m.t === 'cut') {
    waitCut.cut();
  } else if (m.t === 'behind') {
    behindOver = m.over;
  } else if (m.t === 'records' || m.t === 'flush') {
    const ex = remoteExports.get(m.id);
    if (ex === undefined) {
      acks.push({ id: m.id, call: m.call, error: sendError(walnutError('WALNUT_CLOSED', 'the export has ended')) });
      return send({ t: 'acks' });
    }
    const take = async (): Promise<void> => {
      if (m.t === 'records') for (const packed of m.packed) await append(ex.sink, packed);
      if (m.t === 'flush' || m.flush) await ex.sink.flush();
    };
    // the packed records' buffer goes back with the answer, for the next call (thread.ts): the
    // sink has copied what it keeps once its call settles. Answers wait for the next message
    // (a message between threads costs ~30 µs of CPU on the VM, a wake-up of the store's
    // thread included), unless they hold ACK_BYTES (the export waits past twice that) or a
    // refusal; the metrics sent every METRICS_MS take any left.
    const ack = (failed: { error: unknown } | null): void => {
      const answer: Ack = { id: m.id, call: m.call };
      if (failed !== null) answer.error = sendError(failed.error);
      if (m.t === 'records') {
        answer.spares = m.packed.map((p) => p.buffer as ArrayBuffer);
        for (const p of m.packed) ackBytes += p.length;
      }
      acks.push(answer);
      if (failed !== null || ackBytes >= ACK_BYTES) send({ t: 'acks' });
    };
    ex.last = ex.last.then(take).then(
      () => ack(null),
      (error: unknown) => ack({ error }),
    );
  } else if (m.t === 'exportDone') {
    const ex = remoteExports.get(m.id);
    remoteExports.delete(m.id);
    void ex?.last.then(() => {
      if (m.error === undefined) ex.resolve({ records: 0, commits: 0, generations: 0, basePages: 0 });
      else ex.reject(receivedError(m.error));
    });
  }
});

/**
 * A hand-over buffer's records to the sink: as framed records where it takes them (the
 * publisher's session reads them in place, no view per record), else as records.
 */
async function append(sink: WalRecordSink, packed: Uint8Array): Promise<void> {
  if (sink.appendFramed !== undefined) return sink.appendFramed(packed.subarray(8), packedRecords(packed));
  const payloads = unpackRecords(packed);
  if (sink.appendRecords !== undefined) return sink.appendRecords(payloads);
  for (const p of payloads) await sink.appendRecord(p);
}

/** A follow export of the store, run on the store's thread (thread.ts). */
function remoteExport(sink: WalRecordSink, options: ExportOptions): ExportHandle {
  const id = ++exportIds;
  const done = new Promise<ExportStats>((resolve, reject) => remoteExports.set(id, { sink, last: Promise.resolve(), resolve, reject }));
  done.catch(() => undefined);
  send({ t: 'export', id, options, deltas: pageDeltasOf(sink) }); // the session's encoding, done in the store's WAL read
  return {
    done,
    stop: () => {
      send({ t: 'exportStop', id });
      return done;
    },
    poke: () => undefined, // the store pokes its exports itself
    behindBytes: () => 0, // the store's thread counts it (thread.ts metrics())
    unreadBytes: () => 0,
  };
}

/** The database the store has open, or WALNUT_CANTOPEN (see the header). */
function checkSameFile(): void {
  const now = fs.statSync(data.path, { throwIfNoEntry: false });
  if (now === undefined || now.dev !== data.identity.dev || now.ino !== data.identity.ino) {
    throw walnutError('WALNUT_CANTOPEN', `${data.path} is no longer the database the store has open (renamed or replaced): the replication worker does not open it`, { path: data.path, reason: 'NotTheStoresFile' });
  }
}

/**
 * The options' background class for this thread (publisher.ts `background`). Threads created
 * later inherit the class, so the process-wide libuv pool is started first (an fs call on it):
 * were this thread the first to use it, the pool's threads, which serve the store's thread too,
 * would otherwise be born in the background class.
 */
async function enterBackgroundClass(): Promise<void> {
  if (data.options.background !== true) return;
  await fs.promises.access(data.path).catch(() => undefined);
  setThreadBackground();
}

async function main(): Promise<void> {
  checkSameFile();
  await enterBackgroundClass();
  const store = await openCuttable(data.path, { busyTimeout: data.busyTimeout, autoCheckpoint: false, keepWal: true, shareLane: false, ...(data.readOnly ? { readOnly: true } : {}) }, waitCut);
  let ended = false;
  try {
    checkSameFile();
    // the backlog ahead of the export is the store's thread's to count (thread.ts)
    const source = { path: store.path, pageSize: store.pageSize, exportTo: remoteExport, snapshot: () => store.snapshot(), checkpoint: (mode: 'passive') => store.checkpoint(mode), behindCountedElsewhere: true, behindOver: () => behindOver };
    const r = startReplication(source, resolveReplicateOptions(data.options));
    replication = r;
    const metrics = (): ReplicationMetrics => r.metrics();
    r.on('error', (e: unknown) => send({ t: 'error', error: sendError(e) }));
    for (const name of ['published', 'base', 'lagExceeded'] as const) {
      r.on(name, (payload: unknown) => {
        if (name === 'published') {
          published.push(payload);
          publishedTimer ??= setTimeout(() => send({ t: 'acks' }), PUBLISHED_MS);
          return;
        }
        // the metrics after what the event reports (lagExceeded drops the queue after emitting), then the event
        queueMicrotask(() => {
          send({ t: 'metrics', metrics: metrics() });
          send({ t: 'event', name, payload });
        });
      });
    }
    const done = new Promise<void>((resolve) => r.once('end', resolve));
    const timer = setInterval(() => send({ t: 'metrics', metrics: metrics() }), METRICS_MS);
    if (stopping) void r.stop();
    await r.ready.then(
      () => {
        send({ t: 'metrics', metrics: metrics() });
        send({ t: 'ready' });
      },
      (e: unknown) => send({ t: 'readyFailed', error: sendError(e) }),
    );
    await done;
    ended = true;
    clearInterval(timer);
    send({ t: 'end', metrics: metrics() });
  } finally {
    if (!ended) replication?.removeAllListeners();
    await store.close();
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    // the store did not open (or closed badly): the replication ended with this error; an open
    // the store's close() cut ends it as a stop before it began (ready tells it, no 'error'), as
    // the store's loop's publisher ends when close() cuts its waits on the store's connection
    const cutOpen = replication === null && waitCut.isCut && isWalnutError(e, 'WALNUT_CLOSED');
    send({ t: 'readyFailed', error: sendError(e) });
    if (!cutOpen) send({ t: 'error', error: sendError(e) });
    send({ t: 'end', metrics: replication?.metrics() ?? null });
    process.exit(cutOpen ? 0 : 1);
  },
);
