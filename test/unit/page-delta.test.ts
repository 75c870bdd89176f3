// PAGE_DELTA (records.ts kind 0x06, export/page-delta.ts): a frame as changed byte ranges
// against the page's previous version. Round trips for random edits, idempotence (a delta
// applied to the page it produced gives that page again), refusal of a delta applied to the
// wrong previous version or with ranges leaving the page, and bounds checks in decoding.
import * as fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { applyPageDelta, encodePageDelta, PageVersions } from '../../lib/export/page-delta';
import { decodeRecord, KIND } from '../../lib/export/records';
import { expectWalnutError } from '../helpers/expect-error';

const PAGE = 4096;

function frameOf(pgno: number, page: Uint8Array): Uint8Array {
  const f = new Uint8Array(24 + page.length);
  new DataView(f.buffer).setUint32(0, pgno);
  f.set([1, 2, 3, 4], 8); // salt bytes, carried bit-exact
  f.set(page, 24);
  return f;
}

function decodeDelta(p: Uint8Array) {
  const rec = decodeRecord(p);
  if (rec.kind !== 'pageDelta') throw new Error(`not a delta: ${rec.kind}`);
  return rec;
}

describe('PAGE_DELTA', () => {
  it('rebuilds the exact frame from the previous version for random edits, and is idempotent', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: PAGE - 1 }), fc.uint8Array({ minLength: 1, maxLength: 40 })), { maxLength: 12 }), fc.integer({ min: 0, max: 255 }), (edits, fill) => {
        const previous = new Uint8Array(PAGE).fill(fill);
        const page = previous.slice();
        for (const [at, bytes] of edits) page.set(bytes.subarray(0, PAGE - at), at);
        const frame = frameOf(7, page);
        const delta = encodePageDelta(frame, previous);
        if (delta === null) return; // larger than half a page: sent whole
        expect(delta[0]).toBe(KIND.PAGE_DELTA);
        expect(delta.length * 2).toBeLessThanOrEqual(PAGE);
        const rec = decodeDelta(delta);
        expect(Buffer.from(applyPageDelta(rec, previous)).equals(Buffer.from(frame))).toBe(true);
        expect(Buffer.from(applyPageDelta(rec, page)).equals(Buffer.from(frame))).toBe(true); // idempotent
      }),
      { numRuns: 200 },
    );
  });

  it('a one-row-sized change costs under 5% of a full frame; a page changed throughout goes whole', () => {
    const previous = new Uint8Array(PAGE).fill(9);
    const page = previous.slice();
    page.set(new Uint8Array(60).fill(1), 3000); // a row
    page.set([0, 5, 0x0b, 0xb8], 1); // the page header's cell count and content offset
    const delta = encodePageDelta(frameOf(3, page), previous)!;
    expect(delta.length).toBeLessThan(0.05 * (24 + PAGE));
    const noise = Uint8Array.from({ length: PAGE }, (_, i) => (i * 73 + 11) & 0xff);
    expect(encodePageDelta(frameOf(3, noise), previous)).toBeNull();
  });

  it('applied to another previous version, or with a range past the page, it is WALNUT_CORRUPT DeltaMismatch (never a silent page)', () => {
    const previous = new Uint8Array(PAGE).fill(1);
    const page = previous.slice();
    page[100] = 2;
    const rec = decodeDelta(encodePageDelta(frameOf(5, page), previous)!);
    const other = previous.slice();
    other[2000] = 7;
    expectWalnutError(() => applyPageDelta(rec, other), 'WALNUT_CORRUPT', { reason: 'DeltaMismatch', pgno: 5 });
    const bad = encodePageDelta(frameOf(5, page), previous)!;
    new DataView(bad.buffer).setUint32(45, PAGE - 1); // the one range's offset: its 1 byte still fits
    new DataView(bad.buffer).setUint32(49, 1);
    expectWalnutError(() => applyPageDelta(decodeDelta(bad), previous), 'WALNUT_CORRUPT', { reason: 'DeltaMismatch' }); // hash
    new DataView(bad.buffer).setUint32(45, PAGE); // now past the end
    expectWalnutError(() => applyPageDelta(decodeDelta(bad), previous), 'WALNUT_CORRUPT', { reason: 'DeltaMismatch' });
  });

  it('decoding checks every range against the payload before use (Truncated)', () => {
    const previous = new Uint8Array(PAGE);
    const page = previous.slice();
    page[10] = 1;
    const good = encodePageDelta(frameOf(2, page), previous)!;
    for (const cut of [1, 20, 44, good.length - 1]) expectWalnutError(() => decodeRecord(good.subarray(0, cut)), 'WALNUT_INVALID_FRAMING', { reason: 'Truncated' });
    const long = new Uint8Array(good.length + 3);
    long.set(good);
    expectWalnutError(() => decodeRecord(long), 'WALNUT_INVALID_FRAMING', { reason: 'Truncated' });
    const huge = good.slice();
    new DataView(huge.buffer).setUint32(41, 0xffffffff); // a range count far past the payload
    expectWalnutError(() => decodeRecord(huge), 'WALNUT_INVALID_FRAMING', { reason: 'Truncated' });
  });

  it('PageVersions keeps at most its budget, most recently used last, and forgets pages past a shrink', () => {
    const v = new PageVersions(3 * PAGE);
    for (let p = 1; p <= 4; p++) v.set(p, new Uint8Array(PAGE).fill(p));
    expect(v.get(1)).toBeUndefined(); // evicted
    expect(v.get(4)![0]).toBe(4);
    v.truncate(2);
    expect([v.get(2)?.[0], v.get(3), v.get(4)]).toEqual([2, undefined, undefined]);
    const page = new Uint8Array(PAGE).fill(8);
    v.set(2, page);
    page[0] = 9; // the caller's buffer is reused: the version is a copy
    expect(v.get(2)![0]).toBe(8);
  });
  it('bytes that are +0 against -0, or the same NaN, as doubles are told apart and found equal exactly as bytes are (the compare skips eight bytes at a time)', () => {
    const negZero = new Uint8Array(new Float64Array([-0]).buffer); // differs from +0 in one bit
    const nan = new Uint8Array(new Float64Array([NaN]).buffer); // never equal to itself as a double
    for (const at of [0, 8, 800, PAGE - 8]) {
      const previous = new Uint8Array(PAGE); // +0s
      const page = previous.slice();
      page.set(negZero, at);
      const d = encodePageDelta(frameOf(2, page), previous);
      expect(d).not.toBeNull();
      expect(applyPageDelta(decodeDelta(d!), previous)).toEqual(frameOf(2, page));
      expect(decodeDelta(d!).count).toBe(1);
      // the same NaN bytes in both, one byte changed after them: one range, just that byte
      const before = new Uint8Array(PAGE).fill(7);
      before.set(nan, at);
      const after = before.slice();
      after[(at + 12) % PAGE] ^= 1;
      const e = encodePageDelta(frameOf(3, after), before)!;
      const rec = decodeDelta(e);
      expect(rec.count).toBe(1);
      expect(rec.ranges.length).toBe(8 + 1);
      expect(applyPageDelta(rec, before)).toEqual(frameOf(3, after));
    }
  });
});
