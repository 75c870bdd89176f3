/**
 * sql/commit-pipeline.ts — CommitPipeline: SQL transactions sequenced now, durable later.
 *
 * walnut publishes a commit only once it is durable, but SQLite's next writer must see the
 * previous transaction's pages at once (early lock release: the connection moves on while the
 * group commit's fsync is pending). So committed page images are kept here, in an overlay, from
 * the moment a transaction is sequenced (sequence(), synchronous) until every view can read
 * them from a walnut snapshot.
 *
 * Invariants:
 *  - Sequence numbers are ascending (dense but for one empty sequence per recovery, below);
 *    store.commit() is called in sequence order, so walnut's commit order is the sequence order
 *    (group-committer.ts keeps submission order).
 *  - `published` is the highest sequence whose store.commit() resolved (it is in the WAL and in
 *    the -shm header, so any snapshot taken after that sees it) or that was lost (below).
 *  - A view {snapshot, S, P}: pages of sequences <= P come from the snapshot; of P < seq <= S
 *    from the overlay (the newest at or below S); beyond S nothing. Its size is the overlay's
 *    when S > P, else the snapshot's.
 *  - An overlay entry goes once its sequence is <= P of every live view and <= published.
 *  - Each commit is conditional on its view's snapshot (store.commit's `base`): one that another
 *    connection overtook fails (WALNUT_CONFLICT, reason OtherWriter) instead of overwriting it.
 *  - After a commit failed, nothing new is sequenced (fail-stop: later transactions were built
 *    on its pages), and the store's commit chain fails every commit sequenced after it. Once all
 *    of them have settled, recovery (#recover) drops the lost sequences' pages from the overlay,
 *    counts them as published (they are in no snapshot, which is the truth now), remembers them
 *    as `lost` (a view that saw one fails: whenDurable; an empty sequence after them keeps the
 *    views opened from then on out of that range), bumps `resets` (the VFS adds it to the
 *    data version, so every view opened before is stale and SQLite drops its page cache) and
 *    acknowledges the failure (store.resumeCommits): sequencing goes on. A failure the store
 *    cannot mend (a failed fsync: the store stopped) keeps the pipeline failed.
 */
import { walnutError } from '../errors';
import type { Snapshot } from '../wal-index/snapshot';
import type { Store } from '../commit/store';

export interface PageImage {
  pgno: number;
  data: Buffer;
}

export interface View {
  readonly snapshot: Snapshot;
  /** The last sequence this view sees. */
  readonly S: number;
  /** Sequences up to P are in the snapshot. */
  readonly P: number;
  readonly dbSize: number;
  /** store.dataVersion() when the view began (another connection's commit changes it). */
  readonly dataVersion: number;
}

interface Waiter {
  seq: number;
  resolve(): void;
  reject(e: unknown): void;
}

export class CommitPipeline {
  readonly #store: Store;
  #seq = 0;
  #published = 0;
  #dbSize = 0;
  #failed: Error | null = null;
  /** Recovery from #failed (#recover), while it runs. */
  #recovery: Promise<void> | null = null;
  /** Recoveries so far (the VFS adds it to the data version). */
  #resets = 0;
  /** The last recovery's lost sequences: (lostAfter, lostThrough]. */
  #lostAfter = 0;
  #lostThrough = 0;
  /** pgno -> entries in ascending sequence. */
  readonly #overlay = new Map<number, { seq: number; data: Buffer }[]>();
  /** What each sequence wrote, ascending, for dropping overlay entries. */
  readonly #log: { seq: number; pgnos: number[] }[] = [];
  readonly #views = new Set<View>();
  readonly #waiters: Waiter[] = [];
  /** Every commit not yet settled (close() waits for them). */
  readonly #inFlight = new Set<Promise<void>>();

  constructor(store: Store) {
    this.#store = store;
  }

  get failed(): Error | null {
    return this.#failed;
  }

  /** How many times the pipeline recovered from a failed commit (header comment). */
  get resets(): number {
    return this.#resets;
  }

  /**
   * While failed: a promise that resolves once the pipeline has recovered and rejects with the
   * failure when it cannot (the store stopped). Null when not failed.
   */
  recovered(): Promise<void> | null {
    if (this.#failed === null) return null;
    this.#recovery ??= this.#recover(this.#failed);
    return this.#recovery;
  }

  /** A view over `snapshot` (owned by the view from now on) and every sequenced commit. */
  openView(snapshot: Snapshot, dataVersion: number): View {
    const S = this.#seq;
    const P = this.#published;
    const view: View = { snapshot, S, P, dbSize: S > P ? this.#dbSize : snapshot.dbSize, dataVersion };
    this.#views.add(view);
    return view;
  }

  releaseView(view: View): void {
    if (!this.#views.delete(view)) return;
    view.snapshot.release();
    this.#dropCovered();
  }

  /** Page `pgno` as of `view`, into `out` (pageSize bytes). */
  readPage(view: View, pgno: number, out: Uint8Array): void {
    if (pgno > view.dbSize) {
      out.fill(0);
      return;
    }
    if (view.S > view.P) {
      const list = this.#overlay.get(pgno);
      if (list !== undefined) {
        for (let i = list.length - 1; i >= 0; i--) {
          const e = list[i]!;
          if (e.seq > view.S) continue;
          if (e.seq > view.P) {
            out.set(e.data);
            return;
          }
          break;
        }
      }
    }
    view.snapshot.readIntoSync(pgno, out);
  }

  /**
   * Gives a transaction its place (synchronously) and submits it; resolves once durable.
   * `pages` must be private copies: the overlay and walnut keep them.
   */
  sequence(pages: PageImage[], dbSize: number, base: Snapshot): Promise<void> {
    if (this.#failed) return Promise.reject(this.#failed);
    const seq = ++this.#seq;
    const pgnos: number[] = [];
    for (const p of pages) {
      let list = this.#overlay.get(p.pgno);
      if (list === undefined) this.#overlay.set(p.pgno, (list = []));
      list.push({ seq, data: p.data });
      pgnos.push(p.pgno);
    }
    this.#log.push({ seq, pgnos });
    this.#dbSize = dbSize;
    const done = this.#store.commit(pages, { dbSize, base }).then(
      () => {
        if (seq > this.#published) this.#published = seq;
        while (this.#waiters.length > 0 && this.#waiters[0]!.seq <= this.#published) this.#waiters.shift()!.resolve();
        this.#dropCovered();
      },
      (e: Error) => {
        if (this.#failed === null) {
          this.#failed = e;
          this.recovered()!.catch(() => undefined); // reported to whoever waits for it (the VFS)
        }
        for (const w of this.#waiters.splice(0)) w.reject(this.#failed);
        throw e;
      },
    );
    this.#inFlight.add(done);
    const settle = (): void => void this.#inFlight.delete(done);
    done.then(settle, settle);
    return done;
  }

  /** Null when every sequence up to `seq` is durable, else a promise for that. */
  whenDurable(seq: number): Promise<void> | null {
    if (seq > this.#lostAfter && seq <= this.#lostThrough) {
      return Promise.reject(walnutError('WALNUT_CONFLICT', 'this read saw a transaction that then failed to commit; retry it', { path: this.#store.path, reason: 'ChainBroken' }));
    }
    if (seq <= this.#published) return null;
    if (this.#failed) return Promise.reject(this.#failed);
    return new Promise((resolve, reject) => this.#waiters.push({ seq, resolve, reject }));
  }

  /** Resolves when every commit submitted so far has settled (whatever the outcome). */
  async drain(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
  }

  /**
   * Once every commit in flight has settled (the store's chain failed all those after the
   * failed one): forget the lost sequences and acknowledge the failure (header comment).
   */
  async #recover(failure: Error): Promise<void> {
    await this.drain();
    if (!this.#store.resumeCommits(failure)) throw failure; // not mendable (or not ours): stay failed
    this.#lostAfter = this.#published;
    this.#lostThrough = this.#seq;
    for (const [pgno, list] of this.#overlay) {
      const kept = list.filter((e) => e.seq <= this.#lostAfter);
      if (kept.length === 0) this.#overlay.delete(pgno);
      else this.#overlay.set(pgno, kept);
    }
    while (this.#log.length > 0 && this.#log[this.#log.length - 1]!.seq > this.#lostAfter) this.#log.pop();
    // one sequence that holds nothing, so that views opened from now on (S >= it) are never in the lost range
    this.#published = ++this.#seq;
    this.#resets++;
    this.#failed = null;
    this.#recovery = null;
    this.#dropCovered();
  }

  #dropCovered(): void {
    let covered = this.#published;
    for (const v of this.#views) if (v.P < covered) covered = v.P;
    while (this.#log.length > 0 && this.#log[0]!.seq <= covered) {
      const { seq, pgnos } = this.#log.shift()!;
      for (const pgno of pgnos) {
        const list = this.#overlay.get(pgno)!;
        if (list[0]!.seq === seq) list.shift();
        if (list.length === 0) this.#overlay.delete(pgno);
      }
    }
  }
}
