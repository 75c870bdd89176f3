// snapshot.framesOf(firstPgno, out) took `out` as given: null or undefined threw a raw TypeError
// (reading its length), and anything else met the addon's check only when the WAL held frames
// for the range; on an empty WAL (or a range past the snapshot's size) a plain array or a
// Float64Array was filled with zeros and answered false, the same call refused a moment later.
// Now `out` is checked first, wherever the frames would come from: WALNUT_INVALID_ARGUMENT,
// reason 'out', unless it is a Uint32Array, and its own size (the intrinsic length, not a
// `length` the caller can make say anything) is how many pages it asks about.
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { open, type Store } from '../../lib/index';
import { expectWalnutError } from '../helpers/expect-error';
import { tmpDir } from '../helpers/tmp';

const PAGE = 1024;
const dir = tmpDir();
let store: Store;
let empty: Store;

beforeAll(async () => {
  store = await open(path.join(dir, 'a.db'), { pageSize: PAGE, autoCheckpoint: false });
  await store.commit(Array.from({ length: 9 }, (_, i) => ({ pgno: 2 + i, data: Buffer.alloc(PAGE, 2 + i) }))); // pages 2..10
  empty = await open(path.join(dir, 'empty.db'), { pageSize: PAGE, autoCheckpoint: false });
});
afterAll(async () => {
  await store.close();
  await empty.close();
});

/** A Uint32Array of 2 entries whose `length` says 100. */
function saysMore(): Uint32Array {
  const u = new Uint32Array(2);
  Object.defineProperty(u, 'length', { value: 100 });
  return u;
}

const NOT_OUT: [string, () => unknown][] = [
  ['null', () => null],
  ['undefined', () => undefined],
  ['a plain array', () => [0, 0]],
  ['a Float64Array', () => new Float64Array(2)],
  ['an Int32Array', () => new Int32Array(2)],
  ['a Uint8Array', () => new Uint8Array(8)],
  ['an object with a length', () => ({ length: 2 })],
];

describe('snapshot.framesOf(firstPgno, out) with an out that is not a Uint32Array', () => {
  for (const [which, s] of [['a WAL holding the range', () => store], ['an empty WAL', () => empty]] as const) {
    it(`${which}: WALNUT_INVALID_ARGUMENT (out) for each, before anything is filled; a Uint32Array answers`, async () => {
      const snap = await s().snapshot();
      try {
        for (const [name, make] of NOT_OUT) {
          const out = make();
          expectWalnutError(() => snap.framesOf(2, out as Uint32Array), 'WALNUT_INVALID_ARGUMENT', { reason: 'out' });
          if (Array.isArray(out)) expect(out, `${name}: left as it was`).toEqual([0, 0]);
        }
        const out = new Uint32Array(3).fill(7);
        const inWal = snap.framesOf(2, out);
        expect(inWal).toBe(s() === store);
        if (s() === store) expect(Array.from(out, (f) => f > 0)).toEqual([true, true, true]);
        else expect(Array.from(out)).toEqual([0, 0, 0]);
      } finally {
        snap.release();
      }
    });
  }

  it('a Uint32Array whose length says more than it holds: its own 2 entries are answered, as an honest one of 2', async () => {
    const snap = await store.snapshot();
    try {
      const out = saysMore();
      const honest = new Uint32Array(2);
      expect(snap.framesOf(2, honest)).toBe(true);
      expect(snap.framesOf(2, out)).toBe(true);
      expect(new Uint32Array(out.buffer)).toEqual(honest);
    } finally {
      snap.release();
    }
  });
});
