/**
 * commit/transaction.ts — Transaction: read a snapshot, write pages, commit first-committer-wins.
 *
 * The snapshot is taken when begin() is called (its read lock is held until the transaction
 * ends, or, once commit() is called, until the committer has checked its conflict set under
 * the write lock: group-committer.ts). read() sees the snapshot plus the transaction's own writes. commit() fails with
 * WALNUT_CONFLICT, writing nothing, when any page the transaction read or wrote was committed
 * by someone else after the snapshot (reason PageChanged). No failure of its commit breaks the
 * store's commit chain (nothing is built on a transaction before it is published:
 * group-committer.ts, "The commit chain"), while a chain broken by a commit() or sequenced
 * commit refuses its commit() with WALNUT_FAILED, reason ChainBroken, like every commit
 * (store.resumeCommits()). write() copies the page (into a buffer of the transaction's own,
 * which the committer writes and no caller sees): the caller's buffer is its own again once
 * write() returns (commit/page-arena.ts says why). Input is checked as commit/pages.ts says, each error at the earliest call
 * that can know it (a page in write(), the database size in commit(), which then leaves the
 * transaction open). read() and commit() pass the store's CloseGate (write() checks it): after store.close() has
 * begun they reject with WALNUT_CLOSED, and close() waits for those that started before. A
 * transaction refused so can never commit: it ends there and lets its read mark go at once (a
 * restart checkpoint in flight, holding WRITE, would otherwise wait out the busy timeout for
 * it, and every commit queued behind that checkpoint with it).
 *
 * Conflicts are counted from begin(): a snapshot begin() could not take at once (the read slots
 * busy) is taken later and may already hold commits made after begin() returned; the conflict
 * set is then checked from the header begin() saw (`begunAt`, same WAL generation), so a page
 * such a commit changed is a conflict like any later one (else the transaction read that
 * commit's page and overwrote it unchecked), and a WAL restarted in between (its commits no
 * longer told apart) is a conflict for any transaction that writes.
 */
import { extraArgumentError, readInput, refuseExtraArguments } from '../arguments';
import { CONSTRUCT_KEY, refuseDirectConstruction } from '../constructed';
import { walnutError } from '../errors';
import { sameSalts } from '../format/wal-header';
import type { Snapshot } from '../wal-index/snapshot';
import type { CloseGate } from './close-gate';
import type { CommitResult } from './group-committer';
import type { CommitSink } from './lane';
import { checkPage, commitDbSize, normalizePages, type PageRules } from './pages';

type State = 'open' | 'committing' | 'done';

export class Transaction {
  readonly #snapshot: Promise<Snapshot>;
  readonly #committer: CommitSink;
  readonly #rules: PageRules;
  readonly #gate: CloseGate;
  readonly #writes = new Map<number, Uint8Array>();
  readonly #reads = new Set<number>();
  #state: State = 'open';
  /** The live header's generation when begin() returned, if the snapshot was not taken then (header comment). */
  readonly #begunAt: { mxFrame: number; salts: [number, number] } | null;

  constructor(key: typeof CONSTRUCT_KEY, snapshot: Promise<Snapshot>, committer: CommitSink, rules: PageRules, gate: CloseGate, begunAt: { mxFrame: number; salts: [number, number] } | null = null) {
    refuseDirectConstruction(key, 'Transaction', 'store.begin()');
    this.#begunAt = begunAt;
    this.#snapshot = snapshot;
    this.#committer = committer;
    this.#rules = rules;
    this.#gate = gate;
    snapshot.catch(() => undefined); // surfaced by the first call that needs it
  }

  /** The page as this transaction sees it (a new Buffer). */
  read(pgno: number): Promise<Buffer> {
    if (arguments.length > 1) {
      const refused = extraArgumentError('tx.read', 'only a page number', 1, arguments);
      if (refused !== null) return Promise.reject(refused);
    }
    this.#endIfClosing();
    return this.#gate.run(async () => {
      this.#checkOpen();
      const own = this.#writes.get(pgno);
      if (own !== undefined) return Buffer.from(own);
      const snap = await this.#snapshot;
      const page = await snap.read(pgno);
      this.#reads.add(pgno);
      return page;
    });
  }

  write(pgno: number, data: Uint8Array): void {
    if (arguments.length > 2) refuseExtraArguments('tx.write', 'a page number and its data', 2, arguments);
    // refused once close() has begun, as read() and commit() are: it was taken as the first call
    // after close() (and was WALNUT_INVALID_ARGUMENT 'already ended' after a refused read)
    if (this.#gate.closed) {
      this.#endIfClosing();
      this.#gate.check();
    }
    this.#checkOpen();
    checkPage(pgno, data, this.#rules);
    this.#writes.set(pgno, new Uint8Array(data)); // a copy (header comment)
  }

  /** Commits the writes (a transaction without writes commits nothing and resolves null). */
  commit(options: { dbSize?: number } = {}): Promise<CommitResult | null> {
    if (arguments.length > 1) {
      const refused = extraArgumentError('tx.commit', 'only options', 1, arguments);
      if (refused !== null) return Promise.reject(refused);
    }
    this.#endIfClosing();
    return this.#gate.run(() => this.#commit(options));
  }

  /** Once close() has begun the gate refuses this transaction's commit: it ends now (header). */
  #endIfClosing(): void {
    if (this.#gate.closed) void this.rollback();
  }

  async #commit(options: { dbSize?: number }): Promise<CommitResult | null> {
    this.#checkOpen();
    const dbSize = readInput('options', () => commitDbSize(options, this.#rules));
    const pages = this.#writes.size === 0 ? [] : normalizePages([...this.#writes].map(([pgno, data]) => ({ pgno, data })), this.#rules, dbSize);
    this.#state = 'committing';
    let snap: Snapshot | undefined;
    try {
      snap = await this.#snapshot;
      if (pages.length === 0) return null;
      const conflict = { pgnos: new Set([...this.#reads, ...this.#writes.keys()]), ...this.#conflictsFrom(snap), snapshot: snap };
      return await this.#committer.submit(pages, dbSize, { conflict });
    } finally {
      this.#state = 'done';
      snap?.release();
    }
  }

  /** Where the conflict check starts: the snapshot's generation, or the older header begin() saw (header comment). */
  #conflictsFrom(snap: Snapshot): { mxFrame: number; salts: [number, number] } {
    const seen = snap.generation;
    const begun = this.#begunAt;
    if (begun === null) return seen;
    if (sameSalts(begun.salts, seen.salts)) return begun.mxFrame < seen.mxFrame ? begun : seen;
    throw walnutError('WALNUT_CONFLICT', 'the WAL restarted between begin() and the transaction\'s snapshot: commits made after begin() cannot be told apart from earlier ones; nothing was written: run the transaction again', { reason: 'PageChanged' });
  }

  /** Abandons the transaction and releases its snapshot. */
  async rollback(): Promise<void> {
    if (this.#state !== 'open') return;
    this.#state = 'done';
    (await this.#snapshot.catch(() => null))?.release();
  }

  #checkOpen(): void {
    if (this.#state !== 'open') throw walnutError('WALNUT_INVALID_ARGUMENT', 'the transaction has already ended', { reason: 'transaction' });
  }
}
