/**
 * commit/chain.ts — CommitChain: the fail-stop state of one store's commit order.
 *
 * A commit takes its place in the order when it is submitted, and every later commit may have
 * been built on its pages. When one that later commits could be built on (not a Transaction's)
 * fails after it was taken into the order the chain is broken: later commits are refused with
 * WALNUT_FAILED, reason ChainBroken (cause: the failure), until the caller acknowledges the
 * failure (resume). Kept by a GroupCommitter for what it writes and by a commit lane's member
 * for what it hands to the lane (lane.ts); the rules of what breaks it are theirs
 * (group-committer.ts header comment).
 * Invariant: `refusal` is built once per break, so a caller may resume with either the failure
 * or any refusal it got, and never mends a newer break it has not seen.
 */
import { walnutError, WalnutError } from '../errors';

export class CommitChain {
  #broken: { failure: unknown; refusal: WalnutError } | null = null;
  readonly #path: string;

  constructor(path: string) {
    this.#path = path;
  }

  /** The failure that broke the chain, while it is broken, else null. */
  get brokenBy(): unknown {
    return this.#broken?.failure ?? null;
  }

  /** What a commit gets while the chain is broken, else null. */
  get refusal(): WalnutError | null {
    return this.#broken?.refusal ?? null;
  }

  /** Breaks the chain by `failure` (a chain already broken stays broken by its first failure). True when this broke it. */
  break(failure: unknown): boolean {
    if (this.#broken !== null) return false;
    const what = failure instanceof WalnutError ? failure.message : String((failure as Error)?.message ?? failure);
    this.#broken = {
      failure,
      refusal: walnutError('WALNUT_FAILED', `an earlier commit failed (${what}); the commits sequenced after it were built on it and are refused until store.resumeCommits()`, { path: this.#path, reason: 'ChainBroken', cause: failure }),
    };
    return true;
  }

  /**
   * Mends a broken chain: later commits are accepted again. With `failure`, only when that is
   * what broke it (the failed commit's error, or the ChainBroken refusal a later commit got).
   * True when the chain was broken and is mended now.
   */
  resume(failure?: unknown): boolean {
    const b = this.#broken;
    if (b === null || (failure !== undefined && failure !== b.failure && failure !== b.refusal)) return false;
    this.#broken = null;
    return true;
  }
}
