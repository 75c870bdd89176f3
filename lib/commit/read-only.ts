/**
 * commit/read-only.ts — why a store refuses every write (open option readOnly, options.ts;
 * walnut/sql's readOnly and replicas' files, sql/database.ts), and the WALNUT_READONLY error
 * each refused write gets.
 *
 * Invariant: a store opened read-only writes nothing to the database file or its -wal: its
 * writing verbs (commit, sequence, a transaction's commit with writes, checkpoint,
 * holdWriteLease) fail WALNUT_READONLY before they touch a lock or a file, a follow export
 * never restarts the WAL, its replication's connection is read-only too, and close() neither
 * checkpoints nor removes the -wal (keepWal). It still opens the files read-write and uses the
 * -shm (its locks and read marks), as a SQLite connection does.
 */
import { walnutError, type WalnutError } from '../errors';

/**
 * Why a store (or walnut/sql's writer) refuses every write, as its WALNUT_READONLY errors say
 * it: `reason` 'ReadOnlyDatabase' (option readOnly: true) or 'Replica' (walnut/sql on a
 * replica's file: a position file beside it), `why` a sentence for the message.
 */
export interface ReadOnly {
  readonly reason: 'ReadOnlyDatabase' | 'Replica';
  readonly why: string;
}

/** open()'s readOnly: true. */
export const OPENED_READ_ONLY: ReadOnly = { reason: 'ReadOnlyDatabase', why: 'the database was opened read-only (option readOnly: true)' };

/** The WALNUT_READONLY error of a write refused on a database opened read-only (`what`: what was refused). */
export function readOnlyError(readOnly: ReadOnly, path: string, what: string, sqliteCode?: number): WalnutError {
  return walnutError('WALNUT_READONLY', `${what}: ${readOnly.why}; nothing was written`, { path, reason: readOnly.reason, sqliteCode });
}
