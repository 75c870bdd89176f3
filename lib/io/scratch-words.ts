/**
 * io/scratch-words.ts — one owner's Uint32Array for the small word arrays it hands a native
 * call on every commit (the append's page numbers and commit sizes, the wal-index's entries).
 *
 * A native call's view of a small typed array (64 bytes or less lives inside the V8 heap) moves
 * its bytes off the heap first: a malloc, and a sweep when it dies, per call (~10% of a lone
 * commit's CPU on tmpfs with three such arrays; bench/README #19 session 11 (lone)). Once moved,
 * this array stays off the heap and its views are free. Invariant the callers keep: the native
 * call reads the words only during the call (it copies what it keeps), so the next take() may
 * overwrite them, and an operation still in flight on another thread never sees them.
 */

export class ScratchWords {
  #words = new Uint32Array(1);

  /** An array of exactly n words (this owner's, grown when short; contents unspecified). */
  take(n: number): Uint32Array {
    if (this.#words.length < n) this.#words = new Uint32Array(Math.max(n, 2 * this.#words.length));
    return this.#words.length === n ? this.#words : this.#words.subarray(0, n);
  }

  /** take(words.length) holding a copy of `words` (which then never meets the native call). */
  copyOf(words: Uint32Array): Uint32Array {
    const out = this.take(words.length);
    out.set(words);
    return out;
  }
}
