// The erasure codes behind the FEC sidecar: GF(2^8) arithmetic against a plain reference, the
// SIMD region multiply against scalar, Reed-Solomon over every erasure pattern for small K and R,
// and the raptorq codec on the same data.
import { afterAll, describe, expect, it } from 'vitest';

import { loadCodec, rsCodec } from '../../lib/fec/codec';
import { nativeFec } from '../../lib/native';

/** Carry-less multiply reduced by x^8 + x^4 + x^3 + x^2 + 1, bit by bit. */
function refMul(a: number, b: number): number {
  let p = 0;
  for (let i = 0; i < 8; i++) {
    if (b & 1) p ^= a;
    b >>= 1;
    a <<= 1;
    if (a & 0x100) a ^= 0x11d;
  }
  return p;
}

function rng(seed: number) {
  let s = seed >>> 0;
  return (n: number) => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return Math.floor((s / 2 ** 32) * n);
  };
}

function randomBytes(n: number, r: (n: number) => number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = r(256);
  return b;
}

const paths = (['scalar', 'ssse3', 'avx2'] as const).filter((p) => {
  const ok = nativeFec.TEST_setRegionPath(p);
  return ok;
});
const best = nativeFec.regionPaths().best as 'scalar' | 'ssse3' | 'avx2';
nativeFec.TEST_setRegionPath(best);
afterAll(() => nativeFec.TEST_setRegionPath(best));

describe('GF(2^8)', () => {
  it('multiplies like the bit-by-bit reference for all 65,536 pairs; every non-zero element has its inverse', () => {
    for (let a = 0; a < 256; a++) for (let b = 0; b < 256; b++) if (nativeFec.gfMul(a, b) !== refMul(a, b)) throw new Error(`${a} * ${b}`);
    for (let a = 1; a < 256; a++) expect(refMul(a, nativeFec.gfInv(a))).toBe(1);
  });

  it.each(paths)('region multiply-add on the %s path equals the reference at every length and alignment', (path) => {
    expect(nativeFec.TEST_setRegionPath(path)).toBe(true);
    const r = rng(7);
    for (let trial = 0; trial < 400; trial++) {
      const len = trial < 130 ? trial : r(5000);
      const off = r(32);
      const src = randomBytes(len + off, r).subarray(off);
      const dst = randomBytes(len + 5, r).subarray(3, 3 + len);
      const c = trial % 17 === 0 ? [0, 1, 255][trial % 3]! : r(256);
      const want = dst.map((d, i) => d ^ refMul(c, src[i]!));
      nativeFec.gfMulAddRegion(dst, src, c);
      expect(Buffer.from(dst).equals(Buffer.from(want))).toBe(true);
    }
    nativeFec.TEST_setRegionPath(best);
  });

  it('reports the paths this CPU has', () => {
    expect(paths).toContain('scalar');
    console.log('fec region paths:', paths.join(', '), 'best:', best);
  });
});

function* subsets(n: number, maxSize: number, start = 0, acc: number[] = []): Generator<number[]> {
  yield acc;
  if (acc.length === maxSize) return;
  for (let i = start; i < n; i++) yield* subsets(n, maxSize, i + 1, [...acc, i]);
}

describe('Reed-Solomon (rs codec)', () => {
  it('repairs every erasure pattern of up to R symbols, K 1..8, R 1..4; R + 1 lost sources fail cleanly', () => {
    const r = rng(11);
    let patterns = 0;
    for (let k = 1; k <= 8; k++) {
      for (let rr = 1; rr <= 4; rr++) {
        const size = 70 + r(60); // exercises the 64-byte vector body and its tail
        const data = randomBytes(k * size, r);
        const repair = rsCodec.encode(data, k, size, rr);
        for (const lost of subsets(k + rr, rr)) {
          const damaged = data.slice();
          const rep = repair.slice();
          const present = new Uint8Array(k + rr).fill(1);
          for (const i of lost) {
            present[i] = 0;
            if (i < k) damaged.fill(0xee, i * size, (i + 1) * size);
            else rep.fill(0xee, (i - k) * size, (i - k + 1) * size);
          }
          expect(rsCodec.decode(damaged, present, rep, k, size, rr)).toBe(true);
          expect(Buffer.from(damaged).equals(Buffer.from(data))).toBe(true);
          patterns++;
        }
        if (k > rr) {
          const present = new Uint8Array(k + rr).fill(1);
          for (let i = 0; i <= rr; i++) present[i] = 0;
          const copy = data.slice();
          expect(rsCodec.decode(copy, present, repair, k, size, rr)).toBe(false);
          expect(Buffer.from(copy).equals(Buffer.from(data))).toBe(true); // nothing written on failure
        }
      }
    }
    expect(patterns).toBe(3402); // sum over K, R of the subsets of at most R of K + R symbols
  });

  it.each(paths)('encodes the same repair symbols on the %s path', (path) => {
    const r = rng(3);
    const data = randomBytes(250 * 512, r);
    nativeFec.TEST_setRegionPath('scalar');
    const want = rsCodec.encode(data, 250, 512, 4);
    nativeFec.TEST_setRegionPath(path);
    const got = rsCodec.encode(data, 250, 512, 4);
    nativeFec.TEST_setRegionPath(best);
    expect(Buffer.from(got).equals(Buffer.from(want))).toBe(true);
  });

  it('groups of 250 frames of 4 KiB with R = 4: any 4 lost pages come back', () => {
    const r = rng(5);
    const k = 250;
    const size = 4096;
    const data = randomBytes(k * size, r);
    const repair = rsCodec.encode(data, k, size, 4);
    for (let trial = 0; trial < 20; trial++) {
      const present = new Uint8Array(k + 4).fill(1);
      const copy = data.slice();
      for (let n = 0; n < 4; ) {
        const i = r(k);
        if (present[i]) {
          present[i] = 0;
          copy.fill(0, i * size, (i + 1) * size);
          n++;
        }
      }
      expect(rsCodec.decode(copy, present, repair, k, size, 4)).toBe(true);
      expect(Buffer.from(copy).equals(Buffer.from(data))).toBe(true);
    }
  });

  it('checks every length natively: WALNUT_INVALID_ARGUMENT, never a read out of bounds', () => {
    const data = new Uint8Array(100);
    expect(() => nativeFec.rsEncode(data, new Uint8Array(20), 10, 2, 11)).toThrow(expect.objectContaining({ code: 'WALNUT_INVALID_ARGUMENT' }));
    expect(() => nativeFec.rsEncode(data, new Uint8Array(20), 10, 2, 10)).not.toThrow();
    expect(() => nativeFec.rsEncode(data, new Uint8Array(19), 10, 2, 10)).toThrow(expect.objectContaining({ code: 'WALNUT_INVALID_ARGUMENT' }));
    expect(() => nativeFec.rsEncode(data, new Uint8Array(20), 250, 7, 0)).toThrow(expect.objectContaining({ code: 'WALNUT_INVALID_ARGUMENT' }));
    expect(() => nativeFec.rsDecode(data, new Uint8Array(20), new Uint8Array(11), 10, 2, 10)).toThrow(expect.objectContaining({ code: 'WALNUT_INVALID_ARGUMENT' }));
    expect(() => nativeFec.rsEncode(new Uint8Array(256 * 2), new Uint8Array(2), 256, 1, 2)).toThrow(expect.objectContaining({ code: 'WALNUT_INVALID_ARGUMENT' }));
  });
});

describe('raptorq codec (wasm)', () => {
  it('repairs R lost frames for R = 1, 2, 4 and groups of 1 to 250 frames', async () => {
    const rq = await loadCodec('raptorq');
    const r = rng(13);
    let cases = 0;
    let failures = 0;
    for (const k of [1, 2, 7, 64, 250]) {
      for (const rr of [1, 2, 4]) {
        const size = 1024;
        const data = randomBytes(k * size, r);
        const repair = rq.encode(data, k, size, rr);
        expect(repair.length).toBe(rq.repairBytes(size, rr));
        for (let trial = 0; trial < 3; trial++) {
          const present = new Uint8Array(k + rr).fill(1);
          const copy = data.slice();
          const lose = Math.min(rr, k);
          for (let n = 0; n < lose; ) {
            const i = r(k);
            if (present[i]) {
              present[i] = 0;
              copy.fill(0, i * size, (i + 1) * size);
              n++;
            }
          }
          cases++;
          if (!rq.decode(copy, present, repair, k, size, rr)) failures++;
          else expect(Buffer.from(copy).equals(Buffer.from(data))).toBe(true);
        }
      }
    }
    expect(failures).toBe(0);
    expect(cases).toBe(45);
  });
});
