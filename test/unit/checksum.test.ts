// Checksums against independent implementations: @node-rs/xxhash for XXH3, a CRC-32C package,
// the reference vectors of reference/sqlite-wal.md, real SQLite-written WAL frames, and every
// SIMD path against the scalar path.
import { createRequire } from 'node:module';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { xxh3 as refXxh3 } from '@node-rs/xxhash';
import { afterEach, describe, expect, it } from 'vitest';

import {
  checksumPaths,
  crc32c,
  sqliteWalChecksum,
  sqliteWalFrameChecksums,
  xxh3_128,
  xxh3_128Into,
  xxh3_64,
  Xxh3Stream,
} from '../../lib/checksum';
import { nativeChecksum, type ChecksumTier } from '../../lib/native';
import { expectWalnutError } from '../helpers/expect-error';
import { jsWalChecksum, oracleScan, sqliteWritesWal, typicalWork } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const requireHere = createRequire(__filename);
const refCrc32c: (b: Buffer) => number = (() => {
  try {
    const m = requireHere('sse4_crc32');
    return (b: Buffer) => m.calculate(b) >>> 0;
  } catch {
    const m = requireHere('fast-crc32c');
    return (b: Buffer) => m.calculate(b) >>> 0;
  }
})();

const TIERS: ChecksumTier[] = ['scalar', 'sse4.2', 'avx2', 'avx512'];
const random = (n: number) => crypto.randomBytes(n);

afterEach(() => {
  for (const kind of ['xxh3', 'crc32c', 'sqliteWal'] as const) nativeChecksum.TEST_setPath(kind, 'best');
});

function eachTier(kind: 'xxh3' | 'crc32c' | 'sqliteWal', fn: (tier: string) => void) {
  const seen = new Set<string>();
  for (const t of TIERS) {
    const active = nativeChecksum.TEST_setPath(kind, t);
    if (seen.has(active)) continue; // clamped to a tier already covered
    seen.add(active);
    fn(active);
  }
  return seen;
}

describe('xxh3 equals @node-rs/xxhash', () => {
  const seeds = [0n, 1n, 0x9e3779b97f4a7c15n, 0xffffffffffffffffn];
  it('every length 0..2048, four seeds, on every path', () => {
    const data = random(2048 + 64);
    const tiers = eachTier('xxh3', () => {
      for (let n = 0; n <= 2048; n++) {
        const view = data.subarray(3, 3 + n); // unaligned
        for (const seed of seeds) {
          if (xxh3_64(view, seed) !== refXxh3.xxh64(view, seed)) throw new Error(`xxh3_64 len ${n} seed ${seed}`);
          if (xxh3_128(view, seed) !== refXxh3.xxh128(view, seed)) throw new Error(`xxh3_128 len ${n} seed ${seed}`);
        }
      }
    });
    expect(tiers.has('scalar')).toBe(true);
  });

  it('random lengths up to 4 MiB at random offsets', () => {
    const big = random(4 << 20);
    for (let i = 0; i < 24; i++) {
      const off = crypto.randomInt(0, 64);
      const len = crypto.randomInt(0, (4 << 20) - 64);
      const view = big.subarray(off, off + len);
      const seed = BigInt(crypto.randomInt(0, 2 ** 47));
      expect(xxh3_64(big, seed, { offset: off, length: len })).toBe(refXxh3.xxh64(view, seed));
      expect(xxh3_128(view, seed)).toBe(refXxh3.xxh128(view, seed));
    }
  });

  it('streaming in random piece sizes equals one-shot, including digests mid-stream', () => {
    for (let trial = 0; trial < 60; trial++) {
      const len = trial < 30 ? crypto.randomInt(0, 3000) : crypto.randomInt(0, 200_000);
      const data = random(len);
      const seed = trial % 2 === 0 ? 0n : BigInt(trial) * 0x1234567n;
      const s = new Xxh3Stream(seed);
      let fed = 0;
      while (fed < len) {
        const piece = Math.min(len - fed, crypto.randomInt(0, trial % 3 === 0 ? 70 : 5000));
        s.update(data, { offset: fed, length: piece });
        fed += piece;
        if (crypto.randomInt(0, 8) === 0) expect(s.digest64()).toBe(refXxh3.xxh64(data.subarray(0, fed), seed));
      }
      expect(s.digest64()).toBe(refXxh3.xxh64(data, seed));
      expect(s.digest128()).toBe(refXxh3.xxh128(data, seed));
    }
  });

  it('xxh3_128Into writes the canonical big-endian bytes', () => {
    const data = random(5000);
    const out = Buffer.alloc(20);
    xxh3_128Into(data, out, 2);
    expect(out.subarray(2, 18).toString('hex')).toBe(xxh3_128(data).toString(16).padStart(32, '0'));
  });
});

describe('crc32c', () => {
  it('matches the standard check value and continues across pieces', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    expect(crc32c(Buffer.alloc(0))).toBe(0);
    const data = random(100_000);
    const whole = crc32c(data);
    expect(crc32c(data.subarray(77_777), crc32c(data.subarray(0, 77_777)))).toBe(whole);
  });

  it('equals a reference package for every length 0..2048 and random lengths to 4 MiB on every path', () => {
    const data = random(4 << 20);
    eachTier('crc32c', () => {
      for (let n = 0; n <= 2048; n++) {
        const view = data.subarray(5, 5 + n);
        if (crc32c(view) !== refCrc32c(view)) throw new Error(`crc32c len ${n}`);
      }
      for (let i = 0; i < 12; i++) {
        const off = crypto.randomInt(0, 64);
        const len = crypto.randomInt(0, (4 << 20) - 64);
        expect(crc32c(data, 0, { offset: off, length: len })).toBe(refCrc32c(data.subarray(off, off + len)));
      }
    });
  });
});

describe('sqlite WAL checksum', () => {
  const header = (magic: number) => {
    const h = Buffer.alloc(32);
    h.writeUInt32BE(magic, 0);
    h.writeUInt32BE(3007000, 4);
    h.writeUInt32BE(4096, 8);
    h.writeUInt32BE(0, 12);
    h.writeUInt32BE(0x01020304, 16);
    h.writeUInt32BE(0x05060708, 20);
    return h;
  };
  const frame = () => {
    const f = Buffer.alloc(24 + 4096);
    f.writeUInt32BE(1, 0);
    f.writeUInt32BE(1, 4);
    for (let i = 0; i < 4096; i++) f[24 + i] = i & 0xff;
    return f;
  };

  it('reproduces the reference vectors for both magic values on every path', () => {
    eachTier('sqliteWal', () => {
      const le = sqliteWalChecksum(header(0x377f0682), 0, 0, { length: 24 });
      expect(le).toEqual([0xd8ea0514, 0x98d8e2be]);
      const f = frame();
      expect(sqliteWalFrameChecksums(f, 4096, le, [0x01020304, 0x05060708])).toEqual([0x4e0886f0, 0xce9cd782]);
      expect([f.readUInt32BE(16), f.readUInt32BE(20)]).toEqual([0x4e0886f0, 0xce9cd782]);
      expect(f.readUInt32BE(8)).toBe(0x01020304);
      const be = sqliteWalChecksum(header(0x377f0683), 0, 0, { length: 24, bigEndianWords: true });
      expect(be).toEqual([0x1706e9db, 0xc2e5d89c]);
      expect(sqliteWalFrameChecksums(frame(), 4096, be, [0x01020304, 0x05060708], { bigEndianWords: true })).toEqual([0x3f866177, 0xf2bca4da]);
    });
  });

  it('every SIMD path equals the plain loop for all lengths, offsets and start values', () => {
    const data = random(70_000);
    const tiers = eachTier('sqliteWal', () => {
      for (let n = 0; n <= 9000; n += 8) {
        const off = n % 13;
        for (const be of [false, true]) {
          const ref = jsWalChecksum(data.subarray(off, off + n), 0xdeadbeef, 0x12345678, be);
          const got = sqliteWalChecksum(data, 0xdeadbeef, 0x12345678, { offset: off, length: n, bigEndianWords: be });
          if (got[0] !== ref[0] || got[1] !== ref[1]) throw new Error(`len ${n} be ${be}`);
        }
      }
      expect(sqliteWalChecksum(data, 1, 2, { length: 65536 })).toEqual(jsWalChecksum(data.subarray(0, 65536), 1, 2, false));
    });
    expect(tiers.size).toBeGreaterThanOrEqual(1);
  });

  it('verifies every frame of WALs that SQLite wrote, in both byte orders', () => {
    const dir = tmpDir();
    for (const pageSize of [1024, 4096, 65536]) {
      const copy = sqliteWritesWal(dir, `ck${pageSize}`, pageSize, typicalWork(20));
      const wal = fs.readFileSync(copy.wal);
      const scan = oracleScan(wal)!;
      expect(scan.frames.length).toBeGreaterThan(10);
      expect(scan.bigEndian).toBe(false);
      eachTier('sqliteWal', () => {
        // little-endian words, as SQLite wrote them: recompute every stored checksum natively
        let running = sqliteWalChecksum(wal, 0, 0, { length: 24 });
        expect(running).toEqual([wal.readUInt32BE(24), wal.readUInt32BE(28)]);
        for (const f of scan.frames) {
          const copyOfFrame = Buffer.from(wal.subarray(f.offset, f.offset + 24 + pageSize));
          copyOfFrame.fill(0, 8, 24);
          running = sqliteWalFrameChecksums(copyOfFrame, pageSize, running, scan.salts);
          expect(copyOfFrame.equals(wal.subarray(f.offset, f.offset + 24 + pageSize))).toBe(true);
        }
        // big-endian words: the same frames re-chained with magic 0x377f0683, against the JS loop
        const h = Buffer.from(wal.subarray(0, 32));
        h.writeUInt32BE(0x377f0683, 0);
        let be = sqliteWalChecksum(h, 0, 0, { length: 24, bigEndianWords: true });
        let ref = jsWalChecksum(h.subarray(0, 24), 0, 0, true);
        expect(be).toEqual(ref);
        for (const f of scan.frames) {
          const fr = Buffer.from(wal.subarray(f.offset, f.offset + 24 + pageSize));
          be = sqliteWalFrameChecksums(fr, pageSize, be, scan.salts, { bigEndianWords: true });
          ref = jsWalChecksum(fr.subarray(0, 8), ref[0], ref[1], true);
          ref = jsWalChecksum(fr.subarray(24), ref[0], ref[1], true);
          expect(be).toEqual(ref);
        }
      });
    }
  });
});

describe('paths and argument checks', () => {
  it('reports a path for each checksum, the best one active by default', () => {
    const p = checksumPaths();
    for (const k of ['xxh3', 'crc32c', 'sqliteWal'] as const) expect(p[k].active).toBe(p[k].best);
  });

  it('rejects bad arguments with WALNUT_INVALID_ARGUMENT', () => {
    const b = Buffer.alloc(64);
    expectWalnutError(() => sqliteWalChecksum(b, 0, 0, { length: 12 }), 'WALNUT_INVALID_ARGUMENT');
    expectWalnutError(() => sqliteWalChecksum(b, -1, 0), 'WALNUT_INVALID_ARGUMENT');
    expectWalnutError(() => sqliteWalChecksum(b, 2 ** 32, 0), 'WALNUT_INVALID_ARGUMENT');
    expectWalnutError(() => sqliteWalChecksum('x' as unknown as Buffer), 'WALNUT_INVALID_ARGUMENT');
    expectWalnutError(() => sqliteWalFrameChecksums(b, 4096, [0, 0], [0, 0]), 'WALNUT_INVALID_ARGUMENT');
    expectWalnutError(() => sqliteWalFrameChecksums(Buffer.alloc(24 + 1000), 1000, [0, 0], [0, 0]), 'WALNUT_INVALID_ARGUMENT');
    expectWalnutError(() => crc32c(b, 0, { offset: 65 }), 'WALNUT_INVALID_ARGUMENT');
    expectWalnutError(() => crc32c(b, 0, { offset: 10, length: 60 }), 'WALNUT_INVALID_ARGUMENT');
    expectWalnutError(() => xxh3_64(b, -1n), 'WALNUT_INVALID_ARGUMENT');
    expectWalnutError(() => xxh3_64(b, 2n ** 64n), 'WALNUT_INVALID_ARGUMENT');
    expectWalnutError(() => xxh3_64(b, 'seed' as unknown as bigint), 'WALNUT_INVALID_ARGUMENT');
    expectWalnutError(() => xxh3_128Into(b, Buffer.alloc(15)), 'WALNUT_INVALID_ARGUMENT');
    expectWalnutError(() => new Xxh3Stream().update(new Float64Array(2) as unknown as Uint8Array), 'WALNUT_INVALID_ARGUMENT');
    expectWalnutError(() => nativeChecksum.TEST_setPath('md5' as 'xxh3', 'scalar'), 'WALNUT_INVALID_ARGUMENT');
  });
});
