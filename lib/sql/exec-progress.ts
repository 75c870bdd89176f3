/**
 * sql/exec-progress.ts — ExecProgress: one run of an exec() text, statement by statement: where
 * each began (its byte offset in the text), whether it began in autocommit, and the durability
 * promises the connection's VFS took for it (its commit, the commits it read). From that, once
 * the call failed, the text to run again: from the first statement whose work was lost, never
 * from the start (the statements before it committed; run again they would apply twice).
 *
 * Why that is safe: walnut/sql's commits are a chain (commit-pipeline.ts). A statement whose
 * commit failed (another connection's commit overtook it at the store, a commit it was built
 * on failed) takes every later commit of the chain with it, and a later statement that takes a
 * view after the pipeline's recovery waits for the earlier ones and does not run when one of
 * them failed (walnut-vfs.ts #inDoubt). So from the first statement with a failed promise on,
 * nothing the statements wrote to the database is there, and each statement before it has
 * every promise resolved: durable. What a statement does to the connection alone (a TEMP
 * object, a PRAGMA, a transaction opened) is not lost with its commit, so a run of such a
 * statement is never repeated (mayAffectConnection: read by SQLite's tokens, so a 'BEGIN' in
 * a string, a comment or CASE ... END is not transaction control): rest() answers null then,
 * as for a statement that began inside a transaction (its work is that transaction's) and for
 * a failure that is not a conflict (an I/O error, a full disk: the caller's to see). So too
 * for every statement once the connection may hold tables of its own (a TEMP table, an
 * attached ':memory:' database): a statement may write them without naming them so (`INSERT
 * INTO scratch`, a TEMP trigger), and those rows stay when its commit is lost (a re-run put
 * them there again: twice, three times; test/hostile/sql-exec-rerun-own-tables). The lost
 * statements' runs also left the connection's last_insert_rowid() and change counts as they
 * set them: the rowid is set back to what it was before the first lost statement
 * (restoreRowid, before a run again and before the caller sees the failure; unless another
 * statement ran on the connection since), the counts cannot be, so text that may call
 * changes() or total_changes() is not run again (readsChangeCounts), nor text calling
 * last_insert_rowid() past statements of the call that stay when the rowid was not set back
 * (readsConnectionState: a child row pointed at its own rowid, not at the parent the call
 * inserted before it: test/hostile/sql-exec-rerun-connection-state).
 *
 * Invariants: begin() is called before each statement runs, end() once the run ended (before the
 * call's durability is taken from the VFS); rest() only after the call settled.
 */
import { type WalnutError } from '../errors';
import { laterStatementsFailure, lostItsRows, lostToConflict } from './lost-commits';
import { callOf, leadingWords, mayNameTempSchema, TEMP_WORDS, wordsPattern } from './sql-text';
import type { RowidMark, StatementRunner } from './statement-runner';
import type { VfsSignals } from './walnut-vfs';

/** Leading keywords of statements whose effects are the connection's: transaction control, settings, attached files. */
const CONNECTION_STATEMENTS: ReadonlySet<string> = new Set(['BEGIN', 'COMMIT', 'END', 'ROLLBACK', 'SAVEPOINT', 'RELEASE', 'PRAGMA', 'ATTACH', 'DETACH']);
/**
 * Words a statement whose effects may be the connection's, not the database file's (so not
 * undone when its commit is lost), holds somewhere: what mayAffectConnection looks into.
 */
const CONNECTION_WORDS_SQL = wordsPattern([...CONNECTION_STATEMENTS, ...TEMP_WORDS]);
/** The words text that may name the TEMP schema holds (so CASE ... END is not tokenized to its end). */
const TEMP_WORDS_SQL = wordsPattern(TEMP_WORDS);
/** A call of a function whose answer is what the connection's earlier statements left: readsConnectionState. */
const callsConnectionState = callOf(['last_insert_rowid', 'changes', 'total_changes']);
/** A call of a change count: what a lost statement's run left in them cannot be set back (readsChangeCounts). */
const callsChangeCount = callOf(['changes', 'total_changes']);

/**
 * True when the statement `sql` may do what is the connection's, not the database file's (so not
 * undone when its commit is lost): it begins (after EXPLAIN [QUERY PLAN], to the safe side) with
 * transaction control, PRAGMA, ATTACH or DETACH, or may name the TEMP schema (CREATE TEMP ..,
 * temp.x); also when it begins with no word at all (not read here: the safe side). Elsewhere
 * the words are not the statements: END closes CASE and a trigger's body, BEGIN opens that
 * body, and a string, a comment or a quoted name holds any word. A WITH statement begins so;
 * what follows its common table expressions is a SELECT, INSERT, UPDATE, DELETE or REPLACE.
 */
export function mayAffectConnection(sql: string): boolean {
  if (!CONNECTION_WORDS_SQL.test(sql)) return false;
  const words = leadingWords(sql, 4);
  let first = 0;
  if (words[first] === 'EXPLAIN') first += words[first + 1] === 'QUERY' && words[first + 2] === 'PLAN' ? 3 : 1;
  const keyword = words[first];
  return keyword === undefined || CONNECTION_STATEMENTS.has(keyword) || (TEMP_WORDS_SQL.test(sql) && mayNameTempSchema(sql));
}

/**
 * True when `sql` may call last_insert_rowid(), changes() or total_changes(): what it does
 * depends on the statements the connection ran before it, so it is not run again apart from
 * the statements of the call before it (header).
 */
export function readsConnectionState(sql: string): boolean {
  return callsConnectionState(sql);
}

/**
 * True when `sql` may call changes() or total_changes(). A statement's run whose commit was lost
 * (or that SQLite backed out as it ran: changes() is 0 then) left its counts in them, and SQLite
 * gives no way to set them back (last_insert_rowid() it does: StatementRunner.restoreRowid), so
 * such text is not run again by walnut/sql after a lost commit: run again it read the lost
 * run's counts, not those of the statement before it.
 */
export function readsChangeCounts(sql: unknown): boolean {
  return typeof sql === 'string' && callsChangeCount(sql);
}

interface StatementRun {
  /** Its first byte in the text. */
  readonly offset: number;
  /** It began in autocommit and touches nothing of the connection's own (mayAffectConnection, no tables of its own). */
  readonly repeatable: boolean;
  /** last_insert_rowid() as it began (restoreRowid). */
  readonly rowid: RowidMark;
  /** last_insert_rowid() before the work its loss loses: its own as it began, or, begun in a transaction, the one before the statement that opened it (begin()). */
  readonly lostTo: RowidMark;
  /** Its durability promises: the VFS's from index `from` to `to` (null while it runs). */
  readonly from: number;
  to: number | null;
}

export class ExecProgress {
  readonly #text: string;
  readonly #vfs: VfsSignals;
  readonly #runs: StatementRun[] = [];
  /** The promises of every statement, taken at end(), from the VFS's index `#from` (the first statement's). */
  #promises: Promise<unknown>[] = [];
  #from = 0;
  #settled: Promise<PromiseSettledResult<unknown>[]> | null = null;
  /** restoreRowid() set last_insert_rowid() back to what it was before the first lost statement. */
  #rowidRestored = false;

  /** The text is the rest of the call's text after statements that stay (a run again), not all of it. */
  readonly #afterStaying: boolean;

  constructor(text: string, vfs: VfsSignals, afterStaying = false) {
    this.#text = text;
    this.#vfs = vfs;
    this.#afterStaying = afterStaying;
  }

  /**
   * A statement (`sql`, at byte `offset` of the text) is about to run; `autocommit`: no
   * transaction is open; `ownTables`: the connection may hold tables of its own (header);
   * `rowid`: the connection's last_insert_rowid() before it; `opener`: the mark of the newest
   * statement begun in autocommit (in a transaction, the one that opened it: a lost COMMIT loses
   * all since that one).
   */
  begin(sql: string, offset: number, autocommit: boolean, ownTables: boolean, rowid: RowidMark, opener: RowidMark | null): void {
    const at = this.#vfs.durabilityCount();
    const last = this.#runs[this.#runs.length - 1];
    if (last !== undefined) last.to = at;
    else this.#from = at; // (the call's: the writer's earlier calls took theirs when they ended)
    this.#runs.push({ offset, repeatable: autocommit && !ownTables && !mayAffectConnection(sql), rowid, lostTo: autocommit || opener === null ? rowid : opener, from: at, to: null });
  }

  /** The run ended (its last statement's promises are the VFS's now). */
  end(): void {
    if (this.#runs.length === 0) return;
    const at = this.#vfs.durabilityCount();
    const last = this.#runs[this.#runs.length - 1];
    if (last !== undefined) last.to = at;
    this.#promises = this.#vfs.durabilitySince(this.#from);
  }

  /**
   * Once the call failed: the text from the first statement whose commit (or a commit it read)
   * failed as a conflict, when every statement from there on may run again (header); null when
   * none failed so (the failure was a statement's own) or one from there may not be repeated
   * (nor when the text from there may read the change counts, readsChangeCounts, or
   * last_insert_rowid() when statements before it stay and restoreRowid() could not set it back).
   */
  async rest(): Promise<string | null> {
    const outcomes = await this.#outcomes();
    const first = this.#firstLost(outcomes);
    if (first < 0) return null;
    for (const run of this.#runs.slice(first)) {
      if (!run.repeatable || !this.#failed(run, outcomes).every(lostToConflict)) return null;
    }
    const rest = Buffer.from(this.#text, 'utf8').subarray(this.#runs[first]!.offset).toString('utf8');
    if (readsChangeCounts(rest)) return null;
    return (first > 0 || this.#afterStaying) && !this.#rowidRestored && readsConnectionState(rest) ? null : rest;
  }

  /**
   * Once the call failed with `failure` (the call's, failure()): sets the connection's
   * last_insert_rowid() back to what it was before the first statement whose commit was lost
   * (one begun in a transaction: before the statement that opened it, StatementRun.lostTo)
   * (whatever the cause; or, when none was, before the last one, when it failed as it ran so
   * that none of its rows stay, lostItsRows: the rowid it inserted stays set), unless a statement began since the call's last
   * one (StatementRunner.restoreRowid). Before a run again from there and before the caller
   * sees the failure: either read the lost statement's rowid (a child row pointed at itself).
   */
  async restoreRowid(failure: unknown, runner: StatementRunner, autocommit: boolean): Promise<void> {
    const last = this.#runs[this.#runs.length - 1];
    if (last === undefined) return;
    const first = this.#firstLost(await this.#outcomes());
    // (a statement begun in a transaction: what is lost with it is the transaction, back to before the statement that opened it)
    if (first >= 0) this.#rowidRestored = runner.restoreRowid(this.#runs[first]!.lostTo, last.rowid);
    // (failed as it ran: the transaction it began in is lost only when it ended, `autocommit` now)
    else if (lostItsRows(failure)) runner.restoreRowid(autocommit ? last.lostTo : last.rowid, last.rowid);
  }

  /** The statement that is running (begun last) failed as it ran on a conflict: its last_insert_rowid() set back (restoreRowid) before it is stepped again. */
  restoreRunningRowid(runner: StatementRunner): void {
    const last = this.#runs[this.#runs.length - 1];
    if (last !== undefined) runner.restoreRowid(last.rowid);
  }

  /** The index of the first statement with a failed promise (its commit, or one it read, lost), else -1. */
  #firstLost(outcomes: PromiseSettledResult<unknown>[]): number {
    return this.#runs.findIndex((run) => this.#failed(run, outcomes).length > 0);
  }

  /** The failures among `run`'s promises. */
  #failed(run: StatementRun, outcomes: PromiseSettledResult<unknown>[]): unknown[] {
    return outcomes.slice(run.from - this.#from, (run.to ?? run.from) - this.#from).flatMap((o) => (o.status === 'rejected' ? [o.reason] : []));
  }

  /**
   * Once the call failed with `e`: the call's failure. A statement's own (a constraint, a bad
   * statement) met after the commit of an earlier one was lost is not: the statements before it
   * did not all stay, and it may have failed on the lost rows. The first loss is then, as the
   * call's later statements report it (lost-commits.ts laterStatementsFailure: a conflict as
   * ChainBroken, which rest() may run again from the lost statement). The constraint
   * of `INSERT a; INSERT b; INSERT <duplicate>` was the caller's while a and b were lost to
   * another process's commit (test/hostile/sql-exec-rerun-own-tables).
   */
  async failure(e: unknown): Promise<unknown> {
    if (lostToConflict(e)) return e;
    const lost = (await this.#outcomes()).find((o) => o.status === 'rejected');
    if (lost === undefined || lost.reason === e) return e;
    const loss: unknown = lost.reason;
    return laterStatementsFailure(loss, (loss as WalnutError).path, `so the failure of a later one (${(e as Error).message}) is not the call's (those before the lost one committed: exec() is not one transaction)`);
  }

  /** The outcome of every statement's promises (the call settled). */
  #outcomes(): Promise<PromiseSettledResult<unknown>[]> {
    this.#settled ??= Promise.allSettled(this.#promises);
    return this.#settled;
  }
}
