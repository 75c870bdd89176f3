/**
 * sql/database.ts — openDatabase() and Database: SQL on a walnut store (the `walnut/sql`
 * subpath). The shape is better-sqlite3's (exec, run/get/all, prepare, transaction; row
 * objects; safeIntegers), made asynchronous because commits are group-committed.
 *
 * One writer connection (wa-sqlite in wasm, walnut-vfs.ts; connection.ts) serves every write
 * and transaction. Calls take it in call order (serial.ts), run, and give it up as soon as
 * their statements are done — before their commit is durable (early lock release); then they
 * wait for durability (what they committed, or the commits they read). So while one group
 * commit's fsync is pending, the next callers' transactions run (on the pages of the previous
 * ones, commit-pipeline.ts) and join the next group: many concurrent callers share each fsync.
 *
 * Queries outside transactions (get/all of a statement that only reads and returns rows) run
 * on read connections (option readConnections, default 2, opened on first use), each with its
 * own snapshot of the durable state as the query starts: a long read neither waits for the
 * writer's queue nor holds it up (it yields the thread every few milliseconds between rows).
 * What a read connection cannot see runs on the writer: TEMP objects (every read, once the
 * writer ran SQL naming the TEMP schema, sql-text.ts: a TEMP table shadows main's of its name,
 * and a query of `t` answered from main's on a read connection and from the TEMP one with
 * readConnections 0;
 * StatementRunner.mayHaveTempObjects; also once it ran PRAGMA case_sensitive_like,
 * full_column_names, short_column_names or reverse_unordered_selects), PRAGMA
 * statements and pragma_* functions (the writer's settings), the per-connection
 * functions last_insert_rowid(), changes(), total_changes() (recognised in the SQL text), and
 * every read made while the writer is in a transaction opened through exec() (BEGIN,
 * SAVEPOINT: the read belongs to it, #inExecTransaction).
 *
 * Invariants:
 *  - A call resolves only once everything it committed, and every commit it read, is durable;
 *    a call whose commit failed rejects with the store's error (WALNUT_IO, WALNUT_FULL, ...).
 *  - transaction(fn) holds the connection from BEGIN IMMEDIATE to COMMIT/ROLLBACK; other
 *    callers queue. Inside, use `tx` (db's own methods refuse: they would wait for fn).
 *  - Other connections (a sqlite3 process) may write at the same time: every commit is
 *    conditional on its transaction's snapshot (walnut-vfs.ts, store.commit's `base`), so a
 *    transaction another connection overtook fails instead of overwriting that commit. With
 *    holdWriteLease the store keeps the WAL write lock while open instead (others only read).
 *  - Errors are WalnutError: SQLite's errors are WALNUT_SQL with `sqliteCode`. A transaction
 *    that nothing of was written and that can simply be run again is WALNUT_CONFLICT: reason
 *    OtherWriter when another connection committed after its snapshot, ChainBroken when a
 *    transaction it was built on (one committed before it, not durable yet) failed (cause:
 *    that failure; the pipeline recovers by itself, commit-pipeline.ts). Retry it. An
 *    autocommit statement is retried here, within busyTimeout (#autocommit), and so is each
 *    statement of an autocommit exec(), never the text from its start (#againInExec: stepped
 *    again after a conflict in its run; #execRest: run again from its first statement whose
 *    commit was lost, exec-progress.ts). A write
 *    overtaken again and again runs again holding the store's write lease (overtaken-writes.ts).
 *  - last_insert_rowid() names no row that is not there: work lost with a failure of walnut's
 *    (lost-commits.ts lostItsRows: its commit lost, or a statement failing as it ran on a
 *    conflict, an I/O error, the store closed) sets it back before the caller sees the failure:
 *    to before the statement, or, when the work was a transaction's (transaction()'s, or one the
 *    caller opened through exec() or run()) that SQLite rolled back on that failure or whose
 *    COMMIT was lost, to before its BEGIN (TransactionRowid, #autocommit, ExecProgress). A
 *    rollback of the caller's (ROLLBACK, a transaction() fn that threw its own error) and
 *    SQLite's verdict on a statement (WALNUT_SQL: a constraint) leave it as SQLite leaves it, as
 *    in better-sqlite3 (test/hostile/sql-lost-*-last-rowid). A reopen (connection.ts: the schema
 *    load ran out of wasm stack) carries it over to the fresh instance, as native SQLite's
 *    connection keeps it; a transaction open at the failure is lost with the instance, so to
 *    before its opener (#autocommitMark; test/hostile/sql-schema-overflow-last-rowid).
 *  - close() lets the calls already made finish, then refuses new ones (WALNUT_CLOSED), closes
 *    the SQLite connection, waits for the commits in flight and closes the store.
 *  - A database opened read-only (option readOnly: true, or by default a replica's file: a
 *    position file at ReplicaPosition.pathOf(path) beside it, readOnlyFor) writes nothing: its
 *    writer connection is opened SQLITE_OPEN_READONLY (connection.ts), so SQLite refuses every
 *    write to the main database and the VFS refuses any that got past it (walnut-vfs.ts); each
 *    fails WALNUT_READONLY (reason ReadOnlyDatabase or Replica: connection.ts sqliteFailure),
 *    is never run again (it is no conflict), and last_insert_rowid() stays as before it.
 *    transaction() begins it with a deferred BEGIN (a read transaction). TEMP objects take
 *    writes (the connection's memory). The store is opened read-only (open's readOnly:
 *    keepWal, autoCheckpoint false, convert false; commit/read-only.ts), so db.store's own
 *    writing verbs fail WALNUT_READONLY with the same reason, and takes no write lease; the
 *    options that would write (keepWal false, an autoCheckpoint count, fec, convert) or lock
 *    others out (lockingMode exclusive) are refused.
 */
import { describeValue, extraArgumentError, readInput, refuseExtraArguments } from '../arguments';
import { AsyncLocalStorage } from 'node:async_hooks';
import * as fs from 'node:fs';
import * as os from 'node:os';

import { CONSTRUCT_KEY, refuseDirectConstruction } from '../constructed';
import { isWalnutError, refusedOnLaterTurn, walnutError, WalnutError, withoutCode } from '../errors';
import { LONGEST_TIMER_MS } from '../longest-timer';
import { givenOr, optionsWithout } from '../option-names';
import type { Store } from '../commit/store';
import { resolveOptions, type OpenOptions } from '../commit/options';
import { open, openReadOnlyAs } from '../open'; // with the extensions its options ask for (fec: the sidecar)
import { CommitPipeline } from './commit-pipeline';
import { Connection, sqliteFailure } from './connection';
import { ReplicaPosition } from '../replicate/position';
import { resolvedPath } from '../io/real-path';
import type { ReadOnly } from '../commit/read-only';
import { LEASE_AFTER_CONFLICTS, OvertakenWrites, waitedOutWrite, type LeaseTurn } from './overtaken-writes';
import { ExecProgress, readsChangeCounts } from './exec-progress';
import { lostItsRows, lostToConflict } from './lost-commits';
import { Serial } from './serial';
import { leadingWords } from './sql-text';
import type { Params, Row, RowidMark, RunResult, StatementMark, StatementRunner } from './statement-runner';

export type { Params, Row, RunResult, SqlValue } from './statement-runner';

export interface DatabaseOptions extends OpenOptions {
  /** Integers are returned as bigint (lastInsertRowid too), as better-sqlite3's safeIntegers. */
  safeIntegers?: boolean;
  /**
   * Default false: other connections (sqlite3 processes, other stores) may write the database
   * while it is open; a transaction that loses to one of them fails with WALNUT_CONFLICT
   * (retry it). true: hold SQLite's WAL write lock until close (store.holdWriteLease()), so the
   * others only read (their writes fail busy) and no transaction ever conflicts.
   */
  holdWriteLease?: boolean;
  /**
   * Read connections for queries outside transactions (0..16, default 2; each is its own
   * SQLite instance, about 1 MB, opened on first use). 0: every statement runs on the writer
   * connection, in call order with the writes.
   */
  readConnections?: number;
  /**
   * true: the database is opened read-only: every statement that would write it (INSERT,
   * UPDATE, DELETE, CREATE, DROP, ALTER, VACUUM, ANALYZE, REINDEX, PRAGMA user_version=N, ...,
   * through any verb, inside transaction() or a BEGIN sent through exec()) fails WALNUT_READONLY
   * (reason ReadOnlyDatabase) and writes nothing; SQLite itself refuses it (its writer
   * connection is opened SQLITE_OPEN_READONLY). Reads, read-only transaction()s and TEMP objects
   * work. Default: false, except on a replica's file (a `<db>-replica` position file beside it,
   * openReplica): read-only there (reason Replica); false writes to it anyway, at the caller's
   * risk (the primary never made that write).
   */
  readOnly?: boolean;
}

/** The verbs, on the database (each call takes the connection) or on a transaction's `tx`. */
export interface Queryable {
  exec(sql: string): Promise<void>;
  run(sql: string, params?: Params): Promise<RunResult>;
  get(sql: string, params?: Params): Promise<Row | undefined>;
  all(sql: string, params?: Params): Promise<Row[]>;
}

const MAX_READ_CONNECTIONS = 16;
/** SQL texts whose routing is remembered (then the memo starts over). */
const READABLE_MEMO = 4096;
/** Transaction function texts whose conflicts are counted at most (#overtakenSources). */
const OVERTAKEN_SOURCES_MEMO = 256;
/**
 * A call that needs no I/O (a read on a kept snapshot) settles in microtasks alone, so a caller
 * looping over such calls would never let the event loop turn (commits' completions, timers,
 * sockets would starve): a call starting this long into one turn of the event loop waits for
 * the next. (Longer than the run of transactions a group commit's completion sets off, which
 * had best join one batch.)
 */
const TURN_MS = 10;
/**
 * A read's share of a turn while a write waits (a commit in flight, a call queued on the
 * writer): a write needs a turn or two of the event loop (its batch's gathering, its fsync's
 * completion), and reads looping on kept snapshots that took TURN_MS of each turn held a lone
 * writer to ~12 ms a commit (1,666 -> 85 writes/s beside one `await db.get()` loop). Reads only:
 * the callers a group commit's completion resumes keep TURN_MS to join one batch.
 */
const READ_TURN_MS_WHILE_WRITING = 1;

/** An autocommit statement's lease turn, and when its first run began (busyTimeout counts from there). */
interface AutocommitTurn extends LeaseTurn {
  readonly started: number;
}

/**
 * SQL a read connection would answer differently from the writer: its TEMP schema, its own
 * change counts, its settings (a PRAGMA or pragma_* function: `PRAGMA foreign_keys` answered a
 * read connection's 0 after the writer's `PRAGMA foreign_keys=ON`).
 */
const WRITER_ONLY_SQL = /\b(temp|temporary|sqlite_temp_master|sqlite_temp_schema|last_insert_rowid|changes|total_changes|pragma(?:_\w+)?)\b/i;
/** The savepoint of a transaction() nested in a transaction opened through exec(). */
const NESTED_SAVEPOINT = '"walnut transaction"';

/**
 * How long close() waits for a transaction's fn (ms; at least the store's busyTimeout), counted
 * from when close() began or when the fn started, whichever is later: then that transaction
 * rolls back and rejects WALNUT_CLOSED, and close() goes on. A fn awaiting something that never
 * settles kept close() waiting for ever; so did one that started after close() began (its
 * transaction called before close(), queued behind another).
 */
const CLOSE_WAITS_FOR_FN_MS = 2000;
/** What a read connection answers when the statement must run on the writer. */
const ON_WRITER = Symbol('on writer');

export async function openDatabase(path: string, options: DatabaseOptions = {}): Promise<Database> {
  if (arguments.length > 2) refuseExtraArguments('openDatabase', 'a path and options', 2, arguments);
  // SQLite's (and better-sqlite3's) in-memory database: here it was a file named ":memory:" in
  // the working directory, which the next run found with the last run's tables and rows
  if (path === ':memory:') throw walnutError('WALNUT_INVALID_ARGUMENT', "':memory:' is not a file: walnut/sql keeps a WAL beside a database file (open a temporary file instead)", { reason: 'path' });
  const o = givenOr(options, {}) as DatabaseOptions | null;
  // as open() refuses them (a number, a boolean... read as an object with no options opened the
  // database with none; a string's characters were read as option names; null: option-names.ts)
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw walnutError('WALNUT_INVALID_ARGUMENT', `options must be an object (walnut's open() options and safeIntegers, holdWriteLease, readConnections, readOnly), not ${describeValue(o)}`, { reason: 'options' });
  // each read once (a getter of the caller's that throws is WALNUT_INVALID_ARGUMENT: readInput)
  const { safeIntegers = false, holdWriteLease = false, readConnections = 2, readOnly, storeOptions } = readInput('options', () => {
    const { safeIntegers, holdWriteLease, readConnections, readOnly } = o;
    // the rest is open()'s (checked there), inherited names too (option-names.ts)
    return { safeIntegers, holdWriteLease, readConnections, readOnly, storeOptions: optionsWithout(o, ['safeIntegers', 'holdWriteLease', 'readConnections', 'readOnly']) as OpenOptions };
  });
  if (typeof holdWriteLease !== 'boolean') throw walnutError('WALNUT_INVALID_ARGUMENT', 'option holdWriteLease must be a boolean', { reason: 'holdWriteLease' });
  if (readOnly !== undefined && typeof readOnly !== 'boolean') throw walnutError('WALNUT_INVALID_ARGUMENT', `option readOnly must be a boolean, not ${describeValue(readOnly)}`, { reason: 'readOnly' });
  if (typeof safeIntegers !== 'boolean') throw walnutError('WALNUT_INVALID_ARGUMENT', 'option safeIntegers must be a boolean', { reason: 'safeIntegers' });
  if (!Number.isInteger(readConnections) || readConnections < 0 || readConnections > MAX_READ_CONNECTIONS) {
    throw walnutError('WALNUT_INVALID_ARGUMENT', `readConnections must be a whole number from 0 to ${MAX_READ_CONNECTIONS}`, { reason: 'readConnections' });
  }
  // its own commit path: every commit is conditional on its view's base (store.commit), which a
  // shared commit lane cannot check (README: worker threads); shareLane is not the caller's to set:
  // anything but false is refused, as open() refuses a value it cannot honour (it was dropped
  // silently, shareLane: true and shareLane: 'yes' alike)
  const lane = storeOptions.shareLane as unknown;
  if (lane !== undefined && lane !== false) {
    throw walnutError('WALNUT_INVALID_ARGUMENT', `option shareLane: walnut/sql's store never shares a commit lane (each commit is conditional on its transaction's snapshot, which a shared lane cannot check): leave it out or pass false, not ${describeValue(lane)}`, { reason: 'shareLane' });
  }
  const readOnlyAs = typeof path === 'string' ? readOnlyFor(path, readOnly) : null; // (not a path: open() refuses it)
  if (readOnlyAs !== null) {
    // the write lease is WAL's write lock: held, it would keep the replica's own commits out
    if (holdWriteLease === true) throw walnutError('WALNUT_INVALID_ARGUMENT', `option holdWriteLease: ${readOnlyAs.why}, and takes no write lock`, { reason: 'holdWriteLease' });
    // store options that write the database's files of their own accord (a checkpoint into the
    // database file at close or on a frame count, a -wal-fec sidecar, a rollback-journal database
    // converted) or lock others out (exclusive locking: the replica's own commits) are no read-only
    // open's: SQLite's read-only connections do none of it; they checkpointed and made a sidecar
    const o = storeOptions;
    const writes: [keyof OpenOptions, boolean, string][] = [
      ['keepWal', o.keepWal === false, 'checkpoints the WAL into the database file at close'],
      ['autoCheckpoint', o.autoCheckpoint !== undefined && o.autoCheckpoint !== false, 'checkpoints the WAL into the database file'],
      ['fec', o.fec !== undefined && o.fec !== false, 'writes a -wal-fec sidecar'],
      ['convert', o.convert === true, 'converts a rollback-journal database to WAL mode'],
      ['lockingMode', o.lockingMode === 'exclusive', "keeps every other connection out (a replica's own commits too)"],
    ];
    for (const [name, given, what] of writes) {
      if (given) throw walnutError('WALNUT_INVALID_ARGUMENT', `option ${name}: ${describeValue(o[name])} ${what}, and ${readOnlyAs.why}: leave it out`, { reason: name });
    }
    // SQLite opens no missing file read-only (SQLITE_CANTOPEN); the store would create it
    // (checked after the options and the path open() refuses: those say what is wrong first)
    resolveOptions(storeOptions);
    if (path !== '' && !path.includes('\0') && !fs.existsSync(path)) throw walnutError('WALNUT_CANTOPEN', `${path} does not exist, and ${readOnlyAs.why} (a read-only open creates nothing)`, { path, reason: 'NotFound' });
  }
  // read-only, the store is opened read-only too (option readOnly, commit/read-only.ts): it
  // writes nothing of its own accord (it leaves the -wal where it is at close: SQLite's read-only
  // connections do not checkpoint, and another connection, a replica, may be applying to it; it
  // runs no checkpoint and converts no rollback-journal database: WALNUT_CANTOPEN NotWalMode),
  // and its own writing verbs (db.store.commit(), checkpoint(), ...) fail WALNUT_READONLY with
  // the reason its SQL writes fail with
  const opening = readOnlyAs === null ? open(path, { ...storeOptions, shareLane: false }) : openReadOnlyAs(path, { ...storeOptions, shareLane: false }, readOnlyAs);
  const store = await opening.catch((e: unknown) => {
    throw readOnlyAs === null ? e : unwritableForReadOnly(e, path, readOnlyAs);
  });
  try {
    if (holdWriteLease === true) await store.holdWriteLease();
    // a transaction is alone when no other call waits for the writer (Connection.busy counts
    // the running one too) and the pipeline saw no company either (CommitPipeline #isAlone: a
    // call on a free writer runs to its commit at once, before the other callers that the
    // same batch resumed have called): then its commit need not wait a turn of the event loop
    // for others to join its batch (concurrent callers still share batches: test/interop/sql.test.ts)
    let writer: Connection | null = null;
    const pipeline = new CommitPipeline(store, () => writer?.busy === 1);
    writer = await Connection.open(store, pipeline, 'writer', safeIntegers === true, storeOptions.maxPageCount, readOnlyAs);
    return new Database(CONSTRUCT_KEY, store, pipeline, writer, readConnections, safeIntegers === true, new OvertakenWrites(store, holdWriteLease === true), readOnlyAs !== null);
  } catch (e) {
    await store.close().catch(() => undefined);
    throw e;
  }
}

/**
 * open()'s failure `e` for a database opened read-only: one the OS refused for permissions
 * (EACCES, EPERM, EROFS: the database file, or its -wal or -shm, this user may not write) is
 * WALNUT_READONLY, reason NotWritable, saying that read-only covers SQL only: the store opens the
 * database file, -wal and -shm read-write whatever the option (the -shm's locks; walnut has no
 * read-only file access, which sqlite3 -readonly has). It said "walnut writes every database it
 * opens" to a caller who had asked for read-only, or WALNUT_CANTOPEN "open failed: Permission
 * denied (<db>-shm)" (test/hostile/sql-read-only-unwritable).
 */
function unwritableForReadOnly(e: unknown, path: string, readOnly: ReadOnly): unknown {
  const { EACCES, EPERM, EROFS } = os.constants.errno;
  if (!isWalnutError(e) || ![EACCES, EPERM, EROFS].includes(Math.abs(e.errno ?? 0))) return e;
  // the OS's refusal itself (the store's WALNUT_READONLY wraps it, saying walnut writes every database it opens)
  let denied: WalnutError = e;
  while (isWalnutError(denied.cause) && denied.cause.errno !== undefined) denied = denied.cause;
  const cause = withoutCode(denied.message);
  return walnutError('WALNUT_READONLY', `${path} cannot be opened for writing here (${cause}): readOnly keeps SQL from writing (${readOnly.why}), but the store underneath still opens the database file, its -wal and -shm for reading and writing (it needs the -shm's locks; walnut has no read-only file access as sqlite3 -readonly has): give this user write access to them, or read the database with SQLite itself`, { path, reason: 'NotWritable', errno: e.errno, cause: e });
}

/**
 * Whether (and why) a database at `path` is opened read-only: the caller's readOnly, else a
 * replica's position file beside it makes it read-only: beside the file the path resolves to,
 * where openReplica keeps it (ReplicaPosition.fileOf), or beside the path as given (one a
 * replica of before left beside a link it was opened through, on another file system than the
 * file, stays there).
 */
function readOnlyFor(path: string, readOnly: boolean | undefined): ReadOnly | null {
  if (readOnly === true) return { reason: 'ReadOnlyDatabase', why: 'the database was opened read-only (openDatabase option readOnly: true)' };
  if (readOnly === false) return null;
  // beside the file the path resolves to (where openReplica keeps it: ReplicaPosition.fileOf), or
  // beside the path as given (a replica an older walnut opened through a link left it there)
  const position = [path, resolvedPath(path)].map((p) => ReplicaPosition.pathOf(p)).find((p) => fs.existsSync(p));
  if (position === undefined) return null;
  return { reason: 'Replica', why: `the database is a replica's (${position} is beside it), opened read-only: a write the primary never made would set it apart from the primary (openDatabase option readOnly: false writes anyway, at the caller's risk)` };
}

/**
 * A statement prepared once; runs through its database, or, called from inside one of its
 * transaction()'s fn, through that transaction's tx (as better-sqlite3's prepared statements
 * run inside db.transaction(); db's own verbs are refused there: they would wait for it).
 */
export class Statement {
  readonly sql: string;
  readonly #db: Queryable;
  constructor(key: typeof CONSTRUCT_KEY, db: Database, sql: string, target: () => Queryable = () => db) {
    refuseDirectConstruction(key, 'Statement', 'db.prepare()'); // (constructed.ts)
    this.sql = sql;
    this.#db = { exec: (s) => target().exec(s), run: (s, p) => target().run(s, p), get: (s, p) => target().get(s, p), all: (s, p) => target().all(s, p) };
  }
  // better-sqlite3 binds statement.run(1, 2) as two parameters: here the second would be dropped
  run(params?: Params): Promise<RunResult> {
    if (arguments.length > 1) {
      const refused = extraArgumentError('statement.run', 'only params (an array or an object)', 1, arguments);
      if (refused !== null) return Promise.reject(refused);
    }
    return this.#db.run(this.sql, params);
  }
  get(params?: Params): Promise<Row | undefined> {
    if (arguments.length > 1) {
      const refused = extraArgumentError('statement.get', 'only params (an array or an object)', 1, arguments);
      if (refused !== null) return Promise.reject(refused);
    }
    return this.#db.get(this.sql, params);
  }
  all(params?: Params): Promise<Row[]> {
    if (arguments.length > 1) {
      const refused = extraArgumentError('statement.all', 'only params (an array or an object)', 1, arguments);
      if (refused !== null) return Promise.reject(refused);
    }
    return this.#db.all(this.sql, params);
  }
}

export class Database implements Queryable {
  readonly #store: Store;
  readonly #pipeline: CommitPipeline;
  readonly #writer: Connection;
  readonly #readConnections: number;
  readonly #safeIntegers: boolean;
  /** Read connections opened so far (opening ones included). */
  readonly #readers: Promise<Connection>[] = [];
  readonly #readersOpen: Connection[] = [];
  /** get/all calls on their way to a read connection (close() lets them run first). */
  readonly #reads = new Set<Promise<Row[]>>();
  /** SQL text -> whether a read connection can run it (learnt on first use). */
  readonly #readable = new Map<string, boolean>();
  /**
   * Marks the async context of a transaction's fn with that transaction's scope (its calls of
   * db's own verbs would wait for the transaction: refused). Enabled only while a transaction
   * runs (#inFn): an enabled AsyncLocalStorage makes Node 20 run a hook for every promise the
   * process creates (~10% of a small transaction's CPU, for every call after the first
   * transaction()). A callback that fn scheduled and that runs after the transaction ended is
   * no longer inside it, even while a later transaction's fn runs (its context still holds the
   * ended transaction's scope, not the running one's).
   */
  readonly #inTransaction = new AsyncLocalStorage<TransactionScope>();
  /** The scope of the transaction whose fn is running (transaction()), else null. */
  #inFn: TransactionScope | null = null;
  /**
   * Starts close()'s wait for the running transaction's fn (#runTransaction): once it has waited
   * CLOSE_WAITS_FOR_FN_MS the transaction rolls back and rejects WALNUT_CLOSED. Called by close()
   * for the fn running when it begins, and by #runTransaction for each fn that starts after (a
   * transaction queued before close() runs, and its fn gets the same wait); null while no fn
   * runs. A fn that never settles held the writer for good: close() never returned.
   */
  #awaitFnForClose: (() => void) | null = null;
  /**
   * transaction() has the writer inside its BEGIN IMMEDIATE .. COMMIT/ROLLBACK. Else a writer not
   * in autocommit is in a transaction its callers opened through exec() (BEGIN, SAVEPOINT): the
   * reads made then run on the writer (#inExecTransaction).
   */
  #transactionOpen = false;
  /**
   * The mark of the writer's newest statement run() or exec() began in autocommit, or of
   * transaction()'s BEGIN: while the writer is in a transaction, the one that opened it (its
   * callers' BEGIN, SAVEPOINT through run() or exec(), or transaction()'s). A reopen() that drops
   * the transaction with the instance carries the rowid from before it (connection.ts). Its
   * COMMIT lost (at durability, or as it ran ending the
   * transaction) loses every statement since that one, so last_insert_rowid() is set back to
   * before it, as transaction() sets it back to before its BEGIN (TransactionRowid): set back
   * to before the COMMIT only, it kept the lost INSERT's rowid (`exec('BEGIN')`, `run(INSERT)`,
   * `exec('COMMIT')` lost to a write error: test/hostile/sql-lost-opened-transaction-last-rowid).
   */
  #autocommitMark: RowidMark | null = null;
  #closing: Promise<void> | null = null;
  /** When the current turn of the event loop began, as far as this database saw (#turnLength()). */
  #turnAt = 0;
  #turnWatched = false;
  #conflictRetries = 0;
  /** The write lease for writes other connections keep overtaking (overtaken-writes.ts). */
  readonly #overtaken: OvertakenWrites;
  /**
   * transaction() and exec() calls that failed WALNUT_CONFLICT since one of the same source
   * text (the function's, the SQL's) committed: a caller's retry is a new call, of the same
   * code (a new closure of it), and counted per text, a long transaction retried among short
   * ones that commit is told apart (counted per database, their commits reset its count, and
   * their conflicts took the lease from it). Only texts that failed are kept (cleared past
   * OVERTAKEN_SOURCES_MEMO: code with values built in must not grow it without end).
   */
  readonly #overtakenSources = new Map<string, number>();
  /** Opened read-only (openDatabase's readOnly, or a replica's file): SQLite refuses every write (connection.ts). */
  readonly #readOnly: boolean;

  constructor(key: typeof CONSTRUCT_KEY, store: Store, pipeline: CommitPipeline, writer: Connection, readConnections: number, safeIntegers: boolean, overtaken: OvertakenWrites, readOnly: boolean) {
    refuseDirectConstruction(key, 'Database', 'openDatabase()'); // (constructed.ts)
    this.#readOnly = readOnly;
    this.#store = store;
    this.#pipeline = pipeline;
    this.#writer = writer;
    this.#readConnections = readConnections;
    this.#safeIntegers = safeIntegers;
    this.#overtaken = overtaken;
  }

  /** The walnut store underneath (metrics, checkpoint, exportTo). */
  get store(): Store {
    return this.#store;
  }
  get path(): string {
    return this.#store.path;
  }
  get open(): boolean {
    return this.#closing === null;
  }
  /** The database was opened read-only (option readOnly, or a replica's file): its writes fail WALNUT_READONLY. */
  get readOnly(): boolean {
    return this.#readOnly;
  }
  /**
   * How many times an autocommit statement ran again because another connection's commit
   * overtook it (WALNUT_CONFLICT, caught and retried: #autocommit).
   */
  get conflictRetries(): number {
    return this.#conflictRetries;
  }
  /**
   * How many writes ran again holding the WAL write lock because other connections' commits
   * had overtaken them LEASE_AFTER_CONFLICTS times (overtaken-writes.ts).
   */
  get leasedRetries(): number {
    return this.#overtaken.leasesTaken;
  }

  exec(sql: string): Promise<void> {
    if (arguments.length > 1) {
      const refused = extraArgumentError('db.exec', 'only SQL (it binds no parameters: use run())', 1, arguments);
      if (refused !== null) return Promise.reject(refused);
    }
    const turn: AutocommitTurn = { held: false, conflicts: 0, started: performance.now() };
    const source = (): string => `exec ${String(sql)}`;
    const once = (text: string, afterStaying: boolean): Promise<void> => {
      const progress = new ExecProgress(text, this.#writer.vfs, afterStaying);
      return this.#retriedByCaller(source, () => this.#execOnWriter(text, progress, turn)).catch(async (e: unknown) => {
        const failure = await progress.failure(e); // (a statement's own after a lost commit is not the call's)
        // (before a run again and before the caller's own retry: neither reads a lost rowid)
        await progress.restoreRowid(failure, this.#writer.runner, !this.#writer.inTransaction());
        const rest = await this.#execRest(failure, progress, turn);
        if (rest === null) throw this.#closedNotConflict(failure);
        this.#conflictRetries++;
        return once(rest, afterStaying || rest !== text); // (a shorter rest: statements before it stay)
      });
    };
    return once(sql, false).finally(() => this.#overtaken.give(turn));
  }

  /**
   * After an exec() run failed with `e`, lost to a conflict (lost-commits.ts lostToConflict): the
   * text to run again (exec-progress.ts: from its first statement whose commit was lost so), within
   * busyTimeout since the call's first run, else null: `e` is the caller's. Its third run holds
   * the write lease (#retriedByCaller counts the text's failures, runs again here included).
   */
  async #execRest(e: unknown, progress: ExecProgress, turn: AutocommitTurn): Promise<string | null> {
    if (!lostToConflict(e) || this.#closing !== null || this.#store.options.busyTimeout === 0) return null;
    if (this.#timeUp(turn)) return null;
    const rest = await progress.rest();
    return this.#closing === null ? rest : null;
  }

  /**
   * exec()'s job, on the writer it holds. When it fails with a transaction open that it opened
   * itself (it began in autocommit), that transaction is rolled back before the writer goes to
   * the next caller: SQLite keeps a transaction open when a statement in it, or its COMMIT,
   * fails SQLITE_BUSY (a conflict), and the next caller's statements ran inside it on the one
   * shared connection, resolved, and were lost at close() (test/hostile/sql-exec-failed-commit).
   * A transaction an earlier call opened (a BEGIN through exec()) is its caller's to end. The
   * writer is seen in autocommit before each statement: a transaction open at the failure was
   * opened by this exec() when the writer was in autocommit at its start or before any of its
   * statements (a text that ends the caller's transaction and opens another, `COMMIT; BEGIN;
   * INSERT ..`, failing after its BEGIN left the writer in that new transaction, which no one
   * would end: test/hostile/sql-exec-reopened-transaction).
   */
  #execOnWriter(sql: string, progress: ExecProgress, turn: AutocommitTurn): Promise<void> {
    const w = this.#writer;
    const autocommit = (): boolean => !w.inTransaction();
    let opensOwn = autocommit();
    let inAutocommit = false;
    let running = '';
    const beforeStatement = (statement: string, offset: number): Promise<unknown> | undefined => {
      inAutocommit = autocommit();
      if (!opensOwn && inAutocommit) opensOwn = true;
      const ownTables = w.runner.mayHaveOwnTables;
      running = statement;
      const rowid = w.runner.markRowid();
      if (inAutocommit) this.#autocommitMark = rowid;
      progress.begin(statement, offset, inAutocommit, ownTables, rowid, this.#autocommitMark);
      w.vfs.conflict = false; // (this statement's signals are its own: #againInExec)
      w.vfs.lastError = null;
      // a statement that writes only tables of the connection's own (a TEMP table, an attached
      // ':memory:' one) opens no view of the database, so nothing stops it once an earlier
      // statement's commit was lost (walnut-vfs.ts #inDoubt): it waits for them to be durable,
      // and fails ChainBroken with them (it ran, kept its rows, after one was lost)
      return ownTables ? (w.vfs.earlierDurable() ?? undefined) : undefined;
    };
    const again = (e: unknown): Promise<boolean> | null => (inAutocommit ? this.#againInExec(e, turn, running, progress) : null);
    return w.runner.exec(sql, beforeStatement, again).then(
      () => progress.end(),
      async (e: unknown) => {
        progress.end();
        // (an instance whose schema load overflowed is dropped instead, its transaction with it: #failed)
        if (opensOwn && !w.needsReopen && !autocommit()) await w.runner.exec('ROLLBACK').catch(() => undefined);
        throw e;
      },
    );
  }

  /**
   * A statement of an exec() that began in autocommit failed with `e` (SQLite's, untranslated)
   * while it ran: when another connection's commit overtook it (nothing of it written: SQLite
   * rolled its own transaction back), it is stepped again from its start, holding the writer,
   * on the rules of an autocommit statement's run again (#conflictedInRun: within busyTimeout,
   * after a turn of the event loop, under the write lease once due). The statements before it
   * stay as they ran: exec() is not one transaction, and SQLite's busy handler, too, retries the
   * one statement of sqlite3_exec() that met the lock. Null: `e` is the call's. The rowid the
   * backed-out run inserted is set back first (exec-progress.ts restoreRunningRowid); a
   * `statement` reading the change counts is not stepped again (readsChangeCounts).
   */
  #againInExec(e: unknown, turn: AutocommitTurn, statement: string, progress: ExecProgress): Promise<boolean> | null {
    const w = this.#writer;
    if (w.inTransaction()) return null;
    const err = this.#translate(w, e);
    if (!isWalnutError(err, 'WALNUT_CONFLICT') || err.reason !== 'OtherWriter') return null;
    progress.restoreRunningRowid(w.runner);
    if (readsChangeCounts(statement) || !this.#runsAgain(err, turn)) return null;
    this.#conflictRetries++;
    const lease = this.#leaseDue(turn) ? this.#overtaken.take(turn) : undefined;
    return new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => lease)
      .then(() => {
        // close() began during the turn or the lease's wait: not run again, and the conflict
        // stays the statement's error (exec() makes it WALNUT_CLOSED NotRunAgain); its signals
        // were cleared before the wait, and SQLite's bare SQLITE_BUSY became WALNUT_BUSY "the
        // database stayed busy ... retry it" a few milliseconds into close()
        // (test/hostile/sql-exec-conflict-close-busy)
        if (this.#closing !== null) return false;
        w.vfs.conflict = false;
        w.vfs.lastError = null;
        return true;
      });
  }
  run(sql: string, params?: Params): Promise<RunResult> {
    if (arguments.length > 2) {
      const refused = extraArgumentError('db.run', 'SQL and params (an array or an object)', 2, arguments);
      if (refused !== null) return Promise.reject(refused);
    }
    const w = this.#writer;
    return this.#autocommit(sql, () => {
      const stmt = w.cached(sql);
      if (stmt === undefined) return w.prepared(sql).then((s) => runStatement(w.runner, s, params));
      return runStatement(w.runner, stmt, params);
    });
  }
  async get(sql: string, params?: Params): Promise<Row | undefined> {
    if (arguments.length > 2) refuseExtraArguments('db.get', 'SQL and params (an array or an object)', 2, arguments);
    return (await this.#query(sql, params, 'get'))[0];
  }
  all(sql: string, params?: Params): Promise<Row[]> {
    if (arguments.length > 2) {
      const refused = extraArgumentError('db.all', 'SQL and params (an array or an object)', 2, arguments);
      if (refused !== null) return Promise.reject(refused);
    }
    return this.#query(sql, params, 'all');
  }

  /**
   * A statement checked now (bad SQL rejects here); its runs reuse the prepared form. From inside
   * one of its transaction()'s fn it is prepared through that transaction, which holds the
   * writer (as better-sqlite3's db.prepare() inside db.transaction(); it was refused as db's
   * other verbs are: test/hostile/sql-prepare-in-transaction).
   */
  async prepare(sql: string): Promise<Statement> {
    if (arguments.length > 1) refuseExtraArguments('db.prepare', 'only SQL', 1, arguments);
    if (this.#inOwnTransaction()) await this.#inFn!.prepareForDb(sql);
    else await this.#call(this.#writer, async () => void (await this.#writer.prepared(sql)));
    return new Statement(CONSTRUCT_KEY, this, sql, () => (this.#inOwnTransaction() ? this.#inFn! : this));
  }

  /**
   * Runs `fn` in one transaction (BEGIN IMMEDIATE ... COMMIT); rolls back and rethrows when it
   * throws. Resolves with fn's result once the commit is durable. A transaction the caller ran
   * again after conflicts runs holding the WAL write lock (#retriedByCaller): a long one
   * retried beside a steady foreign writer was overtaken every time.
   */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    if (arguments.length > 1) {
      const refused = extraArgumentError('db.transaction', 'only a function', 1, arguments);
      if (refused !== null) return Promise.reject(refused);
    }
    if (typeof fn !== 'function') return Promise.reject(walnutError('WALNUT_INVALID_ARGUMENT', 'transaction() takes an async function', { reason: 'fn' }));
    const w = this.#writer;
    const rowid = new TransactionRowid();
    return this.#retriedByCaller(
      () => Function.prototype.toString.call(fn),
      async () => {
        // inside a transaction opened through exec() (BEGIN), it nests as a savepoint, as
        // better-sqlite3's transaction functions do (BEGIN IMMEDIATE failed "cannot start a
        // transaction within a transaction"); reads made meanwhile stay the exec() transaction's
        const nested = w.inTransaction();
        this.#transactionOpen = !nested;
        try {
          return await this.#runTransaction(w, fn, nested, rowid);
        } finally {
          this.#transactionOpen = false;
        }
      },
      () => rowid.callFailed(w.runner),
    );
  }

  /**
   * A call on the writer that its caller runs again after WALNUT_CONFLICT (transaction(),
   * exec()): after LEASE_AFTER_CONFLICTS calls with its `source` (the function's or the SQL's
   * text: a retry is a new call of the same code) failed so, it runs holding the write lease
   * (overtaken-writes.ts), taken with the writer held (in call order, before its first
   * statement opens a snapshot; in the pause after a lease, once it ended: takeAfterPause) and
   * given back once it settled (#call resolves after durability).
   * `failed` is called when the call failed, before its caller sees it.
   */
  #retriedByCaller<T>(source: () => string, job: () => Promise<T>, failed?: () => void): Promise<T> {
    const key = this.#overtakenSources.size > 0 ? source() : null;
    const conflicts = key === null ? 0 : (this.#overtakenSources.get(key) ?? 0);
    const turn: LeaseTurn | null = conflicts >= LEASE_AFTER_CONFLICTS ? { held: false, conflicts } : null;
    const call = this.#call(this.#writer, turn === null ? job : () => this.#overtaken.takeAfterPause(turn).then(job));
    return call.then(
      (value) => {
        if (turn !== null) this.#overtaken.give(turn);
        if (key !== null) this.#overtakenSources.delete(key);
        return value;
      },
      (e: unknown) => {
        failed?.();
        if (turn !== null) this.#overtaken.give(turn);
        // overtaken, or its commit's wait for WRITE (sleeps as SQLite's busy handler does) missed
        // a steady writer's short gaps for busyTimeout: the lease's wait tries every few µs
        if (lostToConflict(e)) {
          const text = key ?? source();
          if (this.#overtakenSources.size >= OVERTAKEN_SOURCES_MEMO) this.#overtakenSources.clear();
          this.#overtakenSources.set(text, (this.#overtakenSources.get(text) ?? 0) + 1);
        }
        throw e;
      },
    );
  }

  /**
   * transaction()'s job, on the writer it holds: BEGIN IMMEDIATE .. COMMIT, or when `nested` (the
   * writer is in a transaction opened through exec()) a savepoint released at the end, rolled
   * back to and released on a throw (better-sqlite3's way), committed by that transaction.
   * `rowid` follows the transaction from BEGIN to COMMIT (set back when it is lost: TransactionRowid).
   */
  async #runTransaction<T>(w: Connection, fn: (tx: Queryable) => Promise<T>, nested: boolean, rowid: TransactionRowid): Promise<T> {
    // (nested: what SQLite rolls back on a failure is the exec() transaction, from its opener on)
    rowid.begin(nested ? this.#autocommitMark : (this.#autocommitMark = w.runner.markRowid()));
    // (read-only: a deferred BEGIN, a read transaction whose writes SQLite refuses as they come;
    // SQLite takes BEGIN IMMEDIATE on a read-only database as a deferred BEGIN anyway)
    await w.runner.exec(nested ? `SAVEPOINT ${NESTED_SAVEPOINT}` : this.#readOnly ? 'BEGIN' : 'BEGIN IMMEDIATE');
    const tx = new TransactionScope(w, (e) => this.#translate(w, e), () => this.#reopen(w), (err) => {
      if (lostItsRows(err)) rowid.lostAsItRan(w.runner);
    });
    let result: T;
    let grace: ReturnType<typeof setTimeout> | undefined;
    try {
      this.#inFn = tx;
      try {
        const running = this.#inTransaction.run(tx, () => fn(tx));
        let awaitForClose = (): void => undefined;
        const abandoned = new Promise<never>((_, reject) => {
          awaitForClose = () => {
            // a busyTimeout past the longest timer (2^31 ms and up, "wait for ever") waits that long, not 1 ms
            const ms = Math.min(LONGEST_TIMER_MS, Math.max(CLOSE_WAITS_FOR_FN_MS, this.#store.options.busyTimeout));
            grace ??= setTimeout(() => reject(walnutError('WALNUT_CLOSED', `close() waited ${ms} ms for this transaction's function to end; it was rolled back (nothing of it was written)`, { path: this.#store.path, reason: 'TransactionAbandoned' })), ms);
          };
        });
        this.#awaitFnForClose = awaitForClose;
        // a transaction queued before close() whose fn starts after it began: its fn is waited
        // for as long as one running at close() (it was not waited for at all: a fn that never
        // ended kept close() waiting for ever, test/hostile/sql-close-queued-unsettled-transaction)
        if (this.#closing !== null) awaitForClose();
        // (a fn that settles after close() gave up on it is no one's to report: race's own
        // handler on it keeps a late rejection from being unhandled)
        result = await Promise.race([running, abandoned]);
      } finally {
        clearTimeout(grace);
        this.#inFn = null;
        this.#awaitFnForClose = null;
        this.#inTransaction.disable(); // until the next transaction's run() (header of #inTransaction)
      }
      tx.end();
      // a statement fn did not wait for is the transaction's: its failure (that no one else
      // sees: it was swallowed, and the rest committed) rolls back and is transaction()'s
      const unwaited = await tx.idle();
      // SQLite rolled the transaction back on a failure fn caught (TransactionScope.rolledBack)
      if (tx.rolledBack !== null) throw tx.rolledBack.error;
      if (unwaited !== null) throw unwaited.error;
      if (nested) await w.runner.exec(`RELEASE ${NESTED_SAVEPOINT}`);
      else {
        try {
          // a transaction that only read ends with ROLLBACK, its COMMIT when nothing changed:
          // SQLite takes EXCLUSIVE at the COMMIT of a BEGIN IMMEDIATE transaction even then, and
          // the VFS refuses that lock on a view another connection's commit overtook (walnut-vfs.ts
          // #stale), so a transaction() that wrote nothing failed WALNUT_CONFLICT OtherWriter
          // beside a python3 writer (3-50% of them: test/hostile/sql-read-only-transaction-conflict).
          // The reads' durability waits are the same (the VFS's xUnlock(NONE) takes them).
          await w.runner.exec(tx.onlyRead ? 'ROLLBACK' : 'COMMIT');
        } catch (e) {
          if (lostItsRows(this.#translate(w, e))) rowid.lostAsItRan(w.runner); // (before the ROLLBACK below: a statement begun since)
          throw e;
        }
        rowid.committed(w.runner);
      }
    } catch (e) {
      tx.end();
      await tx.idle();
      if (!w.needsReopen && w.inTransaction()) await w.runner.exec(nested ? `ROLLBACK TO ${NESTED_SAVEPOINT}; RELEASE ${NESTED_SAVEPOINT}` : 'ROLLBACK').catch(() => undefined);
      throw e;
    }
    return result;
  }

  close(): Promise<void> {
    // from inside a transaction's fn it would wait for the connections, the writer held by the
    // transaction that waits for fn: refused as db's other verbs are (#call)
    if (this.#closing === null && this.#inOwnTransaction()) {
      return Promise.reject(walnutError('WALNUT_INVALID_ARGUMENT', "inside transaction(), close() would wait for the transaction (close after it)", { reason: 'transaction' }));
    }
    // a replication stopped from here on waits for the store's close() to settle its commits,
    // the transactions still in flight among them (store.announceClose)
    // (and the waits for another connection's WRITE, and for the lease's pause, end now)
    if (this.#closing === null) {
      this.#store.announceClose(CONSTRUCT_KEY);
      this.#overtaken.cut();
    }
    this.#closing ??= (async () => {
      // a transaction's fn running now gets CLOSE_WAITS_FOR_FN_MS (at least busyTimeout) to end,
      // as does each that starts later (#runTransaction); then its transaction rolls back and
      // rejects WALNUT_CLOSED (one that never ends held the writer, and close(), for good:
      // test/hostile/sql-close-unsettled-transaction)
      this.#awaitFnForClose?.();
      // reads made before close() that went for a read connection (an await away) run first
      while (this.#reads.size > 0) await Promise.allSettled([...this.#reads]);
      const connections = [this.#writer, ...(await Promise.allSettled(this.#readers)).flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []))];
      try {
        await Promise.all(connections.map((c) => c.serial.run(() => c.close())));
      } finally {
        await this.#pipeline.drain();
        await this.#store.close();
      }
    })();
    return this.#closing;
  }

  /** get/all: on a read connection when the statement only reads (outside transactions), else on the writer. */
  async #query(sql: string, params: Params, mode: 'get' | 'all'): Promise<Row[]> {
    const onWriter = (admitted = false): Promise<Row[]> => {
      const w = this.#writer;
      return this.#autocommit(sql, () => {
        const stmt = w.cached(sql);
        return stmt === undefined ? w.prepared(sql).then((s) => w.runner.execute(s, params, mode)) : w.runner.execute(stmt, params, mode);
      }, admitted);
    };
    if (this.#readConnections === 0 || this.#readable.get(sql) === false || typeof sql !== 'string' || WRITER_ONLY_SQL.test(sql) || mayWrite(sql) || this.#writer.runner.mayHaveTempObjects || (this.#closing === null && this.#inExecTransaction())) return onWriter();
    if (this.#closing === null && !this.#inOwnTransaction()) {
      // made before close(): it runs (close() waits for it), though the read connection is an await away
      const read = this.#onReader(sql, params, mode).then((rows) => (rows === ON_WRITER ? onWriter(true) : rows));
      this.#reads.add(read);
      const settled = (): void => void this.#reads.delete(read);
      read.then(settled, settled);
      return read;
    }
    return onWriter();
  }

  /**
   * The writer is in a transaction opened through exec() (BEGIN, SAVEPOINT; not transaction()'s):
   * a read made now belongs to it, as on one SQLite connection (a read connection's snapshot
   * lacks its writes: `await db.run('INSERT ..')` then `db.get()` of that row answered undefined).
   * Also true while an exec() of several statements is between its BEGIN and COMMIT: such a read
   * then waits for it, in call order.
   */
  #inExecTransaction(): boolean {
    return !this.#transactionOpen && this.#writer.inTransaction();
  }

  /** get/all on a read connection (admitted before close()); ON_WRITER when the writer must run it. */
  async #onReader(sql: string, params: Params, mode: 'get' | 'all'): Promise<Row[] | typeof ON_WRITER> {
    const r = await this.#reader();
    return this.#call(r, async () => {
      let stmt = r.cached(sql);
      if (stmt === undefined) {
        try {
          stmt = await r.prepared(sql);
        } catch {
          return ON_WRITER; // the writer reports the error (or knows a TEMP table the reader lacks)
        }
        const readable = r.runner.isQuery(stmt);
        if (this.#readable.size >= READABLE_MEMO) this.#readable.clear(); // SQL texts with values built in: no endless growth
        this.#readable.set(sql, readable);
        if (!readable) {
          await r.forget(sql);
          return ON_WRITER;
        }
      }
      return r.runner.execute(stmt, params, mode);
    }, true);
  }

  /** The least busy read connection; another one is opened while fewer than readConnections exist and all are busy. */
  async #reader(): Promise<Connection> {
    let best: Connection | null = null;
    for (const c of this.#readersOpen) if (best === null || c.busy < best.busy) best = c;
    if ((best === null || best.busy > 0) && this.#readers.length < this.#readConnections) {
      const opening = Connection.open(this.#store, this.#pipeline, 'reader', this.#safeIntegers);
      this.#readers.push(opening);
      opening.then(
        (c) => void this.#readersOpen.push(c),
        () => void this.#readers.splice(this.#readers.indexOf(opening), 1), // tried again next time
      );
      return best ?? opening;
    }
    return best ?? this.#readers[0]!;
  }

  /**
   * One statement on the writer (run(); get/all routed there): when it began outside any
   * transaction (autocommit) and failed WALNUT_CONFLICT, it runs again, as SQLite's busy handler
   * runs an autocommit statement again after SQLITE_BUSY_SNAPSHOT: nothing of it was written
   * and its caller saw nothing of it (a call resolves only once its commit is durable). Again
   * until busyTimeout has passed since its first run; not once close() began (the connection
   * closes after the calls queued before it). A statement inside a transaction (transaction()'s,
   * or one a BEGIN through exec() opened) is not: the transaction's earlier work is gone too.
   * A conflict found while the statement runs (its lock or its commit's last check, SQLite
   * backing it out) is run again before the writer is given up (#conflictedInRun): queued
   * behind the calls made after it, it came after them (an INSERT, then an UPDATE of that row
   * made without awaiting it: the UPDATE found no row, then the INSERT applied, both
   * acknowledged: test/hostile/sql-autocommit-retry-order.test.ts). A conflict found at its
   * commit's durability (the store's conditional commit, a chain broken) comes after the writer
   * went on: the calls built on it fail too and run again in the order they fail.
   * A statement overtaken LEASE_AFTER_CONFLICTS times, or overtaken with its busyTimeout used
   * up, runs again holding the WAL write lock until its commit is durable (overtaken-writes.ts):
   * a long one beside a steady foreign writer was overtaken on every run. Past busyTimeout it
   * fails WALNUT_CONFLICT only once it tried to take the lease.
   * A run whose commit was lost (whatever the cause: another connection's commit, a chain
   * broken, a write that failed), or that failed as it ran leaving none of its rows (a conflict,
   * an I/O error: lostItsRows), left the rowid it
   * inserted as the connection's last_insert_rowid(): that is set back first (before the run
   * again, before the caller sees the failure; StatementRunner.restoreRowid), or a run again or
   * the caller's retry of `INSERT .. VALUES (last_insert_rowid())` read its own lost rowid. The
   * change counts cannot be set back: a statement that reads them (`sql`, readsChangeCounts) is
   * not run again.
   */
  #autocommit<T>(sql: unknown, job: () => T | Promise<T>, admitted = false): Promise<T> {
    const w = this.#writer;
    // (the retry rules are methods of this turn, not closures per call: only a conflict needs them)
    const turn: AutocommitTurn = { held: false, conflicts: 0, started: performance.now() };
    const attempt = (admitted: boolean): Promise<T> => {
      let autocommit = false;
      let rowid: RowidMark | null = null; // (the last run's)
      let inTransaction: StatementMark | null = null; // (the last run's, when it began in a transaction)
      const run = (): T | Promise<T> => {
        autocommit = !w.inTransaction();
        if (!autocommit) {
          inTransaction = w.runner.nextStatement();
          return job();
        }
        const mark = (rowid = this.#autocommitMark = w.runner.markRowid());
        let result: T | Promise<T>;
        try {
          result = job();
        } catch (e) {
          return this.#conflictedInRun(e, run, turn, sql, mark);
        }
        return result instanceof Promise ? result.catch((e: unknown) => this.#conflictedInRun(e, run, turn, sql, mark)) : result;
      };
      // (handed to #call, which chains them on the call's durability itself: one promise and
      // one hop less per statement than a .then on its result)
      return this.#call(
        w,
        run,
        admitted,
        (value) => {
          this.#overtaken.give(turn);
          return value;
        },
        (e: unknown) => {
          if (rowid !== null && lostItsRows(e)) w.runner.restoreRowid(rowid);
          // a statement of a transaction a caller opened (its COMMIT) lost it whole: back to before its opener (#autocommitMark)
          else if (inTransaction !== null && this.#autocommitMark !== null && lostItsRows(e) && !w.inTransaction()) w.runner.restoreRowid(this.#autocommitMark, inTransaction);
          // a connection with tables of its own (TEMP, attached) may have had them written by
          // the statement (a TEMP trigger, INSERT INTO scratch SELECT ..): SQLite committed that,
          // and it stays when the database's commit is lost here, so it is not run again (a TEMP
          // trigger's row was there twice: test/hostile/sql-exec-rerun-own-tables)
          const repeatable = autocommit && !w.runner.mayHaveOwnTables && !readsChangeCounts(sql);
          if (repeatable && this.#closing === null && this.#lastChance(turn) && waitedOutWrite(e)) {
            // its commit waited busyTimeout for WRITE beside a writer that takes it again at
            // once (the wait sleeps as SQLite's busy handler does and missed the short gaps):
            // once more under the lease, whose wait tries every few µs, when it is had (its
            // own, or the one another write of this database holds: takeOrJoin)
            return this.#overtaken.takeOrJoin(turn).then((had) => this.#runAgainUnlessClosing(e, attempt, turn, had));
          }
          if (!repeatable || !this.#runsAgain(e, turn)) {
            this.#overtaken.give(turn);
            throw this.#closedNotConflict(e);
          }
          this.#conflictRetries++;
          if (!this.#leaseDue(turn)) return attempt(false);
          return this.#overtaken.take(turn).then(() => this.#runAgainUnlessClosing(e, attempt, turn, true));
        },
      );
    };
    return attempt(admitted);
  }

  /**
   * What an autocommit call (run(), exec(), get/all on the writer) rejects with when it failed
   * with `e` once close() had begun: a conflict (WALNUT_CONFLICT: nothing of it written, "run it
   * again"), which it is no longer run again after (#runsAgain), is WALNUT_CLOSED, reason
   * NotRunAgain, cause the conflict: the caller's run again would be refused WALNUT_CLOSED too.
   * It rejected WALNUT_CONFLICT, telling a caller to retry on a database that was closing
   * (test/hostile/sql-conflict-close). Anything else, or before close(), is `e` itself.
   */
  #closedNotConflict(e: unknown): unknown {
    if (this.#closing === null || !isWalnutError(e, 'WALNUT_CONFLICT')) return e;
    return walnutError('WALNUT_CLOSED', `not run again: close() began (${withoutCode(e.message)}); the statement that met it wrote nothing`, { path: e.path ?? this.#store.path, reason: 'NotRunAgain', sqliteCode: e.sqliteCode, cause: e });
  }

  /** The autocommit statement's busyTimeout has passed since its first run (#autocommit). */
  #timeUp(turn: AutocommitTurn): boolean {
    return performance.now() - turn.started >= this.#store.options.busyTimeout;
  }

  /**
   * Within busyTimeout; past it once more, under the lease, if it has not had that run yet (a
   * run longer than busyTimeout / 2 used the time up before its second conflict); with
   * busyTimeout 0 never (as SQLite's busy_timeout 0: the conflict at once).
   */
  #lastChance(turn: AutocommitTurn): boolean {
    return turn.tried !== true && this.#store.options.busyTimeout > 0;
  }

  /** A conflict the autocommit statement runs again after (#autocommit). */
  #runsAgain(e: unknown, turn: AutocommitTurn): boolean {
    return isWalnutError(e, 'WALNUT_CONFLICT') && this.#closing === null && (!this.#timeUp(turn) || this.#lastChance(turn));
  }

  /** Counts a conflict; true when the next run is to hold the write lease (#autocommit). */
  #leaseDue(turn: AutocommitTurn): boolean {
    return ++turn.conflicts >= LEASE_AFTER_CONFLICTS || this.#timeUp(turn);
  }

  /**
   * An autocommit statement whose last run failed with `e` (nothing of it written) and that
   * waited for the write lease runs again, unless close() began meanwhile: then it is not run
   * again (as a conflict met once close() began is not: #autocommit's `again`) and rejects with
   * `e`, saying so. It rejected WALNUT_CLOSED ("the database is closed"), the answer of a call
   * made after close(), for a call made before it whose run had failed
   * (test/hostile/sql-lease-wait-close). A lease it took is given back. `runAgain` false: its
   * wait had no lease (it fails with `e`; once close() began, saying why it is not run again:
   * close() cuts a lease's wait short, so that is how such a wait mostly ends then).
   */
  #runAgainUnlessClosing<T>(e: unknown, attempt: (admitted: boolean) => Promise<T>, turn: LeaseTurn, runAgain: boolean): Promise<T> {
    if (this.#closing === null) {
      if (!runAgain) throw e;
      return attempt(false);
    }
    this.#overtaken.give(turn);
    if (!isWalnutError(e)) throw e;
    if (e.code === 'WALNUT_CONFLICT') throw this.#closedNotConflict(e);
    throw new WalnutError(`${e.message} (not run again: close() began while it waited for the write lease; nothing of it was written)`, { code: e.code, path: e.path, reason: e.reason, sqliteCode: e.sqliteCode, cause: e });
  }

  /**
   * An autocommit statement's run on the writer failed with `e` (SQLite's error, untranslated):
   * when that is a conflict it runs again after (#runsAgain), `run` runs again, still holding the writer (so
   * before the calls made after it), after a turn of the event loop (a statement overtaken
   * over and over must not keep the thread); else `e` is thrown as it was (#attempt translates it).
   * When #leaseDue says so (it counts the conflict), it runs again holding the
   * write lease (#autocommit gives it back once the call settled). SQLite backed the run out,
   * not the rowid it inserted: on a failure that left none of its rows (lostItsRows: a
   * conflict, an I/O error; not SQLite's verdict on the statement) last_insert_rowid() is set
   * back to `rowid` (as before the run), and one of `sql` reading the change counts (changes()
   * is 0 now) is not run again.
   */
  #conflictedInRun<T>(e: unknown, run: () => T | Promise<T>, turn: AutocommitTurn, sql: unknown, rowid: RowidMark): Promise<T> {
    const w = this.#writer;
    const err = this.#translate(w, e);
    if (lostItsRows(err)) w.runner.restoreRowid(rowid);
    if (readsChangeCounts(sql) || !this.#runsAgain(err, turn)) throw e;
    this.#conflictRetries++;
    const lease = this.#leaseDue(turn) ? this.#overtaken.take(turn) : undefined;
    w.vfs.conflict = false; // (as #attempt before a job: this run's signals are its own)
    w.vfs.lastError = null;
    // the failed run's waits for the commits it read are not the call's: one of those failing
    // later (a chain broken) rejected the call after the run again had committed, and the call,
    // run again once more, applied twice (or, once close() began, was applied yet rejected)
    const saw = w.vfs.takeDurability();
    if (saw !== null) saw.catch(() => undefined);
    // close() may have begun during the turn or the lease's wait (the writer is held: close()
    // waits for it): not run again then, as a statement waiting for the lease outside the writer
    // is not (#runAgainUnlessClosing). It ran again and committed after close() began
    // (test/hostile/sql-conflict-lease-wait-close)
    return new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => lease)
      .then(() => (this.#closing === null ? run() : this.#runAgainUnlessClosing(err, () => Promise.reject(err), turn, false)));
  }

  /**
   * Takes `c` for `job`, then waits for durability outside it. When `c` is free and this turn
   * of the event loop young, the job starts at once, synchronously (Serial.idle): a statement
   * that needs no wait makes no promise of its own before its durability's. `admitted`: a
   * call made before close() (a read that awaited its read connection), which close() waits for.
   */
  #call<T>(c: Connection, job: () => T | Promise<T>, admitted = false, onValue?: (value: T) => T, onError?: (e: unknown) => T | Promise<T>): Promise<T> {
    // refused on a later turn of the event loop: a caller retrying at once must not starve its timers (errors.ts refusedOnLaterTurn)
    if (this.#closing !== null && !admitted) return this.#then(refusedOnLaterTurn(walnutError('WALNUT_CLOSED', 'the database is closed', { path: this.#store.path })), onValue, onError);
    if (this.#inOwnTransaction()) {
      return this.#then(Promise.reject(walnutError('WALNUT_INVALID_ARGUMENT', "inside transaction(), use the transaction's tx (the database waits for the transaction)", { reason: 'transaction' })), onValue, onError);
    }
    let durable: Promise<unknown> | null = null;
    const end = (): void => {
      c.busy--;
      durable = c.vfs.takeDurability();
    };
    c.busy++;
    let ran: Promise<T>;
    if (c.serial.idle && !this.#turnDue(c)) {
      let result: T | Promise<T>;
      try {
        result = this.#attempt(c, job, end);
      } catch (e) {
        result = Promise.reject(e);
      }
      if (!(result instanceof Promise)) {
        if (durable === null) return this.#then(Promise.resolve(result), onValue, onError);
        // (onValue / onError chained on the durability itself: one promise and one hop less per
        // statement than a .then on #afterDurable's)
        if (onValue !== undefined) {
          const value = result;
          return (durable as Promise<unknown>).then(() => onValue(value), (e: unknown) => onError!(retryable(e)));
        }
        return this.#afterDurable(durable as Promise<unknown>, result);
      }
      ran = c.serial.hold(result);
    } else {
      ran = c.serial.run(() => (this.#turnDue(c) ? new Promise((resolve) => setImmediate(resolve)).then(() => this.#attempt(c, job, end)) : this.#attempt(c, job, end)));
    }
    // (no async functions here: each would add a promise and a hop to every call)
    return this.#then(
      ran.then(
        (result) => (durable === null ? result : this.#afterDurable(durable as Promise<unknown>, result)),
        (e: unknown) => {
          if (durable === null) throw e;
          const fail = (): never => {
            throw e;
          };
          return (durable as Promise<unknown>).then(fail, fail);
        },
      ),
      onValue,
      onError,
    );
  }

  /** `p.then(onValue, onError)`, or `p` itself without them (#call). */
  #then<T>(p: Promise<T>, onValue: ((value: T) => T) | undefined, onError: ((e: unknown) => T | Promise<T>) | undefined): Promise<T> {
    return onValue === undefined ? p : p.then(onValue, onError);
  }

  /** `result` once `durable` resolved; its failure as the call's (retryable()). */
  #afterDurable<T>(durable: Promise<unknown>, result: T): Promise<T> {
    return durable.then(() => result, (e: unknown) => Promise.reject(retryable(e)));
  }

  /**
   * Runs `job` on `c` (held), synchronously as far as it goes; `end` is called when it is done
   * (the connection's count of calls, the durability of what it committed or read), before
   * its result or error is delivered. Errors come translated (#translate).
   */
  #attempt<T>(c: Connection, job: () => T | Promise<T>, end: () => void): T | Promise<T> {
    // a connection whose wasm instance was dropped and not replaced (connection.ts reopen()):
    // opened again first; when that fails, so does the call, as the open did
    if (c.needsReopen) {
      return this.#reopen(c).then(
        () => this.#attempt(c, job, end),
        (e: unknown) => {
          end();
          throw this.#translate(c, e);
        },
      );
    }
    c.vfs.conflict = false;
    c.vfs.lastError = null;
    let result: T | Promise<T>;
    try {
      result = job();
    } catch (e) {
      return this.#failed(c, e, end);
    }
    if (!(result instanceof Promise)) {
      if (c.needsReopen) return this.#reopened(c, end, () => result as T);
      end();
      return result;
    }
    return result.then(
      (value) => {
        // (a read connection's failure the job answered ON_WRITER for)
        if (c.needsReopen) return this.#reopened(c, end, () => value);
        end();
        return value;
      },
      (e: unknown) => this.#failed(c, e, end),
    );
  }

  /**
   * A job on `c` ended after SQLite's schema load ran out of stack on it (connection.ts): `end`
   * (the durability of what the call committed or read is taken from the old instance's VFS),
   * then `c` is opened again on a fresh wasm instance before it goes to the next call (a
   * failure to is left for the next call: #attempt), then `settle`.
   */
  #reopened<T>(c: Connection, end: () => void, settle: () => T): Promise<T> {
    end();
    return this.#reopen(c).then(settle, settle);
  }

  /**
   * `c` on a fresh wasm instance (connection.ts reopen()), last_insert_rowid() carried over: the
   * writer's transaction, if it is in one, goes with the old instance, so from before its
   * opener (#autocommitMark), as for a transaction lost to a failure of walnut's.
   */
  #reopen(c: Connection): Promise<void> {
    return c.reopen(c === this.#writer ? this.#autocommitMark : null);
  }

  /** A job failed with `e`: throws it translated, after `end`. */
  #failed(c: Connection, e: unknown, end: () => void): never | Promise<never> {
    const err = this.#translate(c, e);
    const fail = (): never => {
      end();
      throw err;
    };
    if (c.needsReopen) return this.#reopened(c, end, fail);
    // a VACUUM refused for a new page size: SQLite keeps that size pending on the (shared)
    // connection and every later VACUUM, anyone's, would try it again; set it back
    if (isWalnutError(err) && err.reason === 'page_size') return Promise.resolve(c.runner.exec(`PRAGMA page_size=${this.#store.pageSize}`)).catch(() => undefined).then(fail);
    return fail();
  }

  /** Called from inside this database's running transaction's fn (#inTransaction). */
  #inOwnTransaction(): boolean {
    return this.#inFn !== null && this.#inTransaction.getStore() === this.#inFn;
  }

  /** A call on `c` starting now waits for the next turn of the event loop first (TURN_MS, READ_TURN_MS_WHILE_WRITING). */
  #turnDue(c: Connection): boolean {
    const writing = c !== this.#writer && (this.#writer.busy > 0 || this.#pipeline.commitsInFlight > 0);
    return this.#turnLength() > (writing ? READ_TURN_MS_WHILE_WRITING : TURN_MS);
  }

  /** Milliseconds since the current turn of the event loop began (a setImmediate marks its end). */
  #turnLength(): number {
    const now = performance.now();
    if (this.#turnWatched) return now - this.#turnAt;
    this.#turnWatched = true;
    this.#turnAt = now;
    setImmediate(() => (this.#turnWatched = false));
    return 0;
  }

  /** SQLite's errors as WalnutError. */
  #translate(c: Connection, e: unknown): unknown {
    return sqliteFailure(e, c.vfs, this.#store.path);
  }
}

/** Runs a prepared `stmt` for run(): its changes and last rowid (synchronously when the run needed no wait). */
function runStatement(runner: StatementRunner, stmt: number, params: Params): RunResult | Promise<RunResult> {
  const before = runner.totalChanges();
  const rows = runner.execute(stmt, params, 'run');
  return rows instanceof Promise ? rows.then(() => runner.runResult(before)) : runner.runResult(before);
}

/**
 * A commit refused because one it was built on failed (the store's WALNUT_FAILED, reason
 * ChainBroken) is, for the transaction, a conflict: nothing of it was written, run it again.
 */
function retryable(e: unknown): unknown {
  if (!isWalnutError(e, 'WALNUT_FAILED') || e.reason !== 'ChainBroken') return e;
  return walnutError('WALNUT_CONFLICT', `a transaction this one was built on failed to commit; retry it (${(e.cause as Error | undefined)?.message ?? e.message})`, { path: e.path, reason: 'ChainBroken', cause: e });
}

/**
 * last_insert_rowid() around one transaction(): as it was before its BEGIN (nested in a
 * transaction opened through exec(): before that one's opener, Database #autocommitMark), and
 * the number of its COMMIT once SQLite ran that. When the transaction is lost, none of its rows
 * stay, and the rowid its statements left is set back before the caller sees the failure: a
 * retry of the transaction whose first statement read last_insert_rowid() read the lost row's
 * (a child row pointed at itself: test/hostile/sql-lost-transaction-last-rowid). Lost means: its
 * COMMIT lost at durability (another connection's commit overtook it, one it was built on
 * failed, its write failed: StatementRunner.restoreRowid, only while no statement began on the
 * connection since the COMMIT), or a statement of it failing as it ran, its COMMIT among them,
 * with a failure of walnut's (lostItsRows: a conflict, an I/O error, the store closed), the
 * transaction then rolled back by SQLite or, after a COMMIT's, by transaction() (lostAsItRan):
 * the rule of a statement of a transaction the caller opened through exec() or run() (Database
 * #autocommit; test/hostile/sql-lost-in-transaction-last-rowid). A fn that threw
 * its own error, a statement SQLite failed (WALNUT_SQL: a constraint, SQLITE_FULL), or a COMMIT
 * SQLite refused (WALNUT_SQL: a deferred foreign key) rolls back leaving the rowid as SQLite
 * leaves it, as better-sqlite3's transaction functions do.
 */
class TransactionRowid {
  #before: RowidMark | null = null;
  #commit: StatementMark | null = null;

  /** `before`: the rowid before the transaction's BEGIN (or its opener's, nested), marked before it runs. */
  begin(before: RowidMark | null): void {
    this.#before = before;
  }

  /** SQLite ran the COMMIT (its durability is to come). */
  committed(runner: StatementRunner): void {
    this.#commit = runner.newestStatement();
  }

  /**
   * A statement of the transaction (its COMMIT among them) failed as it ran, lost (lostItsRows:
   * not SQLite's verdict, a deferred foreign key's), and the transaction is rolled back, by
   * SQLite or after this. Told as it failed: no statement began since (setRowidBack).
   */
  lostAsItRan(runner: StatementRunner): void {
    if (this.#before !== null) runner.setRowidBack(this.#before);
  }

  /** The transaction() call failed: after its COMMIT ran, that is the commit's durability failing. */
  callFailed(runner: StatementRunner): void {
    if (this.#before !== null && this.#commit !== null) runner.restoreRowid(this.#before, this.#commit);
  }
}

/**
 * `tx` of transaction(): the connection is held; its calls run one at a time until fn ends.
 * On some failures SQLite rolls the whole transaction back itself and returns to autocommit
 * (SQLITE_FULL of a statement without a statement journal, SQLITE_INTERRUPT, SQLITE_IOERR,
 * SQLITE_NOMEM): the calls after such a failure are refused (WALNUT_INVALID_ARGUMENT, reason
 * transaction) and transaction() rejects with it (rolledBack). A fn that caught it and went on
 * ran its next statements in autocommit, each committed at once, while transaction() rejected
 * (test/hostile/sql-transaction-rolled-back-by-sqlite).
 */
class TransactionScope implements Queryable {
  /** The writer (its runner is read per call: reopen() replaces it). */
  readonly #w: Connection;
  readonly #translate: (e: unknown) => unknown;
  /** Puts the writer on a fresh wasm instance (Database #reopen). */
  readonly #reopen: () => Promise<void>;
  /** Told of the failure on which SQLite rolled the transaction back, as the statement failed (TransactionRowid.lostAsItRan). */
  readonly #onRolledBack: (error: unknown) => void;
  readonly #serial = new Serial();
  /** The calls not settled yet. */
  readonly #pending = new Set<Promise<unknown>>();
  /** The calls that had not settled when end() was called (fn did not wait for them). */
  #unwaited: Promise<unknown>[] = [];
  #ended = false;
  #rolledBack: { error: unknown } | null = null;
  /**
   * See onlyRead. Only ever goes from true to false: exec() clears it as it is called, while a
   * get() made before it may be waiting for its statement's prepare (one that set it back from
   * its own start saw the transaction ROLLBACK with exec()'s write: test/hostile/sql-read-only-transaction-conflict).
   */
  #onlyRead = true;

  constructor(writer: Connection, translate: (e: unknown) => unknown, reopen: () => Promise<void>, onRolledBack: (error: unknown) => void) {
    this.#w = writer;
    this.#translate = translate;
    this.#reopen = reopen;
    this.#onRolledBack = onRolledBack;
  }

  /** The failure on which SQLite rolled the transaction back (class comment), else null. */
  get rolledBack(): { error: unknown } | null {
    return this.#rolledBack;
  }

  exec(sql: string): Promise<void> {
    if (arguments.length > 1) {
      const refused = extraArgumentError('tx.exec', 'only SQL (it binds no parameters: use run())', 1, arguments);
      if (refused !== null) return Promise.reject(refused);
    }
    this.#onlyRead = false;
    return this.#call(() => this.#w.runner.exec(sql, refuseTransactionControl));
  }
  run(sql: string, params?: Params): Promise<RunResult> {
    if (arguments.length > 2) {
      const refused = extraArgumentError('tx.run', 'SQL and params (an array or an object)', 2, arguments);
      if (refused !== null) return Promise.reject(refused);
    }
    return this.#call(async () => runStatement(this.#w.runner, await this.#statement(sql), params));
  }
  get(sql: string, params?: Params): Promise<Row | undefined> {
    if (arguments.length > 2) {
      const refused = extraArgumentError('tx.get', 'SQL and params (an array or an object)', 2, arguments);
      if (refused !== null) return Promise.reject(refused);
    }
    return this.#call(async () => (await this.#w.runner.execute(await this.#readStatement(sql), params, 'get'))[0]);
  }
  all(sql: string, params?: Params): Promise<Row[]> {
    if (arguments.length > 2) {
      const refused = extraArgumentError('tx.all', 'SQL and params (an array or an object)', 2, arguments);
      if (refused !== null) return Promise.reject(refused);
    }
    return this.#call(async () => this.#w.runner.execute(await this.#readStatement(sql), params, 'all'));
  }

  /** db.prepare() from fn: `sql` prepared on the writer (checked; cached), in turn with tx's calls. */
  prepareForDb(sql: string): Promise<void> {
    return this.#call(async () => void (await this.#w.prepared(sql)));
  }

  /** #preparedStatement for run(): the transaction may write from here on. */
  #statement(sql: string): Promise<number> {
    this.#onlyRead = false;
    return this.#preparedStatement(sql);
  }

  /** #preparedStatement for get/all: the transaction may write from here on unless the statement changes nothing (sqlite3_stmt_readonly). */
  async #readStatement(sql: string): Promise<number> {
    const stmt = await this.#preparedStatement(sql);
    if (!this.#w.runner.isReadOnly(stmt)) this.#onlyRead = false;
    return stmt;
  }

  /** The prepared statement of `sql` (exactly one), unless it would end the transaction. */
  #preparedStatement(sql: string): Promise<number> {
    if (typeof sql === 'string') refuseTransactionControl(sql);
    return this.#w.prepared(sql);
  }

  /**
   * Every call fn made ran a statement that changes nothing (get/all of read-only statements;
   * exec() and run() count as writes): the transaction ends with ROLLBACK, which is its COMMIT
   * when nothing changed (#runTransaction).
   */
  get onlyRead(): boolean {
    return this.#onlyRead;
  }

  /** A call after the failure `cause`, on which SQLite rolled the transaction back. */
  #refusal(cause: unknown): WalnutError {
    const why = cause instanceof Error ? cause.message : String(cause);
    return walnutError('WALNUT_INVALID_ARGUMENT', `the transaction was rolled back: SQLite ended it when an earlier statement failed (${why}); nothing of it is written, and this call was not run`, { reason: 'transaction', cause });
  }

  /** fn ended: no more calls; those still running are the ones it did not wait for. */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#unwaited = [...this.#pending];
  }
  /**
   * Resolves when the calls made before end() have settled: with the first failure among those
   * fn did not wait for (still running at end(): no one else is told of it), else null.
   */
  async idle(): Promise<{ error: unknown } | null> {
    const settled = await Promise.allSettled(this.#unwaited);
    for (const s of settled) if (s.status === 'rejected') return { error: s.reason };
    return null;
  }

  #call<T>(job: () => Promise<T>): Promise<T> {
    if (this.#ended) return Promise.reject(walnutError('WALNUT_INVALID_ARGUMENT', 'the transaction has ended', { reason: 'transaction' }));
    const p = this.#serial.run(async () => {
      // (checked as the call's turn comes: one made before the failure, not awaited, comes after it)
      if (this.#rolledBack !== null) throw this.#refusal(this.#rolledBack.error);
      try {
        return await job();
      } catch (e) {
        const err = this.#translate(e);
        // SQLite's schema load ran out of stack: the writer's instance, and the transaction with
        // it, is dropped at once (connection.ts reopen(); a failure to open is the next call's)
        if (this.#w.needsReopen) await this.#reopen().catch(() => undefined);
        if (this.#rolledBack === null && !this.#w.inTransaction()) {
          this.#rolledBack = { error: err };
          this.#onRolledBack(err);
        }
        throw err;
      }
    });
    this.#pending.add(p);
    const settled = (): void => void this.#pending.delete(p);
    p.then(settled, settled);
    return p;
  }
}

/**
 * Inside transaction(), a statement that would end or nest the transaction (BEGIN, COMMIT, END,
 * ROLLBACK but not ROLLBACK TO a savepoint) is refused before it runs: a COMMIT there made
 * transaction() reject (its own COMMIT found no transaction) with the writes committed, and a
 * ROLLBACK left fn running outside any transaction. Savepoints nest and are allowed.
 */
function refuseTransactionControl(sql: string): void {
  const [first, second, third] = leadingWords(sql, 3);
  const rollbackTo = first === 'ROLLBACK' && (second === 'TO' || (second === 'TRANSACTION' && third === 'TO'));
  if ((first === 'BEGIN' || first === 'COMMIT' || first === 'END' || first === 'ROLLBACK') && !rollbackTo) {
    throw walnutError('WALNUT_INVALID_ARGUMENT', `inside transaction(), ${first} is transaction()'s to run (it commits when fn resolves, rolls back when it throws; SAVEPOINT nests)`, { reason: 'transaction' });
  }
}

/**
 * True unless `sql` surely only reads: it begins with SELECT, VALUES or EXPLAIN, or with WITH and
 * names no INSERT, UPDATE, DELETE or REPLACE. get()/all() send a statement that may write to the
 * writer at once, in call order: the way through a read connection (to be prepared there and
 * found to write) is an await long, and the write was queued behind the calls made after it
 * (an INSERT ... RETURNING, then a DELETE, applied in the other order).
 */
function mayWrite(sql: string): boolean {
  const [first] = leadingWords(sql, 1);
  if (first === 'SELECT' || first === 'VALUES' || first === 'EXPLAIN') return false;
  return first !== 'WITH' || WITH_WRITES.test(sql);
}
const WITH_WRITES = /\b(insert|update|delete|replace)\b/i;
