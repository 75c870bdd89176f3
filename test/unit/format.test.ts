// format/: pure codecs round-trip and agree with the native checksum; bad headers are
// classified exactly as SQLite treats them.
import * as fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { sqliteWalChecksum } from '../../lib/checksum';
import { unwindWalChecksum, walChecksumBytes } from '../../lib/format/checksum';
import { decodeDbHeader, isWalMode, trustedDbSize, trustedDbSizeOf } from '../../lib/format/db-header';
import { decodeFrameHeader, encodeFrameHeader } from '../../lib/format/frame-header';
import { decodeDbPageSize, decodeShmPageSize, encodeDbPageSize, encodeShmPageSize, isValidPageSize } from '../../lib/format/page-size';
import { decodeShmHeaderCopies, encodeShmHeader } from '../../lib/format/shm-header';
import { decodeWalHeader, encodeWalHeader, frameOffset, WAL_MAGIC_BE, WAL_MAGIC_LE, walHeaderWithChecksum } from '../../lib/format/wal-header';

const PAGE_SIZES = [512, 1024, 2048, 4096, 8192, 16384, 32768, 65536];

describe('page size encodings', () => {
  it('round-trips every valid size through the db and shm encodings; 65536 is 1', () => {
    for (const p of PAGE_SIZES) {
      expect(isValidPageSize(p)).toBe(true);
      expect(decodeDbPageSize(encodeDbPageSize(p))).toBe(p);
      expect(decodeShmPageSize(encodeShmPageSize(p))).toBe(p);
    }
    expect(encodeDbPageSize(65536)).toBe(1);
    expect(encodeShmPageSize(65536)).toBe(1);
    for (const bad of [0, 256, 511, 513, 1000, 3072, 131072, 4096.5, -4096]) expect(isValidPageSize(bad)).toBe(false);
    expect(decodeDbPageSize(1000)).toBe(0);
  });
});

describe('WAL header', () => {
  it('encodes the reference header vector and decodes it back', () => {
    const { bytes, checksum } = encodeWalHeader({ pageSize: 4096, checkpointSeq: 0, salt1: 0x01020304, salt2: 0x05060708, magic: WAL_MAGIC_LE });
    expect(checksum).toEqual([0xd8ea0514, 0x98d8e2be]);
    const d = decodeWalHeader(bytes);
    expect(d.status).toBe('ok');
    expect(d.header).toMatchObject({ magic: WAL_MAGIC_LE, version: 3007000, pageSize: 4096, salt1: 0x01020304, salt2: 0x05060708 });
    const be = encodeWalHeader({ pageSize: 4096, checkpointSeq: 0, salt1: 0x01020304, salt2: 0x05060708, magic: WAL_MAGIC_BE });
    expect(be.checksum).toEqual([0x1706e9db, 0xc2e5d89c]);
  });

  it('round-trips any header (property)', () => {
    fc.assert(
      fc.property(fc.constantFrom(...PAGE_SIZES), fc.nat(), fc.nat(), fc.nat(), fc.boolean(), (pageSize, seq, s1, s2, be) => {
        const { bytes, checksum } = encodeWalHeader({ pageSize, checkpointSeq: seq, salt1: s1, salt2: s2, magic: be ? WAL_MAGIC_BE : WAL_MAGIC_LE });
        const d = decodeWalHeader(bytes);
        expect(d.status).toBe('ok');
        expect(d.header).toEqual({ magic: be ? WAL_MAGIC_BE : WAL_MAGIC_LE, version: 3007000, pageSize, checkpointSeq: seq, salt1: s1, salt2: s2, checksum });
      }),
    );
  });

  it('classifies bad headers as SQLite does (empty WAL, or CANTOPEN for the version)', () => {
    const good = encodeWalHeader({ pageSize: 4096, checkpointSeq: 1, salt1: 1, salt2: 2 }).bytes;
    expect(decodeWalHeader(good.subarray(0, 31)).status).toBe('short');
    const badMagic = Uint8Array.from(good);
    badMagic[3] = 0x84;
    expect(decodeWalHeader(badMagic).status).toBe('bad-magic');
    const badSize = Uint8Array.from(good);
    new DataView(badSize.buffer).setUint32(8, 3000);
    expect(decodeWalHeader(badSize).status).toBe('bad-page-size');
    const badSum = Uint8Array.from(good);
    badSum[31] ^= 1;
    expect(decodeWalHeader(badSum).status).toBe('bad-checksum');
    const version = Uint8Array.from(good);
    new DataView(version.buffer).setUint32(4, 3007001);
    const [s0, s1] = walChecksumBytes(version.subarray(0, 24), false);
    new DataView(version.buffer).setUint32(24, s0);
    new DataView(version.buffer).setUint32(28, s1);
    expect(decodeWalHeader(version).status).toBe('unknown-version');
    expect(() => encodeWalHeader({ pageSize: 1000, checkpointSeq: 0, salt1: 0, salt2: 0 })).toThrow(RangeError);
  });

  it('frame offsets follow 32 + (n-1)(pageSize+24)', () => {
    expect(frameOffset(1, 4096)).toBe(32);
    expect(frameOffset(3, 1024)).toBe(32 + 2 * 1048);
  });
});

describe('JS checksum (format/) equals the native one', () => {
  it('on random inputs in both word orders', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 512 }), fc.boolean(), fc.nat(), fc.nat(), (raw, be, a, b) => {
        const bytes = raw.subarray(0, raw.length - (raw.length % 8));
        expect(walChecksumBytes(bytes, be, [a >>> 0, b >>> 0])).toEqual(sqliteWalChecksum(bytes, a >>> 0, b >>> 0, { bigEndianWords: be }));
      }),
    );
  });
});

describe('a WAL header solved from its checksum (FEC header restore from version 1 groups)', () => {
  it('unwindWalChecksum undoes walChecksumBytes from any start, both word orders', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 64 }).map((b) => b.subarray(0, b.length - (b.length % 8))), fc.nat(0xffffffff), fc.nat(0xffffffff), fc.boolean(), (bytes, a, b, be) => {
        expect(unwindWalChecksum(bytes, walChecksumBytes(bytes, be, [a, b]), be)).toEqual([a, b]);
      }),
    );
  });

  it('walHeaderWithChecksum finds the one checkpoint sequence that gives the checksum, and nothing for other fields', () => {
    fc.assert(
      fc.property(fc.nat(0xffffffff), fc.nat(0xffffffff), fc.nat(0xffffffff), fc.constantFrom(512, 1024, 4096, 65536), fc.constantFrom(WAL_MAGIC_LE, WAL_MAGIC_BE), (seq, salt1, salt2, pageSize, magic) => {
        const h = encodeWalHeader({ pageSize, checkpointSeq: seq, salt1, salt2, magic });
        expect(Buffer.from(walHeaderWithChecksum({ magic, pageSize, salt1, salt2 }, h.checksum)!).equals(Buffer.from(h.bytes))).toBe(true);
        const otherPageSize = pageSize === 512 ? 1024 : 512;
        expect(walHeaderWithChecksum({ magic, pageSize: otherPageSize, salt1, salt2 }, h.checksum)).toBeNull();
      }),
    );
  });
});

describe('frame header', () => {
  it('round-trips (property)', () => {
    fc.assert(
      fc.property(fc.nat(), fc.nat(), fc.nat(), fc.nat(), fc.nat(), fc.nat(), (pgno, commitSize, salt1, salt2, c0, c1) => {
        const h = { pgno, commitSize, salt1, salt2, checksum: [c0, c1] as [number, number] };
        expect(decodeFrameHeader(encodeFrameHeader(h))).toEqual(h);
      }),
    );
    expect(() => decodeFrameHeader(new Uint8Array(23))).toThrow(RangeError);
  });
});

describe('database header', () => {
  it('decodes a WAL-mode header and the in-header size rule', () => {
    const h = new Uint8Array(100);
    h.set(Buffer.from('SQLite format 3\0', 'latin1'));
    const dv = new DataView(h.buffer);
    dv.setUint16(16, 1); // 65536
    h[18] = 2;
    h[19] = 2;
    dv.setUint32(24, 7);
    dv.setUint32(28, 12);
    dv.setUint32(92, 7);
    const d = decodeDbHeader(h)!;
    expect(d.pageSize).toBe(65536);
    expect(isWalMode(d)).toBe(true);
    expect(trustedDbSize(d)).toBe(12);
    dv.setUint32(92, 6);
    expect(trustedDbSize(decodeDbHeader(h)!)).toBeNull();
    expect(decodeDbHeader(new Uint8Array(100))).toBeNull();
    expect(decodeDbHeader(h.subarray(0, 99))).toBeNull();
  });

  it('trustedDbSizeOf(bytes) answers as trustedDbSize(decodeDbHeader(bytes)) (null without a header)', () => {
    const answer = (bytes: Uint8Array): number | null => {
      const d = decodeDbHeader(bytes);
      return d === null ? null : trustedDbSize(d);
    };
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 100, maxLength: 100 }), fc.nat({ max: 4 }), fc.constantFrom(0, 1, 0x7fffffff, 0x80000000, 0xffffffff), fc.boolean(), fc.boolean(), (random, counter, size, magic, valid) => {
        const h = random.slice();
        const dv = new DataView(h.buffer);
        if (magic) h.set(Buffer.from('SQLite format 3\0', 'latin1'));
        dv.setUint32(24, counter === 4 ? 0xfffffffe : counter);
        dv.setUint32(28, size);
        if (valid) dv.setUint32(92, dv.getUint32(24));
        expect(trustedDbSizeOf(h)).toBe(answer(h));
        expect(trustedDbSizeOf(h.subarray(0, 99))).toBeNull();
      }),
      { numRuns: 500 },
    );
  });
});

describe('wal-index header encoding', () => {
  it('encodes into a caller\'s array exactly as into a fresh one, whatever the array held before', () => {
    const h = { iChange: 7, bigEndCksum: false, pageSize: 4096, mxFrame: 12, nPage: 9, frameChecksum: [0xdeadbeef, 0x01020304] as [number, number], salts: [0x11223344, 0x55667788] as [number, number] };
    const fresh = encodeShmHeader(h);
    const into = new Uint8Array(48).fill(0xa5);
    expect(encodeShmHeader(h, into)).toBe(into);
    expect(into).toEqual(fresh);
    const both = new Uint8Array(96);
    both.set(into, 0);
    both.set(into, 48);
    expect(decodeShmHeaderCopies(both)).toMatchObject({ ...h, isInit: 1 });
  });
});
