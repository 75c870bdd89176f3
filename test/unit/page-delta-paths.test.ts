// The native PAGE_DELTA encoder's scans (native/page_delta.cc: scalar, AVX2, AVX-512; every one
// the CPU has, forced in turn) against the plain JavaScript reference (encodePageDeltaJs): the
// same bytes or both the frame whole, and previous holding the new page afterwards when asked
// (the SIMD scans store it as they compare), for random pages with random changed ranges:
// changes at byte 0 and at the last byte, runs across 64-byte blocks and through whole blocks,
// gaps of kMergeGap (8: merged) and 9 equal bytes, deltas just under and over half a page (the
// scan stops early and must still move previous on), previous overlapping the frame (no fused
// store), every page size 512..65536, and views at every alignment.
import * as crypto from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';

import { encodePageDeltaJs } from '../../lib/export/page-delta';
import { nativeEncodePageDelta, TEST_setPageDeltaPath } from '../../lib/native';
import { seededRandom } from '../helpers/wal-damage'; // (xorshift32: failures replay)

const PAGE_SIZES = [512, 1024, 2048, 4096, 8192, 16384, 32768, 65536];
const out = new Uint8Array(40 << 10);

afterEach(() => {
  TEST_setPageDeltaPath('best');
});

/** Runs fn once per scan the CPU has; the paths run. */
function eachPath(fn: (path: string) => void): Set<string> {
  const seen = new Set<string>();
  for (const t of ['scalar', 'avx2', 'avx512'] as const) {
    const active = TEST_setPageDeltaPath(t);
    if (seen.has(active)) continue; // clamped to one already covered
    seen.add(active);
    fn(active);
  }
  return seen;
}

/** Flips every byte of [start, end) of page to another value. */
function change(page: Uint8Array, start: number, end: number, next: (n: number) => number): void {
  for (let i = Math.max(0, start); i < Math.min(page.length, end); i++) page[i] ^= 1 + next(255);
}

/** The changed ranges of one case: what the edges call for, then random ones. */
function changes(pageSize: number, next: (n: number) => number, kind: number): [number, number][] {
  const last = pageSize - 1;
  switch (kind) {
    case 0: return [];
    case 1: return [[0, 1]];
    case 2: return [[last, pageSize]];
    case 3: return [[0, 1], [last, pageSize]];
    case 4: return [[0, 1], [9, 10]]; // gap of 8 equal bytes: one range
    case 5: return [[0, 1], [10, 11]]; // gap of 9: two ranges
    case 6: { // gaps of 8 and 9 across a 64-byte block boundary, and a run ending at the page's end
      const b = 64 * (1 + next(pageSize / 64 - 2));
      return [[b - 5, b - 1], [b + 7, b + 9], [b + 18, b + 20], [last - 3, pageSize]];
    }
    case 7: { // runs through whole blocks, ending on a block edge and one byte past it
      const b = 64 * next(pageSize / 64 - 3);
      return [[b, b + 128], [b + 192, b + 193]];
    }
    case 8: { // just under half a page: one range of (pageSize / 2 - 53) bytes is 45 + 8 + that
      const len = pageSize / 2 - 53;
      const at = next(pageSize - len);
      return [[at, at + len]];
    }
    case 9: { // just over: the scan stops at that range (and in the block it ends in)
      const len = pageSize / 2 - 52;
      const at = next(pageSize - len);
      return [[at, at + len]];
    }
    case 10: { // many small ranges, some past half the page in total, merged or not
      const ranges: [number, number][] = [];
      for (let at = next(40); at < pageSize; at += 2 + next(24)) {
        const len = 1 + next(6);
        ranges.push([at, at + len]);
        at += len;
      }
      return ranges;
    }
    default: {
      const ranges: [number, number][] = [];
      const count = next(20);
      for (let r = 0; r < count; r++) {
        const at = next(pageSize);
        ranges.push([at, at + 1 + next(next(4) === 0 ? 300 : 70)]);
      }
      return ranges;
    }
  }
}

/** frame (24-byte header + page) and previous as views at the given byte offsets of larger buffers (guard bytes 0xa5 around). */
function placed(bytes: Uint8Array, offset: number): Uint8Array {
  const big = new Uint8Array(offset + bytes.length + 70).fill(0xa5);
  big.set(bytes, offset);
  return big.subarray(offset, offset + bytes.length);
}

const hex = (b: Uint8Array | null) => (b === null ? null : Buffer.from(b).toString('hex'));

describe('PAGE_DELTA encoder: every scan writes the JavaScript reference\'s bytes', () => {
  it('random pages and changed ranges, the edges, every page size 512..65536, updated in place or not', () => {
    const next = seededRandom(0x5eed22);
    let deltas = 0;
    let whole = 0;
    const paths = eachPath((path) => {
      for (const pageSize of PAGE_SIZES) {
        const cases = pageSize >= 16384 ? 16 : 40;
        for (let c = 0; c < cases; c++) {
          const previous = next(3) === 0 ? new Uint8Array(pageSize).fill(next(256)) : new Uint8Array(crypto.randomBytes(pageSize));
          const page = previous.slice();
          for (const [start, end] of changes(pageSize, next, c)) change(page, start, end, next);
          const frameBytes = new Uint8Array(24 + pageSize);
          frameBytes.set(crypto.randomBytes(24));
          frameBytes.set(page, 24);
          const frame = placed(frameBytes, next(64));
          const prevOffset = next(64);
          const expected = encodePageDeltaJs(frameBytes, previous);
          if (expected === null) whole++;
          else deltas++;
          for (const update of [false, true]) {
            const prev = placed(previous, prevOffset);
            const n = nativeEncodePageDelta(frame, prev, out, update);
            expect(hex(n === 0 ? null : out.subarray(0, n)), `${path} page ${pageSize} case ${c} update ${update}`).toBe(hex(expected));
            expect(Buffer.from(prev).equals(Buffer.from(update ? page : previous)), `${path} page ${pageSize} case ${c}: previous`).toBe(true);
            // nothing around previous was written
            expect(new Uint8Array(prev.buffer, 0, prevOffset).every((b) => b === 0xa5)).toBe(true);
            expect(new Uint8Array(prev.buffer, prevOffset + pageSize).every((b) => b === 0xa5)).toBe(true);
          }
        }
      }
    });
    expect(paths.has('scalar')).toBe(true);
    // both answers were exercised
    expect(deltas).toBeGreaterThan(100);
    expect(whole).toBeGreaterThan(20);
  });

  it('previous overlapping the frame\'s page (compared first, moved on after): the reference\'s bytes', () => {
    const next = seededRandom(77);
    eachPath((path) => {
      for (const pageSize of [512, 4096]) {
        for (const shift of [-64, -24, -23, -1, 1, 7, 64, 100]) {
          // one buffer: the frame at 200, previous at 200 + 24 + shift
          const big = new Uint8Array(200 + 24 + pageSize + 200);
          for (let i = 0; i < big.length; i++) big[i] = next(4); // few values: many equal bytes
          const frame = big.subarray(200, 200 + 24 + pageSize);
          const prev = big.subarray(224 + shift, 224 + shift + pageSize);
          const frameCopy = frame.slice();
          const expected = encodePageDeltaJs(frameCopy, prev.slice());
          const n = nativeEncodePageDelta(frame, prev, out, true);
          expect(hex(n === 0 ? null : out.subarray(0, n)), `${path} ${pageSize} shift ${shift}`).toBe(hex(expected));
          expect(Buffer.from(prev).equals(Buffer.from(frameCopy.subarray(24))), `${path} ${pageSize} shift ${shift}: previous`).toBe(true);
        }
      }
    });
  });

  it('pages not a multiple of 64 bytes (the scans\' last partial block): the reference\'s answer', () => {
    const next = seededRandom(9);
    eachPath((path) => {
      for (const size of [1, 63, 64, 65, 89, 90, 127, 130, 191, 577, 1000]) {
        for (let c = 0; c < 20; c++) {
          const previous = new Uint8Array(crypto.randomBytes(size));
          const page = previous.slice();
          if (c > 0) change(page, next(size), next(size) + 1 + next(3), next);
          if (c % 5 === 1) change(page, size - 1, size, next);
          const frame = new Uint8Array(24 + size);
          frame.set(page, 24);
          const expected = encodePageDeltaJs(frame, previous);
          const prev = placed(previous, next(8));
          const n = nativeEncodePageDelta(frame, prev, out, true);
          expect(hex(n === 0 ? null : out.subarray(0, n)), `${path} size ${size} case ${c}`).toBe(hex(expected));
          expect(Buffer.from(prev).equals(Buffer.from(page))).toBe(true);
          expect(new Uint8Array(prev.buffer, prev.byteOffset + size).every((b) => b === 0xa5)).toBe(true);
        }
      }
    });
  });
});
