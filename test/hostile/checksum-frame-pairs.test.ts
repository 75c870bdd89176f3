// walnut/checksum's sqliteWalFrameChecksums(frames, pageSize, running, salts) passed running[0],
// running[1], salts[0] and salts[1] to the addon, which reads a missing number as 0: a pair
// with one element ([s0], [salt1]) was checksummed with 0 in the missing place and answered
// without a word (a frame chain that SQLite's recovery would stop at), and a running or salts
// of null threw node's raw TypeError. Now each must be an integer in 0..2^32-1, else
// WALNUT_INVALID_ARGUMENT naming it (s0, s1, salt1, salt2), and the frames are left untouched.
// Also: a null range or options (crc32c(data, 0, null), xxh3_64(data, 0n, null), ...) threw a raw
// TypeError reading its offset; now it is WALNUT_INVALID_ARGUMENT, reason range (only undefined is
// no range: null options are refused by every verb, lib/option-names.ts).
import { describe, expect, it } from 'vitest';

import { crc32c, sqliteWalChecksum, sqliteWalFrameChecksums, xxh3_128, xxh3_128Into, xxh3_64, Xxh3Stream } from '../../lib/checksum';
import { expectWalnutError } from '../helpers/expect-error';

const PAGE = 512;

describe('sqliteWalFrameChecksums with a running checksum or salts that are not two 32-bit integers', () => {
  it('WALNUT_INVALID_ARGUMENT naming the value; the frames are not touched; a right call still works', () => {
    const frames = new Uint8Array(2 * (24 + PAGE)).fill(7);
    const before = Uint8Array.from(frames);
    const cases: [unknown, unknown, string][] = [
      [[0], [1, 2], 's1'],
      [[0, 0], [1], 'salt2'],
      [[], [1, 2], 's0'],
      [null, [1, 2], 's0'],
      [[0, 0], null, 'salt1'],
      [[0, -1], [1, 2], 's1'],
      [[0, 0], [1, 2 ** 32], 'salt2'],
      [[0, 0.5], [1, 2], 's1'],
      [['1', 0], [1, 2], 's0'],
    ];
    for (const [running, salts, reason] of cases) {
      expectWalnutError(() => sqliteWalFrameChecksums(frames, PAGE, running as never, salts as never), 'WALNUT_INVALID_ARGUMENT', { reason });
      expect(frames).toEqual(before);
    }
    const [s0, s1] = sqliteWalFrameChecksums(frames, PAGE, [0, 0], [1, 2]);
    expect(typeof s0 === 'number' && typeof s1 === 'number').toBe(true);
  });

  it('a null range or options is WALNUT_INVALID_ARGUMENT, reason range (a raw TypeError before); undefined is no range', () => {
    const data = new Uint8Array(64).map((_, i) => i);
    const nul = null as never;
    const a = new Uint8Array(16);
    const frames = new Uint8Array(24 + PAGE).fill(3);
    const before = Uint8Array.from(frames);
    for (const call of [
      () => crc32c(data, 0, nul),
      () => xxh3_64(data, 0n, nul),
      () => xxh3_128(data, 0n, nul),
      () => xxh3_128Into(data, a, 0, nul),
      () => new Xxh3Stream().update(data, nul),
      () => sqliteWalChecksum(data, 0, 0, nul),
      () => sqliteWalFrameChecksums(frames, PAGE, [0, 0], [1, 2], nul),
    ]) {
      expectWalnutError(call, 'WALNUT_INVALID_ARGUMENT', { reason: 'range' });
    }
    expect(a).toEqual(new Uint8Array(16));
    expect(frames).toEqual(before);
    expect(crc32c(data, 0, undefined)).toBe(crc32c(data));
    expect(xxh3_64(data, 0n, undefined)).toBe(xxh3_64(data));
  });
});
