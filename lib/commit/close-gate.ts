/**
 * commit/close-gate.ts — CloseGate: the store's verbs against close().
 *
 * close() checkpoints the database and may remove the WAL; anything still writing to the WAL
 * or reading through the index at that moment would be lost or read a closed file. So every
 * asynchronous verb (a transaction's commit and reads, snapshot(), checkpoint(), the snapshot
 * a begin() takes) passes the gate: once close() has begun the gate refuses new ones with
 * WALNUT_CLOSED, and close() goes on only after every one that got in has settled.
 * Invariant: after close() resolves, no verb that entered is still running, and none can enter.
 */
import { refusedOnLaterTurn, walnutError } from '../errors';

export class CloseGate {
  readonly #path: string;
  readonly #inFlight = new Set<Promise<unknown>>();
  #closed = false;

  constructor(path: string) {
    this.#path = path;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Throws WALNUT_CLOSED once close() has begun. */
  check(): void {
    if (this.#closed) throw this.#closedError();
  }

  /**
   * Runs `verb` unless closing (then rejects WALNUT_CLOSED, on a later turn of the event loop:
   * a caller retrying a refused tx.commit() at once never let its timers run, as store.commit()
   * did: errors.ts refusedOnLaterTurn); close() waits for it to settle.
   */
  run<T>(verb: () => Promise<T>): Promise<T> {
    if (this.#closed) return refusedOnLaterTurn(this.#closedError());
    try {
      return this.track(verb());
    } catch (e) {
      return Promise.reject(e);
    }
  }

  #closedError(): Error {
    return walnutError('WALNUT_CLOSED', 'the store is closed', { path: this.#path });
  }

  /** Makes close() wait for a promise already started (call check() first). */
  track<T>(p: Promise<T>): Promise<T> {
    this.#inFlight.add(p);
    const done = (): void => void this.#inFlight.delete(p);
    p.then(done, done);
    return p;
  }

  /** Refuses every later verb; resolves when every verb that entered has settled. */
  async close(): Promise<void> {
    this.#closed = true;
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
  }
}
