/**
 * replicate/worker.ts — the body of the replication worker (thread.ts): opens its own
 * connection to the database, runs the publisher (publisher.ts) on it, and forwards the
 * publisher's events and metrics to the handle; pokes from the store's commits (a shared
 * counter) make its export look at once.
 *
 * Invariants: the connection never commits, never checkpoints on its own account
 * (autoCheckpoint off) and never removes the WAL (keepWal: the store is open beside it);
 * it closes after the publisher has ended, then the worker exits. 'end' is the last message.
 */
import { parentPort, workerData } from 'node:worker_threads';

import { open } from '../open';
import type { ReplicationHandle, ReplicationMetrics } from './publisher';
import { METRICS_MS, sendError, type FromWorker, type ToWorker, type WorkerData } from './thread';

const data = workerData as WorkerData;
const port = parentPort!;
const send = (m: FromWorker): void => port.postMessage(m);

let replication: ReplicationHandle | null = null;
let stopping = false;
port.on('message', (m: ToWorker) => {
  if (m.t !== 'stop') return;
  stopping = true;
  void replication?.stop();
  Atomics.notify(pokes, 0); // the poke loop ends
});
const pokes = new Int32Array(data.pokes);

/** Atomics.waitAsync (Node >= 16; the project's TypeScript lib predates its typing). */
const waitAsync = (Atomics as unknown as { waitAsync(a: Int32Array, i: number, v: number): { async: boolean; value: Promise<string> | string } }).waitAsync;

/** Pokes the export on each change of the counter, until the replication ends. */
async function relayPokes(r: ReplicationHandle, ended: () => boolean): Promise<void> {
  let seen = Atomics.load(pokes, 0);
  while (!ended() && !stopping) {
    const w = waitAsync(pokes, 0, seen);
    if (w.async) await w.value;
    seen = Atomics.load(pokes, 0);
    r.poke();
  }
}

async function main(): Promise<void> {
  const store = await open(data.path, { busyTimeout: data.busyTimeout, autoCheckpoint: false, keepWal: true });
  let ended = false;
  try {
    const r = store.replicateTo(data.options);
    replication = r;
    const metrics = (): ReplicationMetrics => r.metrics();
    r.on('error', (e: unknown) => send({ t: 'error', error: sendError(e) }));
    for (const name of ['published', 'base', 'lagExceeded'] as const) {
      r.on(name, (payload: unknown) => {
        if (name === 'published') return send({ t: 'event', name, payload });
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
    void relayPokes(r, () => ended);
    await done;
    ended = true;
    Atomics.notify(pokes, 0);
    clearInterval(timer);
    send({ t: 'end', metrics: metrics() });
  } finally {
    await store.close();
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    // the store did not open (or closed badly): the handle hears it, then sees the worker exit
    send({ t: 'readyFailed', error: sendError(e) });
    send({ t: 'error', error: sendError(e) });
    process.exit(1);
  },
);
