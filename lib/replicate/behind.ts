/**
 * replicate/behind.ts — BehindWatch: the bound on the backlog ahead of a replication's export
 * (metrics().exportBehindBytes: WAL frames committed and not yet read by the follow export, and
 * with the worker thread the records handed to it and not yet taken) and what happens past it.
 *
 * Invariants:
 *  - Read every BEHIND_CHECK_MS on the thread that counts it (the store's: thread.ts, or the
 *    publisher's own loop when that is the store's), by a timer that holds no process open, from
 *    start() until stop(); never on the commit path, and it never makes a commit wait.
 *  - Past the bound (the replication's maxLagBytes) 'exportBehind' is emitted once, with the
 *    metrics, and `exceeded` counts it; it is emitted again only after the backlog has fallen
 *    below half the bound and passed the bound once more (a backlog hovering at the bound is
 *    one event, not one per reading).
 *  - Nothing is dropped or abandoned past it: the backlog is committed data, durable in the WAL,
 *    and the export reads it as the publisher takes records (publisher.ts header says why the
 *    session is not abandoned for it). No event after stop(): a handle emits none after 'end'.
 */

/** How often the backlog is read against the bound (ms): the metrics' period (thread.ts METRICS_MS). */
export const BEHIND_CHECK_MS = 50;

export class BehindWatch {
  /** Times the backlog passed the bound (each an 'exportBehind' event). */
  exceeded = 0;
  /** The largest backlog read (by the timer or by metrics()). */
  peakBytes = 0;
  #over = false;
  #timer: ReturnType<typeof setInterval> | null = null;
  #stopped = false;

  /** `read`: the backlog now (bytes); `passed`: called once per crossing (see the header). */
  constructor(
    readonly boundBytes: number,
    readonly read: () => number,
    readonly passed: () => void,
  ) {}

  start(): void {
    if (this.#stopped || this.#timer !== null) return;
    this.#timer = setInterval(() => this.check(), BEHIND_CHECK_MS);
    this.#timer.unref();
  }

  /** No reading and no event from now on (the handle is ending). */
  stop(): void {
    this.#stopped = true;
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  /**
   * A reading (the timer's, or metrics()'): the peak moves, and one below half the bound
   * re-arms the event; a crossing is told by the timer's reading only (metrics() emits nothing).
   * The timer alone missed a backlog drained between two of its readings (50 ms apart, later on
   * a busy loop), and the next crossing went untold.
   */
  saw(bytes: number): number {
    if (bytes > this.peakBytes) this.peakBytes = bytes;
    if (this.#over && bytes < this.boundBytes / 2) this.#over = false;
    return bytes;
  }

  /** Reads the backlog, and tells a crossing (see the header). */
  check(): void {
    if (this.#stopped) return;
    const bytes = this.saw(this.read());
    if (!this.#over && bytes > this.boundBytes) {
      this.#over = true;
      this.exceeded++;
      this.passed();
    }
  }
}
