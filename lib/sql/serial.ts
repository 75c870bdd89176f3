/**
 * sql/serial.ts — Serial: runs async jobs one at a time, in call order.
 *
 * A SQLite connection runs one statement at a time, and a statement may have to wait (a step
 * awaits a retry op), so every use of the connection goes through one Serial. A job's failure
 * is its own: the next job runs regardless. While the Serial is idle (no job queued or
 * running) a caller may run its job at once, synchronously, and hand the Serial the rest of it
 * when it must wait (hold()): later jobs queue behind that.
 */
export class Serial {
  #tail: Promise<unknown> = Promise.resolve();
  /** Jobs queued or running (run(), hold()), until their settling is seen. */
  #pending = 0;
  readonly #settled = (): void => {
    this.#pending--;
  };

  /** No job is queued or running: one started now runs next. */
  get idle(): boolean {
    return this.#pending === 0;
  }

  run<T>(job: () => T | Promise<T>): Promise<T> {
    this.#pending++;
    const result = this.#tail.then(job);
    this.#tail = result.then(this.#settled, this.#settled);
    return result;
  }

  /** A job started while idle goes on asynchronously (`rest`): the jobs run after this call wait for it. */
  hold<T>(rest: Promise<T>): Promise<T> {
    this.#pending++;
    this.#tail = rest.then(this.#settled, this.#settled);
    return rest;
  }
}
