// The native PAGE_DELTA encoder (native/page_delta.h, lib/export/page-delta.ts encodePageDelta)
// against the JavaScript reference encoder (encodePageDeltaJs): the same bytes, or both null,
// for random pages, edits, page sizes, frame headers and unaligned views; its update of the
// previous version in place; and every bad argument refused (WALNUT_INVALID_ARGUMENT), none
// read or written past its bounds.
import * as fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { applyPageDelta, encodePageDelta, encodePageDeltaJs, PageVersions } from '../../lib/export/page-delta';
import { decodeRecord } from '../../lib/export/records';
import { nativeEncodePageDelta } from '../../lib/native';
import { expectWalnutError } from '../helpers/expect-error';

/** `bytes` at `offset` of a larger buffer (unaligned views exercise the native word loads). */
function placed(bytes: Uint8Array, offset: number): Uint8Array {
  const big = new Uint8Array(offset + bytes.length + 5).fill(0xa5);
  big.set(bytes, offset);
  return big.subarray(offset, offset + bytes.length);
}

const edit = fc.tuple(fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 70 }));

describe('native PAGE_DELTA encoder', () => {
  it('writes exactly the JavaScript encoder\'s bytes (or both send the frame whole) for random pages and edits', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(512, 1024, 4096, 8192, 65536),
        fc.array(edit, { maxLength: 40 }),
        fc.uint8Array({ minLength: 24, maxLength: 24 }),
        fc.integer({ min: 0, max: 7 }),
        fc.integer({ min: 0, max: 7 }),
        fc.oneof(fc.constant('fill' as const), fc.constant('noise' as const)),
        (pageSize, edits, header, frameOffset, prevOffset, kind) => {
          const previous = kind === 'fill' ? new Uint8Array(pageSize).fill(header[0]!) : Uint8Array.from({ length: pageSize }, (_, i) => (i * 131 + header[1]!) & 0xff);
          const page = previous.slice();
          for (const [at, bytes] of edits) {
            const to = at % pageSize;
            page.set(bytes.subarray(0, pageSize - to), to);
          }
          const frameBytes = new Uint8Array(24 + pageSize);
          frameBytes.set(header);
          frameBytes.set(page, 24);
          const frame = placed(frameBytes, frameOffset);
          const prev = placed(previous, prevOffset);
          const js = encodePageDeltaJs(frame, prev);
          const native = encodePageDelta(frame, prev);
          expect(native === null ? null : Buffer.from(native).toString('hex')).toBe(js === null ? null : Buffer.from(js).toString('hex'));
          if (native !== null) {
            const rec = decodeRecord(native);
            if (rec.kind !== 'pageDelta') throw new Error(rec.kind);
            expect(Buffer.from(applyPageDelta(rec, previous)).equals(Buffer.from(frameBytes))).toBe(true);
          }
          // updatePrevious: the same answer, and previous holds the new page afterwards
          const updated = encodePageDelta(frame, prev, undefined, true);
          expect(updated === null ? null : Buffer.from(updated).toString('hex')).toBe(js === null ? null : Buffer.from(js).toString('hex'));
          expect(Buffer.from(prev).equals(Buffer.from(page))).toBe(true);
          // and nothing around the views was written
          expect(new Uint8Array(prev.buffer, 0, prevOffset).every((b) => b === 0xa5)).toBe(true);
          expect(new Uint8Array(prev.buffer, prevOffset + pageSize).every((b) => b === 0xa5)).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('matches the JavaScript encoder at the edges: no change, one byte first and last, gaps of 8 and 9 bytes, just under and over half a page', () => {
    const pageSize = 4096;
    const cases: ((p: Uint8Array) => void)[] = [
      () => undefined,
      (p) => (p[0] ^= 1),
      (p) => (p[pageSize - 1] ^= 1),
      (p) => {
        p[100] ^= 1;
        p[109] ^= 1; // gap of 8 equal bytes: merged
      },
      (p) => {
        p[100] ^= 1;
        p[110] ^= 1; // gap of 9: two ranges
      },
      (p) => {
        for (let i = 0; i < 1990; i++) p[i] ^= 0xff; // 45 + 8 + 1990 = 2043 <= 2048: a delta
      },
      (p) => {
        for (let i = 0; i < 1996; i++) p[i] ^= 0xff; // 2049: whole
      },
      (p) => {
        for (let i = 0; i < pageSize; i += 2) p[i] ^= 0xff; // every other byte: merged into one range, whole
      },
    ];
    for (const change of cases) {
      const previous = Uint8Array.from({ length: pageSize }, (_, i) => i & 0xff);
      const frame = new Uint8Array(24 + pageSize);
      frame[3] = 9;
      frame.set(previous, 24);
      change(frame.subarray(24));
      const js = encodePageDeltaJs(frame, previous);
      const native = encodePageDelta(frame, previous);
      expect(native === null ? null : Buffer.from(native).toString('hex')).toBe(js === null ? null : Buffer.from(js).toString('hex'));
    }
  });

  it('a previous version of another size, or a frame no longer than its header, is no delta (and previous is left as it was)', () => {
    const frame = new Uint8Array(24 + 512).fill(1);
    const short = new Uint8Array(511).fill(7);
    expect(encodePageDelta(frame, short, undefined, true)).toBeNull();
    expect(short.every((b) => b === 7)).toBe(true);
    expect(encodePageDelta(frame, new Uint8Array(513), undefined, true)).toBeNull();
    expect(encodePageDelta(new Uint8Array(24), new Uint8Array(0))).toBeNull();
    // a page under 90 bytes: even no change at all (45 bytes) is more than half of it, as in JavaScript
    for (const size of [1, 64, 89, 90, 91]) {
      const page = new Uint8Array(size).fill(4);
      const f = new Uint8Array(24 + size);
      f.set(page, 24);
      expect(encodePageDelta(f, page)?.length ?? null).toBe(encodePageDeltaJs(f, page)?.length ?? null);
    }
    expect(encodePageDelta(new Uint8Array(24 + 64), new Uint8Array(64))).toBeNull();
    expect(encodePageDelta(new Uint8Array(0), new Uint8Array(0))).toBeNull();
  });

  it('an out buffer too small for the delta answers 0 and writes nothing to it; previous still moves on when asked', () => {
    const previous = new Uint8Array(4096);
    const frame = new Uint8Array(24 + 4096);
    frame[24 + 10] = 1; // a 54-byte delta
    const out = new Uint8Array(53).fill(0xee);
    expect(nativeEncodePageDelta(frame, previous, out, true)).toBe(0);
    expect(out.every((b) => b === 0xee)).toBe(true);
    expect(previous[10]).toBe(1);
    expect(nativeEncodePageDelta(frame, new Uint8Array(4096), new Uint8Array(54), false)).toBe(54);
  });

  it('refuses bad arguments with WALNUT_INVALID_ARGUMENT: not Uint8Arrays, a missing flag, out overlapping frame or previous', () => {
    const frame = new Uint8Array(24 + 512);
    const previous = new Uint8Array(512);
    const out = new Uint8Array(256);
    const call = nativeEncodePageDelta as unknown as (...a: unknown[]) => number;
    for (const args of [
      [null, previous, out, false],
      [frame, 'x', out, false],
      [frame, previous, new Uint32Array(64), false],
      [frame, previous, out],
      [frame, previous, out, 1],
      [new Float64Array(8), previous, out, false],
    ]) {
      expectWalnutError(() => call(...args), 'WALNUT_INVALID_ARGUMENT');
    }
    expectWalnutError(() => call(frame, previous, frame.subarray(100, 300), false), 'WALNUT_INVALID_ARGUMENT');
    expectWalnutError(() => call(frame, previous, previous.subarray(0, 256), true), 'WALNUT_INVALID_ARGUMENT');
    // out may share previous's buffer when previous is not written
    const shared = new Uint8Array(1024);
    frame[24 + 3] = 1;
    expect(call(frame, shared.subarray(0, 512), shared.subarray(512), false)).toBe(54);
  });
});
