/**
 * sql/statement-runner.ts — binding parameters, stepping statements, building rows: the parts
 * of a better-sqlite3-shaped API over wa-sqlite's C-level calls. No locking here: callers hold
 * the connection (serial.ts).
 *
 * Parameters follow better-sqlite3: an array binds `?`/`?NNN` in order; an object binds named
 * parameters (`:name`, `@name`, `$name`) by their name without the prefix; a single value
 * binds a statement with one parameter. Values: number, bigint (int64 range), string,
 * Uint8Array (blob), boolean (0/1), null. Anything else, a missing or an extra value is
 * WALNUT_INVALID_ARGUMENT before the statement runs.
 */
import { walnutError } from '../errors';
import type { Engine } from './engine';

export type SqlValue = number | bigint | string | Uint8Array | boolean | null;
export type Params = readonly SqlValue[] | Readonly<Record<string, SqlValue>> | SqlValue | undefined;
export type Row = Record<string, unknown>;

export interface RunResult {
  changes: number;
  lastInsertRowid: number | bigint;
}

const INT64_MAX = 0x7fffffffffffffffn;
const INT64_MIN = -0x8000000000000000n;

export class StatementRunner {
  readonly #e: Engine;
  readonly #db: number;
  readonly #safeIntegers: boolean;

  constructor(engine: Engine, db: number, safeIntegers: boolean) {
    this.#e = engine;
    this.#db = db;
    this.#safeIntegers = safeIntegers;
  }

  /** Prepares exactly one statement (WALNUT_INVALID_ARGUMENT for none or several). */
  async prepare(sql: string): Promise<number> {
    if (typeof sql !== 'string') throw walnutError('WALNUT_INVALID_ARGUMENT', 'sql must be a string', { reason: 'sql' });
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
    await this.#e.sqlite3.finalize(stmt);
  }

  /** Runs `stmt` with `params`: every row ('all'), the first ('get') or none ('run'). */
  async execute(stmt: number, params: Params, mode: 'run' | 'get' | 'all'): Promise<Row[]> {
    const { sqlite3, C } = this.#e;
    this.#bind(stmt, params);
    const rows: Row[] = [];
    try {
      let names: string[] | null = null;
      while ((await sqlite3.step(stmt)) === C.SQLITE_ROW) {
        if (mode === 'run') continue;
        names ??= sqlite3.column_names(stmt) as string[];
        rows.push(this.#row(stmt, names));
        if (mode === 'get') break;
      }
    } finally {
      // ends the statement (and its read transaction, in autocommit); its error was thrown by step()
      await (sqlite3.reset(stmt) as Promise<number>).catch(() => undefined); // its error is the step's, thrown above
      sqlite3.clear_bindings(stmt);
    }
    return rows;
  }

  runResult(): RunResult {
    const { sqlite3 } = this.#e;
    const changes = sqlite3.changes(this.#db) as number;
    const id = this.#lastInsertRowid();
    return { changes, lastInsertRowid: this.#safeIntegers ? id : Number.isSafeInteger(Number(id)) ? Number(id) : id };
  }

  /** sqlite3_last_insert_rowid as a bigint (the wrapper's number return would cut it to 32 bits). */
  #lastInsertRowid(): bigint {
    const m = this.#e.module;
    const lo = m._sqlite3_last_insert_rowid(this.#db) as number;
    const hi = m.getTempRet0() as number;
    return (BigInt(hi) << 32n) | BigInt(lo >>> 0);
  }

  async exec(sql: string): Promise<void> {
    if (typeof sql !== 'string') throw walnutError('WALNUT_INVALID_ARGUMENT', 'sql must be a string', { reason: 'sql' });
    await this.#e.sqlite3.exec(this.#db, sql);
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
      } else {
        v = sqlite3.column(stmt, i);
      }
      row[names[i]!] = v;
    }
    return row;
  }

  #bind(stmt: number, params: Params): void {
    const { sqlite3 } = this.#e;
    const count = sqlite3.bind_parameter_count(stmt) as number;
    const isList = Array.isArray(params);
    const isNamed = !isList && params !== null && typeof params === 'object' && !(params instanceof Uint8Array);
    const list: readonly unknown[] = isList ? params : isNamed || params === undefined ? [] : [params];
    let positional = 0;
    for (let i = 1; i <= count; i++) {
      const name = sqlite3.bind_parameter_name(stmt, i) as string | null;
      let value: unknown;
      if (name === null || name === '' || name[0] === '?') {
        if (positional >= list.length) throw walnutError('WALNUT_INVALID_ARGUMENT', `missing value for parameter ${i}`, { reason: 'params' });
        value = list[positional++];
      } else {
        const key = name.slice(1);
        if (!isNamed || !Object.prototype.hasOwnProperty.call(params, key)) {
          throw walnutError('WALNUT_INVALID_ARGUMENT', `missing named parameter ${name}`, { reason: 'params' });
        }
        value = (params as Record<string, unknown>)[key];
      }
      sqlite3.bind(stmt, i, checkValue(value, name ?? String(i)));
    }
    if (positional < list.length) throw walnutError('WALNUT_INVALID_ARGUMENT', `${list.length} values for ${positional} positional parameters`, { reason: 'params' });
  }
}

function checkValue(value: unknown, name: string): SqlValue {
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
      if (value === null || value instanceof Uint8Array) return value;
      throw walnutError('WALNUT_INVALID_ARGUMENT', `parameter ${name}: ${value === undefined ? 'undefined' : typeof value} cannot be bound (number, bigint, string, Uint8Array, boolean or null)`, { reason: 'params' });
  }
}
