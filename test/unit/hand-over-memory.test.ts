// replicate/thread.ts HandOverMemory: the export's records framed straight into the buffer
// handed to the replication worker. What packsOf hands over is exactly what packRecords would
// have packed of the same records (unpackRecords reads them back), across several buffers when
// a record did not fit; a call whose records are not exactly those taken since the last call
// (records taken for a call that never came, a record from elsewhere, one left out or out of
// order) gets null, so the sink copies instead, and the memory starts afresh after it.
import { describe, expect, it } from 'vitest';

import { BufferPool } from '../../lib/replicate/buffers';
import { HandOverMemory, packRecords, unpackRecords } from '../../lib/replicate/thread';

/** A record of n bytes taken from `memory`, filled with `fill`. */
function record(memory: HandOverMemory, n: number, fill: number): Uint8Array {
  const r = memory.take(n);
  r.fill(fill);
  return r;
}

const same = (packs: Uint8Array[], payloads: Uint8Array[]): void => {
  const unpacked = packs.flatMap((p) => unpackRecords(p));
  expect(unpacked.map((u) => Buffer.from(u).toString('hex'))).toEqual(payloads.map((p) => Buffer.from(p).toString('hex')));
};

describe('HandOverMemory', () => {
  it("hands over one buffer holding the call's records, framed byte for byte as packRecords frames them", () => {
    const pool = new BufferPool(1 << 20);
    const memory = new HandOverMemory(pool);
    memory.expect(3 * (4120 + 50));
    const payloads = [record(memory, 4121, 1), record(memory, 33, 2), record(memory, 4121, 3)];
    const copies = payloads.map((p) => new Uint8Array(p));
    const packs = memory.packsOf(payloads);
    expect(packs).not.toBeNull();
    expect(packs!.length).toBe(1);
    expect(Buffer.from(packs![0]!).equals(Buffer.from(packRecords(new BufferPool(1 << 20), copies)))).toBe(true);
    same(packs!, copies);
  });

  it('goes on in a new buffer when a record does not fit, and hands over every buffer in order', () => {
    const memory = new HandOverMemory(new BufferPool(8 << 20));
    memory.expect(100); // a buffer of 64 KiB: far less than what follows
    const payloads: Uint8Array[] = [];
    for (let i = 0; i < 40; i++) payloads.push(record(memory, 4121 + (i % 3), i));
    const copies = payloads.map((p) => new Uint8Array(p));
    const packs = memory.packsOf(payloads)!;
    expect(packs.length).toBeGreaterThan(1);
    for (const p of packs) expect(p.byteOffset).toBe(0);
    same(packs, copies);
  });

  it('refuses a call whose records are not exactly those taken since the last call, and starts afresh after it', () => {
    const memory = new HandOverMemory(new BufferPool(8 << 20));
    const take = (k: number): Uint8Array[] => Array.from({ length: k }, (_, i) => record(memory, 100 + i, i));
    // one left out, one too many, out of order, one from elsewhere
    let rs = take(3);
    expect(memory.packsOf(rs.slice(0, 2))).toBeNull();
    rs = take(2);
    expect(memory.packsOf([...rs, new Uint8Array(5)])).toBeNull();
    rs = take(2);
    expect(memory.packsOf([rs[1]!, rs[0]!])).toBeNull();
    rs = take(2);
    expect(memory.packsOf([rs[0]!, new Uint8Array(rs[1]!)])).toBeNull();
    // records taken for a call that never came: the next call's records are not all that was taken
    take(2);
    rs = take(1);
    expect(memory.packsOf(rs)).toBeNull();
    // nothing taken
    expect(memory.packsOf([new Uint8Array(10)])).toBeNull();
    // and then a proper call is handed over
    rs = take(3);
    const copies = rs.map((p) => new Uint8Array(p));
    const packs = memory.packsOf(rs)!;
    expect(packs).not.toBeNull();
    same(packs, copies);
  });

  it('never hands out memory of a buffer it handed over', () => {
    const pool = new BufferPool(8 << 20);
    const memory = new HandOverMemory(pool);
    const first = [record(memory, 1000, 7)];
    const packs = memory.packsOf(first)!;
    const next = record(memory, 1000, 9);
    expect(next.buffer).not.toBe(packs[0]!.buffer);
    expect(packs[0]![16]).toBe(7);
  });
});
