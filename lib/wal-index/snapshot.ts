/**
 * wal-index/snapshot.ts — Snapshot: a consistent read view of the database (a read transaction).
 *
 * It holds a read lock from WalIndex.beginRead() until release() (READ(i) may become READ(0)
 * when the writer finds every frame it sees in the database file: moveToDatabaseFile). read(pgno) returns the page
 * as of the snapshot: the newest frame in [minFrame, mxFrame] from the WAL (one hash lookup,
 * one pread), else the database file, else zeros (a page never written and beyond the file).
 * Pages beyond the snapshot's database size read as zeros too. When the index has page trailers
 * on, every page read is checked against its trailer (WALNUT_CORRUPT with the pgno on mismatch);
 * readRaw() skips that check (for integrity checks, which report instead of throwing).
 * release() (the caller's, or the connection's close()) while asynchronous reads are still in
 * flight ends the snapshot at once for new reads but keeps the read lock until those reads have
 * finished: a checkpoint must not overwrite a page in the database file under a read that the
 * lock promised to keep consistent. (The connection's files close on the same I/O lane after
 * the reads queued on it, so a close() that drops every lock does so after them too.)
 * A store's snapshot may also see that store's sequenced commits that are not durable yet
 * (commit/sequencer.ts, attached by the store as `pending`): every read and dbSize consult
 * them first; frameOf()/framesOf() still describe the WAL only. A snapshot whose pending
 * commits failed reads nothing more (each read throws that failure). Caller buffers (readInto's
 * out, framesOf's Uint32Array) are checked by their own size (arguments.ts), before any read.
 * advance() brings a held snapshot up to date without a new read lock: when nothing was
 * published since, or only this connection's own commits of the same WAL generation (its read
 * mark then lags the frames it reads, which is safe and only limits checkpoints:
 * WalIndex.followOwnCommits). A parked snapshot (park(), idle between a connection's
 * transactions until its next advance()) may be brought forward by its connection at any time.
 */
import { extraArgumentError, refuseExtraArguments, describeValue, uint8Length, uint32Length } from '../arguments';
import { CONSTRUCT_KEY, refuseDirectConstruction, refuseOutsideCall } from '../constructed';
import { walnutError } from '../errors';
import type { ShmHeader } from '../format/shm-header';
import { sameSalts } from '../format/wal-header';
import type { WalnutFile } from '../io/file';
import { checkPageTrailer } from '../wal/page-trailer';
import type { WalFile } from '../wal/wal-file';

/**
 * The connection a snapshot reads through (WalIndex, which creates snapshots), as far as a
 * snapshot needs it: declared here so that this file does not import wal-index.ts, which
 * imports it.
 */
export interface SnapshotSource {
  readonly pageSize: number;
  readonly dbPath: string;
  /** Pages carry an XXH3-128 trailer to check on every read. */
  readonly pageTrailers: boolean;
  readonly closed: boolean;
  readonly db: WalnutFile;
  readonly wal: WalFile;
  /** The frame holding `pgno` in [minFrame, mxFrame], or 0. */
  lookup(pgno: number, mxFrame: number, minFrame: number): number;
  /** lookup() for each of `pgnos`, into `out`. */
  lookupMany(pgnos: Uint32Array, mxFrame: number, minFrame: number, out: Uint32Array): void;
  /** WALNUT_CORRUPT (ShmTruncated) when the -shm was cut below what the connection maps. */
  checkMapping(): void;
  /**
   * The connection waits for a WRITE lock another connection holds or wants: a snapshot parked
   * now is released at once (park()), its read mark could be what that connection waits for.
   */
  readonly dropsParked: boolean;
  /**
   * One read of the live header: 'unchanged' when it is still `state`'s, 'followed' when `state`
   * (of `s`) was brought to it because only this connection committed since, else false
   * (WalIndex.followOwnCommits); on success `state.dataVersion` is the data version as of that read.
   */
  followOwnCommits(s: Snapshot, state: SnapshotState): 'unchanged' | 'followed' | false;
}

/**
 * A store's sequenced commits that were not durable when a snapshot began, as that snapshot
 * sees them (implemented by commit/sequencer.ts; declared here so that this file imports
 * nothing of lib/commit).
 */
export interface PendingPages {
  /** The newest sequenced commit seen (its ticket), 0 when none was pending. */
  readonly ticket: number;
  /** The database size after that commit (when ticket > 0). */
  readonly dbSize: number;
  /** A commit it saw failed (it reads nothing more). */
  readonly failed: boolean;
  /**
   * Copies page `pgno` into `out` when a pending commit seen wrote it (true; `out` null: only
   * checks); throws the failure once one of them failed.
   */
  readInto(pgno: number, out: Uint8Array | null): boolean;
  /**
   * True when one of the pending commits it sees left the database below `pgno` pages: a page
   * none of them wrote reads as zeros then (a commit growing the database back writes zeros
   * over the pages it does not write: group-committer.ts #withRegrownZeros).
   */
  shrunkBelow(pgno: number): boolean;
  /**
   * Extends the view to every commit sequenced since (the caller checked that nothing was
   * published meanwhile, or, with `published`, that its WAL view now includes every commit
   * published so far: the view then starts from the commits settled now). False once failed.
   */
  advance(published?: boolean): boolean;
  /** Resolves once every commit seen is durable; rejects with the failure of one that failed. */
  whenDurable(): Promise<void>;
  release(): void;
}

export interface SnapshotState {
  readLock: number;
  mxFrame: number;
  minFrame: number;
  dbSize: number;
  /**
   * Pages of the database file known to exist (its size when the WAL was empty, else the
   * header's nPage): pages past it read as zeros without a read; a page below it that the
   * file lacks reads short and is zero-filled.
   */
  dbFilePages: number;
  header: ShmHeader;
  headerBytes: Uint8Array;
  /** Taken with useWal: it must keep its WAL read mark (never moved to the database file). */
  useWal: boolean;
  /**
   * The connection's data version (WalIndex.dataVersion()) as of the header read that gave this
   * state: when the snapshot began, or last advanced.
   */
  dataVersion: number;
}

export class Snapshot {
  /**
   * A snapshot a store made (a brand check that runs none of the value's code): `instanceof`
   * also passes Object.create(Snapshot.prototype) and the like, whose first private read throws
   * a raw TypeError, and runs a Proxy's getPrototypeOf trap.
   */
  static isSnapshot(v: unknown): v is Snapshot {
    return typeof v === 'object' && v !== null && #index in v;
  }

  readonly #index: SnapshotSource;
  readonly #state: SnapshotState;
  readonly #onRelease: (s: Snapshot) => void;
  #released = false;
  /** Asynchronous reads in flight; release() hands the lock back when the last one ends. */
  #reading = 0;
  /** Run once the reads in flight now have ended (afterReadsInFlight()). */
  #afterReads: (() => void)[] = [];
  /** The store's sequenced commits this snapshot sees beyond its WAL view (null: durable state only). */
  #pending: PendingPages | null = null;
  /** Parked (park()): idle between transactions, the connection may bring it forward past its own commits. */
  #parked = false;
  /** Its WAL view was brought forward while parked (the pending view follows at advance()). */
  #movedWhileParked = false;

  constructor(key: typeof CONSTRUCT_KEY, index: SnapshotSource, state: SnapshotState, onRelease: (s: Snapshot) => void) {
    refuseDirectConstruction(key, 'Snapshot', 'store.snapshot()');
    this.#index = index;
    this.#state = state;
    this.#onRelease = onRelease;
  }

  get pageSize(): number {
    return this.#index.pageSize;
  }
  /** Database size in pages as of this snapshot (after the newest pending commit it sees, if any). */
  get dbSize(): number {
    const p = this.#pending;
    return p !== null && p.ticket > 0 ? p.dbSize : this.#state.dbSize;
  }

  /**
   * Store only (Store.snapshot()): the store's sequenced commits not durable yet that this
   * snapshot sees (commit/sequencer.ts). Once, before the snapshot is handed out.
   */
  attachPending(key: typeof CONSTRUCT_KEY, pending: PendingPages): void {
    refuseOutsideCall(key, 'snapshot.attachPending');
    this.#pending = pending;
  }

  /**
   * The ticket of the newest commit this snapshot sees that was sequenced (store.sequence())
   * but not durable when it began (or when advance() last extended it); 0 when it sees durable
   * commits only.
   */
  get pendingTicket(): number {
    return this.#pending?.ticket ?? 0;
  }

  /**
   * Resolves once every commit this snapshot sees is durable (at once when pendingTicket is 0);
   * rejects with the failure when one of them failed (a reader that showed them must not
   * acknowledge what it read).
   */
  whenDurable(): Promise<void> {
    if (arguments.length > 0) {
      const refused = extraArgumentError('snapshot.whenDurable', 'no arguments', 0, arguments);
      if (refused !== null) return Promise.reject(refused);
    }
    return this.#pending === null || this.#pending.ticket === 0 ? Promise.resolve() : this.#pending.whenDurable();
  }

  /**
   * Brings the snapshot up to date without a new read lock, when nothing was published since it
   * began, or only commits of this connection's own (no other connection committed, the WAL
   * did not restart; it holds a WAL read mark: WalIndex.followOwnCommits): it then sees
   * what a new snapshot of the same kind would (a store snapshot: every commit this store
   * sequenced since, too), and stays the same commit base (store.commit's `base`: no other
   * connection committed since it began). False when that cannot be (release it and take a new
   * snapshot), when it was released, or when a pending commit it saw failed.
   */
  advance(): boolean {
    if (arguments.length > 0) refuseExtraArguments('snapshot.advance', 'no arguments', 0, arguments);
    this.#parked = false;
    if (this.#released || this.#index.closed) return false;
    if (this.#pending?.failed === true) return false;
    const followed = this.#index.followOwnCommits(this, this.#state);
    if (followed === false) return false;
    const moved = followed === 'followed' || this.#movedWhileParked;
    this.#movedWhileParked = false;
    return this.#pending === null || this.#pending.advance(moved);
  }

  /**
   * Marks the snapshot idle until its next advance(): nothing reads it meanwhile, so its
   * connection may bring its WAL view forward past the connection's own commits at any time
   * (bringForward()), or release it when it cannot follow (another connection committed, the
   * WAL restarted): a kept snapshot then neither holds checkpoints back at an old read mark nor
   * keeps the WAL from restarting (WalIndex: checkpoints, restarts, walReaders). Its advance()
   * then says false, as it would have. While the connection waits for a WRITE lock another
   * connection holds (or holds back for another connection's checkpointer), parked snapshots
   * are released at once, here and when the wait begins: the holder may be a checkpoint that
   * waits for this read mark (SQLite's FULL/RESTART/TRUNCATE do, holding WRITE), and an idle
   * mark kept while waiting for WRITE would stall both until one's busy timeout.
   */
  park(): void {
    if (arguments.length > 0) refuseExtraArguments('snapshot.park', 'no arguments', 0, arguments);
    this.#parked = true;
    if (this.#index.dropsParked) this.release();
  }

  get parked(): boolean {
    return this.#parked && !this.#released;
  }

  /** WalIndex only: a parked snapshot's WAL view to the live header, when only this connection committed since (followOwnCommits). */
  bringForward(key: typeof CONSTRUCT_KEY): boolean {
    refuseOutsideCall(key, 'snapshot.bringForward');
    if (!this.parked) return false;
    const followed = this.#index.followOwnCommits(this, this.#state);
    if (followed === false) return false;
    if (followed === 'followed') this.#movedWhileParked = true;
    return true;
  }
  /**
   * store.dataVersion() as of this snapshot's state: read with the header it began from or last
   * advanced to (one read gives both, so they agree: a commit by another connection is in the
   * state exactly when it is counted here). A snapshot of an earlier frame (beginOldestRead's)
   * has the live header's.
   */
  get dataVersion(): number {
    return this.#state.dataVersion;
  }
  /** The last WAL frame this snapshot sees (0 when it reads the database file only). */
  get mxFrame(): number {
    return this.#state.mxFrame;
  }
  get minFrame(): number {
    return this.#state.minFrame;
  }
  get readLock(): number {
    return this.#state.readLock;
  }
  /** The wal-index header this snapshot was taken from (48 bytes). */
  get headerBytes(): Uint8Array {
    return this.#state.headerBytes;
  }
  /** The WAL generation this snapshot saw: its header's mxFrame (even under READ(0)) and salts. */
  get generation(): { mxFrame: number; salts: [number, number] } {
    return { mxFrame: this.#state.header.mxFrame, salts: this.#state.header.salts };
  }
  get released(): boolean {
    return this.#released;
  }

  /** The WAL frame that holds `pgno` for this snapshot, or 0. */
  frameOf(pgno: number): number {
    this.#check(pgno);
    if (this.#state.mxFrame === 0 || pgno > this.#state.dbSize) return 0;
    return this.#index.lookup(pgno, this.#state.mxFrame, this.#state.minFrame);
  }

  /** Pages the database file had when the snapshot began (a page beyond it, in no frame, reads as zeros). */
  get dbFilePages(): number {
    return this.#state.dbFilePages;
  }

  /**
   * frameOf() for pages firstPgno, firstPgno + 1, ... into `out` (one entry per page; one batched
   * wal-index lookup). False when no page of the range is in the WAL.
   */
  framesOf(firstPgno: number, out: Uint32Array): boolean {
    this.#check(firstPgno);
    // checked here, not only by the addon's lookup (which an empty WAL never reaches), and by its
    // own size, not a `length` the caller's object says
    const entries = uint32Length(out);
    if (entries < 0) throw walnutError('WALNUT_INVALID_ARGUMENT', `out must be a Uint32Array, not ${describeValue(out)}`, { reason: 'out' });
    this.#check(firstPgno + Math.max(0, entries - 1));
    const inWal = Math.min(entries, this.#state.dbSize - firstPgno + 1);
    if (this.#state.mxFrame === 0 || inWal <= 0) {
      out.fill(0);
      return false;
    }
    this.#index.checkMapping(); // the -shm may have been cut since the last lookup (an await ago)
    const pgnos = new Uint32Array(inWal);
    for (let i = 0; i < inWal; i++) pgnos[i] = firstPgno + i;
    this.#index.lookupMany(pgnos, this.#state.mxFrame, this.#state.minFrame, out);
    out.fill(0, inWal);
    return out.some((f) => f !== 0);
  }

  /** The page as of this snapshot (a new Buffer of pageSize bytes). */
  async read(pgno: number): Promise<Buffer> {
    if (arguments.length > 1) refuseExtraArguments('snapshot.read', 'only a page number (readInto takes a buffer)', 1, arguments);
    const out = Buffer.alloc(this.#index.pageSize);
    await this.#readInto(pgno, out, true);
    this.#checkTrailer(pgno, out);
    return out;
  }

  /** As read(), into the caller's `out` (copied there once read: a buffer detached meanwhile fails the read). */
  async readInto(pgno: number, out: Uint8Array): Promise<void> {
    if (arguments.length > 2) refuseExtraArguments('snapshot.readInto', 'a page number and a buffer', 2, arguments);
    await this.#readInto(pgno, out, false);
    this.#checkTrailer(pgno, out);
  }

  /** The page as stored, without the trailer check. */
  async readRaw(pgno: number): Promise<Buffer> {
    if (arguments.length > 1) refuseExtraArguments('snapshot.readRaw', 'only a page number', 1, arguments);
    const out = Buffer.alloc(this.#index.pageSize);
    await this.#readInto(pgno, out, true);
    return out;
  }

  /** `lent`: `out` is this snapshot's own until returned, read into on the I/O thread (io/file.ts). */
  async #readInto(pgno: number, out: Uint8Array, lent: boolean): Promise<void> {
    // An asynchronous read pays for a trip to the I/O thread, so it can afford the size check (lseek) that
    // turns a -shm truncated while the snapshot was held into WALNUT_CORRUPT (ShmTruncated)
    // before the lookup; the synchronous reads cannot, and rely on the lookup's own SIGBUS guard
    // (native/shm_guard.h), which gives the same error.
    if (this.#pendingRead(pgno, out)) return;
    if (this.#state.mxFrame !== 0) this.#index.checkMapping();
    const source = this.#locate(pgno, out);
    if (source.frame === 0 && !source.fromDb) return;
    this.#reading++;
    try {
      if (source.frame !== 0) {
        await this.#index.wal.readFramePage(source.frame, out, this.#index.pageSize, lent);
      } else {
        const db = this.#index.db;
        const at = (pgno - 1) * this.#index.pageSize;
        const got = await (lent ? db.readLent(out, 0, this.#index.pageSize, at) : db.read(out, 0, this.#index.pageSize, at));
        if (got < this.#index.pageSize) out.fill(0, got, this.#index.pageSize);
      }
    } finally {
      if (--this.#reading === 0) {
        for (const f of this.#afterReads.splice(0)) f();
        if (this.#released) this.#onRelease(this);
      }
    }
  }

  /** As read(), on the calling thread: one pread from the page cache, no I/O-thread trip. */
  readSync(pgno: number): Buffer {
    if (arguments.length > 1) refuseExtraArguments('snapshot.readSync', 'only a page number (readIntoSync takes a buffer)', 1, arguments);
    const out = Buffer.alloc(this.#index.pageSize);
    this.readIntoSync(pgno, out);
    return out;
  }

  readIntoSync(pgno: number, out: Uint8Array): void {
    if (arguments.length > 2) refuseExtraArguments('snapshot.readIntoSync', 'a page number and a buffer', 2, arguments);
    this.#readIntoSync(pgno, out);
    this.#checkTrailer(pgno, out);
  }

  /**
   * Pages first..first+count-1 into `out` back to back, each as readIntoSync reads it, but a
   * run of pages the database file holds in one pread (a later base image read a page per
   * call: a syscall per page of the database).
   */
  readPagesIntoSync(first: number, count: number, out: Uint8Array): void {
    const pageSize = this.#index.pageSize;
    this.#check(first); // (a bigint threw a raw TypeError below, an object was coerced)
    if (!Number.isSafeInteger(count) || count < 0) {
      throw walnutError('WALNUT_INVALID_ARGUMENT', `count must be a whole number of pages, 0 or more (got ${String(count)})`, { reason: 'count' });
    }
    if (uint8Length(out) < count * pageSize) {
      throw walnutError('WALNUT_INVALID_ARGUMENT', `out must hold ${count} pages of ${pageSize} bytes`, { reason: 'out' });
    }
    let runFirst = 0; // the database file's pages runFirst..pgno-1 are still to be read
    const readRun = (end: number): void => {
      if (runFirst === 0) return;
      const at = (runFirst - first) * pageSize;
      const bytes = (end - runFirst) * pageSize;
      const got = this.#index.db.readSync(out, at, bytes, (runFirst - 1) * pageSize);
      if (got < bytes) out.fill(0, at + got, at + bytes);
      runFirst = 0;
    };
    for (let i = 0; i < count; i++) {
      const pgno = first + i;
      const page = out.subarray(i * pageSize, (i + 1) * pageSize);
      if (!this.#pendingRead(pgno, page)) {
        const source = this.#locate(pgno, page);
        if (source.fromDb) {
          if (runFirst === 0) runFirst = pgno;
          continue;
        }
        if (source.frame !== 0) this.#index.wal.readFramePageSync(source.frame, page, pageSize);
      }
      readRun(pgno);
    }
    readRun(first + count);
    for (let i = 0; i < count; i++) this.#checkTrailer(first + i, out.subarray(i * pageSize, (i + 1) * pageSize));
  }

  readRawSync(pgno: number): Buffer {
    if (arguments.length > 1) refuseExtraArguments('snapshot.readRawSync', 'only a page number', 1, arguments);
    const out = Buffer.alloc(this.#index.pageSize);
    this.#readIntoSync(pgno, out);
    return out;
  }

  #readIntoSync(pgno: number, out: Uint8Array): void {
    if (this.#pendingRead(pgno, out)) return;
    const source = this.#locate(pgno, out);
    if (source.frame !== 0) {
      this.#index.wal.readFramePageSync(source.frame, out, this.#index.pageSize);
    } else if (source.fromDb) {
      const got = this.#index.db.readSync(out, 0, this.#index.pageSize, (pgno - 1) * this.#index.pageSize);
      if (got < this.#index.pageSize) out.fill(0, got, this.#index.pageSize);
    }
  }

  /** A pending commit's page (or zeros past a size it shrank to) into `out`: true when it answered. */
  #pendingRead(pgno: number, out: Uint8Array): boolean {
    const p = this.#pending;
    if (p === null || p.ticket === 0) return false;
    this.#check(pgno);
    if (uint8Length(out) < this.#index.pageSize) return false; // #locate's refusal
    if (pgno > p.dbSize) {
      p.readInto(pgno, null); // throws when failed
      out.fill(0, 0, this.#index.pageSize);
      return true;
    }
    if (p.readInto(pgno, out)) return true;
    // no pending commit it sees wrote the page: zeros when one of them, or the state its WAL view
    // reads, left the database shorter (the commit growing it back writes zeros there)
    if (pgno > this.#state.dbSize || p.shrunkBelow(pgno)) {
      out.fill(0, 0, this.#index.pageSize);
      return true;
    }
    return false;
  }

  #checkTrailer(pgno: number, page: Uint8Array): void {
    if (!this.#index.pageTrailers) return;
    const view = page.length === this.#index.pageSize ? page : page.subarray(0, this.#index.pageSize);
    if (checkPageTrailer(view) === 'mismatch') {
      const frame = this.frameOf(pgno);
      throw walnutError('WALNUT_CORRUPT', `page ${pgno}${frame ? ` (WAL frame ${frame})` : ''}: the XXH3-128 page trailer does not match the page`, { path: this.#index.dbPath, pgno });
    }
  }

  /** Where page `pgno` comes from; zero-fills `out` when from nowhere. */
  #locate(pgno: number, out: Uint8Array): { frame: number; fromDb: boolean } {
    const pageSize = this.#index.pageSize;
    // its own size (uint8Length), not a `length` property of the caller's: a pending commit's
    // page is copied into it with set(), which threw a raw RangeError past its real end
    if (uint8Length(out) < pageSize) {
      throw walnutError('WALNUT_INVALID_ARGUMENT', `out must hold ${pageSize} bytes`, { reason: 'out' });
    }
    const frame = this.frameOf(pgno);
    if (frame !== 0) return { frame, fromDb: false };
    if (pgno > this.#state.dbSize || pgno > this.#state.dbFilePages) {
      out.fill(0, 0, pageSize);
      return { frame: 0, fromDb: false };
    }
    return { frame: 0, fromDb: true };
  }

  /** Does it see exactly the WAL of header `h` (same generation, same last frame), and is it not a useWal snapshot? */
  canMoveToDatabaseFile(key: typeof CONSTRUCT_KEY, h: ShmHeader): boolean {
    refuseOutsideCall(key, 'snapshot.canMoveToDatabaseFile');
    const mine = this.#state.header;
    return !this.#state.useWal && mine.mxFrame === h.mxFrame && sameSalts(mine.salts, h.salts);
  }

  /**
   * WalIndex only, under WRITE once every frame this snapshot sees is in the database file:
   * read the database file only from now on, under READ(0). The pages read are the same
   * (dbFilePages stays the header's nPage: the complete checkpoint sized the file to it); the
   * generation (conflict checks) stays.
   */
  moveToDatabaseFile(key: typeof CONSTRUCT_KEY): void {
    refuseOutsideCall(key, 'snapshot.moveToDatabaseFile');
    this.#state.readLock = 0;
    this.#state.mxFrame = 0;
    this.#state.minFrame = 0;
  }

  /**
   * WalIndex only: runs `f` once the asynchronous reads in flight now have ended (at once when
   * there are none). A read located its WAL frame before moveToDatabaseFile() and preads it
   * later: its old read mark must stay until then (a checkpoint's truncate or restart, on
   * another I/O lane, would cut or overwrite the frame under it).
   */
  afterReadsInFlight(key: typeof CONSTRUCT_KEY, f: () => void): void {
    refuseOutsideCall(key, 'snapshot.afterReadsInFlight');
    if (this.#reading === 0) f();
    else this.#afterReads.push(f);
  }

  /** Ends the read transaction (idempotent); the lock goes once reads in flight have finished. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#pending?.release();
    if (this.#reading === 0) this.#onRelease(this);
  }

  #check(pgno: number): void {
    if (this.#released) throw walnutError('WALNUT_CLOSED', 'the snapshot was released');
    if (this.#index.closed) throw walnutError('WALNUT_CLOSED', 'the database connection is closed');
    if (!Number.isInteger(pgno) || pgno < 1 || pgno > 0xffffffff) {
      throw walnutError('WALNUT_INVALID_ARGUMENT', `page number ${describeValue(pgno)} must be an integer in 1..2^32-1`, { reason: 'pgno' });
    }
  }
}
