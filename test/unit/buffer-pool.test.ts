// replicate/buffers.ts: BufferPool, the memory of the replication's hand-over buffers and
// message bodies. A buffer given back is handed out again (fresh memory costs a page fault per
// 4 KiB), one large enough for the request; the pool keeps at most maxBytes; and a message body
// framed into pooled memory (frameInto) is the same bytes frameMessage makes. RecordArena, the
// memory of a publisher's queued records: records carved from a block never overlap one held,
// a block goes back to the pool only once all its records are released and it is no longer
// carved, and records encoded into it are the bytes encoded on their own.
import { describe, expect, it } from 'vitest';

import { encodePageDelta } from '../../lib/export/page-delta';
import { encodeFramesRecord } from '../../lib/export/records';
import { BufferPool, RecordArena } from '../../lib/replicate/buffers';
import { packRecords, unpackRecords } from '../../lib/replicate/thread';
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

  // identities compared as booleans: a failed toBe of two 4 MiB buffers prints them (minutes)
  it('hands out the smallest spare that fits, so a large spare stays for a large request', () => {
    const pool = new BufferPool(8 << 20);
    const large = pool.take(3 << 20); // 4 MiB
    const small = pool.take(100_000); // 128 KiB
    pool.give(large.buffer as ArrayBuffer);
    pool.give(small.buffer as ArrayBuffer);
    expect(pool.take(70_000).buffer === small.buffer).toBe(true);
    expect(pool.take(3 << 20).buffer === large.buffer).toBe(true);
  });

  it('past maxBytes keeps the largest buffers: smaller spares make room for a larger one (a full pool of small buffers turned every large one away)', () => {
    const pool = new BufferPool(1 << 20);
    const smalls = Array.from({ length: 8 }, () => pool.take(100_000)); // 8 x 128 KiB = 1 MiB
    for (const b of smalls) pool.give(b.buffer as ArrayBuffer);
    const big = pool.take(600_000); // 1 MiB: none of the spares fits
    expect(smalls.some((b) => b.buffer === big.buffer)).toBe(false);
    pool.give(big.buffer as ArrayBuffer); // kept: every small one goes to make room
    expect(pool.take(900_000).buffer === big.buffer).toBe(true);
    expect(smalls.some((b) => b.buffer === pool.take(100_000).buffer)).toBe(false); // none left
    // a buffer no larger than every spare is the one that goes
    const pool2 = new BufferPool(256 << 10);
    const [a, b] = [pool2.take(200_000), pool2.take(200_000)];
    pool2.give(a.buffer as ArrayBuffer);
    pool2.give(pool2.take(10).buffer as ArrayBuffer); // a itself, back again
    pool2.give(b.buffer as ArrayBuffer); // as large as a: not kept
    expect(pool2.take(200_000).buffer === a.buffer).toBe(true);
    expect(pool2.take(200_000).buffer === b.buffer).toBe(false);
    expect(new BufferPool(256 << 10).take(300_000).length).toBe(300_000); // larger than the pool: never kept, still made
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

describe('RecordArena', () => {
  it('carves records from one block; the block goes back to the pool once every record of it is released and the next block is carved', () => {
    const pool = new BufferPool(8 << 20);
    const arena = new RecordArena(pool);
    const first = Array.from({ length: 200 }, () => arena.take(4120)); // ~805 KiB: one block
    expect(new Set(first.map((r) => r.buffer)).size).toBe(1);
    const block = first[0]!.buffer;
    const next = arena.take(250 << 10); // does not fit in what is left: a new block
    expect(next.buffer === block).toBe(false);
    for (const r of first.slice(0, 199)) arena.release(r);
    expect(pool.take(1 << 20).buffer === block).toBe(false); // one record of it still held
    arena.release(first[199]!);
    expect(pool.take(1 << 20).buffer === block).toBe(true); // all released: back in the pool
  });

  it('a record is never handed out over one still held, however records are taken and released in queue order', () => {
    const pool = new BufferPool(8 << 20);
    const arena = new RecordArena(pool);
    const held: { r: Uint8Array; v: number }[] = [];
    let v = 0;
    for (let i = 0; i < 5000; i++) {
      const n = 1 + ((i * 7919) % 9000);
      const r = arena.take(n);
      expect(r.length).toBe(n);
      r.fill(++v & 0xff);
      held.push({ r, v });
      if (held.length > 300 || i % 3 === 0) {
        const { r: old, v: was } = held.shift()!;
        expect(old.every((b) => b === (was & 0xff))).toBe(true);
        arena.release(old);
      }
    }
    for (const { r, v: was } of held) expect(r.every((b) => b === (was & 0xff))).toBe(true);
  });

  it('a record larger than a quarter block has memory of its own, and releasing it is harmless', () => {
    const arena = new RecordArena(new BufferPool(8 << 20));
    const big = arena.take(300 << 10);
    expect(big.byteOffset).toBe(0);
    expect(big.buffer.byteLength).toBe(300 << 10);
    arena.release(big);
    const small = arena.take(10);
    expect(small.buffer === big.buffer).toBe(false);
  });

  it('FRAMES and PAGE_DELTA encoded into arena memory that held other bytes are the bytes encoded on their own', () => {
    const pool = new BufferPool(8 << 20);
    const dirty = pool.take(1 << 20);
    dirty.fill(0xa5);
    pool.give(dirty.buffer as ArrayBuffer);
    const arena = new RecordArena(pool);
    const frame = new Uint8Array(24 + 4096).map((_, k) => (k * 13) & 0xff);
    const previous = frame.slice(24);
    previous.fill(0, 100, 160);
    arena.take(3); // records at odd offsets
    const frames = encodeFramesRecord([frame], arena);
    expect(frames.buffer === dirty.buffer).toBe(true);
    expect(Buffer.from(frames).equals(Buffer.from(encodeFramesRecord([frame])))).toBe(true);
    const delta = encodePageDelta(frame, previous, arena)!;
    expect(delta.buffer === dirty.buffer).toBe(true);
    expect(Buffer.from(delta).equals(Buffer.from(encodePageDelta(frame, previous)!))).toBe(true);
  });
});

describe('the hand-over between the store\'s thread and the replication worker', () => {
  it('unpackRecords gives back the records packRecords packed, as views of the buffer; a cut or foreign buffer is WALNUT_INVALID_FRAMING', () => {
    const pool = new BufferPool(1 << 20);
    const payloads = [new Uint8Array([5, 1, 2, 3]), new Uint8Array(4121).fill(9), new Uint8Array(1).fill(7)];
    const packed = packRecords(pool, payloads);
    const back = unpackRecords(packed);
    expect(back.map((p) => Buffer.from(p).toString('hex'))).toEqual(payloads.map((p) => Buffer.from(p).toString('hex')));
    expect(back.every((p) => p.buffer === packed.buffer)).toBe(true);
    expect(unpackRecords(packRecords(pool, []))).toEqual([]);
    for (const bad of [packed.subarray(0, packed.length - 1), packed.subarray(0, 19), packed.subarray(0, 12), new Uint8Array(16)]) {
      let code = '';
      try {
        unpackRecords(bad);
      } catch (e) {
        code = (e as { code?: string }).code ?? String(e);
      }
      expect(code).toBe('WALNUT_INVALID_FRAMING');
    }
  });
});
