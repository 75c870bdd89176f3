/**
 * replicate/buffers.ts — BufferPool: memory for the replication's large, short-lived buffers
 * (records handed to the worker thread, message bodies), given back once nothing refers to it
 * and handed out again; RecordArena: the publisher's queued log records carved from such
 * memory (below).
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
 * `maxBytes`, the largest buffers first, and lets the rest go to the garbage collector.
 */

/** The smallest buffer made. */
const MIN_BYTES = 64 << 10;

export class BufferPool {
  /**
   * The spares by byte length (the lengths ascending in #sizes): take() looked through one
   * list of them all, and a pool of 32 MiB holds up to 512 spares of 64 KiB (~40 µs a take on
   * the store's thread, one per export pass; session 17's profile).
   */
  readonly #spares = new Map<number, ArrayBuffer[]>();
  #sizes: number[] = [];
  #spareBytes = 0;

  constructor(readonly maxBytes: number) {}

  take(n: number): Uint8Array {
    // the smallest spare that fits: a large one taken for a small request left the next
    // large request to fresh memory
    for (const size of this.#sizes) {
      if (size >= n) return new Uint8Array(this.#remove(size), 0, n);
    }
    return new Uint8Array(new ArrayBuffer(Math.max(MIN_BYTES, 2 ** Math.ceil(Math.log2(n)))), 0, n);
  }

  /**
   * Keeps `buf` for reuse; past maxBytes the smallest spares make room for it (any request a
   * small spare fits, a larger one fits too), or it goes when it is the smallest. Kept by
   * first come, the pool filled with small buffers and turned every large one away: the
   * hand-over of 4 MiB export reads (thread.ts) then faulted in 4 MiB of fresh memory per read
   * (~25 µs per 4 KiB on the VM, session 11).
   */
  give(buf: ArrayBuffer): void {
    const size = buf.byteLength;
    if (size < MIN_BYTES || size > this.maxBytes) return;
    while (this.#spareBytes + size > this.maxBytes) {
      if (this.#sizes[0]! >= size) return;
      this.#remove(this.#sizes[0]!);
    }
    let list = this.#spares.get(size);
    if (list === undefined) {
      this.#spares.set(size, (list = []));
      this.#sizes.push(size);
      this.#sizes.sort((a, b) => a - b);
    }
    list.push(buf); // taken last in, first out: the most recently touched memory
    this.#spareBytes += size;
  }

  /** A spare of `size` bytes (one is there), out of the pool. */
  #remove(size: number): ArrayBuffer {
    const list = this.#spares.get(size)!;
    const buf = list.pop()!;
    if (list.length === 0) {
      this.#spares.delete(size);
      this.#sizes = this.#sizes.filter((s) => s !== size);
    }
    this.#spareBytes -= size;
    return buf;
  }
}

/** A record larger than this is given memory of its own (RecordArena). */
const ARENA_BLOCK_BYTES = 1 << 20;

/**
 * RecordArena: memory for the records a publisher's session queues (publisher.ts: each commit's
 * FRAMES or PAGE_DELTA and COMMIT_META), carved one after another from blocks of a BufferPool.
 *
 * Why: each queued record had an ArrayBuffer of its own: at 5,000 commits/s that is ~20 MB/s of
 * fresh memory counted against V8's external memory, whose limit runs garbage collections on
 * the replication worker (scavenges of 2-44 ms, mark-compacts of 6-44 ms, "external memory
 * pressure"), and no ack is taken meanwhile.
 *
 * Invariants: take(n) answers n bytes nobody else holds (not zeroed: the caller writes all n);
 * a record of more than a quarter block has memory of its own. release(record) says a record
 * from take() is no longer referred to (the queue let it go); a block whose records are all
 * released, and that is no longer the one being carved, goes back to the pool. Records never
 * released (a session abandoned with its queue) keep their blocks out of the pool: the arena
 * goes with its session, and the garbage collector takes them.
 */
export class RecordArena {
  /** Blocks with records not yet released: how many. */
  readonly #live = new Map<ArrayBuffer, number>();
  #block: Uint8Array | null = null;
  #used = 0;

  constructor(readonly pool: BufferPool) {}

  take(n: number): Uint8Array {
    if (n > ARENA_BLOCK_BYTES >>> 2) return new Uint8Array(n);
    if (this.#block === null || this.#used + n > this.#block.length) {
      const full = this.#block;
      this.#block = this.pool.take(ARENA_BLOCK_BYTES);
      this.#used = 0;
      this.#live.set(this.#block.buffer as ArrayBuffer, 0);
      if (full !== null) this.#retire(full.buffer as ArrayBuffer);
    }
    const out = this.#block.subarray(this.#used, this.#used + n);
    this.#used += n;
    const buf = this.#block.buffer as ArrayBuffer;
    this.#live.set(buf, this.#live.get(buf)! + 1);
    return out;
  }

  release(record: Uint8Array): void {
    const buf = record.buffer as ArrayBuffer;
    const live = this.#live.get(buf);
    if (live === undefined) return; // memory of its own
    this.#live.set(buf, live - 1);
    if (buf !== this.#block?.buffer) this.#retire(buf);
  }

  /** A block no longer carved: back to the pool once none of its records is held. */
  #retire(buf: ArrayBuffer): void {
    if (this.#live.get(buf) !== 0) return;
    this.#live.delete(buf);
    this.pool.give(buf);
  }
}
