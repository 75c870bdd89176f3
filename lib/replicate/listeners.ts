/**
 * replicate/listeners.ts — how replication's handles (publisher.ts's on the store's loop,
 * replica.ts's) emit their events from inside their own work.
 *
 * Invariant: a listener's exception is its caller's, thrown on a turn of its own (an uncaught
 * exception, as a listener of a handle on a worker thread throws one: thread.ts emits from the
 * worker's messages), never into the work that emitted. Thrown into it, it was taken for that
 * work's failure: a 'published' listener that threw once ended the replication on the store's
 * loop ('error' WALNUT_IO "replication: <its message>", 'end', nothing more published); a
 * replica's 'applied' listener's was told as the stream's ("reading the JetStream stream
 * failed", the log read again) and a 'rebase' listener's stopped the replica for good.
 */
import type { EventEmitter } from 'node:events';

/** `emitter.emit(name, payload)`, a listener's exception thrown apart (header comment). */
export function emitApart(emitter: EventEmitter, name: string, payload: unknown): void {
  try {
    emitter.emit(name, payload);
  } catch (e) {
    queueMicrotask(() => {
      throw e;
    });
  }
}
