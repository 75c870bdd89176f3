/**
 * commit/lane-waiters.ts — LaneWaiters: the promises of a lane member's commits not settled yet
 * (lane.ts), by lane id, with nothing allocated per commit but the promise itself.
 *
 * Format and invariants: a ring of slots in submission order; slot i holds a commit's lane id,
 * whether it is a Transaction's (lane.ts: its failure breaks no chain) and its promise's
 * resolve/reject (null once settled). Lane ids are ascending in submission order
 * (commit_lane.h), so the ids in the ring are ascending and a settled commit is found by
 * binary search; outcomes come mostly in that order (a batch settles in lane order), so the
 * head is usually the one. Settled slots are dropped from the head; a slot settled out of order
 * (a failure listed after the batch's successes, a commit orphaned by an exiting leader) stays
 * a hole until the head passes it. The ring doubles when full, and is never shrunk (a member's
 * commits in flight are bounded by its committers).
 * Why not a Map of { resolve, reject }: per commit that cost a record, the executor's closure
 * and the Map's rehashing as it filled and emptied once per batch (~150 of a member commit's
 * ~1,200 bytes allocated, each worker's isolate collecting its own young generation).
 */
import type { CommitResult } from './group-committer';

type Resolve = (r: CommitResult) => void;
type Reject = (e: unknown) => void;

const INITIAL_SLOTS = 64;

export class LaneWaiters {
  #ids = new Float64Array(INITIAL_SLOTS);
  #transactions = new Uint8Array(INITIAL_SLOTS);
  #resolves: Array<Resolve | null> = new Array<Resolve | null>(INITIAL_SLOTS).fill(null);
  #rejects: Array<Reject | null> = new Array<Reject | null>(INITIAL_SLOTS).fill(null);
  #mask = INITIAL_SLOTS - 1;
  /** The oldest slot in use, and the slots in use from it (holes included). */
  #head = 0;
  #used = 0;
  /** Commits not settled yet. */
  #size = 0;
  /** What the shared executor captured (read right after each `new Promise`). */
  #capturedResolve: Resolve | null = null;
  #capturedReject: Reject | null = null;
  readonly #capture = (resolve: Resolve, reject: Reject): void => {
    this.#capturedResolve = resolve;
    this.#capturedReject = reject;
  };

  /** Commits not settled yet. */
  get size(): number {
    return this.#size;
  }

  /** The promise of the commit with lane id `id` (above every id added before); `transaction`: a Transaction's commit. */
  add(id: number, transaction = false): Promise<CommitResult> {
    const promise = new Promise<CommitResult>(this.#capture);
    if (this.#used === this.#ids.length) this.#grow();
    const slot = (this.#head + this.#used) & this.#mask;
    this.#ids[slot] = id;
    this.#transactions[slot] = transaction ? 1 : 0;
    this.#resolves[slot] = this.#capturedResolve;
    this.#rejects[slot] = this.#capturedReject;
    this.#capturedResolve = this.#capturedReject = null;
    this.#used++;
    this.#size++;
    return promise;
  }

  /** Resolves the commit `id` (false when it is not waited for: settled already, or never added). */
  resolve(id: number, result: CommitResult): boolean {
    return this.#settle(id, true, result);
  }

  /** Rejects the commit `id` (false as resolve()). */
  reject(id: number, e: unknown): boolean {
    return this.#settle(id, false, e);
  }

  #settle(id: number, ok: boolean, value: unknown): boolean {
    const slot = this.#find(id);
    if (slot < 0) return false;
    const resolve = this.#resolves[slot]!;
    const reject = this.#rejects[slot]!;
    this.#drop(slot);
    if (ok) resolve(value as CommitResult);
    else reject(value);
    return true;
  }

  /** Whether the commit `id` is waited for. */
  has(id: number): boolean {
    return this.#find(id) >= 0;
  }

  /** Whether the commit `id`, waited for, is a Transaction's (add()'s `transaction`). */
  isTransaction(id: number): boolean {
    const slot = this.#find(id);
    return slot >= 0 && this.#transactions[slot] === 1;
  }

  /** The slot of the unsettled commit `id`, or -1. */
  #find(id: number): number {
    const mask = this.#mask;
    const ids = this.#ids;
    let lo = 0;
    let hi = this.#used;
    if (hi === 0) return -1;
    if (ids[this.#head] === id) return this.#resolves[this.#head] === null ? -1 : this.#head;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (ids[(this.#head + mid) & mask]! < id) lo = mid + 1;
      else hi = mid;
    }
    if (lo === this.#used) return -1;
    const slot = (this.#head + lo) & mask;
    return ids[slot] === id && this.#resolves[slot] !== null ? slot : -1;
  }

  #drop(slot: number): void {
    this.#resolves[slot] = null;
    this.#rejects[slot] = null;
    this.#size--;
    while (this.#used > 0 && this.#resolves[this.#head] === null) {
      this.#head = (this.#head + 1) & this.#mask;
      this.#used--;
    }
  }

  #grow(): void {
    const n = this.#ids.length;
    const ids = new Float64Array(n * 2);
    const transactions = new Uint8Array(n * 2);
    const resolves = new Array<Resolve | null>(n * 2).fill(null);
    const rejects = new Array<Reject | null>(n * 2).fill(null);
    for (let i = 0; i < this.#used; i++) {
      const from = (this.#head + i) & this.#mask;
      ids[i] = this.#ids[from]!;
      transactions[i] = this.#transactions[from]!;
      resolves[i] = this.#resolves[from]!;
      rejects[i] = this.#rejects[from]!;
    }
    this.#ids = ids;
    this.#transactions = transactions;
    this.#resolves = resolves;
    this.#rejects = rejects;
    this.#mask = n * 2 - 1;
    this.#head = 0;
  }
}
