/**
 * commit/transaction.ts — Transaction: read a snapshot, write pages, commit first-committer-wins.
 *
 * The snapshot is taken when begin() is called (its read lock is held until the transaction
 * ends). read() sees the snapshot plus the transaction's own writes. commit() fails with
 * WALNUT_CONFLICT, writing nothing, when any page the transaction read or wrote was committed
 * by someone else after the snapshot. Written buffers are not copied: do not change them until
 * commit() settles.
 */
import { walnutError } from '../errors';
import type { Snapshot } from '../index/snapshot';
import type { CommitResult, GroupCommitter } from './group-committer';
import { checkDbSize, checkPage, normalizePages } from './pages';

type State = 'open' | 'committing' | 'done';

export class Transaction {
  readonly #snapshot: Promise<Snapshot>;
  readonly #committer: GroupCommitter;
  readonly #pageSize: number;
  readonly #writes = new Map<number, Uint8Array>();
  readonly #reads = new Set<number>();
  #state: State = 'open';

  constructor(snapshot: Promise<Snapshot>, committer: GroupCommitter, pageSize: number) {
    this.#snapshot = snapshot;
    this.#committer = committer;
    this.#pageSize = pageSize;
    snapshot.catch(() => undefined); // surfaced by the first call that needs it
  }

  /** The page as this transaction sees it (a new Buffer). */
  async read(pgno: number): Promise<Buffer> {
    this.#checkOpen();
    const own = this.#writes.get(pgno);
    if (own !== undefined) return Buffer.from(own);
    const snap = await this.#snapshot;
    const page = await snap.read(pgno);
    this.#reads.add(pgno);
    return page;
  }

  write(pgno: number, data: Uint8Array): void {
    this.#checkOpen();
    checkPage(pgno, data, this.#pageSize);
    this.#writes.set(pgno, data);
  }

  /** Commits the writes (a transaction without writes commits nothing and resolves null). */
  async commit(options: { dbSize?: number } = {}): Promise<CommitResult | null> {
    this.#checkOpen();
    const dbSize = checkDbSize(options.dbSize);
    this.#state = 'committing';
    const snap = await this.#snapshot;
    try {
      if (this.#writes.size === 0) return null;
      const pages = normalizePages([...this.#writes].map(([pgno, data]) => ({ pgno, data })), this.#pageSize);
      const conflict = { pgnos: new Set([...this.#reads, ...this.#writes.keys()]), ...snap.generation };
      return await this.#committer.submit(pages, dbSize, conflict);
    } finally {
      this.#state = 'done';
      snap.release();
    }
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
