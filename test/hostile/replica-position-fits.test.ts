// ReplicaPosition.fits() says whether a record fits a slot of the position file, so that the
// replica replaces a page list too long for it by a whole-database witness (replica.ts #apply);
// write() refuses a record that does not fit (WALNUT_INVALID_ARGUMENT, reason position), and a
// replica refused its own intent stops for good. So every record fits() accepts must be
// written, whatever write() adds to it: the stream name (up to MAX_STREAM_NAME characters: a
// record that just fit was refused once the stream was in it, 92f8675) and the write counter,
// which grows by one per write for the replica's life (fits() counted it as 0, one digit).
// The record here is the largest fits() accepts (its witness grown byte by byte).
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { ReplicaPosition, type PositionRecord } from '../../lib/replicate/position';
import { MAX_STREAM_NAME } from '../../lib/replicate/nats';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir('walnut-replica-position-');

/** A record whose JSON grows by one byte per `extra`. */
function record(extra: number): PositionRecord {
  const to = { session: 's', seq: 2, logNext: 99 };
  return { state: 'ready', applied: { session: 's', seq: 1, logNext: 3 }, intent: { to, dbSize: 10, pages: 'all', witness: 'a'.repeat(extra) } };
}

/** The largest record fits() accepts (fits() is monotone in the witness's length). */
function largestFitting(): PositionRecord {
  let lo = 0; // fits
  let hi = 1 << 21; // does not
  expect(ReplicaPosition.fits(record(lo))).toBe(true);
  expect(ReplicaPosition.fits(record(hi))).toBe(false);
  while (hi - lo > 1) {
    const mid = (lo + hi) >>> 1;
    if (ReplicaPosition.fits(record(mid))) lo = mid;
    else hi = mid;
  }
  return record(lo);
}

describe('a replica position record that fits() accepts', () => {
  it('is written on a stream of the longest name, and after enough writes that the counter has more digits, and reads back', async () => {
    const big = largestFitting();
    const stream = 'S'.repeat(MAX_STREAM_NAME);
    const file = path.join(dir, 'longest.db');
    const { position } = ReplicaPosition.open(file, stream);
    try {
      await position.write(big); // counter 1
      for (let i = 0; i < 120; i++) await position.write(record(0)); // counter 121: three digits
      await position.write(big);
    } finally {
      position.close();
    }
    const again = ReplicaPosition.open(file, stream);
    again.position.close();
    expect(again.record).toEqual({ ...big, stream });
  });
});
