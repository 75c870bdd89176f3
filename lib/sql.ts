/**
 * sql.ts — the `walnut/sql` entry point: SQL (SQLite in wasm, @journeyapps/wa-sqlite) on a
 * walnut store, with group commit. See sql/database.ts.
 */
export { openDatabase, Database, Statement } from './sql/database';
export type { DatabaseOptions, Queryable, Params, Row, RunResult, SqlValue } from './sql/database';
export { WalnutError, isWalnutError } from './errors';
export type { WalnutErrorCode } from './errors';
