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
import * as os from 'node:os';

import { isWalnutError, walnutError, withoutCode, type WalnutError } from '../errors';

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

/**
 * An open's failure `e` for a database opened read-only (a store's readOnly, a read-only export):
 * one the OS refused for permissions (EACCES, EPERM, EROFS: the database file, its -wal or -shm
 * this user may not write) is WALNUT_READONLY, reason NotWritable, errno kept, naming the file
 * refused and saying that read-only covers what walnut writes, not how it opens the files (it
 * needs the -shm's locks; it has no read-only file access, as sqlite3 -readonly has). It said
 * "walnut writes every database it opens" (reason none) to a caller who had asked for read-only,
 * or WALNUT_CANTOPEN "open failed: Permission denied (<db>-shm)" (test/hostile/store-read-only-unwritable).
 * Anything else is `e` itself.
 */
export function notWritableForReadOnly(e: unknown, path: string, what: string): unknown {
  const { EACCES, EPERM, EROFS } = os.constants.errno;
  if (!isWalnutError(e) || ![EACCES, EPERM, EROFS].includes(Math.abs(e.errno ?? 0))) return e;
  let denied: WalnutError = e; // the OS's refusal itself
  while (isWalnutError(denied.cause) && denied.cause.errno !== undefined) denied = denied.cause;
  return walnutError('WALNUT_READONLY', `${path} cannot be opened for writing here (${withoutCode(denied.message)}): ${what} writes nothing to the database, but walnut still opens the database file, its -wal and -shm for reading and writing (it needs the -shm's locks; walnut has no read-only file access as sqlite3 -readonly has): give this user write access to them, or read the database with SQLite itself`, { path, reason: 'NotWritable', errno: e.errno, cause: e });
}
