/**
 * sql/database.ts — openDatabase() and Database: SQL on a walnut store (the `walnut/sql`
 * subpath). The shape is better-sqlite3's (exec, run/get/all, prepare, transaction; row
 * objects; safeIntegers), made asynchronous because commits are group-committed.
 *
 * One SQLite connection (wa-sqlite in wasm, walnut-vfs.ts) serves every caller. Calls take the
 * connection in call order (serial.ts), run, and give it up as soon as their statements are
 * done — before their commit is durable (early lock release); then they wait for durability
 * (what they committed, or the commits they read). So while one group commit's fsync is
 * pending, the next callers' transactions run and join the next group: many concurrent
 * callers share each fsync.
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
 *    that failure; the pipeline recovers by itself, commit-pipeline.ts). Retry it.
 *  - close() lets the calls already made finish, then refuses new ones (WALNUT_CLOSED), closes
 *    the SQLite connection, waits for the commits in flight and closes the store.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

import { isWalnutError, walnutError, WalnutError } from '../errors';
import { open, type Store } from '../commit/store';
import type { OpenOptions } from '../commit/options';
import { CommitPipeline } from './commit-pipeline';
import { loadEngine, type Engine } from './engine';
import { Serial } from './serial';
import { StatementRunner, type Params, type Row, type RunResult } from './statement-runner';
import { registerWalnutVfs, type VfsSignals } from './walnut-vfs';

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
}

/** The verbs, on the database (each call takes the connection) or on a transaction's `tx`. */
export interface Queryable {
  exec(sql: string): Promise<void>;
  run(sql: string, params?: Params): Promise<RunResult>;
  get(sql: string, params?: Params): Promise<Row | undefined>;
  all(sql: string, params?: Params): Promise<Row[]>;
}

const STATEMENT_CACHE = 64;

export async function openDatabase(path: string, options: DatabaseOptions = {}): Promise<Database> {
  const { safeIntegers = false, holdWriteLease = false, ...storeOptions } = options ?? {};
  if (typeof holdWriteLease !== 'boolean') throw walnutError('WALNUT_INVALID_ARGUMENT', 'option holdWriteLease must be a boolean', { reason: 'holdWriteLease' });
  const engine = await loadEngine();
  const store = await open(path, storeOptions);
  try {
    if (holdWriteLease === true) await store.holdWriteLease();
    const pipeline = new CommitPipeline(store);
    const vfs = registerWalnutVfs(engine, 'walnut', store, pipeline);
    const { C } = engine;
    const db = (await engine.sqlite3.open_v2(store.path, C.SQLITE_OPEN_READWRITE! | C.SQLITE_OPEN_CREATE!, 'walnut')) as number;
    const runner = new StatementRunner(engine, db, safeIntegers === true);
    await runner.exec('PRAGMA journal_mode=MEMORY; PRAGMA temp_store=MEMORY');
    return new Database(engine, db, store, pipeline, vfs, runner);
  } catch (e) {
    await store.close().catch(() => undefined);
    throw e;
  }
}

/** A statement prepared once; runs through its database (or a transaction's tx). */
export class Statement {
  readonly sql: string;
  readonly #db: Database;
  constructor(db: Database, sql: string) {
    this.sql = sql;
    this.#db = db;
  }
  run(params?: Params): Promise<RunResult> {
    return this.#db.run(this.sql, params);
  }
  get(params?: Params): Promise<Row | undefined> {
    return this.#db.get(this.sql, params);
  }
  all(params?: Params): Promise<Row[]> {
    return this.#db.all(this.sql, params);
  }
}

export class Database implements Queryable {
  readonly #engine: Engine;
  readonly #db: number;
  readonly #store: Store;
  readonly #pipeline: CommitPipeline;
  readonly #vfs: VfsSignals;
  readonly #runner: StatementRunner;
  readonly #serial = new Serial();
  /** Prepared statements by SQL text, least recently used first. */
  readonly #statements = new Map<string, number>();
  readonly #inTransaction = new AsyncLocalStorage<Database>();
  #closing: Promise<void> | null = null;

  constructor(engine: Engine, db: number, store: Store, pipeline: CommitPipeline, vfs: VfsSignals, runner: StatementRunner) {
    this.#engine = engine;
    this.#db = db;
    this.#store = store;
    this.#pipeline = pipeline;
    this.#vfs = vfs;
    this.#runner = runner;
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

  exec(sql: string): Promise<void> {
    return this.#call(() => this.#runner.exec(sql));
  }
  run(sql: string, params?: Params): Promise<RunResult> {
    return this.#call(() => this.#run(sql, params));
  }
  get(sql: string, params?: Params): Promise<Row | undefined> {
    return this.#call(async () => (await this.#query(sql, params, 'get'))[0]);
  }
  all(sql: string, params?: Params): Promise<Row[]> {
    return this.#call(() => this.#query(sql, params, 'all'));
  }

  /** A statement checked now (bad SQL rejects here); its runs reuse the prepared form. */
  async prepare(sql: string): Promise<Statement> {
    await this.#call(async () => void (await this.#prepared(sql)));
    return new Statement(this, sql);
  }

  /**
   * Runs `fn` in one transaction (BEGIN IMMEDIATE ... COMMIT); rolls back and rethrows when it
   * throws. Resolves with fn's result once the commit is durable.
   */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    if (typeof fn !== 'function') return Promise.reject(walnutError('WALNUT_INVALID_ARGUMENT', 'transaction() takes an async function', { reason: 'fn' }));
    return this.#call(async () => {
      await this.#runner.exec('BEGIN IMMEDIATE');
      const tx = new TransactionScope(this.#runner, (sql) => this.#prepared(sql), (e) => this.#translate(e));
      let result: T;
      try {
        result = await this.#inTransaction.run(this, () => fn(tx));
        tx.end();
        await tx.idle();
        await this.#runner.exec('COMMIT');
      } catch (e) {
        tx.end();
        await tx.idle();
        if (!this.#engine.sqlite3.get_autocommit(this.#db)) await this.#runner.exec('ROLLBACK').catch(() => undefined);
        throw e;
      }
      return result;
    });
  }

  close(): Promise<void> {
    this.#closing ??= this.#serial.run(async () => {
      for (const stmt of this.#statements.values()) await this.#runner.finalize(stmt).catch(() => undefined);
      this.#statements.clear();
      try {
        await this.#engine.sqlite3.close(this.#db);
      } finally {
        await this.#pipeline.drain();
        await this.#store.close();
      }
    });
    return this.#closing;
  }

  async #run(sql: string, params: Params): Promise<RunResult> {
    await this.#runner.execute(await this.#prepared(sql), params, 'run');
    return this.#runner.runResult();
  }

  async #query(sql: string, params: Params, mode: 'get' | 'all'): Promise<Row[]> {
    return this.#runner.execute(await this.#prepared(sql), params, mode);
  }

  /** The prepared statement for `sql`: from the cache, else prepared now. Connection held. */
  async #prepared(sql: string): Promise<number> {
    const cached = this.#statements.get(sql);
    if (cached !== undefined) {
      this.#statements.delete(sql); // most recently used last
      this.#statements.set(sql, cached);
      return cached;
    }
    const stmt = await this.#runner.prepare(sql);
    this.#statements.set(sql, stmt);
    if (this.#statements.size > STATEMENT_CACHE) {
      const [oldest, handle] = this.#statements.entries().next().value as [string, number];
      this.#statements.delete(oldest);
      await this.#runner.finalize(handle);
    }
    return stmt;
  }

  /** Takes the connection for `job`, then waits for durability outside it. */
  #call<T>(job: () => Promise<T>): Promise<T> {
    if (this.#closing !== null) return Promise.reject(walnutError('WALNUT_CLOSED', 'the database is closed', { path: this.#store.path }));
    if (this.#inTransaction.getStore() === this) {
      return Promise.reject(walnutError('WALNUT_INVALID_ARGUMENT', "inside transaction(), use the transaction's tx (the database waits for the transaction)", { reason: 'transaction' }));
    }
    let durable: Promise<unknown> | null = null;
    const ran = this.#serial.run(async () => {
      this.#vfs.conflict = false;
      this.#vfs.lastError = null;
      try {
        return await job();
      } catch (e) {
        throw this.#translate(e);
      } finally {
        durable = this.#vfs.takeDurability();
      }
    });
    return ran.then(
      async (result) => {
        if (durable !== null) await (durable as Promise<unknown>).catch((e: unknown) => Promise.reject(retryable(e)));
        return result;
      },
      async (e) => {
        if (durable !== null) await (durable as Promise<unknown>).catch(() => undefined);
        throw e;
      },
    );
  }

  /** SQLite's errors as WalnutError. */
  #translate(e: unknown): unknown {
    if (isWalnutError(e)) return e;
    const sqliteCode = (e as { code?: unknown }).code;
    if (typeof sqliteCode !== 'number') return e;
    const message = (e as Error).message;
    if (this.#vfs.conflict) {
      return walnutError('WALNUT_CONFLICT', `another connection committed after this transaction's snapshot; retry it (${message})`, { path: this.#store.path, sqliteCode, reason: 'OtherWriter' });
    }
    const behind = this.#vfs.lastError;
    if (isWalnutError(behind)) {
      return new WalnutError(`${behind.message} (SQLite: ${message})`, { code: behind.code, path: behind.path ?? this.#store.path, errno: behind.errno, syscall: behind.syscall, reason: behind.reason, pgno: behind.pgno, sqliteCode, cause: behind });
    }
    return walnutError('WALNUT_SQL', message, { path: this.#store.path, sqliteCode, cause: e });
  }
}

/**
 * A commit refused because one it was built on failed (the store's WALNUT_FAILED, reason
 * ChainBroken) is, for the transaction, a conflict: nothing of it was written, run it again.
 */
function retryable(e: unknown): unknown {
  if (!isWalnutError(e, 'WALNUT_FAILED') || e.reason !== 'ChainBroken') return e;
  return walnutError('WALNUT_CONFLICT', `a transaction this one was built on failed to commit; retry it (${(e.cause as Error | undefined)?.message ?? e.message})`, { path: e.path, reason: 'ChainBroken', cause: e });
}

/** `tx` of transaction(): the connection is held; its calls run one at a time until fn ends. */
class TransactionScope implements Queryable {
  readonly #runner: StatementRunner;
  readonly #prepared: (sql: string) => Promise<number>;
  readonly #translate: (e: unknown) => unknown;
  readonly #serial = new Serial();
  #last: Promise<unknown> = Promise.resolve();
  #ended = false;

  constructor(runner: StatementRunner, prepared: (sql: string) => Promise<number>, translate: (e: unknown) => unknown) {
    this.#runner = runner;
    this.#prepared = prepared;
    this.#translate = translate;
  }

  exec(sql: string): Promise<void> {
    return this.#call(() => this.#runner.exec(sql));
  }
  run(sql: string, params?: Params): Promise<RunResult> {
    return this.#call(async () => {
      await this.#runner.execute(await this.#prepared(sql), params, 'run');
      return this.#runner.runResult();
    });
  }
  get(sql: string, params?: Params): Promise<Row | undefined> {
    return this.#call(async () => (await this.#runner.execute(await this.#prepared(sql), params, 'get'))[0]);
  }
  all(sql: string, params?: Params): Promise<Row[]> {
    return this.#call(async () => this.#runner.execute(await this.#prepared(sql), params, 'all'));
  }

  end(): void {
    this.#ended = true;
  }
  /** Resolves when the calls made before end() have settled. */
  idle(): Promise<unknown> {
    return this.#last.catch(() => undefined);
  }

  #call<T>(job: () => Promise<T>): Promise<T> {
    if (this.#ended) return Promise.reject(walnutError('WALNUT_INVALID_ARGUMENT', 'the transaction has ended', { reason: 'transaction' }));
    const p = this.#serial.run(async () => {
      try {
        return await job();
      } catch (e) {
        throw this.#translate(e);
      }
    });
    this.#last = p;
    return p;
  }
}
