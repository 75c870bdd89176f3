/**
 * sql/lost-commits.ts — the rules walnut/sql reads a lost commit by, spelled once for every
 * call site (exec-progress.ts, walnut-vfs.ts, database.ts, commit-pipeline.ts).
 *
 *  - lostToConflict: nothing of the commit was written and running its statements again may
 *    succeed: another connection's commit overtook it (WALNUT_CONFLICT), a commit it was built
 *    on failed (WALNUT_CONFLICT or the store's WALNUT_FAILED, reason ChainBroken), or its wait
 *    for WRITE took busyTimeout (WALNUT_BUSY, reason BusyWrite: overtaken-writes.ts
 *    waitedOutWrite, due for the write lease as a conflict is).
 *  - laterStatementsFailure: how exec()'s later statements report an earlier statement's lost
 *    commit. A conflict proper as WALNUT_CONFLICT, reason ChainBroken (retry it); a commit that
 *    waited out WRITE keeps its WALNUT_BUSY (what a busy database answers, whichever statement
 *    of the call meets it: it was WALNUT_CONFLICT when a later statement failed its own
 *    constraint and WALNUT_BUSY when it committed, test/hostile/sql-exec-not-run-again); any
 *    other loss (WALNUT_IO, WALNUT_FULL) is itself, the caller's to see.
 *  - lostItsRows: a failure after which none of the statement's (or transaction's) rows stay,
 *    so the last_insert_rowid() it left is set back (StatementRunner.restoreRowid).
 *
 * Invariant: these read a failure only; what a call site does about it (run again, set the
 * rowid back, report) is the call site's.
 */
import { isWalnutError, walnutError } from '../errors';
import { waitedOutWrite } from './overtaken-writes';

/**
 * A commit lost without anything of it written, which a run again may commit: another
 * connection's commit, a broken chain, a wait for WRITE that timed out (header).
 */
export function lostToConflict(e: unknown): boolean {
  return isWalnutError(e, 'WALNUT_CONFLICT') || (isWalnutError(e, 'WALNUT_FAILED') && e.reason === 'ChainBroken') || waitedOutWrite(e);
}

/**
 * What the later statements of an exec() call fail with once an earlier statement's commit (or
 * one it read) was lost with `loss`: a conflict as WALNUT_CONFLICT ChainBroken at `path`
 * (cause: the loss; `what` says what became of the later statements), a commit that waited out
 * WRITE and any failure not a conflict as itself (header).
 */
export function laterStatementsFailure(loss: unknown, path: string | undefined, what: string): unknown {
  if (!lostToConflict(loss) || waitedOutWrite(loss)) return loss;
  return walnutError('WALNUT_CONFLICT', `a transaction an earlier statement of this call committed or read failed to commit, ${what} (${(loss as Error).message})`, { path, reason: 'ChainBroken', cause: loss });
}

/**
 * True when an autocommit statement (or a transaction's COMMIT, or a statement of a transaction
 * SQLite then rolled back) that failed with `e`, as it ran or at its commit's durability, left
 * none of its rows: every failure
 * of walnut's, the lost commits of lostToConflict as much as a write that failed (WALNUT_IO,
 * WALNUT_FULL), so the rowid it left is set back (StatementRunner.restoreRowid). Not SQLite's
 * own verdict on the statement (WALNUT_SQL): the rowid is SQLite's to leave then, as native
 * SQLite leaves it (an INSERT OR FAIL keeps the rows before the failing one, and its rowid).
 */
export function lostItsRows(e: unknown): boolean {
  return isWalnutError(e) && e.code !== 'WALNUT_SQL';
}
