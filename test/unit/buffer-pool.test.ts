// replicate/buffers.ts: BufferPool, the memory of the replication's hand-over buffers and
// message bodies. A buffer given back is handed out again (fresh memory costs a page fault per
// 4 KiB), one large enough for the request; the pool keeps at most maxBytes; and a message body
// framed into pooled memory (frameInto) is the same bytes frameMessage makes.
import { describe, expect, it } from 'vitest';

import { BufferPool } from '../../lib/replicate/buffers';
import { frameInto, frameMessage, framedSize } from '../../lib/replicate/nats';

describe('BufferPool', () => {
  it('hands a buffer given back out again for a request it fits, a view of exactly the bytes asked for', () => {
    const pool = new BufferPool(1 << 20);
    const a = pool.take(5000);
    expect(a.length).toBe(5000);
    expect(a.byteOffset).toBe(0);
    pool.give(a.buffer as ArrayBuffer);
    const b = pool.take(3000);
    expect(b.buffer).toBe(a.buffer); // the same memory
    expect(b.length).toBe(3000);
    expect(pool.take(3000).buffer).not.toBe(a.buffer); // taken: not handed out twice
  });

  it('makes a power of two of at least 64 KiB, so that a slightly larger request later fits; a request larger than every spare gets a new buffer', () => {
    const pool = new BufferPool(8 << 20);
    const a = pool.take(100_000);
    expect(a.buffer.byteLength).toBe(128 << 10);
    pool.give(a.buffer as ArrayBuffer);
    expect(pool.take(120_000).buffer).toBe(a.buffer);
    pool.give(a.buffer as ArrayBuffer);
    const big = pool.take(200_000);
    expect(big.buffer).not.toBe(a.buffer);
    expect(big.buffer.byteLength).toBe(256 << 10);
    expect(pool.take(10).buffer).toBe(a.buffer); // the spare is still there
  });

  it('keeps at most maxBytes of buffers given back', () => {
    const pool = new BufferPool(256 << 10);
    const bufs = [pool.take(200_000), pool.take(200_000)]; // 256 KiB each
    for (const b of bufs) pool.give(b.buffer as ArrayBuffer);
    expect(pool.take(200_000).buffer).toBe(bufs[0]!.buffer);
    expect(pool.take(200_000).buffer).not.toBe(bufs[1]!.buffer); // it was not kept
  });

  it('frameInto pooled memory that held other bytes gives frameMessage\'s bytes', () => {
    const pool = new BufferPool(1 << 20);
    const used = pool.take(70_000);
    used.fill(0xee);
    pool.give(used.buffer as ArrayBuffer);
    const payloads = [new Uint8Array([5, 1, 2, 3]), new Uint8Array(4121).fill(9), new Uint8Array(41).fill(7)];
    const framed = frameInto(pool.take(framedSize(payloads)), payloads);
    expect(framed.buffer).toBe(used.buffer);
    expect(Buffer.from(framed).equals(Buffer.from(frameMessage(payloads)))).toBe(true);
    expect(Buffer.from(frameInto(pool.take(100), payloads.slice(0, 1), false)).equals(Buffer.from(frameMessage(payloads.slice(0, 1), false)))).toBe(true);
  });
});
