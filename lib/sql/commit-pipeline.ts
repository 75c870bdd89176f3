/**
 * sql/commit-pipeline.ts — CommitPipeline: SQL transactions sequenced now, durable later
 * (store.sequence()); the read views the connections of one database take and keep.
 *
 * SQLite's next writer must see the previous transaction's pages at once (early lock release:
 * the connection moves on while the group commit's fsync is pending). The store gives that:
 * each committed transaction is sequenced (store.sequence(), synchronous: its ticket), and the
 * store's snapshots see the sequenced commits before they are durable (commit/sequencer.ts).
 * This file keeps what is SQL's: which snapshot a connection reads, the data version SQLite's
 * page cache is checked against, and recovery after a failed commit.
 *
 * A view is a store snapshot: the writer's sees every sequenced commit, a reader's durable
 * commits only ({ sequenced: false }; it must see every commit acknowledged before it began,
 * and nothing it would have to wait for). Taking and releasing a read mark is most of a small
 * transaction's cost (fcntl locks, an lseek), so a connection's snapshot is kept across
 * back-to-back transactions and advanced (snapshot.advance(): past this store's own
 * published commits too, so a lone caller whose every transaction is its own group commit keeps
 * one read lock) while no other connection committed (dataVersion() unchanged). Between
 * transactions it is parked (snapshot.park()): the store brings it forward itself where a
 * checkpoint, a WAL restart or the auto-checkpoint policy needs it, so it keeps neither
 * checkpoints at an old mark nor the WAL from restarting. It is released at the first turn of
 * the event loop with nothing in flight, so an idle database holds no read mark, and at once
 * while the store waits for a WRITE lock another connection holds or wants (WalIndex
 * dropsParked): another process's FULL/RESTART/TRUNCATE checkpoint holds WRITE while it waits
 * for readers, and a kept mark would stall it and the commits waiting behind it to a busy
 * timeout. The next transaction then takes a new snapshot (READ(0) once that checkpoint copied
 * everything); its commits wait for WRITE holding no read mark of the pipeline's.
 * Page 1 as the writer's last commit left it is kept too (#page1): SQLite reads its change
 * counter at every transaction's start. It is that commit's own page buffer, not a copy: the
 * store hands the buffer back (`release`) once durable, and it stays out of the spare buffers
 * until another page 1 replaces it (the store never changes a page it was given).
 *
 * Invariants:
 *  - Tickets are the store's commit order; the pipeline sequences in the writer's commit order.
 *  - The sequenced commits in flight were built on views of one data version (`#sequencedOn`).
 *    Once another connection committed, a snapshot holds its pages and the sequenced pages
 *    built without them: laid over each other they are no database (SQLite reads
 *    "malformed"). So the writer opens no view across a data version change while commits are
 *    in flight: it waits until they settled (whenViewPossible), then opens on the new state.
 *  - Each commit is conditional on its view's snapshot (store.sequence's `base`): one that
 *    another connection overtook fails (WALNUT_CONFLICT, reason OtherWriter) instead of
 *    overwriting it.
 *  - The data version (dataVersion()) is the store's plus what the pipeline's recoveries
 *    added (resets: more than the transactions each one lost, #recover).
 *  - After a commit failed, nothing new is sequenced (fail-stop: later transactions were built
 *    on its pages; the store refuses them and drops their pages from every snapshot, and a
 *    view that saw them fails its reads and its durability wait). Once every commit in flight
 *    has settled, recovery (#recover) acknowledges the failure (store.resumeCommits) and bumps
 *    `resets` past the lost transactions (the VFS adds it to the data version, so every view opened before is stale and
 *    SQLite drops its page cache, which may hold lost pages): sequencing goes on. A transaction
 *    the store refused as bad input before sequencing it (a page past option maxPageCount)
 *    broke no chain, and recovers the same way. A failure the store cannot mend (a failed
 *    fsync: the store stopped) keeps the pipeline failed.
 */
import { isWalnutError, walnutError } from '../errors';
import { lostToConflict } from './lost-commits';
import type { Snapshot } from '../wal-index/snapshot';
import type { Store } from '../commit/store';

export interface PageImage {
  pgno: number;
  data: Buffer;
}

export interface View {
  /** The store snapshot it reads (its pendingTicket: the newest sequenced commit it sees). */
  readonly snapshot: Snapshot;
  /** dataVersion() when the snapshot was taken. */
  readonly dataVersion: number;
  /** The pipeline's recoveries (resets) when the snapshot was taken: the VFS shifts the writer's schema cookie by them (walnut-vfs.ts). */
  readonly resets: number;
  readonly reader: boolean;
  /** The store's last ticket when the view was opened or last advanced (it sees that commit, unless it failed). */
  sees: number;
}

/**
 * Spare page buffers kept for reuse: a rolled back transaction's, and a sequenced one's once
 * the store let go of them (store.sequence's `release`; an ArrayBuffer per page written was a
 * tenth of walnut/sql's CPU, in allocation and GC).
 */
const SPARE_PAGES = 1024;


export class CommitPipeline {
  readonly #store: Store;
  readonly #pageSize: number;
  readonly #alone: () => boolean;
  #failed: Error | null = null;
  /** Recovery from #failed (#recover), while it runs. */
  #recovery: Promise<void> | null = null;
  /** What recoveries added to the data version (the VFS adds it to the store's): see #recover. */
  #resets = 0;
  /** Transactions lost (their commit failed or was refused) since the last recovery. */
  #lost = 0;
  /** Every ticket up to this one is durable as far as this pipeline heard (its promise resolved). */
  #durableThrough = 0;
  /** The data version of the views the commits in flight were built on (header comment). */
  #sequencedOn = 0;
  /** A snapshot per role kept between views (header comment), with the data version it was taken at. */
  readonly #kept: { writer: View | null; reader: View | null } = { writer: null, reader: null };
  readonly #spare: Buffer[] = [];
  /** store.sequence's `release`: the pages come back to the spare buffers (the kept page 1 once replaced: #page1). */
  readonly #release = (pages: { data: Uint8Array }[]): void => {
    const p1 = this.#page1;
    for (const p of pages) {
      if (p1 !== null && p.data === p1.data) p1.released = true;
      else this.recycle(p.data as Buffer);
    }
  };
  /** Transactions store.sequence() refused as bad input (nothing sequenced, no chain broken): #recover. */
  readonly #refused = new Set<unknown>();
  /**
   * Page 1 as the writer's last commit left it (a copy, as stored), its ticket and the data
   * version of the view it was built on: SQLite reads page 1's change counter at the start of
   * every transaction, and a writer view that sees exactly that commit (opened or advanced with
   * it as the store's last ticket, the data version unchanged: no other connection committed,
   * no recovery) reads it from here instead of the WAL (a pread per transaction).
   */
  #page1: { data: Buffer; ticket: number; dataVersion: number; released: boolean } | null = null;
  /**
   * Commits not yet settled (close() waits for them), counted: a Set of their promises grew and
   * shrank its table with every batch (64 callers: ~4 to ~64 and back), and the tables it let go
   * kept pointing at the commits' objects from old space.
   */
  #inFlight = 0;
  /** Waiting until no commit is in flight (#whenNoneInFlight). */
  readonly #noneInFlight: (() => void)[] = [];
  /** A release of the kept snapshots is scheduled for when the database is idle (#settled). */
  #idleCheck = false;
  /**
   * The newest ticket sequenced while another commit was in flight (it and those in flight then
   * had company), and whether the commit that settled last had: see #isAlone.
   */
  #sharedThrough = 0;
  #lastSettledShared = false;

  /**
   * `alone`: true while the transaction being committed is the writer's only call (no other is
   * queued behind it). With #isAlone's other conditions: no other commit will join its batch
   * before it is written, and the store need not give the event loop a turn to gather them
   * (store.sequence's `alone`).
   */
  constructor(store: Store, alone: () => boolean = () => false) {
    this.#store = store;
    this.#pageSize = store.pageSize;
    this.#alone = alone;
  }

  get failed(): Error | null {
    return this.#failed;
  }

  /** Commits sequenced and not yet settled (durable or failed). */
  get commitsInFlight(): number {
    return this.#inFlight;
  }

  /**
   * The store's data version plus the recoveries: changes whenever another connection commits
   * and when the pipeline recovered (views from before then may hold lost pages).
   */
  dataVersion(): number {
    return this.#store.dataVersion() + this.#resets;
  }

  /** What recoveries from failed commits added to the data version (header comment). */
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
   * reader every durable one. Null when no read mark can be had right now (then wait for
   * whenViewPossible() and try again; the writer also while commits built before another
   * connection's commit are in flight: header comment). The view's data version is its
   * snapshot's (Snapshot.dataVersion: read with the header the snapshot began from or advanced
   * to), so it names exactly what the snapshot holds; a kept snapshot advanced by that one read
   * is the lone caller's whole cost of a view (WalIndex.followOwnCommits).
   */
  tryOpenView(reader: boolean): View | null {
    const role = reader ? 'reader' : 'writer';
    const kept = this.#kept[role];
    this.#kept[role] = null;
    let view: View | null = null;
    if (kept !== null) {
      if (kept.snapshot.advance() && kept.dataVersion === this.#versionOf(kept.snapshot)) view = kept;
      else kept.snapshot.release();
    }
    if (view === null) {
      const snapshot = this.#store.trySnapshotSync({ sequenced: !reader });
      if (snapshot === null) return null;
      view = { snapshot, dataVersion: this.#versionOf(snapshot), resets: this.#resets, reader, sees: 0 };
    }
    if (!reader && this.#overlayOutdated(view.dataVersion)) {
      view.snapshot.release(); // whenViewPossible()
      return null;
    }
    view.sees = this.#store.lastTicket;
    if (!reader) this.#sequencedOn = view.dataVersion;
    return view;
  }

  /** The data version (dataVersion()'s) as of `snapshot`'s state. */
  #versionOf(snapshot: Snapshot): number {
    return snapshot.dataVersion + this.#resets;
  }

  /**
   * Resolves when tryOpenView(reader) may succeed: the commits in flight settled (another
   * connection committed beside them: header comment), or a snapshot could be taken (the read
   * lock was busy, or recovery was due).
   */
  whenViewPossible(reader: boolean): Promise<void> {
    // (no commit is sequenced meanwhile: the writer opens no view, and only it sequences)
    if (!reader && this.#overlayOutdated(this.dataVersion())) return this.#whenNoneInFlight();
    return this.#store.snapshot({ sequenced: !reader }).then((s) => this.#handOver(s, reader));
  }

  /**
   * The snapshot whenViewPossible() waited for becomes the role's kept view, for the
   * tryOpenView() that follows (it advances it, or lets it go when another connection committed
   * meanwhile), instead of being let go: the read lock taken again by another connection between
   * the two (a checkpointer moving read marks), the retry found none, again and again, and
   * SQLite (wa-sqlite's open_v2 and prepare: at the second SQLITE_BUSY) gave up
   * (test/hostile/sql-open-read-locks-busy). Parked as every kept view between uses; let go at
   * the next turn of the event loop when nothing took it and nothing is in flight.
   */
  #handOver(snapshot: Snapshot, reader: boolean): void {
    const role = reader ? 'reader' : 'writer';
    if (this.#kept[role] !== null || this.#failed !== null) {
      snapshot.release();
      return;
    }
    const view: View = { snapshot, dataVersion: this.#versionOf(snapshot), resets: this.#resets, reader, sees: 0 };
    this.#kept[role] = view;
    snapshot.park();
    setImmediate(() => {
      if (this.#kept[role] !== view || this.#inFlight > 0) return;
      this.#kept[role] = null;
      snapshot.release();
    });
  }

  /** Commits are in flight, built on views from before another connection's commit. */
  #overlayOutdated(dataVersion: number): boolean {
    return this.#inFlight > 0 && this.#failed === null && dataVersion !== this.#sequencedOn;
  }

  /** The view's connection is done with it: kept for the role's next view while commits are in flight, else released. */
  releaseView(view: View): void {
    const role = view.reader ? 'reader' : 'writer';
    if (this.#inFlight > 0 && this.#kept[role] === null && !view.snapshot.released) {
      this.#kept[role] = view;
      view.snapshot.park(); // idle until tryOpenView advances it: the store may bring it forward meanwhile
    } else {
      view.snapshot.release();
    }
  }

  /** Page `pgno` as of `view`, into `out` (pageSize bytes). */
  readPage(view: View, pgno: number, out: Uint8Array): void {
    const p1 = pgno === 1 ? this.keptPage1(view) : null;
    if (p1 !== null) out.set(p1);
    else view.snapshot.readIntoSync(pgno, out);
  }

  /**
   * Page 1 as `view` sees it when that is the writer's last commit's (#page1: a writer view that
   * sees exactly that commit, the data version unchanged), else null. Read only: the caller
   * copies what it needs (SQLite's change counter, 16 bytes, at a transaction's start).
   */
  keptPage1(view: View): Buffer | null {
    const p1 = this.#page1;
    if (p1 !== null && !view.reader && view.sees === p1.ticket && view.dataVersion === p1.dataVersion && !view.snapshot.released) return p1.data;
    return null;
  }

  /** The view's database size in pages. */
  dbSize(view: View): number {
    return view.snapshot.dbSize;
  }

  /** A page buffer for a transaction's write: a spare one when there is one. */
  pageBuffer(): Buffer {
    return this.#spare.pop() ?? Buffer.allocUnsafeSlow(this.#pageSize);
  }

  /** Takes back a buffer from pageBuffer() nobody holds any more (rolled back, or released by the store). */
  recycle(data: Buffer): void {
    if (this.#spare.length < SPARE_PAGES && data.length === this.#pageSize) this.#spare.push(data);
  }

  /**
   * Gives a transaction its place (synchronously: store.sequence()) on its view's snapshot;
   * resolves once durable (the store's promise itself, whose first handler is the pipeline's:
   * its bookkeeping is done before the caller hears, and the caller hears a hop sooner; a
   * rejection is thus always handled, and the caller need not add a handler of its own).
   * `pages` must be private copies (pageBuffer()): the store keeps them until it hands them
   * back (`release`) to the spare buffers. `durableMark`: its `ok` is set once the commit is
   * durable, by the pipeline's own handler (the caller needs no reaction of its own to know).
   */
  sequence(pages: PageImage[], dbSize: number, view: View, durableMark?: { ok: boolean }): Promise<unknown> {
    if (this.#failed) {
      const refused = Promise.reject(this.#failed);
      refused.catch(() => undefined); // (handled, as every promise this returns: the caller may drop it)
      return refused;
    }
    let ticket: number;
    let durable: Promise<unknown>;
    try {
      const alone = this.#isAlone();
      ({ ticket, durable } = this.#store.sequence(pages, { dbSize, base: view.snapshot, release: this.#release, alone }));
      if (this.#inFlight > 0) this.#sharedThrough = ticket;
      this.#keepPage1(pages, ticket, view);
    } catch (e) {
      // refused before it was sequenced (the store's chain broken by a commit of its own, the
      // store stopped or closed, input it refuses: a page past option maxPageCount): the
      // transaction is lost as a failed one is
      durable = Promise.reject(e);
      ticket = 0;
      if (isWalnutError(e, 'WALNUT_INVALID_ARGUMENT')) this.#refused.add(e); // broke no chain: #recover
    }
    // (settles, never rejects: the failure is the caller's, through `durable`)
    void durable.then(
      () => {
        this.#oneSettled();
        this.#lastSettledShared = ticket <= this.#sharedThrough;
        if (ticket > this.#durableThrough) this.#durableThrough = ticket;
        if (durableMark !== undefined) durableMark.ok = true;
        this.#settled();
      },
      (e: Error) => {
        this.#oneSettled();
        this.#lastSettledShared = ticket <= this.#sharedThrough;
        this.#lost++;
        this.#dropPage1();
        if (this.#failed === null) {
          this.#failed = e;
          this.recovered()!.catch(() => undefined); // reported to whoever waits for it (the VFS)
        }
        this.#settled();
      },
    );
    this.#inFlight++;
    return durable;
  }

  /** A commit in flight settled; the last one wakes whoever waits for none (#whenNoneInFlight). */
  #oneSettled(): void {
    if (--this.#inFlight > 0 || this.#noneInFlight.length === 0) return;
    for (const wake of this.#noneInFlight.splice(0)) wake();
  }

  /** Resolves once no commit is in flight (at once when none is). */
  #whenNoneInFlight(): Promise<void> {
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#noneInFlight.push(resolve));
  }

  /**
   * A commit is alone (store.sequence's `alone`: its batch need not wait a turn of the event
   * loop for others) when its connection has no other call (the `alone` callback), no commit is
   * in flight, and the one that settled last had no company either (none was sequenced beside
   * it). A call on a free writer runs to its commit at once (database.ts): callers that the
   * same group commit's completion resumes call one after another, each finding the writer
   * free, so the first condition alone would cut the gathering turn at the first of them and
   * split the group (64 callers with unequal promise chains: 35 commits a batch instead of 64).
   * After a batch with company the next commit waits the turn; a lone caller's never do.
   */
  #isAlone(): boolean {
    return this.#inFlight === 0 && !this.#lastSettledShared && this.#alone();
  }

  /** #page1 after ticket `ticket` (pages ascending): its page 1's buffer, or nothing when it did not write page 1. */
  #keepPage1(pages: PageImage[], ticket: number, view: View): void {
    const first = pages[0];
    if (first === undefined || first.pgno !== 1) {
      this.#dropPage1();
      return;
    }
    const kept = this.#page1;
    if (kept === null) {
      this.#page1 = { data: first.data, ticket, dataVersion: view.dataVersion, released: false };
      return;
    }
    if (kept.released) this.recycle(kept.data); // (not released yet: #release recycles it, no longer kept)
    kept.data = first.data;
    kept.released = false;
    kept.ticket = ticket;
    kept.dataVersion = view.dataVersion;
  }

  /** No page 1 kept any more; its buffer goes back to the spare ones once the store let go of it (#release). */
  #dropPage1(): void {
    if (this.#page1?.released === true) this.recycle(this.#page1.data);
    this.#page1 = null;
  }

  /**
   * Null when every commit `view` sees is durable, else a promise for that. When one of them
   * failed it rejects as lost-commits.ts reads the loss: one lost to a conflict (another
   * connection's commit, a broken chain, a wait for WRITE) as WALNUT_CONFLICT (reason
   * ChainBroken: retry), any other (WALNUT_IO, WALNUT_FULL, the store's WALNUT_FAILED after a
   * failed fsync) as itself, with its errno: a read never reports a failed write as a conflict.
   */
  whenDurable(view: View): Promise<void> | null {
    const ticket = view.snapshot.pendingTicket;
    if (ticket <= this.#durableThrough) return null;
    return view.snapshot.whenDurable().catch((e: unknown) => {
      if (!lostToConflict(e)) throw e;
      throw walnutError('WALNUT_CONFLICT', 'this read saw a transaction that then failed to commit; retry it', { path: this.#store.path, reason: 'ChainBroken', cause: e });
    });
  }

  /** Resolves when every commit submitted so far has settled (whatever the outcome); then lets the kept snapshots go. */
  async drain(): Promise<void> {
    while (this.#inFlight > 0) await this.#whenNoneInFlight();
    this.#releaseKept();
  }

  /**
   * A commit settled. The kept snapshots can advance past it when it was published (their own
   * commits: Snapshot.advance), so they stay while the connections go on; once nothing is in
   * flight, they go at the next turn of the event loop unless a view took them up again by then
   * (a lone caller's next transaction starts within the same turn, from the durability promise:
   * an idle database holds no read mark).
   */
  #settled(): void {
    if (this.#inFlight > 0 || this.#idleCheck) return;
    this.#idleCheck = true;
    setImmediate(() => {
      this.#idleCheck = false;
      if (this.#inFlight === 0) this.#releaseKept();
    });
  }

  #releaseKept(): void {
    for (const role of ['writer', 'reader'] as const) {
      this.#kept[role]?.snapshot.release();
      this.#kept[role] = null;
    }
  }

  /**
   * Once every commit in flight has settled (the store's chain failed all those after the
   * failed one): acknowledge the failure (header comment).
   */
  async #recover(failure: Error): Promise<void> {
    await this.drain();
    // not mendable (or not ours): stay failed; a refusal of bad input took no place in the
    // commit order and broke no chain, but SQLite's cache holds its pages as much
    const refused = this.#refused.delete(failure);
    if (!this.#store.resumeCommits(failure) && !refused) throw failure;
    this.#refused.clear();
    // SQLite keeps its page cache while the change counter it reads at a transaction's start is
    // the one it last saw: k lost commits left its cache k past the durable page 1, and d other
    // connections' commits moved the data version d: a bump of k + 1 makes the two differ
    // whatever d is (a bump of 1 let k = d + 1 keep the lost pages in the cache: lost updates)
    this.#resets += this.#lost + 1;
    this.#lost = 0;
    this.#failed = null;
    this.#recovery = null;
  }
}
