/**
 * replicate/buffers.ts — BufferPool: memory for the replication's large, short-lived buffers
 * (records handed to the worker thread, message bodies), given back once nothing refers to it
 * and handed out again.
 *
 * Why: memory touched for the first time costs a page fault per 4 KiB, and a fresh ArrayBuffer
 * counts against V8's external memory, past whose limit the allocation runs a garbage
 * collection: on the 2-vCPU VM a fresh 256 KiB buffer cost ~5-9 µs per 4 KiB filled, a reused
 * one ~0.1 µs. Every commit's page, and every byte published, passed through such buffers.
 *
 * Invariants: take(n) answers a view of n bytes at offset 0 of a buffer of the pool (a power of
 * two of at least MIN_BYTES, so that one fits later, slightly larger requests too) or of a new
 * one; its bytes are whatever they were (the caller writes all n). give() takes back a buffer
 * its holder no longer refers to (nor anything it handed it to); the pool keeps at most
 * `maxBytes` and lets the rest go to the garbage collector.
 */

/** The smallest buffer made. */
const MIN_BYTES = 64 << 10;

export class BufferPool {
  readonly #spare: ArrayBuffer[] = [];
  #spareBytes = 0;

  constructor(readonly maxBytes: number) {}

  take(n: number): Uint8Array {
    const i = this.#spare.findIndex((b) => b.byteLength >= n);
    if (i < 0) return new Uint8Array(new ArrayBuffer(Math.max(MIN_BYTES, 2 ** Math.ceil(Math.log2(n)))), 0, n);
    const buf = this.#spare.splice(i, 1)[0]!;
    this.#spareBytes -= buf.byteLength;
    return new Uint8Array(buf, 0, n);
  }

  give(buf: ArrayBuffer): void {
    if (buf.byteLength < MIN_BYTES || this.#spareBytes + buf.byteLength > this.maxBytes) return;
    this.#spare.push(buf);
    this.#spareBytes += buf.byteLength;
  }
}
