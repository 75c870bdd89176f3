/**
 * sql/commit-pipeline.ts — CommitPipeline: SQL transactions sequenced now, durable later; the
 * read views the connections of one database share.
 *
 * walnut publishes a commit only once it is durable, but SQLite's next writer must see the
 * previous transaction's pages at once (early lock release: the connection moves on while the
 * group commit's fsync is pending). So committed page images are kept here, in an overlay, from
 * the moment a transaction is sequenced (sequence(), synchronous) until every view can read
 * them from a walnut snapshot.
 *
 * A view stands on a base: a walnut snapshot (a read mark) and P, the sequences it holds.
 * Taking and releasing a read mark is most of a small transaction's cost (fcntl locks, an
 * fstat), so the current base is kept across back-to-back transactions and shared by every view
 * opened while it is good: while no other connection committed (store.dataVersion() unchanged)
 * and, for the writer, while nothing newer was published (refreshed once per group commit, which
 * keeps the WAL free to restart); a reader also needs P = published (it must see every commit
 * acknowledged before it began). The base is released as soon as nothing uses it and no commit
 * is in flight, so an idle database holds no read mark.
 *
 * Invariants:
 *  - Sequence numbers are ascending (dense but for one empty sequence per recovery, below);
 *    store.commit() is called in sequence order, so walnut's commit order is the sequence order
 *    (group-committer.ts keeps submission order).
 *  - `published` is the highest sequence whose store.commit() resolved (it is in the WAL and in
 *    the -shm header, so any snapshot taken after that sees it: a snapshot never holds a frame
 *    that is not durable, walnut publishes after the sync) or that was lost (below).
 *  - A view {base, S, P}: pages of sequences <= P come from the base's snapshot; of P < seq <= S
 *    from the overlay (the newest at or below S); beyond S nothing. Its size is the overlay's
 *    when S > P, else the snapshot's. A reader's view has S = P (durable data only, no wait).
 *  - The sequences in flight (P < seq) were built on views of one data version (`#sequencedOn`).
 *    Once another connection committed, a snapshot holds its pages and the overlay pages built
 *    without them: laid over each other they are no database (SQLite reads "malformed"). So the
 *    writer opens no view across a data version change while sequences are in flight: it waits
 *    until they settled (published: S = P, no overlay; or failed: recovery), then opens on the
 *    new snapshot alone (whenViewPossible).
 *  - An overlay entry goes once its sequence is <= published, <= the current base's P and <= P
 *    of every live view that reads the overlay (S > P). Its page buffer is then reused.
 *  - Each commit is conditional on its view's base snapshot (store.commit's `base`): one that
 *    another connection overtook fails (WALNUT_CONFLICT, reason OtherWriter) instead of
 *    overwriting it.
 *  - The data version (dataVersion()) is the store's plus the pipeline's recoveries (resets).
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

/** A snapshot shared by the views opened on it; released when the last one and the pipeline let go. */
interface Base {
  readonly snapshot: Snapshot;
  /** Every sequence up to P is in the snapshot. */
  readonly P: number;
  /** dataVersion() when it was taken (another connection's commit, or a recovery, changes it). */
  readonly dataVersion: number;
  refs: number;
}

export interface View {
  readonly base: Base;
  /** The last sequence this view sees. */
  readonly S: number;
  /** Sequences up to P are in the snapshot. */
  readonly P: number;
  readonly dbSize: number;
  /** dataVersion() when the view's snapshot was taken. */
  readonly dataVersion: number;
}

interface Waiter {
  seq: number;
  resolve(): void;
  reject(e: unknown): void;
}

/** Spare page buffers kept for reuse (a group commit's worth). */
const SPARE_PAGES = 256;

export class CommitPipeline {
  readonly #store: Store;
  readonly #pageSize: number;
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
  readonly #log: { seq: number; pages: PageImage[] }[] = [];
  /** The data version of the views the sequences in flight were built on (header comment). */
  #sequencedOn = 0;
  /** Views that read the overlay (S > P). */
  readonly #overlayViews = new Set<View>();
  #current: Base | null = null;
  readonly #spare: Buffer[] = [];
  readonly #waiters: Waiter[] = [];
  /** Every commit not yet settled (close() waits for them). */
  readonly #inFlight = new Set<Promise<void>>();

  constructor(store: Store) {
    this.#store = store;
    this.#pageSize = store.pageSize;
  }

  get failed(): Error | null {
    return this.#failed;
  }

  /**
   * The store's data version plus the recoveries: changes whenever another connection commits
   * and when the pipeline recovered (views from before then may hold lost pages).
   */
  dataVersion(): number {
    return this.#store.dataVersion() + this.#resets;
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

  /**
   * A view on the newest state: for the writer (`reader` false) every sequenced commit; for a
   * reader every published one. Null when no read mark can be had right now (then wait for
   * whenViewPossible() and try again; the writer also while commits built before another
   * connection's commit are in flight: header comment). The data version is read before and after a new
   * snapshot: when they agree, no other connection's commit fell in between, so the version
   * names exactly what the snapshot holds.
   */
  tryOpenView(reader: boolean): View | null {
    let base = this.#current;
    const dataVersion = this.dataVersion();
    if (base === null || base.dataVersion !== dataVersion || base.P < this.#published) {
      base = this.#takeBase(dataVersion);
      if (base === null) return null;
    }
    if (!reader && this.#overlayOutdated(base.dataVersion)) return null; // whenViewPossible()
    base.refs++;
    const P = base.P;
    const S = reader ? P : this.#seq;
    if (!reader) this.#sequencedOn = base.dataVersion;
    const view: View = { base, S, P, dbSize: S > P ? this.#dbSize : base.snapshot.dbSize, dataVersion: base.dataVersion };
    if (S > P) this.#overlayViews.add(view);
    return view;
  }

  /**
   * Resolves when tryOpenView(reader) may succeed: the sequences in flight settled (another
   * connection committed beside them: header comment), or a snapshot could be taken (the read
   * lock was busy, or recovery was due).
   */
  whenViewPossible(reader: boolean): Promise<void> {
    if (!reader && this.#overlayOutdated(this.dataVersion())) return Promise.allSettled([...this.#inFlight]).then(() => undefined);
    return this.#store.snapshot().then((s) => s.release());
  }

  /** Sequences are in flight, built on views from before another connection's commit. */
  #overlayOutdated(dataVersion: number): boolean {
    return this.#seq > this.#published && this.#failed === null && dataVersion !== this.#sequencedOn;
  }

  releaseView(view: View): void {
    this.#overlayViews.delete(view);
    this.#unref(view.base);
    this.#releaseStale();
    this.#dropCovered();
    this.#maybeIdle();
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
    view.base.snapshot.readIntoSync(pgno, out);
  }

  /** A page buffer for a transaction's write: a spare one (its commit done) when there is one. */
  pageBuffer(): Buffer {
    return this.#spare.pop() ?? Buffer.allocUnsafeSlow(this.#pageSize);
  }

  /** Takes back a buffer from pageBuffer() that was not sequenced (the transaction rolled back). */
  recycle(data: Buffer): void {
    if (this.#spare.length < SPARE_PAGES && data.length === this.#pageSize) this.#spare.push(data);
  }

  /**
   * Gives a transaction its place (synchronously) and submits it; resolves once durable.
   * `pages` must be private copies (pageBuffer()): the overlay and walnut keep them.
   */
  sequence(pages: PageImage[], dbSize: number, base: Snapshot): Promise<void> {
    if (this.#failed) return Promise.reject(this.#failed);
    const seq = ++this.#seq;
    for (const p of pages) {
      let list = this.#overlay.get(p.pgno);
      if (list === undefined) this.#overlay.set(p.pgno, (list = []));
      list.push({ seq, data: p.data });
    }
    this.#log.push({ seq, pages });
    this.#dbSize = dbSize;
    const done = this.#store.commit(pages, { dbSize, base }).then(
      () => {
        if (seq > this.#published) this.#published = seq;
        while (this.#waiters.length > 0 && this.#waiters[0]!.seq <= this.#published) this.#waiters.shift()!.resolve();
        this.#releaseStale();
        this.#dropCovered();
        this.#maybeIdle();
      },
      (e: Error) => {
        if (this.#failed === null) {
          this.#failed = e;
          this.recovered()!.catch(() => undefined); // reported to whoever waits for it (the VFS)
        }
        for (const w of this.#waiters.splice(0)) w.reject(this.#failed);
        this.#maybeIdle();
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

  /** Resolves when every commit submitted so far has settled (whatever the outcome); then lets the base go. */
  async drain(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
    this.#releaseIdle();
  }

  #takeBase(dataVersion: number): Base | null {
    for (let attempt = 0; attempt < 3; attempt++) {
      const P = this.#published;
      const snapshot = this.#store.trySnapshotSync();
      if (snapshot === null) return null;
      const after = this.dataVersion();
      if (after === dataVersion) {
        const base: Base = { snapshot, P, dataVersion, refs: 1 };
        if (this.#current !== null) this.#unref(this.#current);
        this.#current = base;
        return base;
      }
      snapshot.release();
      dataVersion = after;
    }
    return null;
  }

  #unref(base: Base): void {
    if (--base.refs > 0) return;
    if (base === this.#current) this.#current = null;
    base.snapshot.release();
  }

  /**
   * Nothing in flight, no view on the base: it goes now, so that an idle database holds no
   * read mark (a checkpoint right after the last call settled finds no reader).
   */
  #maybeIdle(): void {
    const base = this.#current;
    if (base !== null && base.refs === 1 && (this.#published >= this.#seq || this.#failed !== null)) this.#releaseIdle();
  }

  /**
   * A base older than the newest published commit is let go at once (views still on it keep
   * it until they end): the next view takes a new one anyway, and a read mark held behind the WAL's end keeps the
   * committer from restarting the WAL (it restarts at a batch's start only when every reader
   * sees the whole WAL, all of it copied into the database file).
   */
  #releaseStale(): void {
    if (this.#current !== null && this.#current.P < this.#published) this.#releaseIdle();
  }

  #releaseIdle(): void {
    const base = this.#current;
    if (base === null) return;
    this.#current = null;
    this.#unref(base);
    this.#dropCovered();
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
    if (this.#current !== null && this.#current.P < covered) covered = this.#current.P;
    for (const v of this.#overlayViews) if (v.P < covered) covered = v.P;
    while (this.#log.length > 0 && this.#log[0]!.seq <= covered) {
      const { seq, pages } = this.#log.shift()!;
      for (const p of pages) {
        const list = this.#overlay.get(p.pgno)!;
        if (list[0]!.seq === seq) list.shift();
        if (list.length === 0) this.#overlay.delete(p.pgno);
        this.recycle(p.data);
      }
    }
  }
}
