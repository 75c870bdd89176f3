/**
 * sql/overtaken-writes.ts — OvertakenWrites: the store's write lease, taken for a write that
 * other connections' commits keep overtaking, so that it commits at last.
 *
 * walnut/sql commits optimistically: a transaction runs on a snapshot and its commit is
 * conditional on it (WALNUT_CONFLICT, OtherWriter, when another connection committed since).
 * SQLite's own writers hold the WAL write lock for a whole write transaction instead, and make
 * the others wait. Optimism alone starves a long write beside a steady foreign writer: a
 * statement that runs longer than the gap between another process's commits is overtaken
 * every time it runs (VACUUM of an 18 MB database beside a python3 loop of INSERTs: 620
 * conflicts in a row, none committed). So after LEASE_AFTER_CONFLICTS conflicts a write runs
 * again holding the lease (store.holdWriteLease()): nobody else can commit until it is
 * durable, as SQLite's writer would have held its lock; the others wait in their busy
 * handlers, then go on (store.releaseWriteLease()).
 *
 * Invariants:
 *  - One write at a time holds the lease (`#held`), and gives it back exactly once, when it
 *    has settled (its commit durable, or failed). Writes that become due meanwhile take none:
 *    they run under that one while it lasts (a commit of theirs that comes after it may be
 *    overtaken again, and counts). Holds that joined each other kept WRITE without a gap for as
 *    long as some overtaken write was in flight: 8 callers inserting beside a sqlite3 process
 *    creating tables kept it out past its 5 s busy timeout.
 *  - After the lease is given back, none is taken for LEASE_PAUSE_MIN_MS or as long as it was
 *    held, whichever is longer: the other connections' busy handlers (SQLite's sleeps up to
 *    100 ms between tries) get WRITE in between. Writes due meanwhile run without it, except
 *    a transaction()/exec() call (takeAfterPause) and a BusyWrite statement (takeOrJoin): they
 *    wait for the pause's end (within the busy timeout). Their runs are counted in calls, not
 *    time: a caller retrying at once made 9 calls within one pause, each overtaken again.
 *    Once close() began no pause is waited for (cut()): such a write runs (or fails) at once.
 *  - The most overtaken write goes first: a write due for the lease that was refused (held, or
 *    paused) leaves its count of conflicts as a claim, and none with fewer takes the lease
 *    until that one did or CLAIM_TTL_MS passed without it asking again. Else short writes,
 *    overtaken twice now and then, took it at every pause's end, and a long one retried among
 *    them (it asks once a run) found it paused each time.
 *  - Taking the lease waits for WRITE up to the busy timeout. When that fails (another
 *    connection held WRITE throughout, or the store is closing), the write runs again without
 *    it, as before: the lease is a way to win, never a new way to fail.
 *  - An autocommit statement whose busy timeout is used up when it is overtaken runs once more
 *    under the lease if it has not tried to take it yet (`tried`), whatever its conflicts: a
 *    run longer than busyTimeout / 2 used the time up before its second conflict, so the
 *    statement never ran under the lease and failed WALNUT_CONFLICT on every call
 *    (test/hostile/sql-long-write-past-busy-timeout).
 *  - A commit that waited busyTimeout for WRITE (WALNUT_BUSY, BusyWrite: that wait sleeps as
 *    SQLite's busy handler does, up to 100 ms, and beside a writer that takes WRITE again at
 *    once it missed every gap) is due for the lease as a conflict is: an autocommit statement
 *    once more under it (its `tried` run), a transaction()/exec() counted per source text. Every
 *    write beside a python3 writer holding WRITE 4 ms a commit failed so
 *    (test/hostile/sql-busy-write-lease). Such a statement due while another write of this
 *    database takes or holds the lease runs under that one, and one due in the pause waits
 *    for its end (takeOrJoin): refused, 5 of 6 statements failing so in one batch failed
 *    (test/hostile/sql-busy-write-shared-lease).
 *  - With holdWriteLease: true (the lease held from open to close) nothing is taken or given.
 */
import type { Store } from '../commit/store';
import { isWalnutError } from '../errors';

/** Conflicts of one write (an autocommit statement's runs; transaction() calls in a row) before its next run takes the lease. */
export const LEASE_AFTER_CONFLICTS = 2;
/** The least time between giving the lease back and taking it again (header). */
const LEASE_PAUSE_MIN_MS = 150;
/** How long a refused write's claim holds back writes overtaken fewer times (header). */
const CLAIM_TTL_MS = 2000;

/** One write's turn: its conflicts so far, `tried` once take() ran for it, and `held` once it took the lease (give() hands it back, once). */
export interface LeaseTurn {
  held: boolean;
  conflicts: number;
  tried?: boolean;
}

/**
 * A commit that waited busyTimeout for WRITE (WALNUT_BUSY, reason BusyWrite): due for the lease
 * as a conflict is (header).
 */
export function waitedOutWrite(e: unknown): boolean {
  return isWalnutError(e, 'WALNUT_BUSY') && e.reason === 'BusyWrite';
}

export class OvertakenWrites {
  readonly #store: Store;
  /** The database holds the lease from open to close (option holdWriteLease): nothing to take. */
  readonly #leasedForLife: boolean;
  /** Writes that took the lease (they ran under it; also what metrics can show). */
  #taken = 0;
  /** A write holds the lease (its turn's `held`). */
  #held = false;
  /** The wait for WRITE in progress (a write due meanwhile waits for it too, and takes no hold). */
  #taking: Promise<void> | null = null;
  /** When the holder took it. */
  #heldSince = 0;
  /** No lease is taken before this (performance.now(); header). */
  #pauseUntil = -Infinity;
  /** The conflicts of the most overtaken write refused since the lease was last taken, and when it last asked (header). */
  #claim = 0;
  #claimAt = -Infinity;
  /** close() began (cut()): no pause is waited for any more. */
  #cut = false;
  /** Each pause wait in progress ends at once when called (#pauseWaited; cut()). */
  readonly #pauseWaits = new Set<() => void>();

  constructor(store: Store, leasedForLife: boolean) {
    this.#store = store;
    this.#leasedForLife = leasedForLife;
  }

  /** How many writes ran again under the lease because they were overtaken. */
  get leasesTaken(): number {
    return this.#taken;
  }

  /**
   * Takes the lease for `turn` (waits for WRITE up to the busy timeout); resolves either way:
   * `turn.held` says whether it is held.
   */
  take(turn: LeaseTurn): Promise<void> {
    turn.tried = true;
    if (this.#leasedForLife || turn.held) return Promise.resolve();
    const now = performance.now();
    if (now - this.#claimAt > CLAIM_TTL_MS) this.#claim = 0;
    if (this.#held || this.#taking !== null || now < this.#pauseUntil || turn.conflicts < this.#claim) {
      if (turn.conflicts >= this.#claim) {
        this.#claim = turn.conflicts;
        this.#claimAt = now;
      }
      // under the holder's lease, or the one being taken, while it lasts; else without (header)
      return this.#taking ?? Promise.resolve();
    }
    this.#taking = this.#store.holdWriteLease().then(
      () => {
        this.#taking = null;
        this.#claim = 0;
        turn.held = true;
        this.#held = true;
        this.#heldSince = performance.now();
        this.#taken++;
      },
      () => {
        this.#taking = null; // busy past the timeout, or closing: the write runs without it (header)
      },
    );
    return this.#taking;
  }

  /**
   * take(), for a write its caller runs again (transaction(), exec(): the caller's third call
   * of the same text is due): one due in the pause waits for the pause's end first, within the
   * busy timeout (then take() as usual; past it, take() refuses and it runs without the lease).
   * Refused in the pause, it ran without the lease and was overtaken again at once beside a
   * steady writer: a caller retrying at once used up a budget of 12 calls within the 150 ms
   * pause, 1 commit of 2 (test/hostile/sql-lease-due-in-pause).
   */
  async takeAfterPause(turn: LeaseTurn): Promise<void> {
    const deadline = performance.now() + this.#store.options.busyTimeout;
    // (again while it lasts: a timer may fire a fraction of a millisecond before its end)
    if (!this.#leasedForLife && !turn.held) while (await this.#pauseWaited(deadline));
    return this.take(turn);
  }

  /**
   * Waits until the pause ends, `deadline` (performance.now()) or cut(), whichever is first;
   * false when no pause was on (or close() began).
   */
  async #pauseWaited(deadline: number): Promise<boolean> {
    const now = performance.now();
    if (this.#cut || now >= this.#pauseUntil || now >= deadline) return false;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#pauseWaits.delete(done);
        resolve();
      };
      const timer = setTimeout(done, Math.min(this.#pauseUntil, deadline) - now);
      this.#pauseWaits.add(done);
    });
    return true;
  }

  /**
   * The Database's close() began: a pause waited for ends now, and none is waited for from
   * here on (the store's close cuts the lease's wait for WRITE too: Store.announceClose). The
   * write then runs without the lease, or fails as it did (takeOrJoin false). Its wait went on
   * to the pause's end (up to busyTimeout) holding the writer, and close() and every later call
   * on the writer waited behind it (test/hostile/sql-lease-pause-close).
   */
  cut(): void {
    this.#cut = true;
    for (const done of [...this.#pauseWaits]) done();
  }

  /**
   * For a write whose commit waited busyTimeout for WRITE (waitedOutWrite), once: resolves true
   * when it may run once more under the lease, its own (take(): `turn.held`) or the one another
   * write of this database holds or is taking (it runs under that one while it lasts, as writes
   * due meanwhile do: header), false when none could be had within the busy timeout (the store
   * closing, another connection holding WRITE throughout, a claim of a more overtaken write). A
   * pause after a lease was given back is waited out first (it is the other connections' turn;
   * then the lease is taken as usual). Such a write failed WALNUT_BUSY when it found the lease
   * taken, held or paused: of 6 statements failing BusyWrite in one batch, 5
   * (test/hostile/sql-busy-write-shared-lease).
   */
  async takeOrJoin(turn: LeaseTurn): Promise<boolean> {
    turn.tried = true;
    if (this.#leasedForLife) return true;
    const deadline = performance.now() + this.#store.options.busyTimeout;
    for (;;) {
      if (turn.held || this.#held) return true;
      if (this.#taking !== null) {
        await this.#taking;
        continue;
      }
      if (performance.now() >= deadline) return false;
      if (await this.#pauseWaited(deadline)) continue;
      await this.take(turn);
      if (turn.held || this.#held) return true;
      if (this.#taking === null) return false; // refused (a claim), or WRITE not had within the busy timeout
    }
  }

  /**
   * Gives `turn`'s lease back (nothing when it holds none). Never throws: it runs once the write
   * settled, and a throw here rejected a call whose commit was durable. Holds are counted per
   * store, so a releaseWriteLease() of the user's with no hold of its own gave ours back
   * already: the lock is let go, nothing is left to give (test/hostile/sql-lease-given-back-twice).
   */
  give(turn: LeaseTurn): void {
    if (!turn.held) return;
    turn.held = false;
    this.#held = false;
    const now = performance.now();
    this.#pauseUntil = now + Math.max(LEASE_PAUSE_MIN_MS, now - this.#heldSince);
    try {
      this.#store.releaseWriteLease(); // (after close() it does nothing)
    } catch (e) {
      if (!isWalnutError(e, 'WALNUT_INVALID_ARGUMENT')) throw e; // (reason lease: no hold left)
    }
  }
}
