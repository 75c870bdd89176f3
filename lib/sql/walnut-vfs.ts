/**
 * sql/walnut-vfs.ts — the SQLite VFS (wa-sqlite, synchronous build) whose main database is a
 * walnut store, for ONE connection: the writer, or a reader (role 'reader': opened read-only,
 * its views see durable commits only).
 *
 * SQLite in wasm runs in rollback mode (journal_mode=MEMORY, batch-atomic writes advertised)
 * on a logical file made of walnut page images:
 *   xLock(SHARED)          a view: a store snapshot, which sees the sequenced commits not
 *                          durable yet (store.sequence(); kept and advanced across
 *                          transactions while it is good, else store.trySnapshotSync():
 *                          commit-pipeline.ts). Busy: a retry op + SQLITE_BUSY (the
 *                          statement runner awaits the op and runs the step again).
 *   xLock(RESERVED and     refused (SQLITE_BUSY, `conflict` set) when another connection
 *     EXCLUSIVE),          committed since the view began (the data version): SQLite backs
 *   FCNTL_COMMIT_ATOMIC_   the batch out and the statement fails. The locks skip the check
 *     WRITE                when the view was opened in the same synchronous run (#freshView:
 *                          the commit's checks cover that run; the file control always
 *                          checks). A commit by another process after the last check is
 *                          caught by the store: each commit is conditional on its view's
 *                          snapshot (store.sequence's `base`, checked under walnut's WRITE
 *                          lock), and fails WALNUT_CONFLICT instead of overwriting it.
 *   (after a failure)      xLock(SHARED) waits for the pipeline's recovery (a retry op +
 *                          SQLITE_BUSY); the data version the VFS uses is the store's plus the
 *                          pipeline's recoveries, so views from before a recovery are stale
 *                          and SQLite drops its page cache (which may hold lost pages).
 *   xRead                  the transaction's own writes, else the view.
 *   xWrite / xTruncate     buffered (page copies: the wasm heap is reused); a page past the
 *                          store's maxPageCount is SQLITE_FULL (a PRAGMA max_page_count may
 *                          have raised SQLite's limit above the store's).
 *   FCNTL_SYNC             marks the transaction as committing (a rollback never syncs).
 *   FCNTL_COMMIT_PHASETWO  the commit point (after SQLite's truncate of a shrunk database, which
 *                          follows the sync: committing at the sync lost VACUUM's shrink): the
 *                          pages are sequenced (store.sequence()); the durability promise is kept
 *                          for the caller (takeDurability()), not awaited by step(), so the
 *                          connection runs the next transaction while the fsync is pending.
 *   xUnlock(NONE)          a transaction that committed nothing but saw sequenced commits
 *   (or the call's end,    (or, still open as the call ends, has seen them so far: a BEGIN
 *    takeDurability())     sent through exec(), then reads in later calls)
 *                          waits for them too (SQLite never shows non-durable data), unless a
 *                          later transaction of the same statement commits: its commit is
 *                          chained after everything its own view saw, and an earlier transaction of one
 *                          statement is an attempt SQLite gave up (a schema load, a statement
 *                          run again after SQLITE_SCHEMA or a busy lock). Waiting for such an attempt's view failed a
 *                          call whose commit was still to become durable, and the call ran
 *                          again: its row applied twice, or its CREATE TABLE failed on its own
 *                          table (#dropReadWaits). That is so within one statement only:
 *                          the read transactions of a call's earlier statements (exec() runs
 *                          several; the runner says where each ends, endStatement()) are the
 *                          call's, as its commits are. A later statement of the call opens no
 *                          view while those are in doubt (a recovery since: some commit they
 *                          made or saw may be lost, and the view would not be built on it): it
 *                          waits for them, and one that failed fails the statement (#inDoubt).
 *                          exec('CREATE TABLE IF NOT EXISTS u ...; INSERT ...') resolved when
 *                          the u it found was another call's lost table, and exec('INSERT a;
 *                          INSERT b') applied b after a was lost, rejecting with a retryable
 *                          WALNUT_CONFLICT (a retry applied b twice).
 * Page 1 is patched in flight: format bytes 18/19 are 1 (rollback) for SQLite in wasm and 2
 * (WAL) on disk, so sqlite3 sees a WAL database. The change counter (bytes 24..27) and its
 * copy "version-valid-for" (92..95) are shown plus the view's dataVersion, and stored minus
 * it: another connection's commit (sqlite3 in WAL mode need not bump the counter) thus changes
 * what SQLite reads at its next lock, and it drops its page cache. The writer's schema cookie
 * (40..43) is shown plus SCHEMA_SHIFT per recovery, so SQLite reloads a schema that a lost
 * transaction changed.
 * The store's database is the only main database it opens (ATTACH and VACUUM INTO of another
 * file are refused: SQLITE_CANTOPEN). Every other file (statement journals, temp files, a
 * spilled journal) lives in memory.
 * A database opened read-only (`readOnly`: openDatabase's option, or a replica's file) has its
 * writer connection opened SQLITE_OPEN_READONLY too (connection.ts), so SQLite asks for no
 * write; should it, xLock(RESERVED and up), xWrite and xTruncate of the main database answer
 * SQLITE_READONLY with a WALNUT_READONLY error behind it (#refuseWrite): nothing is buffered,
 * so nothing is ever sequenced. Temp files still take writes (TEMP tables: memory).
 */
import { walnutError, WalnutError } from '../errors';
import { decodeDbPageSize } from '../format/page-size';
import { DB_HEADER_SIZE } from '../format/db-header';
import { maxPageNumber } from '../commit/pages';
import type { Store } from '../commit/store';
import type { CommitPipeline, PageImage, View } from './commit-pipeline';
import { DIRECT, type Engine } from './engine';
import { laterStatementsFailure } from './lost-commits';

interface MemFile {
  flags: number;
  size: number;
  data: Uint8Array;
}

/** The main database file's state (one open of it). */
interface MainFile {
  lock: number;
  view: View | null;
  /** Pages written by the transaction in progress. */
  writes: Map<number, Buffer>;
  /** Its database size when it wrote or truncated, else null. */
  size: number | null;
  committing: boolean;
  /** The transaction committed (its own durability then covers every earlier commit). */
  committed: boolean;
}

// (commit/read-only.ts: the store refuses its writes for the same reason)
export { readOnlyError, type ReadOnly } from '../commit/read-only';
import { readOnlyError, type ReadOnly } from '../commit/read-only';

/** What the VFS reports beside SQLite result codes. */
export interface VfsSignals {
  /** The database was opened read-only (the writer connection too): why, else null. */
  readonly readOnly: ReadOnly | null;
  /** The last walnut error behind an I/O result code. */
  lastError: WalnutError | Error | null;
  /** Set when a write was refused because another connection committed since the view began. */
  conflict: boolean;
  /** Durability promises of what the call's statements committed or read (taken once per call, at its end). */
  takeDurability(): Promise<unknown> | null;
  /** A statement of the call ended (exec() runs several): what its read transactions saw is the call's (header comment, xUnlock(NONE)). */
  endStatement(): void;
  /** How many durability promises the call holds so far (exec() marks where each statement's begin: exec-progress.ts). */
  durabilityCount(): number;
  /** The call's durability promises from index `from` on, a copy (takeDurability() still takes them all). */
  durabilitySince(from: number): Promise<unknown>[];
  /**
   * Null when everything the call's earlier statements committed or read is durable, else a
   * promise for it that rejects as a view opened now would (#inDoubt: ChainBroken): exec() waits
   * for it before a statement that may write tables of the connection's own (exec-progress.ts).
   */
  earlierDurable(): Promise<unknown> | null;
  /**
   * The connection set its own journal mode (connection.ts, at open): from now on PRAGMA
   * journal_mode is walnut's to answer ("wal"), and a change of it is refused (#pragma).
   */
  journalModeSet: boolean;
  /**
   * Lets go of every file's view and buffered writes, as closing them would: for a wasm instance
   * dropped without SQLite closing its files (connection.ts, reopen() after a schema load the
   * stack ran out in). Views not let go of held their read marks for good (checkpoints stalled).
   */
  releaseAll(): void;
}

/** A wait for commits a call made or read, with the pipeline's recoveries when its view was taken. */
interface CallWait {
  p: Promise<unknown>;
  readonly resets: number;
  /** It resolved: those commits are durable. */
  ok: boolean;
}

const FORMAT_BYTES = [18, 19] as const;
/** Resolved: its reactions run as microtasks (#fresh). */
const SETTLED = Promise.resolve();
const COUNTER_OFFSETS = [24, 92] as const;
/** Page 1's schema cookie (SQLite reloads its schema when the one it reads differs from its own). */
const SCHEMA_COOKIE_OFFSET = 40;
/**
 * How far the writer's schema cookie moves per recovery (resets). A lost transaction's schema
 * change stays in SQLite's parsed schema (it saw its commit succeed), and SQLite checks that
 * schema only against the cookie: k lost schema changes left it k past the durable cookie, and
 * another connection's j schema changes since put the file's j past it, so k = j (a lost CREATE
 * TABLE beside a sqlite3 CREATE TABLE) kept the lost table and missed the other's: statements
 * then failed ("already exists") or wrote by a schema not the file's. A shift this large per
 * recovery makes the two differ unless a recovery lost 65,536 more schema changes than others
 * made, and SQLite reloads.
 */
const SCHEMA_SHIFT = 0x10000;

/**
 * PRAGMAs of SQLite's WAL that walnut/sql refuses (#pragma), with what does their work: the
 * WAL is the store's, which SQLite in wasm (rollback mode over it) does not see.
 */
const WAL_PRAGMAS: ReadonlyMap<string, string> = new Map([
  ['wal_checkpoint', "the WAL is the store's: checkpoint with await db.store.checkpoint('passive' | 'full' | 'restart' | 'truncate') (it answers busy, walFrames and checkpointedFrames, as this PRAGMA would)"],
  ['wal_autocheckpoint', "the store checkpoints the WAL: set its autoCheckpoint option (frames, or false) in openDatabase()'s options"],
]);

/** Up to this many bytes copyBytes copies in a loop: a subarray to set() from is a view object (~100-200 bytes of garbage). */
const SMALL_COPY = 128;

/**
 * `n` bytes of `from` at `at` into the start of `to`: a loop for a few (a transaction's start
 * reads 16 bytes of page 1's header, from its 100 copied: no view objects), else one set().
 */
function copyBytes(to: Uint8Array, from: Uint8Array, at: number, n: number): void {
  if (n > SMALL_COPY) {
    to.set(from.subarray(at, at + n));
    return;
  }
  for (let i = 0; i < n; i++) to[i] = from[at + i]!;
}

/**
 * The first letters (lowercase ASCII) of the PRAGMA names #pragma answers itself: journal_mode,
 * locking_mode, and WAL_PRAGMAS' (wal_checkpoint, wal_autocheckpoint).
 */
const PRAGMA_INITIALS: ReadonlySet<number> = new Set(['journal_mode', 'locking_mode', ...WAL_PRAGMAS.keys()].map((name) => name.charCodeAt(0)));

/** Registers a VFS named `name` on the engine's instance; returns its signals. */
export function registerWalnutVfs(engine: Engine, name: string, store: Store, pipeline: CommitPipeline, role: 'writer' | 'reader' = 'writer', readOnly: ReadOnly | null = null): VfsSignals {
  const C = engine.C;
  /** The database was opened read-only: SQLite (opened SQLITE_OPEN_READONLY) refuses writes, and so does every write entry point here (#refuseWrite). */
  const readOnlyAs = readOnly;
  const pageSize = store.pageSize;
  /** The largest page number the store takes (option maxPageCount; SQLite is told it too, connection.ts). */
  const maxPages = maxPageNumber({ pageSize, reservedBytes: 0, maxPageCount: store.options.maxPageCount });
  const module = engine.module;
  const reader = role === 'reader';
  /** The store's data version plus the pipeline's recoveries (commit-pipeline.ts). */
  const dataVersion = (): number => pipeline.dataVersion();
  /** Page 1 for partial reads (SQLite reads its header fields): one buffer, reused. */
  const page1 = Buffer.allocUnsafeSlow(pageSize);
  /** What the main database's device offers (batch-atomic writes: the transaction is one commit). */
  const MAIN_IOCAP = C.SQLITE_IOCAP_BATCH_ATOMIC! | C.SQLITE_IOCAP_UNDELETABLE_WHEN_OPEN! | C.SQLITE_IOCAP_POWERSAFE_OVERWRITE! | C.SQLITE_IOCAP_SAFE_APPEND!;

  class WalnutVfs extends engine.FacadeVFS implements VfsSignals {
    /**
     * The longest path SQLite may hand this VFS, in UTF-8 bytes. wa-sqlite's base class says 64,
     * and SQLite's pager refuses a database whose full path plus 8 (room for "-journal") passes
     * it: openDatabase() of any path of 57+ bytes failed (SQLITE_CANTOPEN, 'unable to open
     * database file'; past 64, xFullPathname's SQLITE_IOERR, 'disk I/O error'). Linux's PATH_MAX,
     * as SQLite's unix VFS allows (SQLITE_MAX_PATHLEN = FILENAME_MAX).
     */
    mxPathname = 4096;
    lastError: WalnutError | Error | null = null;
    conflict = false;
    journalModeSet = false;
    readonly readOnly = readOnlyAs;
    readonly #main = new Map<number, MainFile>();
    readonly #mem = new Map<number, { f: MemFile; name: string }>();
    readonly #memFiles = new Map<string, MemFile>();
    /** The call's commits' durability promises (pipeline.sequence()). */
    readonly #durability: Promise<unknown>[] = [];
    /** The read transactions' waits of the call's current statement for the sequenced commits they saw (pipeline.whenDurable()). */
    readonly #readWaits: CallWait[] = [];
    /** The call's commits and its earlier statements' read waits: a later statement's view waits while they are in doubt (#inDoubt). */
    #earlier: CallWait[] = [];

    // The hottest entry points without FacadeVFS's per-call wrappers (a proxy object per read,
    // write, size and access check, a DataView per file control): every method here is
    // synchronous, so wasm memory cannot grow (and move) while a plain view of it is in use.
    xRead(fileId: number, pData: number, iAmt: number, offsetLo: number, offsetHi: number): number {
      return this.jRead(fileId, module.HEAPU8.subarray(pData, pData + iAmt), offset64(offsetLo, offsetHi));
    }
    xWrite(fileId: number, pData: number, iAmt: number, offsetLo: number, offsetHi: number): number {
      return this.jWrite(fileId, module.HEAPU8.subarray(pData, pData + iAmt), offset64(offsetLo, offsetHi));
    }
    xFileControl(fileId: number, op: number, pArg: number): number {
      if (op === C.SQLITE_FCNTL_PRAGMA) return this.#pragma(fileId, pArg);
      return this.jFileControl(fileId, op);
    }
    xFileSize(fileId: number, pSize: number): number {
      return this.#fileSize(fileId, pSize);
    }
    // (and the ones a one-row INSERT calls 8 times without arguments to convert: xLock 3,
    // xUnlock 2, xDeviceCharacteristics 2, xSync 1)
    xLock(fileId: number, lockType: number): number {
      return this.jLock(fileId, lockType);
    }
    xUnlock(fileId: number, lockType: number): number {
      return this.jUnlock(fileId, lockType);
    }
    xSync(fileId: number): number {
      return this.jSync(fileId);
    }
    xDeviceCharacteristics(fileId: number): number {
      return this.jDeviceCharacteristics(fileId);
    }
    xAccess(_pVfs: number, zName: number, flags: number, pResOut: number): number {
      // asked for the journal at the start of every transaction: no name to decode while no file is in memory
      if (this.#memFiles.size === 0) return this.#answer(pResOut, 0);
      return this.jAccess(module.UTF8ToString(zName), flags, new DataView(module.HEAPU8.buffer, pResOut, 4));
    }
    xCheckReservedLock(_fileId: number, pResOut: number): number {
      return this.#answer(pResOut, 0); // asked only when looking for a hot journal: there never is one
    }
    /** An int answer into SQLite's `int *` (aligned: an index into HEAP32, no DataView per call). */
    #answer(pResOut: number, value: number): number {
      (module.HEAP32 as Int32Array)[pResOut >> 2] = value;
      return C.SQLITE_OK!;
    }

    takeDurability(): Promise<unknown> | null {
      // a transaction still open as the call ends (a BEGIN through exec(), then reads in later
      // calls): what it read so far is this call's (rows of a commit that was then lost were
      // answered at once)
      for (const m of this.#main.values()) {
        if (m.view === null || m.committed) continue;
        const wait = pipeline.whenDurable(m.view);
        if (wait !== null) this.#readWaits.push(this.#callWait(wait, m.view.resets));
      }
      this.endStatement();
      const ps = this.#durability;
      // emptied by pop(), not `length = 0` or a new array: either lets the backing store go, and
      // the next call's push allocates another (one per transaction)
      emptyArray(this.#earlier);
      if (ps.length === 0) return null;
      if (ps.length === 1) return ps.pop()!;
      const taken = Promise.all(ps); // (Promise.all reads the array now: it is reused)
      emptyArray(ps);
      return taken;
    }

    /**
     * A transaction of the call commits: the waits of its earlier read transactions are not the
     * call's (header comment, xUnlock(NONE)). Their rejections stay handled.
     */
    #dropReadWaits(): void {
      for (const wait of this.#readWaits) wait.p.catch(() => undefined);
      this.#readWaits.length = 0;
    }

    durabilityCount(): number {
      return this.#durability.length;
    }

    durabilitySince(from: number): Promise<unknown>[] {
      return this.#durability.slice(from);
    }

    endStatement(): void {
      if (this.#readWaits.length === 0) return;
      for (const wait of this.#readWaits) {
        this.#durability.push(wait.p);
        this.#earlier.push(wait);
      }
      this.#readWaits.length = 0;
    }

    /** A wait for `p` (the commits a view of `resets` made or saw), marked once it resolved. */
    #callWait(p: Promise<unknown>, resets: number): CallWait {
      const wait: CallWait = { p, resets, ok: false };
      p.then(() => (wait.ok = true), () => undefined); // (its rejection is the call's, through takeDurability())
      return wait;
    }

    /**
     * Null when a view opened now is built on everything the call's earlier statements committed
     * or saw (no recovery since their views: a commit of theirs that fails fails the new one's
     * too, and a read of theirs then shares its fate), else a promise for their outcome: it
     * rejects with the failure of one of them (a ChainBroken conflict: nothing more of the call
     * may run on a state without it), resolves once they are durable (header comment).
     */
    #inDoubt(): Promise<unknown> | null {
      // (in the order their views were taken: the first has the fewest recoveries)
      const resets = pipeline.resets;
      if (pipeline.failed === null && this.#earlier[0]!.resets === resets) return null;
      const open = this.#earlier.filter((w) => !w.ok);
      this.#earlier = open;
      if (open.length === 0 || (pipeline.failed === null && open[0]!.resets === resets)) return null;
      return this.#outcome(open);
    }

    earlierDurable(): Promise<unknown> | null {
      const open = this.#earlier.filter((w) => !w.ok);
      this.#earlier = open;
      return open.length === 0 ? null : this.#outcome(open);
    }

    /** The outcome of the call's waits `open`: a failure among them fails what waits as the call's later statements report it (lost-commits.ts). */
    #outcome(open: CallWait[]): Promise<unknown> {
      return Promise.all(open.map((w) => w.p)).catch((e: unknown) => {
        throw laterStatementsFailure(e, store.path, 'so the statements after it did not run (those before it may have committed: exec() is not one transaction)');
      });
    }

    jOpen(filename: string | null, fileId: number, flags: number, pOutFlags: DataView): number {
      if (flags & C.SQLITE_OPEN_MAIN_DB) {
        // The store is the one database this VFS has: ATTACH and VACUUM INTO name others
        if (filename !== store.path || this.#main.size > 0) {
          // (its own file named again: "opens only its own database (X), not X" said nothing)
          const why = filename === store.path ? `not a second time (${filename} is its own database, open as main: ATTACH or VACUUM INTO cannot name it)` : `not ${filename}`;
          this.lastError = walnutError('WALNUT_CANTOPEN', `walnut/sql opens only its own database (${store.path}), ${why}`, { reason: 'attach' });
          return C.SQLITE_CANTOPEN!;
        }
        this.#main.set(fileId, { lock: C.SQLITE_LOCK_NONE!, view: null, writes: new Map(), size: null, committing: false, committed: false });
      } else {
        const key = filename ?? `temp-${fileId}`;
        let f = this.#memFiles.get(key);
        if (f === undefined) {
          if (!(flags & C.SQLITE_OPEN_CREATE!)) return C.SQLITE_CANTOPEN!;
          f = { flags, size: 0, data: new Uint8Array(0) };
          this.#memFiles.set(key, f);
        }
        this.#mem.set(fileId, { f, name: key });
      }
      pOutFlags.setInt32(0, flags, true);
      return C.SQLITE_OK!;
    }

    releaseAll(): void {
      for (const m of this.#main.values()) {
        if (m.view !== null) pipeline.releaseView(m.view);
        m.view = null;
        m.writes.clear();
      }
      this.#main.clear();
      this.#mem.clear();
      this.#memFiles.clear();
    }

    jClose(fileId: number): number {
      const m = this.#main.get(fileId);
      if (m !== undefined) {
        if (m.view !== null) pipeline.releaseView(m.view);
        this.#main.delete(fileId);
        return C.SQLITE_OK!;
      }
      const t = this.#mem.get(fileId);
      this.#mem.delete(fileId);
      if (t !== undefined && t.f.flags & C.SQLITE_OPEN_DELETEONCLOSE!) this.#memFiles.delete(t.name);
      return C.SQLITE_OK!;
    }

    jAccess(filename: string, _flags: number, pResOut: DataView): number {
      // No journal and no -wal exist as far as SQLite in wasm knows (the real -wal is walnut's).
      pResOut.setInt32(0, this.#memFiles.has(filename) ? 1 : 0, true);
      return C.SQLITE_OK!;
    }

    jDelete(filename: string): number {
      this.#memFiles.delete(filename);
      return C.SQLITE_OK!;
    }

    jRead(fileId: number, pData: Uint8Array, iOffset: number): number {
      const m = this.#main.get(fileId);
      if (m === undefined) return memRead(this.#mem.get(fileId)!.f, pData, iOffset);
      const pgno = Math.floor(iOffset / pageSize) + 1;
      const within = iOffset % pageSize;
      const n = pData.byteLength;
      if (within + n > pageSize) {
        // SQLite reads across the database's pages only at another page size: page 1 names one (a
        // bad page 1 in the WAL beside an intact file header, which the store takes without reading
        // the WAL). Corrupt, as sqlite3 reports it ("malformed"), and as a checkpoint refuses to
        // copy it (Page1Header); it was SQLITE_IOERR_READ: WALNUT_SQL "disk I/O error"
        this.lastError = walnutError('WALNUT_CORRUPT', `page 1 names another page size than the database's ${pageSize} (SQLite read ${n} bytes at offset ${iOffset})`, { path: store.path, pgno: 1, reason: 'Page1Header' });
        return C.SQLITE_CORRUPT!;
      }
      let view = m.view;
      try {
        view ??= this.#openView(); // the header read at open comes without a lock
        if (view === null) return C.SQLITE_BUSY!;
        if (pgno > (m.size ?? pipeline.dbSize(view))) {
          pData.fill(0);
          return C.SQLITE_IOERR_SHORT_READ!;
        }
        const own = m.writes.get(pgno);
        if (own !== undefined && pgno !== 1) {
          pData.set(own.subarray(within, within + n));
        } else if (within === 0 && n === pageSize && pgno !== 1) {
          pipeline.readPage(view, pgno, pData); // straight into wasm memory
        } else {
          const page = page1;
          // page 1's header from the writer's kept page 1 (a transaction's start reads its change
          // counter): its 100 bytes, not the page, are copied and patched
          const header = own === undefined && pgno === 1 && within + n <= DB_HEADER_SIZE ? pipeline.keptPage1(view) : null;
          if (header !== null) copyBytes(page, header, 0, DB_HEADER_SIZE);
          else if (own !== undefined) page.set(own);
          else pipeline.readPage(view, pgno, page);
          if (pgno === 1) toWasmPage1(page, view.dataVersion, schemaShift(view));
          copyBytes(pData, page, within, n);
        }
        return C.SQLITE_OK!;
      } catch (e) {
        this.lastError = e as Error;
        return C.SQLITE_IOERR_READ!;
      } finally {
        if (view !== null && view !== m.view) pipeline.releaseView(view);
      }
    }

    jWrite(fileId: number, pData: Uint8Array, iOffset: number): number {
      const m = this.#main.get(fileId);
      if (m === undefined) return memWrite(this.#mem.get(fileId)!.f, pData, iOffset);
      if (this.readOnly !== null) return this.#refuseWrite('a page write');
      if (iOffset % pageSize !== 0 || pData.byteLength !== pageSize || m.view === null) {
        this.lastError = new Error(`a write of ${pData.byteLength} bytes at ${iOffset}: the database's page size is ${pageSize} (page_size cannot change)`);
        return C.SQLITE_IOERR_WRITE!;
      }
      const pgno = iOffset / pageSize + 1;
      if (pgno > maxPages) {
        // past the store's maxPageCount, which a user's PRAGMA max_page_count may have raised
        // above it in SQLite: SQLite's own answer for a database grown past its limit (the store
        // would refuse the commit as bad input, WALNUT_INVALID_ARGUMENT, after the fact)
        return C.SQLITE_FULL!;
      }
      const copy = pipeline.pageBuffer(); // a copy: the wasm heap is reused
      copy.set(pData);
      if (pgno === 1 && headerPageSize(copy) !== pageSize) {
        pipeline.recycle(copy);
        // VACUUM after PRAGMA page_size: refused here, inside the transaction, so SQLite backs
        // it out (the store would refuse the commit, after the fact)
        this.lastError = walnutError('WALNUT_INVALID_ARGUMENT', `the page size cannot change (the database's is ${pageSize}, SQLite wrote ${headerPageSize(copy)})`, { reason: 'page_size' });
        return C.SQLITE_IOERR_WRITE!;
      }
      if (pgno === 1) toDiskPage1(copy, m.view.dataVersion, schemaShift(m.view));
      const replaced = m.writes.get(pgno);
      if (replaced !== undefined) pipeline.recycle(replaced);
      m.writes.set(pgno, copy);
      if (pgno > (m.size ?? pipeline.dbSize(m.view))) m.size = pgno;
      return C.SQLITE_OK!;
    }

    jTruncate(fileId: number, iSize: number): number {
      const m = this.#main.get(fileId);
      if (m === undefined) {
        const f = this.#mem.get(fileId)!.f;
        f.size = Math.min(f.size, iSize);
        return C.SQLITE_OK!;
      }
      if (this.readOnly !== null) return this.#refuseWrite('a truncate');
      const pages = Math.ceil(iSize / pageSize);
      m.size = pages;
      for (const [pgno, data] of m.writes) {
        if (pgno <= pages) continue;
        m.writes.delete(pgno);
        pipeline.recycle(data);
      }
      return C.SQLITE_OK!;
    }

    jSync(fileId: number): number {
      const m = this.#main.get(fileId);
      if (m !== undefined && (m.writes.size > 0 || m.size !== null)) m.committing = true;
      return C.SQLITE_OK!;
    }

    jFileSize(fileId: number, pSize64: DataView): number {
      return this.#fileSize(fileId, pSize64.byteOffset);
    }

    /**
     * The file's size into SQLite's `sqlite3_int64 *` at `pSize` (8-byte aligned: two HEAP32
     * halves, little-endian; no DataView or BigInt per call).
     */
    #fileSize(fileId: number, pSize: number): number {
      const m = this.#main.get(fileId);
      let bytes: number;
      if (m === undefined) {
        bytes = this.#mem.get(fileId)!.f.size;
      } else {
        let pages = m.size ?? (m.view === null ? undefined : pipeline.dbSize(m.view));
        if (pages === undefined) {
          const v = this.#openView();
          if (v === null) return C.SQLITE_BUSY!;
          pages = pipeline.dbSize(v);
          pipeline.releaseView(v);
        }
        bytes = pages * pageSize;
      }
      const heap = module.HEAP32 as Int32Array;
      heap[pSize >> 2] = bytes % 0x100000000 | 0;
      heap[(pSize >> 2) + 1] = Math.floor(bytes / 0x100000000);
      return C.SQLITE_OK!;
    }

    jLock(fileId: number, lockType: number): number {
      const m = this.#main.get(fileId);
      if (m === undefined) return C.SQLITE_OK!;
      if (lockType === C.SQLITE_LOCK_SHARED) {
        if (m.view === null) {
          const doubt = this.#earlier.length > 0 ? this.#inDoubt() : null;
          if (doubt !== null) {
            module.retryOps.push(doubt); // its rejection is the statement's error
            return C.SQLITE_BUSY!;
          }
          const recovered = pipeline.recovered();
          if (recovered !== null) {
            module.retryOps.push(recovered); // its rejection (a failure the store cannot mend) is the statement's error
            return C.SQLITE_BUSY!;
          }
          try {
            m.view = this.#openView();
          } catch (e) {
            this.lastError = e as Error;
            return C.SQLITE_IOERR_LOCK!;
          }
          if (m.view === null) return C.SQLITE_BUSY!;
          m.committed = false;
          this.#fresh(m.view);
        }
      } else if (this.readOnly !== null && lockType > C.SQLITE_LOCK_SHARED!) {
        return this.#refuseWrite('a write lock');
      } else if (m.view !== this.#freshView) {
        // (a view opened in this same synchronous run is not checked: see #freshView)
        const rc = this.#staleCheck(m, C.SQLITE_IOERR_LOCK!);
        if (rc !== C.SQLITE_OK) return rc;
      }
      m.lock = lockType;
      return C.SQLITE_OK!;
    }

    /**
     * A write entry point of the main database called on a connection of a database opened
     * read-only (belt and braces: SQLite, opened SQLITE_OPEN_READONLY, calls none of them; a
     * refused lock or write is SQLITE_READONLY, as SQLite's own refusal, and the error behind it
     * WALNUT_READONLY). Nothing is buffered, so nothing reaches #commit or the store.
     */
    #refuseWrite(what: string): number {
      this.lastError = readOnlyError(this.readOnly!, store.path, `walnut/sql refused ${what}`, C.SQLITE_READONLY!);
      return C.SQLITE_READONLY!;
    }

    /**
     * Did another connection commit after this file's view began? Then writing on the view
     * would overwrite that commit's pages (SQLite's SQLITE_BUSY_SNAPSHOT): `conflict` is set
     * and the caller retries the transaction.
     */
    #stale(m: MainFile): boolean {
      if (m.view === null || dataVersion() === m.view.dataVersion) return false;
      this.conflict = true;
      return true;
    }

    /**
     * #stale as a VFS result: SQLITE_OK, SQLITE_BUSY when stale, or `failed` when the check
     * itself threw (store.dataVersion() once the store's close() began: WALNUT_CLOSED), the
     * error kept for the statement's rejection (lastError), as the other methods report theirs.
     * No exception may leave a VFS method: thrown through SQLite's wasm stack it left the
     * statement running and its write transaction open, so the next db.run() "succeeded" into
     * that transaction, never committed (an acknowledged row lost), later runs failed
     * SQLITE_MISUSE, and db.close() failed "unfinalized statements"
     * (test/hostile/sql-store-closed-mid-statement.test.ts).
     */
    #staleCheck(m: MainFile, failed: number): number {
      try {
        return this.#stale(m) ? C.SQLITE_BUSY! : C.SQLITE_OK!;
      } catch (e) {
        this.lastError = e as Error;
        return failed;
      }
    }

    /**
     * The view xLock(SHARED) opened in the synchronous run of JS going on now (a microtask clears
     * it when the run ends; nothing of SQLite's runs in between: every VFS method is synchronous).
     * xLock(RESERVED) and xLock(EXCLUSIVE) on it skip the staleness check (a header read each):
     * the view's data version was read with its header in this run (Snapshot.dataVersion), so
     * only a commit by another connection within the run's microseconds could be found, and the
     * checks that follow find it as well: FCNTL_COMMIT_ATOMIC_WRITE's (always made; SQLite backs
     * out the batch), else the store's conditional commit (the view's snapshot is the `base`,
     * checked under WRITE: WALNUT_CONFLICT, the pipeline's recovery drops SQLite's page cache).
     * So an autocommit statement or BEGIN IMMEDIATE that another connection overtakes within its
     * own run learns it at its commit instead of at its lock: the same retryable answer
     * (WALNUT_CONFLICT, SQLITE_BUSY), never a lost update. A lock taken in a later run (a
     * deferred transaction's first write, an explicit COMMIT) is checked as before.
     */
    #freshView: View | null = null;
    readonly #endRun = (): void => {
      this.#freshView = null;
    };
    #fresh(view: View): void {
      // (a reaction of a settled promise: queueMicrotask made an AsyncResource and a bound function each time)
      if (this.#freshView === null) void SETTLED.then(this.#endRun);
      this.#freshView = view;
    }

    /** A view now, or null with a retry op queued (the read lock was busy, or recovery is due). */
    #openView(): View | null {
      const view = pipeline.tryOpenView(reader);
      if (view === null) module.retryOps.push(pipeline.whenViewPossible(reader));
      return view;
    }

    jUnlock(fileId: number, lockType: number): number {
      const m = this.#main.get(fileId);
      if (m === undefined) return C.SQLITE_OK!;
      if (lockType <= C.SQLITE_LOCK_SHARED!) {
        if (m.committing) this.#commit(m); // no COMMIT_PHASETWO seen: commit here
        else this.#discard(m); // ended without a sync: a rollback
      }
      if (lockType === C.SQLITE_LOCK_NONE && m.view !== null) {
        // A reader may have seen sequenced commits that are not durable yet.
        if (!m.committed) {
          const wait = pipeline.whenDurable(m.view);
          if (wait !== null) this.#readWaits.push(this.#callWait(wait, m.view.resets));
        }
        pipeline.releaseView(m.view);
        m.view = null;
      }
      m.lock = lockType;
      return C.SQLITE_OK!;
    }

    #commit(m: MainFile): number {
      if (m.writes.size === 0 && m.size === null) return C.SQLITE_OK!;
      // sized once: a growing [] allocated a 17-slot backing store per commit
      const pages = new Array<PageImage>(m.writes.size);
      let n = 0;
      let ascending = true;
      for (const [pgno, data] of m.writes) {
        if (n > 0 && pgno < pages[n - 1]!.pgno) ascending = false;
        pages[n++] = { pgno, data };
      }
      m.writes.clear(); // the store owns the buffers now
      if (!ascending) pages.sort((a, b) => a.pgno - b.pgno); // (SQLite writes a transaction's pages in order: seldom)
      const dbSize = m.size ?? pipeline.dbSize(m.view!);
      // (handled: the pipeline's own bookkeeping handles its rejection; the caller gets it
      // through takeDurability())
      this.#dropReadWaits();
      // (marked `ok` by the pipeline's own handler of the commit's outcome: no reaction of its own)
      const wait: CallWait = { p: SETTLED, resets: m.view!.resets, ok: false };
      const durable = pipeline.sequence(pages, dbSize, m.view!, wait);
      wait.p = durable;
      this.#durability.push(durable);
      this.#earlier.push(wait);
      m.committed = true;
      this.#discard(m);
      return C.SQLITE_OK!;
    }

    #discard(m: MainFile): void {
      if (m.writes.size === 0 && m.size === null && !m.committing) return;
      if (m.writes.size > 0) {
        // (a Map's clear() allocates its new table: not for an empty one, as after every #commit)
        for (const data of m.writes.values()) pipeline.recycle(data);
        m.writes.clear();
      }
      m.size = null;
      m.committing = false;
    }

    jFileControl(fileId: number, op: number): number {
      const m = this.#main.get(fileId);
      if (m !== undefined) {
        switch (op) {
          case C.SQLITE_FCNTL_SYNC:
            if (m.writes.size > 0 || m.size !== null) m.committing = true;
            return C.SQLITE_NOTFOUND!;
          case C.SQLITE_FCNTL_COMMIT_PHASETWO:
            if (m.committing) this.#commit(m);
            return C.SQLITE_NOTFOUND!;
          case C.SQLITE_FCNTL_BEGIN_ATOMIC_WRITE:
            return C.SQLITE_OK!;
          case C.SQLITE_FCNTL_COMMIT_ATOMIC_WRITE:
            // The last point where SQLite can still back out cleanly (it rolls the batch back
            // and the commit fails with this code): refuse a commit built on a stale view.
            return this.#staleCheck(m, C.SQLITE_IOERR!);
          case C.SQLITE_FCNTL_ROLLBACK_ATOMIC_WRITE:
            this.#discard(m);
            return C.SQLITE_OK!;
        }
      }
      return C.SQLITE_NOTFOUND!;
    }

    /**
     * SQLITE_FCNTL_PRAGMA (every PRAGMA on the main database asks the VFS first; pArg is
     * char*[3]: error message out, name, value or NULL). `locking_mode=EXCLUSIVE` is refused:
     * SQLite would then keep its lock, so the VFS its view, for good, and read the pages its
     * cache let go of from that old snapshot (and a size from before its own later commits):
     * the writer read "database disk image is malformed" after a few hundred commits with a
     * small cache, and wrote pages built on stale ones.
     * `journal_mode` (once the connection set its own, journalModeSet) is the database's, WAL:
     * asked for, or set to WAL, it answers "wal"; another mode is refused. SQLite in wasm runs in
     * rollback mode with its journal in memory over walnut's WAL, and answered "memory" (to
     * `PRAGMA journal_mode=WAL` too, an application's usual check) for a database every other
     * connection sees in WAL mode; "delete", "truncate" or "persist" answered as if the file had
     * left WAL mode (it had not), and "off" dropped the journal: ROLLBACK TO a savepoint and a
     * statement failing inside a transaction undid nothing, and what they should have undone
     * was committed (test/hostile/sql-journal-mode). `wal_checkpoint` and `wal_autocheckpoint`
     * are refused (WAL_PRAGMAS): SQLite in rollback mode took them and did nothing (0|-1|-1, the
     * WAL left as long as it was; the store's auto-checkpoint went on), so an application that
     * bounds its WAL or checkpoints before a backup with them was told nothing
     * (test/hostile/sql-wal-pragmas). Every other PRAGMA is SQLite's.
     */
    #pragma(fileId: number, pArg: number): number {
      if (!this.#main.has(fileId)) return C.SQLITE_NOTFOUND!;
      const heap = module.HEAP32 as Int32Array;
      const namePtr = heap[(pArg >> 2) + 1]!;
      // not one of the names below (journal_mode, locking_mode, wal_*): SQLite's, undecoded.
      // SQLite asks with PRAGMA experimental_pragma_20251114 (its write hint) before every
      // write statement: decoding and lowercasing that name made two strings and a view of each
      // lone transaction (no other character lowercases to one of these letters)
      if (!PRAGMA_INITIALS.has((module.HEAPU8 as Uint8Array)[namePtr]! | 0x20)) return C.SQLITE_NOTFOUND!;
      const name = String(module.UTF8ToString(namePtr)).toLowerCase();
      const valuePtr = heap[(pArg >> 2) + 2]!;
      if (name === 'journal_mode' && this.journalModeSet) {
        const mode = valuePtr === 0 ? 'wal' : String(module.UTF8ToString(valuePtr)).toLowerCase();
        if (mode === 'wal') return this.#pragmaAnswer(pArg, 'wal', C.SQLITE_OK!);
        const message = `walnut/sql: PRAGMA journal_mode=${mode} is not supported: the database is in WAL mode, walnut's (its rollbacks use a journal in memory)`;
        this.lastError = walnutError('WALNUT_INVALID_ARGUMENT', message, { reason: 'journal_mode' });
        return this.#pragmaAnswer(pArg, `journal_mode=${mode} refused by walnut/sql`, C.SQLITE_ERROR!);
      }
      const walPragma = WAL_PRAGMAS.get(name);
      if (walPragma !== undefined) {
        this.lastError = walnutError('WALNUT_INVALID_ARGUMENT', `walnut/sql: PRAGMA ${name} is not supported: ${walPragma}`, { reason: name });
        return this.#pragmaAnswer(pArg, `${name} refused by walnut/sql`, C.SQLITE_ERROR!);
      }
      if (name !== 'locking_mode' || valuePtr === 0) return C.SQLITE_NOTFOUND!;
      const value = String(module.UTF8ToString(valuePtr)).toLowerCase();
      if (value !== 'exclusive') return C.SQLITE_NOTFOUND!;
      const message = "walnut/sql: PRAGMA locking_mode=EXCLUSIVE is not supported (the writer's view would never move on); open with holdWriteLease: true to keep other writers out";
      this.lastError = walnutError('WALNUT_INVALID_ARGUMENT', message, { reason: 'locking_mode' });
      return this.#pragmaAnswer(pArg, 'locking_mode=EXCLUSIVE refused by walnut/sql', C.SQLITE_ERROR!);
    }

    /** Hands SQLite `text` as the file control's answer (SQLITE_OK: the PRAGMA's one row; an error: its message); returns `rc`. */
    #pragmaAnswer(pArg: number, text: string, rc: number): number {
      const bytes = Buffer.from(`${text}\0`, 'utf8');
      const ptr = module._sqlite3_malloc(bytes.length) as number; // SQLite frees it (sqlite3_free)
      if (ptr !== 0) {
        (module.HEAPU8 as Uint8Array).set(bytes, ptr);
        (module.HEAP32 as Int32Array)[pArg >> 2] = ptr;
      } else if (rc === C.SQLITE_OK) {
        return C.SQLITE_NOMEM!;
      }
      return rc;
    }

    jSectorSize(): number {
      return 4096;
    }

    jDeviceCharacteristics(fileId: number): number {
      return this.#main.has(fileId) ? MAIN_IOCAP : C.SQLITE_IOCAP_UNDELETABLE_WHEN_OPEN!;
    }

    jGetLastError(zBuf: Uint8Array): number {
      if (this.lastError !== null) {
        const { written } = new TextEncoder().encodeInto(this.lastError.message, zBuf.subarray(0, zBuf.length - 1));
        zBuf[written] = 0;
      }
      return C.SQLITE_OK!;
    }
  }

  const vfs = new WalnutVfs(name, module);
  registerDispatched(module, () => engine.sqlite3.vfs_register(vfs, false), vfs);
  return vfs;
}

/**
 * Registers `vfs` (run `register`) with a dispatcher in its place: wa-sqlite's adapter decodes
 * each callback's method name from wasm memory (UTF8ToString) before every call, a few µs per
 * transaction; a function target gets the name's pointer instead, and the method for each
 * pointer (a C string constant of the adapter) is looked up once. The dispatcher is DIRECT:
 * the wasm imports call it without the adapter (engine.ts).
 */
function registerDispatched(module: Engine['module'], register: () => void, vfs: object): void {
  const methods = new Map<number, (...args: unknown[]) => unknown>();
  const target = vfs as Record<string, unknown>;
  const dispatch = (namePtr: number, a: unknown, b: unknown, c: unknown, d: unknown, e: unknown, f: unknown): unknown => {
    let method = methods.get(namePtr);
    if (method === undefined) {
      method = target[module.UTF8ToString(namePtr) as string] as (...args: unknown[]) => unknown;
      methods.set(namePtr, method);
    }
    return method.call(vfs, a, b, c, d, e, f);
  };
  Object.defineProperty(dispatch, DIRECT, { value: true }); // synchronous, never a Promise: the imports may call it straight away (engine.ts)
  const setCallback = module.setCallback;
  module.setCallback = (key: number, t: unknown) => setCallback(key, t === vfs ? dispatch : t);
  try {
    register();
  } finally {
    module.setCallback = setCallback;
  }
}

/** Empties `a` keeping its backing store (`a.length = 0` lets it go: the next push allocates a new one). */
function emptyArray(a: unknown[]): void {
  while (a.length > 0) a.pop();
}

/** A file offset Emscripten passed as two 32-bit halves (signed low half). */
function offset64(lo: number, hi: number): number {
  return hi * 0x100000000 + (lo >>> 0);
}

/**
 * What the writer's schema cookie is shifted by in `view` (SCHEMA_SHIFT per recovery; 0 before
 * any, so `PRAGMA schema_version` shows the file's until a commit was lost). Readers: 0 (their
 * views hold durable commits only, nothing of theirs is ever lost).
 */
function schemaShift(view: View): number {
  return view.reader ? 0 : (view.resets * SCHEMA_SHIFT) >>> 0;
}

/** Page 1 as SQLite in wasm sees it: rollback format, counters offset by the view's data version, the schema cookie by `shift`. */
function toWasmPage1(page: Buffer, dataVersion: number, shift: number): void {
  for (const off of FORMAT_BYTES) page[off] = 1;
  for (const off of COUNTER_OFFSETS) page.writeUInt32BE((page.readUInt32BE(off) + dataVersion) >>> 0, off);
  page.writeUInt32BE((page.readUInt32BE(SCHEMA_COOKIE_OFFSET) + shift) >>> 0, SCHEMA_COOKIE_OFFSET);
}

/** Page 1 as stored: WAL format, counters as SQLite wrote them less the view's data version, the schema cookie less `shift`. */
function toDiskPage1(page: Buffer, dataVersion: number, shift: number): void {
  for (const off of FORMAT_BYTES) page[off] = 2;
  for (const off of COUNTER_OFFSETS) page.writeUInt32BE((page.readUInt32BE(off) - dataVersion) >>> 0, off);
  page.writeUInt32BE((page.readUInt32BE(SCHEMA_COOKIE_OFFSET) - shift) >>> 0, SCHEMA_COOKIE_OFFSET);
}

/** The page size page 1's header states (bytes 16..17, big-endian; 0 when not a valid one). */
function headerPageSize(page1: Uint8Array): number {
  return decodeDbPageSize((page1[16]! << 8) | page1[17]!);
}

function memRead(f: MemFile, pData: Uint8Array, iOffset: number): number {
  const end = Math.min(iOffset + pData.byteLength, f.size);
  const n = Math.max(0, end - iOffset);
  if (n > 0) pData.set(f.data.subarray(iOffset, iOffset + n));
  if (n < pData.byteLength) {
    pData.fill(0, n);
    return SQLITE_IOERR_SHORT_READ;
  }
  return 0;
}

function memWrite(f: MemFile, pData: Uint8Array, iOffset: number): number {
  const end = iOffset + pData.byteLength;
  if (end > f.data.length) {
    const grown = new Uint8Array(Math.max(end, 2 * f.data.length));
    grown.set(f.data.subarray(0, f.size));
    f.data = grown;
  }
  f.data.set(pData.subarray(), iOffset);
  f.size = Math.max(f.size, end);
  return 0;
}

const SQLITE_IOERR_SHORT_READ = 522;
