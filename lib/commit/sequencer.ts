/**
 * commit/sequencer.ts — Sequencer: commits that take their place in the commit order now and
 * are durable later (store.sequence()), and the overlay through which this store's snapshots
 * see them in between.
 *
 * A sequenced commit gets a ticket (1, 2, 3, ... per store) synchronously and goes to the
 * store's commit order at once (the group committer's queue, or the commit lane the store
 * leads); from that moment every new snapshot of the store sees its pages (the overlay below),
 * and it is durable when its promise resolves (whenDurable(ticket)). So a writer can build its
 * next transaction on the previous one before that is durable (a pipelining SQL engine:
 * walnut/sql) and a reader that saw a non-durable commit can wait for it before it answers.
 *
 * The overlay: pgno -> the page images of the sequenced commits in flight, ascending tickets.
 * A snapshot's view of it (PendingView) is (P, S]: P = the tickets settled when it began, or when
 * it was last advanced past published commits (its WAL view brought to the live header:
 * Snapshot.advance) (published or failed: every commit up to P that succeeded is in the
 * snapshot's WAL view), S =
 * the newest ticket sequenced then that has not failed, and that is before the first
 * conditional ticket (a `base`) that another connection has overtaken by then. A page read
 * takes the newest image with P < ticket <= S, else the snapshot reads the WAL or database file
 * as usual.
 *
 * Invariants:
 *  - Tickets are issued in commit order: each ticket's commit is submitted to the store's
 *    commit path before sequence() returns, and the committer keeps submission order.
 *  - `settled` (P for new views) moves in the very step that publishes a batch's header
 *    (published(), from WalIndex.appendAndPublish's onPublished), before any other code runs:
 *    a snapshot that finds a commit in the WAL also finds P at or past its ticket, so the
 *    overlay never lays an older image over a later commit (this store's own plain commits,
 *    another lane member's, another connection's) in its WAL view.
 *  - Nor over another connection's commit that came after a ticket's base: a conditional ticket
 *    whose base's count of others' commits (WalIndex.othersCommitsAt) is below the count met by
 *    the time a view is taken or advanced can only fail (WALNUT_CONFLICT, OtherWriter: the
 *    committer's check under WRITE meets at least those commits), and every later ticket with it
 *    (ChainBroken); a view that laid its pages over the live WAL would show a state that never
 *    exists (verifySnapshot found b-tree damage in such views beside a sqlite3 writer). Its S
 *    stops before that ticket.
 *  - Fail-stop (chain.ts): a sequenced commit that fails fails every commit sequenced after
 *    it (the store's commit chain refuses them). When the failure arrives, its pages and those
 *    of every later ticket in flight leave the overlay at once (no snapshot taken from then on
 *    sees them), S of new views stays below the failed ticket, and each live view that saw a
 *    failed ticket fails: its reads and whenDurable() reject with the failure. whenDurable() of a
 *    failed ticket rejects with its failure (the first failed ticket's own error, the later
 *    ones' ChainBroken refusal).
 *  - An overlay image is dropped once its ticket is settled and <= P of every live view that
 *    reads the overlay (S > P): from then on every view reads it from the WAL. Once neither the
 *    overlay nor the commit path (until its promise settles: the batch's observers run before)
 *    holds a ticket's pages, its `release` hook gets them back for reuse.
 *  - The overlay's database size after a ticket is its dbSize option, else max(the size after
 *    the previous ticket in flight, or the live database size when none is, its highest page).
 *    A commit the store writes without dbSize computes its own size at write time; beside
 *    another connection's growing commits the two may differ (pass dbSize to be exact).
 */
import { describeValue } from '../arguments';
import { walnutError } from '../errors';
import type { PendingPages } from '../wal-index/snapshot';
import type { WalPage, WalTransaction } from '../wal/wal-file';
import type { CommitResult } from './group-committer';

/** What store.sequence() returns. */
export interface SequencedCommit {
  /** The commit's place in this store's commit order (1, 2, 3, ...): snapshots taken from now on see it. */
  readonly ticket: number;
  /**
   * Resolves once the commit is durable (as commit()'s promise); rejects with its failure.
   * Already handled: ignoring it is no unhandled rejection (whenDurable(ticket) reports too).
   */
  readonly durable: Promise<CommitResult>;
}

interface InFlight {
  readonly ticket: number;
  readonly pages: readonly WalPage[];
  readonly dbSize: number;
  readonly done: Promise<CommitResult>;
  /** Dropped from the overlay by a failure (its own or an earlier ticket's). */
  dropped: boolean;
  /** Who still holds the pages: the overlay and the commit path (its promise not settled); at 0, `release`. */
  holds: number;
  readonly release: ((pages: WalPage[]) => void) | undefined;
  /** A conditional ticket's base: other connections' commits met when it began (WalIndex.othersCommitsAt). */
  readonly baseOthers: number | undefined;
}

/** Tickets [from, through] failed: `from` with `error`, the later ones with `later` (their ChainBroken refusal). */
interface FailedRange {
  readonly from: number;
  readonly through: number;
  readonly error: unknown;
  later: unknown;
}

export class Sequencer {
  readonly #path: string;
  /** The live database size when no ticket is in flight. */
  readonly #liveDbSize: () => number;
  /** Other connections' commits met so far (WalIndex.othersCommitsMet). */
  readonly #othersMet: () => number;
  /** The last ticket issued. */
  #last = 0;
  /** The newest ticket that has not failed, and the database size after it. */
  #lastGood = 0;
  #lastGoodDbSize = 0;
  /** Tickets not settled yet, ascending (a Map keeps insertion order). */
  readonly #inFlight = new Map<number, InFlight>();
  /** The same, by the pages array the committer writes (published() gets the batch's transactions). */
  readonly #byPages = new Map<readonly WalPage[], InFlight>();
  /** pgno -> images of tickets in flight or still read by a view, ascending tickets. */
  readonly #overlay = new Map<number, { ticket: number; data: Uint8Array }[]>();
  /** Tickets whose images are in the overlay, ascending (for dropping them). */
  readonly #log: InFlight[] = [];
  /** Views that read the overlay (S > P). */
  readonly #views = new Set<PendingView>();
  /**
   * The least and greatest `baseOthers` of the tickets in flight (a superset's: set exactly by
   * each full scan of #firstOvertaken, widened by each sequence(), reset when none is in flight).
   * Both equal to the count met: no ticket in flight can be overtaken, and a view's advance
   * skips the scan (64 concurrent SQL callers keep ~50 tickets in flight, and each of their
   * transactions advances the writer's view: a scan of them all per transaction).
   */
  #baseOthersLeast = Infinity;
  #baseOthersMost = -Infinity;
  /**
   * Every database size in #log is at least the one before it (a database that only grows, as
   * an INSERT load's): the least size after P is then the first one past P (#extend), found by
   * bisection instead of a pass over the log. Cleared by a push of a smaller size; set again
   * when the log empties.
   */
  #logSizesAscending = true;
  readonly #failures: FailedRange[] = [];

  constructor(path: string, liveDbSize: () => number, othersMet: () => number) {
    this.#path = path;
    this.#liveDbSize = liveDbSize;
    this.#othersMet = othersMet;
  }

  /** The last ticket issued (0 before the first sequence()). */
  get lastTicket(): number {
    return this.#last;
  }

  /** No ticket in flight: a view taken now sees no overlay, whatever its snapshot's header. */
  get idle(): boolean {
    return this.#inFlight.size === 0;
  }

  /** Every ticket up to this one is settled: durable, or failed. */
  get settledTicket(): number {
    for (const t of this.#inFlight.keys()) return t - 1;
    return this.#last;
  }

  /**
   * Takes the next ticket for `pages` (validated, ascending, as the committer takes them; the
   * store keeps the buffers, unchanged by the caller until durable) and submits them with
   * `submit` (synchronously: the commit's place in the store's order is taken now).
   * `baseOthers`: a conditional commit's base, as WalIndex.othersCommitsAt counts it.
   */
  sequence(pages: WalPage[], dbSize: number | undefined, submit: (pages: WalPage[]) => Promise<CommitResult>, release?: (pages: WalPage[]) => void, baseOthers?: number): SequencedCommit {
    const ticket = ++this.#last;
    const size = dbSize ?? Math.max(this.#runningDbSize(), pages[pages.length - 1]!.pgno);
    for (const p of pages) {
      const list = this.#overlay.get(p.pgno);
      // (a page's first image as a one-element literal: a growing [] allocated a 17-slot store)
      if (list === undefined) this.#overlay.set(p.pgno, [{ ticket, data: p.data }]);
      else list.push({ ticket, data: p.data });
    }
    const done = submit(pages);
    const entry: InFlight = { ticket, pages, dbSize: size, done, dropped: false, holds: 2, release, baseOthers };
    this.#inFlight.set(ticket, entry);
    this.#byPages.set(pages, entry);
    if (baseOthers !== undefined) {
      if (baseOthers < this.#baseOthersLeast) this.#baseOthersLeast = baseOthers;
      if (baseOthers > this.#baseOthersMost) this.#baseOthersMost = baseOthers;
    }
    const newest = this.#log[this.#log.length - 1];
    if (newest !== undefined && size < newest.dbSize) this.#logSizesAscending = false;
    this.#log.push(entry);
    this.#lastGood = ticket;
    this.#lastGoodDbSize = size;
    // the promise settles after the committer's last use of the pages (its observers included)
    done.then(
      () => {
        this.#settle(entry, null);
        this.#unhold(entry);
      },
      (e: unknown) => {
        this.#settle(entry, e);
        this.#unhold(entry);
      },
    );
    return { ticket, durable: done };
  }

  /** The committer published a batch (WalIndex.appendAndPublish's onPublished): its tickets are durable now. */
  published(txns: readonly WalTransaction[]): void {
    if (this.#byPages.size === 0) return;
    let settled = false;
    for (const t of txns) {
      const entry = this.#byPages.get(t.submitted ?? t.pages);
      if (entry !== undefined) settled = this.#settle(entry, null, false) || settled;
    }
    // once for the batch, not per ticket (it drops what every settled ticket lets go)
    if (settled) this.#dropCovered();
  }

  /**
   * Resolves once `ticket` is durable (at once when it is), rejects with its failure (header
   * comment). WALNUT_INVALID_ARGUMENT for a ticket never issued.
   */
  whenDurable(ticket: number): Promise<void> {
    if (!Number.isInteger(ticket) || ticket < 1 || ticket > this.#last) {
      return Promise.reject(walnutError('WALNUT_INVALID_ARGUMENT', `ticket ${describeValue(ticket)} was not issued by this store (its tickets are 1..${this.#last})`, { reason: 'ticket', path: this.#path }));
    }
    const entry = this.#inFlight.get(ticket);
    if (entry !== undefined) return entry.done.then(() => undefined);
    for (let i = this.#failures.length - 1; i >= 0; i--) {
      const f = this.#failures[i]!;
      if (ticket >= f.from && ticket <= f.through) return Promise.reject(ticket === f.from ? f.error : (f.later ?? f.error));
    }
    return Promise.resolve();
  }

  /** A new snapshot's view: (settled, lastGood] (header comment). */
  view(): PendingView {
    const v = new PendingView(this, this.settledTicket);
    this.#extend(v);
    return v;
  }

  /** Brings `v` to the newest ticket that has not failed and was not overtaken (its P stays: see advance()). */
  #extend(v: PendingView): void {
    const overtaken = this.#firstOvertaken(v.P);
    const S = overtaken !== null ? overtaken.ticket - 1 : this.#lastGood;
    v.ticket = S > v.P ? S : 0;
    v.dbSize = v.ticket === 0 ? 0 : S === this.#lastGood ? this.#runningDbSize() : (this.#inFlight.get(S)?.dbSize ?? this.#liveDbSize());
    // the smallest size a ticket it sees left the database at: pages past it that no such
    // ticket wrote read as zeros (the committer writes zeros there: #withRegrownZeros)
    v.leastDbSize = this.#leastDbSizeIn(v.P, v.ticket);
    if (v.ticket !== 0) this.#views.add(v);
    else this.#views.delete(v);
  }

  /** The smallest database size after a ticket of the log in (P, through], Infinity when none. */
  #leastDbSizeIn(P: number, through: number): number {
    const log = this.#log;
    if (!this.#logSizesAscending) {
      let least = Infinity;
      for (const e of log) {
        if (e.ticket > through) break;
        if (e.ticket > P && e.dbSize < least) least = e.dbSize;
      }
      return least;
    }
    // ascending sizes: the first ticket past P has the least (tickets ascend in the log)
    let lo = 0;
    let hi = log.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (log[mid]!.ticket > P) hi = mid;
      else lo = mid + 1;
    }
    const first = log[lo];
    return first !== undefined && first.ticket <= through ? first.dbSize : Infinity;
  }

  /** The first ticket in flight after P, not failed, whose base another connection's commit has overtaken (header comment), or null. */
  #firstOvertaken(P: number): InFlight | null {
    if (this.#lastGood <= P) return null;
    const met = this.#othersMet();
    // every ticket in flight was based on the count met now: none is overtaken (#baseOthersLeast)
    if (this.#baseOthersLeast === met && this.#baseOthersMost === met) return null;
    let found: InFlight | null = null;
    let least = Infinity;
    let most = -Infinity;
    for (const e of this.#inFlight.values()) {
      const b = e.baseOthers;
      if (b === undefined) continue;
      if (b < least) least = b;
      if (b > most) most = b;
      if (found === null && e.ticket > P && e.ticket <= this.#lastGood && b !== met) found = e;
    }
    this.#baseOthersLeast = least;
    this.#baseOthersMost = most;
    return found;
  }

  /**
   * @internal PendingView.advance(): `published`: its snapshot's WAL view was brought to the
   * live header (past this store's own commits: Snapshot.advance), which holds every ticket
   * settled by now that succeeded (settled moves in the step that publishes), so P moves up to
   * them as a new view's would, and their images leave the overlay once no view needs them.
   */
  advance(v: PendingView, published: boolean): boolean {
    if (v.failure !== null || v.released) return false;
    if (published) v.P = this.settledTicket;
    this.#extend(v);
    if (published) this.#dropCovered();
    return true;
  }

  /** @internal PendingView.readInto(): the newest image with P < ticket <= S. */
  image(v: PendingView, pgno: number): Uint8Array | null {
    const list = this.#overlay.get(pgno);
    if (list === undefined) return null;
    for (let i = list.length - 1; i >= 0; i--) {
      const e = list[i]!;
      if (e.ticket > v.ticket) continue;
      return e.ticket > v.P ? e.data : null;
    }
    return null;
  }

  /** @internal PendingView.whenDurable() */
  whenViewDurable(v: PendingView): Promise<void> {
    // the first failure it saw, not the ChainBroken refusal of the newest ticket
    return v.failure !== null ? Promise.reject(v.failure) : this.whenDurable(v.ticket).catch((e: unknown) => Promise.reject(v.failure ?? e));
  }

  /** @internal PendingView.release() */
  releaseView(v: PendingView): void {
    if (this.#views.delete(v)) this.#dropCovered();
  }

  /** The database size after the newest ticket in flight that has not failed, else the live one. */
  #runningDbSize(): number {
    return this.#lastGood > this.settledTicket ? this.#lastGoodDbSize : this.#liveDbSize();
  }

  /** True when it settled `entry` now (false: it was settled before); `drop` false: the caller runs #dropCovered. */
  #settle(entry: InFlight, failure: unknown, drop = true): boolean {
    if (!this.#inFlight.has(entry.ticket)) return false; // published() came first
    if (failure !== null && !entry.dropped) this.#fail(entry.ticket, failure);
    else if (failure !== null) {
      const range = this.#failures[this.#failures.length - 1];
      if (range !== undefined && range.later === null && entry.ticket > range.from) range.later = failure;
    }
    this.#inFlight.delete(entry.ticket);
    this.#byPages.delete(entry.pages);
    if (this.#inFlight.size === 0) {
      this.#baseOthersLeast = Infinity;
      this.#baseOthersMost = -Infinity;
    }
    if (drop) this.#dropCovered();
    return true;
  }

  /** Ticket `from` failed: it and every later ticket in flight leave the overlay; views that saw them fail. */
  #fail(from: number, failure: unknown): void {
    this.#failures.push({ from, through: this.#last, error: failure, later: null });
    for (const e of this.#inFlight.values()) if (e.ticket >= from) e.dropped = true;
    while (this.#log.length > 0 && this.#log[this.#log.length - 1]!.ticket >= from) {
      const entry = this.#log.pop()!;
      for (const p of entry.pages) this.#dropImage(p.pgno, from);
      this.#unhold(entry);
    }
    if (this.#log.length === 0) this.#logSizesAscending = true;
    if (this.#lastGood >= from) {
      this.#lastGood = from - 1;
      this.#lastGoodDbSize = this.#inFlight.get(from - 1)?.dbSize ?? 0; // (0: settled, the live size applies)
    }
    for (const v of this.#views) {
      if (v.ticket >= from && v.failure === null) v.failure = failure;
    }
  }

  /** Removes `pgno`'s images of tickets >= `from` (the newest ones: at the list's end). */
  #dropImage(pgno: number, from: number): void {
    const list = this.#overlay.get(pgno);
    if (list === undefined) return;
    while (list.length > 0 && list[list.length - 1]!.ticket >= from) list.pop();
    if (list.length === 0) this.#overlay.delete(pgno);
  }

  #dropCovered(): void {
    let covered = this.settledTicket;
    for (const v of this.#views) if (v.P < covered) covered = v.P;
    while (this.#log.length > 0 && this.#log[0]!.ticket <= covered) {
      const entry = this.#log.shift()!;
      for (const p of entry.pages) {
        const list = this.#overlay.get(p.pgno);
        if (list === undefined) continue;
        if (list[0]!.ticket === entry.ticket) list.shift();
        if (list.length === 0) this.#overlay.delete(p.pgno);
      }
      this.#unhold(entry);
    }
    if (this.#log.length === 0) this.#logSizesAscending = true;
  }

  /** One holder let go of the pages; the last one hands them back (SequenceOptions.release). */
  #unhold(entry: InFlight): void {
    if (--entry.holds > 0 || entry.release === undefined) return;
    try {
      entry.release(entry.pages as WalPage[]);
    } catch {
      // the caller's hook: its failure is its own, the sequencer goes on
    }
  }
}

/** One snapshot's view of the overlay (snapshot.ts PendingPages). */
export class PendingView implements PendingPages {
  readonly #sequencer: Sequencer;
  /** Tickets up to P were settled when the snapshot began or last advanced past published commits (the succeeded ones are in its WAL view). */
  P: number;
  ticket = 0;
  dbSize = 0;
  /** The smallest database size after a ticket in (P, ticket] (Infinity when none). */
  leastDbSize = Infinity;
  /** The failure of a ticket it saw, once one failed. */
  failure: unknown = null;
  released = false;

  constructor(sequencer: Sequencer, P: number) {
    this.#sequencer = sequencer;
    this.P = P;
  }

  readInto(pgno: number, out: Uint8Array | null): boolean {
    if (this.failure !== null) throw this.failure;
    if (out === null) return false;
    const data = this.#sequencer.image(this, pgno);
    if (data === null) return false;
    out.set(data.length === out.length ? data : data.subarray(0, Math.min(data.length, out.length)));
    return true;
  }

  get failed(): boolean {
    return this.failure !== null;
  }

  shrunkBelow(pgno: number): boolean {
    return pgno > this.leastDbSize;
  }

  advance(published = false): boolean {
    return this.#sequencer.advance(this, published);
  }

  whenDurable(): Promise<void> {
    return this.#sequencer.whenViewDurable(this);
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.#sequencer.releaseView(this);
  }
}
