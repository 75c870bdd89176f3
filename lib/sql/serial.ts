/**
 * sql/serial.ts — Serial: runs async jobs one at a time, in call order.
 *
 * A SQLite connection runs one statement at a time, and wa-sqlite's step() is asynchronous (it
 * may await a retry op), so every use of the connection goes through one Serial. A job's
 * failure is its own: the next job runs regardless.
 */
export class Serial {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(job: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(job);
    this.#tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}
