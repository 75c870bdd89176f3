/**
 * sql/connection.ts — Connection: one SQLite connection (its own wasm instance, engine.ts) on
 * the database's store, with its VFS, its statement runner, its prepared statements and the
 * Serial its calls take turns through.
 *
 * A database has one writer connection (every write, every transaction) and up to
 * `readConnections` reader connections, opened on first use, that serve queries outside
 * transactions (database.ts). A reader is opened read-only (SQLite refuses writes itself), its
 * views see durable commits only (commit-pipeline.ts) and a query returning many rows yields
 * to the event loop every few milliseconds (statement-runner.ts), so a long read does not hold
 * up the writer's callers. The writer of a database opened read-only (database.ts, `readOnly`)
 * is opened read-only too, its VFS told why (walnut-vfs.ts ReadOnly): SQLite's refusal of a
 * write there (SQLITE_READONLY) is WALNUT_READONLY with that reason (sqliteFailure).
 *
 * Invariants: a prepared statement is used only on the connection that prepared it; at most
 * STATEMENT_CACHE of them stay prepared per connection (least recently used finalized first);
 * close() finalizes them all and closes the SQLite connection once the calls queued before it
 * ran.
 *
 * A wasm instance whose schema load the stack ran out in (statement-runner.ts header: SQLite
 * keeps a half-loaded schema it never loads again) is dropped: reopen() closes its SQLite
 * connection as far as it can, lets go of its VFS's views, and opens the connection again on a
 * fresh instance (its prepared statements, TEMP objects and per-connection settings are gone;
 * an open transaction is rolled back). last_insert_rowid() is carried over, as native SQLite's
 * connection keeps it: the dropped instance's, or, when it was in a transaction (which goes
 * with it, its rows with it), the one before the statement that opened that transaction (the
 * caller's `opener` mark; none known: 0, which names no row). When that open fails too (the
 * writer's open loads the schema, which overflows again), the connection has no instance
 * (needsReopen stays true): the database tries again before each call on it, which fails as
 * the open did.
 */
import { isWalnutError, walnutError, WalnutError } from '../errors';
import type { Store } from '../commit/store';
import type { CommitPipeline } from './commit-pipeline';
import { loadEngine, type Engine } from './engine';
import { Serial } from './serial';
import { StatementRunner, type RowidMark } from './statement-runner';
import { readOnlyError, registerWalnutVfs, type ReadOnly, type VfsSignals } from './walnut-vfs';

const STATEMENT_CACHE = 64;

/** SQLite's primary result code SQLITE_BUSY (an extended code keeps it in its low byte). */
const SQLITE_BUSY = 5;
/** SQLite's primary result code SQLITE_READONLY ("attempt to write a readonly database"). */
const SQLITE_READONLY = 8;

/**
 * An error SQLite's wasm threw on a connection whose VFS is `vfs`, as a WalnutError: the
 * VFS's refusal of a transaction built on a stale snapshot (conflict), the store's error behind
 * SQLite's I/O result, SQLite's own busy, else SQLite's as WALNUT_SQL (with `sqliteCode`).
 */
export function sqliteFailure(e: unknown, vfs: VfsSignals, path: string): unknown {
  if (isWalnutError(e)) return e;
  const sqliteCode = (e as { code?: unknown }).code;
  if (typeof sqliteCode !== 'number') return e;
  const message = (e as Error).message;
  // a write on a database opened read-only: SQLite's own refusal (the connection was opened
  // SQLITE_OPEN_READONLY), or the VFS's (its lastError is that WALNUT_READONLY already)
  if (vfs.readOnly !== null && (sqliteCode & 0xff) === SQLITE_READONLY && !isWalnutError(vfs.lastError, 'WALNUT_READONLY')) {
    return readOnlyError(vfs.readOnly, path, `the statement would write the database (SQLite: ${message})`, sqliteCode);
  }
  if (vfs.conflict) {
    return walnutError('WALNUT_CONFLICT', `another connection committed after this transaction's snapshot; retry it (${message})`, { path, sqliteCode, reason: 'OtherWriter' });
  }
  const behind = vfs.lastError;
  if (!isWalnutError(behind) && (sqliteCode & 0xff) === SQLITE_BUSY) {
    return walnutError('WALNUT_BUSY', `the database stayed busy (another connection held it, or commits kept failing); nothing of this statement was written, retry it (${message})`, { path, sqliteCode, cause: e });
  }
  if (isWalnutError(behind)) {
    return new WalnutError(`${behind.message} (SQLite: ${message})`, { code: behind.code, path: behind.path ?? path, errno: behind.errno, syscall: behind.syscall, reason: behind.reason, pgno: behind.pgno, sqliteCode, cause: behind });
  }
  return walnutError('WALNUT_SQL', message, { path, sqliteCode, cause: e });
}

/**
 * sqlite3_open_v2 on the walnut VFS, waiting for a read lock up to the store's busyTimeout.
 * SQLite reads the database header as it opens, and here that read needs a view (a read mark):
 * when none can be had at once the VFS answers SQLITE_BUSY with a retry op that waits until one
 * can. wa-sqlite's open_v2 waits for one such op and gives up at the second SQLITE_BUSY, so an
 * open beside a connection taking the read locks again and again (a checkpointer) failed
 * WALNUT_BUSY at once where sqlite3 waits (the mark had, then taken again before the retry: 9 of
 * 20 opens beside test/hostile/sql-open-read-locks-busy's helper, python3's sqlite3 20 of 20).
 * Opened again here, after the op, until the busy timeout has passed; the op's own wait ends at
 * it (WALNUT_BUSY, BusyRead). A failed open closes its handle (open_v2 does).
 */
async function openWaiting(engine: Engine, store: Store, flags: number): Promise<number> {
  const deadline = performance.now() + store.options.busyTimeout;
  for (;;) {
    try {
      return (await engine.sqlite3.open_v2(store.path, flags, 'walnut')) as number;
    } catch (e) {
      const ops = engine.module.retryOps as Promise<unknown>[];
      engine.module.retryOps = [];
      const code = (e as { code?: unknown }).code;
      if (typeof code !== 'number' || (code & 0xff) !== SQLITE_BUSY || ops.length === 0 || performance.now() >= deadline) {
        for (const op of ops) op.catch(() => undefined); // (not waited for: its failure is no one's)
        throw e;
      }
      await Promise.all(ops);
    }
  }
}

/** One SQLite connection on its own wasm instance, as Connection holds it (replaced by reopen()). */
interface Instance {
  engine: Engine;
  db: number;
  runner: StatementRunner;
  vfs: VfsSignals;
}

/** What a connection is opened with (again, by reopen()). */
interface OpenWith {
  store: Store;
  pipeline: CommitPipeline;
  role: 'writer' | 'reader';
  safeIntegers: boolean;
  maxPageCount: number | undefined;
  /** The database was opened read-only (database.ts): why; the writer is then opened SQLITE_OPEN_READONLY too. */
  readOnly: ReadOnly | null;
}

export class Connection {
  engine: Engine;
  db: number;
  runner: StatementRunner;
  vfs: VfsSignals;
  readonly serial = new Serial();
  readonly #with: OpenWith;
  /** The instance was dropped and opening another failed (class header): none to run on. */
  #noInstance = false;
  /** The last_insert_rowid() the next instance starts with (reopen(): the dropped one's, class header). */
  #carriedRowid: RowidMark | null = null;
  /** Calls queued or running (a reader pool picks the least busy connection). */
  busy = 0;
  /** Prepared statements by SQL text, least recently used first. */
  readonly #statements = new Map<string, number>();
  /** The SQL text cached() last found (already last in #statements: a statement run over and over is not moved each time). */
  #lastUsed: string | null = null;

  /**
   * `maxPageCount`: the store's option, when set, told to SQLite (PRAGMA max_page_count) so that
   * a transaction growing the database past it fails inside SQLite with SQLITE_FULL, as a
   * SQLite user expects, instead of being refused by the store at its commit point.
   */
  static async open(store: Store, pipeline: CommitPipeline, role: 'writer' | 'reader', safeIntegers: boolean, maxPageCount?: number, readOnly: ReadOnly | null = null): Promise<Connection> {
    const w: OpenWith = { store, pipeline, role, safeIntegers, maxPageCount, readOnly };
    return new Connection(await Connection.#instance(w), w);
  }

  /**
   * A SQLite connection on a fresh wasm instance, set up for its role. The writer of a database
   * opened read-only is opened SQLITE_OPEN_READONLY, as the readers are: SQLite refuses every
   * write to the main database itself (SQLITE_READONLY; `PRAGMA query_only=0` cannot undo it),
   * TEMP objects still take writes (they live in the instance's memory); it gets no journal
   * mode (it writes no journal of the main database) nor max_page_count (it grows nothing).
   */
  static async #instance({ store, pipeline, role, safeIntegers, maxPageCount, readOnly }: OpenWith): Promise<Instance> {
    const engine = await loadEngine();
    const vfs = registerWalnutVfs(engine, 'walnut', store, pipeline, role, role === 'writer' ? readOnly : null);
    const { C } = engine;
    const writes = role === 'writer' && readOnly === null;
    const flags = writes ? C.SQLITE_OPEN_READWRITE! | C.SQLITE_OPEN_CREATE! : C.SQLITE_OPEN_READONLY!;
    let db: number | undefined;
    try {
      db = await openWaiting(engine, store, flags);
      const runner = new StatementRunner(engine, db, safeIntegers, role === 'reader', () => vfs.endStatement());
      // the writer enforces foreign keys, as better-sqlite3 does (built with
      // SQLITE_DEFAULT_FOREIGN_KEYS=1; SQLite in wasm leaves them off): PRAGMA foreign_keys=OFF undoes it
      // (a read-only writer too: its TEMP tables take writes)
      await runner.exec(role === 'reader' ? 'PRAGMA temp_store=MEMORY' : `${writes ? 'PRAGMA journal_mode=MEMORY; ' : ''}PRAGMA temp_store=MEMORY; PRAGMA foreign_keys=ON`);
      vfs.journalModeSet = true; // PRAGMA journal_mode is walnut's now (walnut-vfs.ts #pragma)
      if (writes && maxPageCount !== undefined) await runner.exec(`PRAGMA max_page_count=${maxPageCount}`);
      return { engine, db, runner, vfs };
    } catch (e) {
      // a reader is opened on first use, at any time (the store may have been closed under the
      // database meanwhile): the SQLite connection goes, and the error is a WalnutError (the
      // views go too: an instance whose schema load overflowed may not close its files)
      if (db !== undefined) await closeInstance(engine, db);
      vfs.releaseAll();
      throw sqliteFailure(e, vfs, store.path);
    }
  }

  private constructor(instance: Instance, openWith: OpenWith) {
    this.engine = instance.engine;
    this.db = instance.db;
    this.runner = instance.runner;
    this.vfs = instance.vfs;
    this.#with = openWith;
  }

  /** The wasm instance must be replaced before the next statement (class header): reopen(). */
  get needsReopen(): boolean {
    return this.#noInstance || this.runner.schemaAbandoned;
  }

  /** The SQLite connection is in a transaction (false with no instance: reopen()). */
  inTransaction(): boolean {
    return !this.#noInstance && !this.engine.sqlite3.get_autocommit(this.db);
  }

  /**
   * Drops the wasm instance for a fresh one (class header). The caller holds the connection and
   * has taken what the call committed or read (vfs.takeDurability()). `opener`: the rowid mark
   * before the statement that opened the writer's transaction, if it is in one (class header).
   * Rejects with the open's error, the connection then having no instance (needsReopen: tried
   * again next time, with the same rowid to carry).
   */
  async reopen(opener: RowidMark | null = null): Promise<void> {
    if (!this.#noInstance) {
      this.#carriedRowid = this.#rowidToCarry(opener);
      await this.#dropInstance();
    }
    const instance = await Connection.#instance(this.#with);
    if (this.#carriedRowid !== null) instance.runner.adoptRowid(this.#carriedRowid);
    this.#carriedRowid = null;
    this.engine = instance.engine;
    this.db = instance.db;
    this.runner = instance.runner;
    this.vfs = instance.vfs;
    this.#noInstance = false;
  }

  /** The statement prepared from `sql`, if it is. */
  cached(sql: string): number | undefined {
    const stmt = this.#statements.get(sql);
    if (stmt !== undefined && sql !== this.#lastUsed) {
      this.#statements.delete(sql); // most recently used last
      this.#statements.set(sql, stmt);
      this.#lastUsed = sql;
    }
    return stmt;
  }

  /** The prepared statement for `sql`: from the cache, else prepared now. The caller holds the connection. */
  async prepared(sql: string): Promise<number> {
    const cached = this.cached(sql);
    if (cached !== undefined) return cached;
    const stmt = await this.runner.prepare(sql);
    this.#statements.set(sql, stmt);
    this.#lastUsed = sql;
    if (this.#statements.size > STATEMENT_CACHE) {
      const [oldest, handle] = this.#statements.entries().next().value as [string, number];
      this.#statements.delete(oldest);
      await this.runner.finalize(handle);
    }
    return stmt;
  }

  /** Finalizes `sql`'s statement (a reader's, for a statement it must not run). */
  async forget(sql: string): Promise<void> {
    const stmt = this.#statements.get(sql);
    if (stmt === undefined) return;
    this.#statements.delete(sql);
    if (this.#lastUsed === sql) this.#lastUsed = null;
    await this.runner.finalize(stmt);
  }

  /**
   * The last_insert_rowid() a fresh instance takes over from this one, about to be dropped: its
   * own, or in a transaction the one before `opener`'s statement (null, 0 to the new instance,
   * when that is not known or the instance answers nothing).
   */
  #rowidToCarry(opener: RowidMark | null): RowidMark | null {
    try {
      if (!this.runner.abandonedInTransaction && !this.inTransaction()) return this.runner.markRowid();
      return opener !== null && opener.runner === this.runner ? opener : null;
    } catch {
      return null; // (an instance left mid-call: dropped either way)
    }
  }

  /** Lets go of the wasm instance: its statements, its SQLite connection as far as it closes, its VFS's views. */
  async #dropInstance(): Promise<void> {
    this.#statements.clear();
    this.#lastUsed = null;
    this.#noInstance = true;
    await closeInstance(this.engine, this.db);
    this.vfs.releaseAll();
  }

  /** Finalizes every statement and closes the SQLite connection; the caller holds the connection. */
  async close(): Promise<void> {
    if (this.#noInstance) return;
    if (this.runner.schemaAbandoned) return this.#dropInstance();
    for (const stmt of this.#statements.values()) await this.runner.finalize(stmt).catch(() => undefined);
    this.#statements.clear();
    this.#lastUsed = null;
    await this.engine.sqlite3.close(this.db);
  }
}

/**
 * Closes SQLite connection `db` of `engine` as far as it can be: every statement finalized,
 * then closed; a failure (an instance left mid-call by a stack overflow) is ignored: the
 * instance is dropped either way.
 */
async function closeInstance(engine: Engine, db: number): Promise<void> {
  try {
    const m = engine.module;
    engine.resetStack();
    for (let s = m._sqlite3_next_stmt(db, 0) as number, last = 0; s !== 0 && s !== last; last = s, s = m._sqlite3_next_stmt(db, 0) as number) m._sqlite3_finalize(s);
    await engine.sqlite3.close(db);
  } catch {
    // (dropped with the instance)
  }
}
