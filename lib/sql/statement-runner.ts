/**
 * sql/statement-runner.ts — binding parameters, stepping statements, building rows: the parts
 * of a better-sqlite3-shaped API over wa-sqlite's C-level calls. No locking here: callers hold
 * the connection (serial.ts).
 *
 * Parameters follow better-sqlite3: an array binds `?`/`?NNN` in order; an object binds named
 * parameters (`:name`, `@name`, `$name`) by their name without the prefix; a single value
 * binds a statement with one parameter. Values: number, bigint (int64 range), string,
 * Uint8Array (blob; an empty one is an empty blob, not NULL, as in better-sqlite3; any other
 * ArrayBufferView, a Float32Array or a DataView, is the blob of the bytes it views, as
 * better-sqlite3 binds it), boolean (0/1), null. Anything else, a missing or an extra value is
 * WALNUT_INVALID_ARGUMENT before the statement runs. Text goes both ways with its length, never
 * as a NUL-terminated C string (wa-sqlite's bind_text and column_text are: a string holding
 * U+0000 was stored and read cut at it, where better-sqlite3 keeps it whole).
 *
 * The per-run path calls SQLite's C functions directly (binding, step, reset, clear_bindings,
 * the parameter and column names cached per statement): wa-sqlite's wrappers add a promise chain
 * per step and re-read names on every run, a sizeable share of a small transaction's cost. A
 * step that returns SQLITE_BUSY with a retry op queued (the VFS waits for a read lock) is run
 * again once the op settles, as wa-sqlite's own step() does.
 *
 * SQLite here is built without an expression depth limit (SQLITE_MAX_EXPR_DEPTH=0), so a
 * statement nested deeply enough (a chain of thousands of `+`) recurses until the wasm stack
 * runs out: V8 unwinds SQLite's frames with a RangeError, abandoning the call mid-way. That is
 * WALNUT_SQL, reason StackOverflow (where native SQLite says "Expression tree is too large"),
 * and a statement SQLite had half-built then is finalized (it kept the connection from closing).
 * So is a statement whose run recurses that deep (LIKE and GLOB match a pattern one level per
 * wildcard: 20,000 of them, within SQLite's pattern length limit). Either way Emscripten's
 * stack pointer is put back first (engine.ts resetStack: the abandoned frames kept their part,
 * and a few such errors on the module ran its stack over its own data). A step abandoned so is
 * left mid-run, as if it had not failed: its reset committed what it had done so far (an
 * UPDATE that overflowed at its 6th row committed 5 and rejected). It is halted as
 * interrupted instead (sqlite3_interrupt, then one more step, which stops at the interrupt
 * check before any instruction), so SQLite handles it as it handles SQLITE_INTERRUPT: a
 * statement that writes rolls back its transaction (an explicit one too), one that only reads
 * just ends. Left as they are: SQLite's count of running steps (nVdbeExec) stays one too high,
 * and after an overflow while preparing its pointer to the parse in progress (db->pParse)
 * names the abandoned frame; both are read only on paths not taken here (tracing, SQLite's
 * out-of-memory handling, shadow tables under SQLITE_DBCONFIG_DEFENSIVE).
 * An overflow while SQLite loads its schema (a prepare's or a re-prepare's read of
 * sqlite_master, a step's OP_ParseSchema: an entry nested deeper than the wasm stack takes,
 * written by sqlite3 natively) cannot be gone on from: SQLite keeps the entries loaded before
 * it and leaves its schema-loading flag (db->init.busy) set, so it never loads the schema again
 * and went on with the half: a UNIQUE index after the entry was missing, INSERTs wrote
 * duplicates, and sqlite3's integrity_check failed. Such an overflow is told apart by that
 * flag (#schemaLoadAbandoned: SQLite consults no authorizer while it is set) and is WALNUT_SQL,
 * reason SchemaStackOverflow, sqliteCode SQLITE_CORRUPT (native SQLite's answer to a schema it
 * cannot parse, "malformed database schema"); schemaAbandoned is then set, and the connection
 * drops this wasm instance for a fresh one (connection.ts reopen()).
 */
import { asInputError, uint8Length, viewBytes } from '../arguments';
import { walnutError, WalnutError } from '../errors';
import type { Engine } from './engine';
import { mayNameTempSchema, namesAny, TEMP_WORDS, wordsPattern } from './sql-text';

/** A value to bind (any ArrayBufferView binds as a blob of the bytes it views, as in better-sqlite3). */
export type SqlValue = number | bigint | string | ArrayBufferView | boolean | null;
/** A value as checkValue() hands it to #bindValue (a view made a Uint8Array). */
type BindValue = number | bigint | string | Uint8Array | boolean | null;
export type Params = readonly SqlValue[] | Readonly<Record<string, SqlValue>> | SqlValue | undefined;
export type Row = Record<string, unknown>;

export interface RunResult {
  changes: number;
  lastInsertRowid: number | bigint;
}

/**
 * sqlite3_last_insert_rowid() as a statement is about to begin (its int64 as two halves: the
 * build passes an i64 so), and that statement's number among those begun on the connection:
 * what restoreRowid() sets back when the statement's commit is lost, on that runner only.
 */
export interface RowidMark extends StatementMark {
  readonly lo: number;
  readonly hi: number;
}

/** A statement's number among those begun on `runner`'s connection (restoreRowid: none began since). */
export interface StatementMark {
  readonly statement: number;
  readonly runner: StatementRunner;
}

/** SQLite's generic error code (native SQLite's "Expression tree is too large" is one). */
const SQLITE_ERROR = 1;
/** SQLite's code for a schema it cannot parse ("malformed database schema"). */
const SQLITE_CORRUPT = 11;
/** The statement #schemaLoadAbandoned() prepares, NUL-terminated. */
const PROBE_SQL = Buffer.from('SELECT 1\0', 'utf8');
const INT64_MAX = 0x7fffffffffffffffn;
const INT64_MIN = -0x8000000000000000n;

/** What a statement's runs reuse: its parameter names (null: positional) and column names. */
interface StatementShape {
  params: (string | null)[];
  columns: string[] | null;
  /** SQLITE_STMTSTATUS_REPREPARE when `columns` was read. */
  reprepared: number;
}

/** sqlite3_stmt_status() counter (not among wa-sqlite's constants). */
const SQLITE_STMTSTATUS_REPREPARE = 5;
/** How long a read connection's query runs before it lets the event loop turn (the writer's callers run meanwhile). */
const YIELD_MS = 4;
/**
 * Runs of a step after SQLITE_BUSY with a retry op. Each op waits for something real (a read
 * mark possible within the busy timeout, the pipeline's recovery after a failed commit), so a
 * retry does not spin; one is often not enough beside another writer (a sqlite3 commit between
 * the two data-version reads of taking a view, a second recovery right after the first), and
 * a statement that gives up fails WALNUT_BUSY (database.ts). (wa-sqlite's own retry() allows one.)
 */
const STEP_RETRIES = 32;
/**
 * PRAGMAs whose setting changes a query's answer: case_sensitive_like (LIKE answered 1 for
 * 'a' LIKE 'A' on a read connection after the writer set it), full_column_names and
 * short_column_names (a read connection named a column `a` where the writer names it `t.a`),
 * reverse_unordered_selects (the rows of an unordered scan in the other order).
 */
const TEMP_SETTINGS: ReadonlySet<string> = new Set(['case_sensitive_like', 'full_column_names', 'short_column_names', 'reverse_unordered_selects']);
/**
 * SQL text that may give this connection something another connection lacks, which changes
 * what a query answers: a TEMP object (sql-text.ts mayNameTempSchema), or a per-connection
 * setting that changes a query's answer (TEMP_SETTINGS). See mayHaveTempObjects. TEMP_SQL is
 * the words such text surely holds; only text holding one is tokenized.
 */
const TEMP_SQL = wordsPattern([...TEMP_WORDS, ...TEMP_SETTINGS]);
/**
 * SQL text that may give this connection tables of its own: TEMP ones (mayNameTempSchema), an
 * attached database (ATTACH ':memory:'). See mayHaveOwnTables. OWN_TABLES_SQL: the words such
 * text surely holds.
 */
const ATTACH: ReadonlySet<string> = new Set(['attach']);
const OWN_TABLES_SQL = wordsPattern([...TEMP_WORDS, ...ATTACH]);
/**
 * A PRAGMA journal_mode: the VFS answers it ("wal", walnut-vfs.ts #pragma), and SQLite names a
 * PRAGMA's column after the answer the VFS gave (the column was "wal"); its name is journal_mode.
 */
const JOURNAL_MODE_PRAGMA = /^\s*PRAGMA\b[^;]*\bjournal_mode\b/i;

export class StatementRunner {
  readonly #e: Engine;
  readonly #db: number;
  readonly #safeIntegers: boolean;
  readonly #yields: boolean;
  readonly #shapes = new Map<number, StatementShape>();
  #mayHaveTemp = false;
  #mayHaveOwnTables = false;
  readonly #statementEnded: () => void;
  /** Stack overflows whose step #halt() stopped (their message says so). */
  readonly #halted = new WeakSet<RangeError>();
  /** Of #halted, those whose step ran in a transaction (which the halt rolled back). */
  readonly #haltedInTransaction = new WeakSet<RangeError>();
  #schemaAbandoned = false;
  /** A transaction was open when the schema load was abandoned (the overflow's halt may have rolled it back since). */
  #abandonedInTransaction = false;
  /** The number of the newest statement begun on this connection (execute() runs, exec()'s statements; restoreRowid). */
  #begun = 0;

  /**
   * `yields`: a query returning many rows gives the event loop a turn every YIELD_MS (a read
   * connection's). `statementEnded`: told after each statement exec() ran (the VFS's
   * endStatement(): a call's earlier statements' reads are the call's).
   */
  constructor(engine: Engine, db: number, safeIntegers: boolean, yields = false, statementEnded: () => void = () => undefined) {
    this.#e = engine;
    this.#db = db;
    this.#safeIntegers = safeIntegers;
    this.#yields = yields;
    this.#statementEnded = statementEnded;
  }

  /**
   * True once SQL that may name the TEMP schema (CREATE TEMP .., temp.x) or one of the settings
   * of TEMP_SETTINGS was prepared or run here (sticky): the connection may hold TEMP objects,
   * which may shadow main's of the same name (or compare LIKE otherwise), so what another
   * connection answers for a query need not be what this one would (database.ts routes every
   * read here). A word temp elsewhere (a column, a string) is not (sql-text.ts).
   */
  get mayHaveTempObjects(): boolean {
    return this.#mayHaveTemp;
  }

  /**
   * True once SQL that may name the TEMP schema (CREATE TEMP .., temp.x) or holds the word ATTACH
   * was prepared or run here (sticky): the connection may hold tables of its own (a TEMP table
   * or trigger, a table of an attached ':memory:' database), which a statement may write without
   * naming them so, and which keep what it wrote when its commit of the database file is lost
   * (exec-progress.ts).
   */
  get mayHaveOwnTables(): boolean {
    return this.#mayHaveOwnTables;
  }

  /**
   * True once the wasm stack ran out while SQLite loaded its schema (header comment): SQLite
   * holds a half-loaded schema it will not load again, and no statement may run on it.
   */
  get schemaAbandoned(): boolean {
    return this.#schemaAbandoned;
  }

  /**
   * True when schemaAbandoned came in a transaction: it is lost with the instance (the halt of
   * the statement whose step overflowed rolled it back at once: the connection is then in
   * autocommit, and the transaction's rows are gone all the same).
   */
  get abandonedInTransaction(): boolean {
    return this.#abandonedInTransaction;
  }

  /**
   * What prepare() and exec() ask of SQL text before it runs: a string (else
   * WALNUT_INVALID_ARGUMENT), and whether it may give this connection what others lack
   * (mayHaveTempObjects, mayHaveOwnTables).
   */
  #takeSqlText(sql: string): void {
    if (typeof sql !== 'string') throw walnutError('WALNUT_INVALID_ARGUMENT', 'sql must be a string', { reason: 'sql' });
    if (!this.#mayHaveTemp && TEMP_SQL.test(sql) && (mayNameTempSchema(sql) || namesAny(sql, TEMP_SETTINGS))) this.#mayHaveTemp = true;
    if (!this.#mayHaveOwnTables && OWN_TABLES_SQL.test(sql) && (mayNameTempSchema(sql) || namesAny(sql, ATTACH))) this.#mayHaveOwnTables = true;
  }

  /** Prepares exactly one statement (WALNUT_INVALID_ARGUMENT for none or several). */
  async prepare(sql: string): Promise<number> {
    this.#takeSqlText(sql);
    const m = this.#e.module;
    const newest = m._sqlite3_next_stmt(this.#db, 0) as number;
    for (let retries = 0; ; retries++) {
      try {
        return await this.#prepare(sql);
      } catch (e) {
        // SQLITE_BUSY with a retry op still queued: wa-sqlite's prepare waits for one op and
        // gives up at the second (a read lock for the schema, busy twice beside a sqlite3
        // writer); prepared again, as #stepAgain steps again
        const ops = m.retryOps as Promise<unknown>[];
        m.retryOps = [];
        if ((e as { code?: unknown }).code !== this.#e.C.SQLITE_BUSY || ops.length === 0 || retries >= STEP_RETRIES) {
          for (const op of ops) op.catch(() => undefined); // (not waited for: its failure is no one's, never an unhandled rejection)
          throw this.#extended(this.#stackOverflow(e, newest));
        }
        await Promise.all(ops);
      }
    }
  }

  async #prepare(sql: string): Promise<number> {
    const it = this.#e.sqlite3.statements(this.#db, sql, { unscoped: true });
    const first = await it.next();
    if (first.done) {
      await it.return();
      throw walnutError('WALNUT_INVALID_ARGUMENT', 'the SQL text holds no statement', { reason: 'sql' });
    }
    let second;
    try {
      second = await it.next();
    } catch (e) {
      await this.finalize(first.value);
      throw e;
    }
    await it.return();
    if (!second.done) {
      await this.finalize(first.value);
      await this.finalize(second.value);
      throw walnutError('WALNUT_INVALID_ARGUMENT', 'the SQL text holds more than one statement (use exec())', { reason: 'sql' });
    }
    return first.value as number;
  }

  async finalize(stmt: number): Promise<void> {
    this.#shapes.delete(stmt);
    await this.#e.sqlite3.finalize(stmt);
  }

  /** True when `stmt` only reads and returns rows (a query a read connection can serve). */
  isQuery(stmt: number): boolean {
    return this.isReadOnly(stmt) && this.#e.module._sqlite3_column_count(stmt) > 0;
  }

  /** True when `stmt` makes no change to the database (sqlite3_stmt_readonly). */
  isReadOnly(stmt: number): boolean {
    return this.#e.module._sqlite3_stmt_readonly(stmt) !== 0;
  }

  /**
   * Runs `stmt` with `params`: every row ('all'), the first ('get') or none ('run'). 'get' of a
   * statement that writes (INSERT/UPDATE/DELETE ... RETURNING) still steps to its end: outside a
   * transaction its commit comes at the end, and on a walnut store that commit can fail
   * (another connection committed meanwhile: SQLite backs it out, walnut-vfs.ts); stopped at
   * the first row, the reset ran that commit and its failure went unseen (the caller had the
   * row of a write rolled back: test/hostile/sql-get-returning-commit.test.ts). On the
   * writer synchronously, unless a step must wait (SQLITE_BUSY with a retry op queued) or fails:
   * then the rest runs asynchronously (#stepAsync) and a promise is returned (a promise per call
   * was a measurable share of a lone caller's transaction). A read connection's runs are always
   * asynchronous: a query returning many rows gives the event loop a turn every YIELD_MS.
   */
  execute(stmt: number, params: Params, mode: 'run' | 'get' | 'all'): Row[] | Promise<Row[]> {
    const { module: m, C } = this.#e;
    const { SQLITE_ROW, SQLITE_DONE } = C;
    const shape = this.#shape(stmt);
    this.#bind(stmt, shape, params);
    this.#begun++;
    const rows: Row[] = [];
    // the newest statement before the run: one SQLite prepares inside a step that the wasm stack
    // running out abandons (a schema load's) is finalized (#stackOverflow)
    const newest = m._sqlite3_next_stmt(this.#db, 0) as number;
    if (this.#yields) return this.#stepAsync(stmt, shape, mode, rows, newest, null);
    const one = mode === 'get';
    const toEnd = one && m._sqlite3_stmt_readonly(stmt) === 0;
    let rc: number | null = null;
    let rowSeen = false;
    try {
      for (;;) {
        rc = m._sqlite3_step(stmt) as number;
        if (rc !== SQLITE_ROW) break;
        rc = null;
        rowSeen = true;
        if (mode === 'run' || (one && rows.length > 0)) continue; // (a get stepping to its end: toEnd)
        rows.push(this.#row(stmt, this.#columns(stmt, shape)));
        if (one && !toEnd) break;
      }
    } catch (e) {
      rc = null;
      throw this.#stackOverflow(e, newest, stmt);
    } finally {
      // ends the statement (and its read transaction, in autocommit); its error is the step's, thrown above
      if (rc === null || rc === SQLITE_DONE) this.#endRun(stmt);
    }
    // a step to wait for or a failure: #stepAsync takes over (and ends the run)
    return rc === null || rc === SQLITE_DONE ? rows : this.#stepAsync(stmt, shape, mode, rows, newest, rc, rowSeen);
  }

  /**
   * execute()'s steps, asynchronously: from a step that returned `rc` (not a row, not done;
   * null: from the next step) on, waiting for retry ops and, on a read connection, giving the
   * event loop a turn every YIELD_MS of rows.
   */
  async #stepAsync(stmt: number, shape: StatementShape, mode: 'run' | 'get' | 'all', rows: Row[], newest: number, rc: number | null, rowSeen = false): Promise<Row[]> {
    const { module: m, C } = this.#e;
    let turnEnds = this.#yields ? performance.now() + YIELD_MS : Infinity;
    const one = mode === 'get';
    const toEnd = one && m._sqlite3_stmt_readonly(stmt) === 0; // (execute())
    try {
      for (;;) {
        if (rc === null) {
          if ((rows.length & 63) === 63 && performance.now() > turnEnds) {
            await new Promise((resolve) => setImmediate(resolve));
            turnEnds = performance.now() + YIELD_MS;
          }
          rc = m._sqlite3_step(stmt) as number;
        }
        if (rc !== C.SQLITE_ROW && rc !== C.SQLITE_DONE) rc = await this.#stepAgain(stmt, rc, rowSeen);
        if (rc !== C.SQLITE_ROW) break;
        rc = null;
        rowSeen = true;
        if (mode === 'run' || (one && rows.length > 0)) continue;
        rows.push(this.#row(stmt, this.#columns(stmt, shape)));
        if (one && !toEnd) break;
      }
    } catch (e) {
      throw this.#stackOverflow(e, newest, stmt);
    } finally {
      this.#endRun(stmt);
    }
    return rows;
  }

  /** Ends a run of the statement: reset (its read transaction ends, in autocommit) and bindings cleared. */
  #endRun(stmt: number): void {
    const m = this.#e.module;
    m._sqlite3_reset(stmt);
    m._sqlite3_clear_bindings(stmt);
  }

  /**
   * After a step returned `rc`: runs it again once a queued retry op settled, or after a turn of
   * the event loop when SQLite gave up re-preparing it (SQLITE_SCHEMA before its first row:
   * SQLite re-prepares a statement up to 50 times when the schema changed under it, and fails
   * when it changed each time; a sqlite3 process creating a table every few milliseconds beside
   * a schema of a few thousand tables, each load of which in wasm took longer, failed plain
   * INSERTs so); else throws SQLite's error.
   */
  async #stepAgain(stmt: number, rc: number, rowSeen: boolean): Promise<number> {
    const { module: m, C } = this.#e;
    for (let retries = 0; ((rc === C.SQLITE_BUSY && m.retryOps.length > 0) || (rc === C.SQLITE_SCHEMA && !rowSeen)) && retries < STEP_RETRIES; retries++) {
      const ops = m.retryOps as Promise<unknown>[];
      m.retryOps = [];
      if (ops.length > 0) await Promise.all(ops);
      else await new Promise((resolve) => setImmediate(resolve));
      rc = m._sqlite3_step(stmt) as number;
      if (rc === C.SQLITE_ROW || rc === C.SQLITE_DONE) return rc;
    }
    for (const op of m.retryOps as Promise<unknown>[]) op.catch(() => undefined); // (given up on: its failure is no one's)
    m.retryOps = [];
    throw this.#sqliteError(rc);
  }

  /** The column names, read again after SQLite re-prepared the statement (a schema change may change them). */
  #columns(stmt: number, shape: StatementShape): string[] {
    const reprepared = this.#e.module._sqlite3_stmt_status(stmt, SQLITE_STMTSTATUS_REPREPARE, 0) as number;
    if (shape.columns === null || shape.reprepared !== reprepared) {
      shape.columns = this.#e.sqlite3.column_names(stmt) as string[];
      if (shape.columns.length === 1 && shape.columns[0] === 'wal' && JOURNAL_MODE_PRAGMA.test(this.#e.sqlite3.sql(stmt) as string)) shape.columns = ['journal_mode'];
      shape.reprepared = reprepared;
    }
    return shape.columns;
  }

  #shape(stmt: number): StatementShape {
    let shape = this.#shapes.get(stmt);
    if (shape === undefined) {
      const { sqlite3 } = this.#e;
      const count = sqlite3.bind_parameter_count(stmt) as number;
      const params: (string | null)[] = [];
      for (let i = 1; i <= count; i++) {
        const name = sqlite3.bind_parameter_name(stmt, i) as string | null;
        params.push(name === null || name === '' || name[0] === '?' ? null : name);
      }
      shape = { params, columns: null, reprepared: 0 };
      this.#shapes.set(stmt, shape);
    }
    return shape;
  }

  /** SQLite's count of every row changed on this connection so far (runResult()'s `before`). */
  totalChanges(): number {
    return this.#e.module._sqlite3_total_changes(this.#db) as number;
  }

  /** The mark of the statement about to begin (the next execute() or exec() statement): its last_insert_rowid() before it. */
  markRowid(): RowidMark {
    const m = this.#e.module;
    const lo = m._sqlite3_last_insert_rowid(this.#db) as number;
    return { lo, hi: m.getTempRet0() as number, statement: this.#begun + 1, runner: this };
  }

  /** The mark of the statement about to begin, without its rowid (restoreRowid's `newest` once it ran; no wasm call). */
  nextStatement(): StatementMark {
    return { statement: this.#begun + 1, runner: this };
  }

  /** The mark of the newest statement begun on the connection (restoreRowid's `newest`; no wasm call). */
  newestStatement(): StatementMark {
    return { statement: this.#begun, runner: this };
  }

  /**
   * Sets last_insert_rowid() back to what it was before `before`'s statement, when the newest
   * statement begun on the connection is `newest`'s (default: that one itself): a statement (or
   * a transaction's, from its BEGIN to its COMMIT) whose commit was lost (another connection's
   * overtook it, one it was built on failed, its write failed) left the rowid of a row that is
   * not there, and a run again (or the caller's retry) reading last_insert_rowid() read that (a
   * child row pointed at its own rowid). A statement begun since may have set it, or read it:
   * then it is no longer the lost one's to undo (false).
   */
  restoreRowid(before: RowidMark, newest: StatementMark = before): boolean {
    if (newest.runner !== this || this.#begun !== newest.statement) return false;
    return this.setRowidBack(before);
  }

  /**
   * restoreRowid() for a caller that knows no statement began since the lost work's last: it is
   * told of the failure as the statement fails (a transaction's statement, its COMMIT among
   * them, lost as it ran). False when `before` is another runner's (a reopen() made a new one).
   */
  setRowidBack(before: RowidMark): boolean {
    if (before.runner !== this) return false;
    this.adoptRowid(before);
    return true;
  }

  /**
   * Sets last_insert_rowid() to `mark`'s, whichever runner's: on a fresh instance, the rowid the
   * one reopen() dropped left (connection.ts), as native SQLite's connection, never dropped, keeps it.
   */
  adoptRowid(mark: RowidMark): void {
    this.#e.module._sqlite3_set_last_insert_rowid(this.#db, mark.lo, mark.hi);
  }

  /**
   * The last statement's changes and the connection's last rowid. `before`: totalChanges() as
   * the statement began: a statement that changed no rows (CREATE TABLE, SELECT, PRAGMA) answers
   * 0, as better-sqlite3 does; sqlite3_changes() alone is set by INSERT, UPDATE and DELETE only,
   * so it answered the count of the last write before such a statement.
   */
  runResult(before: number): RunResult {
    const m = this.#e.module;
    const changes = (m._sqlite3_total_changes(this.#db) as number) === before ? 0 : (m._sqlite3_changes(this.#db) as number);
    // sqlite3_last_insert_rowid's int64 comes as two halves (the wrapper's number return would
    // cut it to 32 bits): a number while it is a safe integer (no BigInt made), else a bigint
    const lo = (m._sqlite3_last_insert_rowid(this.#db) as number) >>> 0;
    const hi = m.getTempRet0() as number; // signed high half
    const id = hi * 0x100000000 + lo; // exact while safe (past 2^53 it is not a safe integer either way)
    if (!this.#safeIntegers && Number.isSafeInteger(id)) return { changes, lastInsertRowid: id };
    return { changes, lastInsertRowid: (BigInt(hi) << 32n) | BigInt(lo) };
  }

  /**
   * Runs every statement of `sql`. `refuse`, when given, sees each statement's own text and the
   * byte offset in `sql` where it begins before it runs, and may throw (or return a promise
   * that rejects) to stop there (the statements before it have run); the statement runs once
   * a promise it returned resolved. `again`, when given, is asked about a statement's failure
   * (SQLite's error, untranslated): null to fail with it, else a promise; the statement is reset
   * at once and, when the promise resolves true, stepped again from its start (an autocommit
   * statement another connection overtook, which wrote nothing: database.ts).
   */
  async exec(sql: string, refuse?: (statement: string, offset: number) => Promise<unknown> | void, again?: (e: unknown) => Promise<boolean> | null): Promise<void> {
    this.#takeSqlText(sql);
    const newest = this.#e.module._sqlite3_next_stmt(this.#db, 0) as number;
    try {
      await this.#exec(sql, refuse, again);
    } catch (e) {
      throw this.#extended(this.#stackOverflow(e, newest));
    }
  }

  /**
   * Each statement stepped to its end as execute() steps (a wait for a retry op, a statement
   * SQLite gave up re-preparing stepped again: #stepAgain), then statementEnded(). Statements
   * are prepared one after the other from the rest of the text (#prepareNext, which waits for
   * a read lock as a step does: wa-sqlite's statements() gave up at the second SQLITE_BUSY,
   * and exec() failed WALNUT_BUSY where the schema read for its next statement met a read lock
   * busy twice: test/hostile/sql-open-read-locks-busy); an empty statement (`;;`) or a comment
   * is skipped, and the statements after it run, as sqlite3_exec() runs them.
   */
  async #exec(sql: string, refuse?: (statement: string, offset: number) => Promise<unknown> | void, again?: (e: unknown) => Promise<boolean> | null): Promise<void> {
    const { module: m, C } = this.#e;
    const bytes = Buffer.from(sql, 'utf8');
    // the text NUL-terminated in wasm memory (a U+0000 inside ends it, as a C string's does),
    // and room for prepare's two out-pointers (the statement, the rest of the text)
    const head = m._sqlite3_malloc(bytes.length + 1) as number;
    const out = m._sqlite3_malloc(8) as number;
    try {
      if (head === 0 || out === 0) throw Object.assign(new Error(`out of memory: the SQL text needs ${bytes.length + 1} bytes`), { code: C.SQLITE_NOMEM! });
      (m.HEAPU8 as Uint8Array).set(bytes, head);
      (m.HEAPU8 as Uint8Array)[head + bytes.length] = 0;
      const end = head + bytes.length;
      for (let at = head; at < end; ) {
        const { stmt, tail } = await this.#prepareNext(at, end + 1 - at, out);
        if (stmt === 0 && tail <= at) break; // nothing more SQLite can read
        const begins = at;
        at = tail;
        if (stmt === 0) continue; // whitespace, a comment, an empty statement
        try {
          const wait = refuse?.(m.UTF8ToString(m._sqlite3_sql(stmt)) as string, begins - head);
          if (wait !== undefined) await wait;
          this.#begun++;
          // stepped as execute() steps (#stepAgain: up to STEP_RETRIES waits for a retry op, SQLITE_SCHEMA
          // before a row), not by wa-sqlite's step(), which gives up after one retry
          let rowSeen = false;
          for (;;) {
            let rc: number;
            try {
              rc = m._sqlite3_step(stmt) as number;
              if (rc !== C.SQLITE_ROW && rc !== C.SQLITE_DONE) rc = await this.#stepAgain(stmt, rc, rowSeen);
            } catch (e) {
              // (a stack overflow is halted below, never run again)
              const retry = e instanceof RangeError ? null : (again?.(e) ?? null);
              if (retry === null) throw e;
              m._sqlite3_reset(stmt); // (its read transaction ends: a run again takes a new view)
              if (!(await retry)) throw e;
              rowSeen = false;
              continue;
            }
            if (rc !== C.SQLITE_ROW) break;
            rowSeen = true;
          }
        } catch (e) {
          this.#halt(e, stmt); // before the finalize, which would commit an abandoned step's work (exec() makes `e` WALNUT_SQL)
          throw e;
        } finally {
          m._sqlite3_finalize(stmt);
        }
        this.#statementEnded();
      }
    } finally {
      if (head !== 0) m._sqlite3_free(head);
      if (out !== 0) m._sqlite3_free(out);
    }
  }

  /**
   * sqlite3_prepare_v3 of the first statement of the NUL-terminated text at `zSql` (`nByte`
   * bytes with the NUL), its out-pointers at `out`: the statement (0 for none) and where the
   * rest of the text begins. SQLITE_BUSY with a retry op queued (the VFS waits for a read lock,
   * for the schema) is prepared again once the op settled, up to STEP_RETRIES times, as
   * #stepAgain steps again.
   */
  async #prepareNext(zSql: number, nByte: number, out: number): Promise<{ stmt: number; tail: number }> {
    const { module: m, C } = this.#e;
    for (let retries = 0; ; retries++) {
      const rc = m._sqlite3_prepare_v3(this.#db, zSql, nByte, 0, out, out + 4) as number;
      if (rc === C.SQLITE_OK) {
        const heap = m.HEAP32 as Int32Array; // (read after the call: the heap may have grown)
        return { stmt: heap[out >> 2]! >>> 0, tail: heap[(out >> 2) + 1]! >>> 0 };
      }
      const ops = m.retryOps as Promise<unknown>[];
      m.retryOps = [];
      if (rc !== C.SQLITE_BUSY || ops.length === 0 || retries >= STEP_RETRIES) {
        for (const op of ops) op.catch(() => undefined); // (not waited for: its failure is no one's)
        throw this.#sqliteError(rc);
      }
      await Promise.all(ops);
    }
  }

  /**
   * `e` as thrown by SQLite's wasm; the wasm stack running out (header comment) becomes
   * WALNUT_SQL, StackOverflow, after Emscripten's stack pointer is put back, `stepping` (the
   * statement whose step was abandoned, if any) halted as interrupted, and the statements
   * created since `newest` (the connection's newest statement before the call, which SQLite
   * lists first; null: the call created none) finalized.
   */
  #stackOverflow(e: unknown, newest: number | null, stepping?: number): unknown {
    if (!isStackOverflow(e)) return e;
    const m = this.#e.module;
    if (stepping !== undefined) this.#halt(e, stepping);
    else this.#e.resetStack();
    const halted = this.#halted.has(e);
    // (a halt rolled back the transaction the step ran in: it told whether there was one)
    const inTransaction = halted ? this.#haltedInTransaction.has(e) : this.#inTransaction();
    if (newest !== null) {
      for (let s = m._sqlite3_next_stmt(this.#db, 0) as number; s !== 0 && s !== newest; s = m._sqlite3_next_stmt(this.#db, 0) as number) {
        this.#shapes.delete(s);
        m._sqlite3_finalize(s);
      }
    }
    if (this.#schemaLoadAbandoned()) {
      this.#schemaAbandoned = true;
      this.#abandonedInTransaction = inTransaction;
      return walnutError('WALNUT_SQL', `malformed database schema: an entry of it is nested too deeply for SQLite's stack in wasm, which ran out while SQLite loaded the schema; nothing of the statement was written (a transaction it ran in is rolled back) and the connection is opened again on a fresh SQLite instance: ${e.message}`, { reason: 'SchemaStackOverflow', sqliteCode: SQLITE_CORRUPT, cause: e });
    }
    const stopped = halted ? ': its run was stopped as an interrupted one (nothing of it was written; one that writes rolled back the transaction it ran in)' : '';
    return walnutError('WALNUT_SQL', `the statement needs more stack than SQLite has in wasm (nested too deeply, or a LIKE/GLOB pattern of too many wildcards)${stopped}: ${e.message}`, { reason: 'StackOverflow', sqliteCode: SQLITE_ERROR, cause: e });
  }

  /**
   * True when SQLite's schema-loading flag (db->init.busy) is still set after a stack overflow:
   * its schema load was abandoned (header comment). SQLite consults no authorizer while the
   * flag is set (sqlite3AuthCheck), so `SELECT 1` is prepared with one installed: it is
   * consulted (SQLITE_SELECT) unless the flag is set. The flag is internal to SQLite; this is
   * the one public way it shows.
   */
  #schemaLoadAbandoned(): boolean {
    const m = this.#e.module;
    let consulted = false;
    const text = m._sqlite3_malloc(PROBE_SQL.length) as number;
    const out = m._sqlite3_malloc(4) as number;
    try {
      if (text === 0 || out === 0) return false; // (out of memory: not told apart, the plain overflow)
      (m.HEAPU8 as Uint8Array).set(PROBE_SQL, text);
      m.set_authorizer(this.#db, () => ((consulted = true), this.#e.C.SQLITE_OK), 0);
      (m.HEAP32 as Int32Array)[out >> 2] = 0;
      m._sqlite3_prepare_v3(this.#db, text, -1, 0, out, 0);
      const stmt = (m.HEAP32 as Int32Array)[out >> 2]! >>> 0;
      if (stmt !== 0) m._sqlite3_finalize(stmt);
    } finally {
      m.set_authorizer(this.#db, null, 0);
      if (text !== 0) m._sqlite3_free(text);
      if (out !== 0) m._sqlite3_free(out);
    }
    return !consulted;
  }

  /** The connection is in a transaction (not in autocommit). */
  #inTransaction(): boolean {
    return (this.#e.module._sqlite3_get_autocommit(this.#db) as number) === 0;
  }

  /**
   * After `e`: when it is the wasm stack running out, Emscripten's stack pointer is put back and
   * `stmt`, whose step it abandoned, is halted as interrupted (header comment): one more step
   * stops at the interrupt check, SQLITE_INTERRUPT (or, were it no longer running, whatever
   * that step gives: a reset or finalize follows either way). A statement that writes rolls
   * back its transaction then, one that only reads ends.
   */
  #halt(e: unknown, stmt: number): void {
    if (!isStackOverflow(e)) return;
    this.#halted.add(e);
    const m = this.#e.module;
    this.#e.resetStack();
    if (this.#inTransaction()) this.#haltedInTransaction.add(e);
    m._sqlite3_interrupt(this.#db);
    m._sqlite3_step(stmt);
  }

  #row(stmt: number, names: string[]): Row {
    const { sqlite3, C } = this.#e;
    const row: Row = {};
    for (let i = 0; i < names.length; i++) {
      const type = sqlite3.column_type(stmt, i) as number;
      let v: unknown;
      if (type === C.SQLITE_INTEGER) {
        const big = sqlite3.column_int64(stmt, i) as bigint;
        v = this.#safeIntegers ? big : Number(big);
      } else if (type === C.SQLITE_BLOB) {
        v = Buffer.from(sqlite3.column_blob(stmt, i) as Uint8Array); // a copy: the wasm heap moves on
      } else if (type === C.SQLITE_TEXT) {
        v = columnText(this.#e.module, stmt, i);
      } else {
        v = sqlite3.column(stmt, i);
      }
      row[names[i]!] = v;
    }
    return row;
  }

  #bind(stmt: number, shape: StatementShape, params: Params): void {
    const count = shape.params.length;
    let isList: boolean;
    let isNamed: boolean;
    let listLength: number;
    try {
      isList = Array.isArray(params); // (a revoked Proxy throws here)
      isNamed = !isList && params !== null && typeof params === 'object' && !ArrayBuffer.isView(params);
      listLength = isList ? (params as unknown[]).length : isNamed || params === undefined ? 0 : 1;
    } catch (e) {
      throw asInputError(e, 'params');
    }
    let positional = 0;
    for (let i = 1; i <= count; i++) {
      const name = shape.params[i - 1]!;
      let value: unknown;
      // reading the caller's params may run its code (a getter, a Proxy trap): what that throws
      // is WALNUT_INVALID_ARGUMENT, before anything was stepped
      try {
        if (name === null) {
          if (positional >= listLength) throw walnutError('WALNUT_INVALID_ARGUMENT', `missing value for parameter ${i}`, { reason: 'params' });
          value = isList ? (params as unknown[])[positional++] : (positional++, params);
        } else {
          const key = name.slice(1);
          if (!isNamed || !Object.prototype.hasOwnProperty.call(params, key)) {
            throw walnutError('WALNUT_INVALID_ARGUMENT', `missing named parameter ${name}`, { reason: 'params' });
          }
          value = (params as Record<string, unknown>)[key];
        }
      } catch (e) {
        throw asInputError(e, 'params');
      }
      this.#bindValue(stmt, i, checkValue(value, name ?? String(i)));
    }
    if (positional < listLength) throw walnutError('WALNUT_INVALID_ARGUMENT', `${listLength} values for ${positional} positional parameters`, { reason: 'params' });
  }

  /**
   * Binds one checked value with SQLite's C functions (wa-sqlite's bind() goes through cwrap'd
   * wrappers and TextEncoder: a fresh array per string); bigint and non-empty blobs the
   * package's way.
   */
  #bindValue(stmt: number, i: number, value: BindValue): void {
    const m = this.#e.module;
    let rc: number;
    if (typeof value === 'string') rc = this.#bindText(stmt, i, value);
    else if (typeof value === 'number') rc = value === (value | 0) ? m._sqlite3_bind_int(stmt, i, value) : m._sqlite3_bind_double(stmt, i, value);
    else if (typeof value === 'boolean') rc = m._sqlite3_bind_int(stmt, i, value ? 1 : 0);
    else if (value === null) rc = m._sqlite3_bind_null(stmt, i);
    else if (value instanceof Uint8Array) rc = this.#bindBlob(stmt, i, value);
    else return void this.#e.sqlite3.bind(stmt, i, value); // (throws on a failure itself)
    if (rc !== this.#e.C.SQLITE_OK) throw this.#sqliteError(rc);
  }

  /**
   * sqlite3_bind_blob of the typed array's own bytes (a copy SQLite frees), its size read with
   * the intrinsic getter: wa-sqlite's bind_blob allocated `value.byteLength` bytes and copied the
   * whole array there, so a byteLength that said less than the array holds (an own property, a
   * subclass's getter) overflowed the allocation into SQLite's heap (a RuntimeError, then every
   * later statement of the connection too). An empty blob binds as a zero-length blob
   * (sqlite3_malloc(0) is a null pointer, which SQLite binds as NULL).
   */
  #bindBlob(stmt: number, i: number, value: Uint8Array): number {
    const m = this.#e.module;
    const length = uint8Length(value);
    if (length === 0) return m._sqlite3_bind_zeroblob(stmt, i, 0) as number;
    const ptr = m._sqlite3_malloc(length) as number;
    if (ptr === 0) throw Object.assign(new Error(`out of memory: parameter ${i}'s blob needs ${length} bytes`), { code: this.#e.C.SQLITE_NOMEM! });
    (m.HEAPU8 as Uint8Array).set(value, ptr); // the heap as it is after the malloc (which may grow it); exactly `length` bytes
    return m._sqlite3_bind_blob(stmt, i, ptr, length, m._getSqliteFree()) as number;
  }

  /**
   * sqlite3_bind_text with the UTF-8 length (a copy SQLite frees: it owns it even when the bind
   * fails), encoded straight into wasm memory; a U+0000 inside is kept (the package's bind_text
   * passes a C string).
   */
  #bindText(stmt: number, i: number, text: string): number {
    const m = this.#e.module;
    // room for the worst case (3 bytes per UTF-16 unit) unless that is much: then exactly
    const room = text.length <= 4096 ? text.length * 3 : Buffer.byteLength(text, 'utf8');
    const ptr = m._sqlite3_malloc(Math.max(room, 1)) as number; // never 0 bytes: a null pointer binds NULL
    // SQLite's own bind fails so when its copy cannot be made: SQLITE_NOMEM (WALNUT_SQL with
    // sqliteCode 7), a resource failure, not a bad argument
    if (ptr === 0) throw Object.assign(new Error(`out of memory: parameter ${i}'s string needs ${room} bytes`), { code: this.#e.C.SQLITE_NOMEM! });
    const n = heapBuffer(m).write(text, ptr, room, 'utf8');
    return m._sqlite3_bind_text(stmt, i, ptr, n, m._getSqliteFree()) as number;
  }

  /** SQLite's error `rc` on this connection, as wa-sqlite throws them (the message, `code`: the extended result code). */
  #sqliteError(rc: number): Error {
    const message = this.#e.module.ccall('sqlite3_errmsg', 'string', ['number'], [this.#db]) as string;
    return Object.assign(new Error(message), { code: this.#extendedCode(rc) });
  }

  /**
   * The extended result code of the error `rc` (a primary code: sqlite3_step and wa-sqlite's
   * wrappers return those, the connection has no extended result codes turned on) that the
   * connection just met, as better-sqlite3 reports it (SQLITE_CONSTRAINT_UNIQUE, 2067, not
   * SQLITE_CONSTRAINT, 19); `rc` itself when the connection's last error is another one.
   */
  #extendedCode(rc: number): number {
    const extended = this.#e.module._sqlite3_extended_errcode(this.#db) as number;
    return (extended & 0xff) === rc ? extended : rc;
  }

  /** An error wa-sqlite threw for this connection, its `code` made the extended result code (#extendedCode). */
  #extended(e: unknown): unknown {
    const code = (e as { code?: unknown } | null)?.code;
    if (typeof code === 'number' && !(e instanceof WalnutError)) (e as { code: number }).code = this.#extendedCode(code);
    return e;
  }
}

/** The wasm heap as a Buffer (one per heap: it is replaced when the heap grows), for Node's native UTF-8 decoding. */
const heaps = new WeakMap<ArrayBufferLike, Buffer>();

/** The wasm heap as a Buffer now (take it after any call that may grow the heap). */
function heapBuffer(m: Engine['module']): Buffer {
  const memory = (m.HEAPU8 as Uint8Array).buffer;
  let heap = heaps.get(memory);
  if (heap === undefined) heaps.set(memory, (heap = Buffer.from(memory)));
  return heap;
}

/** A TEXT column's value by its length (column_text's C string stops at a U+0000 inside). */
function columnText(m: Engine['module'], stmt: number, i: number): string {
  const ptr = m._sqlite3_column_text(stmt, i) as number;
  const n = m._sqlite3_column_bytes(stmt, i) as number;
  if (n === 0) return '';
  return heapBuffer(m).toString('utf8', ptr, ptr + n);
}

/** V8's RangeError for its stack running out (inside SQLite's wasm: header comment). */
function isStackOverflow(e: unknown): e is RangeError {
  return e instanceof RangeError && /call stack/i.test(e.message);
}

function checkValue(value: unknown, name: string): BindValue {
  switch (typeof value) {
    case 'number':
      // an integer beyond 32 bits: as int64 (the wrapper would bind it as a double)
      return Number.isSafeInteger(value) && (value | 0) !== value ? BigInt(value) : value;
    case 'string':
    case 'boolean':
      return value;
    case 'bigint':
      if (value > INT64_MAX || value < INT64_MIN) throw walnutError('WALNUT_INVALID_ARGUMENT', `parameter ${name}: ${value} is outside the 64-bit integer range`, { reason: 'params' });
      return value;
    default:
      if (value === null) return value;
      {
        // any ArrayBufferView (a Buffer, a Float32Array, a DataView, of any realm): a Uint8Array
        // over exactly the bytes it views, read with the intrinsic getters (arguments.ts
        // viewBytes: a byteLength the caller's code says is not what is bound); a Proxy is none
        const bytes = viewBytes(value);
        if (bytes === 'detached') throw walnutError('WALNUT_INVALID_ARGUMENT', `parameter ${name}: a view whose ArrayBuffer was detached (transferred) cannot be bound`, { reason: 'params' });
        if (bytes !== null) return bytes;
      }
      throw walnutError('WALNUT_INVALID_ARGUMENT', `parameter ${name}: ${value === undefined ? 'undefined' : typeof value} cannot be bound (number, bigint, string, a Buffer or other ArrayBufferView, boolean or null)`, { reason: 'params' });
  }
}

