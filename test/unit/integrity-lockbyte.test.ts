// A database past 1 GiB has a page holding the lock bytes (file offset 2^30) that SQLite never
// uses: level 4 must not call it unused, and must call it used when something claims it. Built
// in memory (16,390 pages of 64 KiB, all but page 1 on the freelist) through a PageSource, so
// no 1 GiB file is written.
import { describe, expect, it } from 'vitest';

import { newDatabasePage1 } from '../../lib/format/db-header';
import { checkDatabase, type PageSource } from '../../lib/integrity/btree-check';

const PS = 65536;
const N = 16390;
const PENDING = 0x40000000 / PS + 1; // 16385

function database(extraLeaf?: number): PageSource {
  const page1 = newDatabasePage1(PS);
  const dv = new DataView(page1.buffer);
  dv.setUint32(28, N);
  dv.setUint32(32, 2); // first freelist trunk
  const trunk2 = new Uint8Array(PS);
  const trunk3 = new Uint8Array(PS);
  const t2 = new DataView(trunk2.buffer);
  const t3 = new DataView(trunk3.buffer);
  t2.setUint32(0, 3);
  const first: number[] = [];
  const rest: number[] = [];
  for (let p = 4; p <= N; p++) if (p !== PENDING) (first.length < 16000 ? first : rest).push(p);
  if (extraLeaf !== undefined) rest.push(extraLeaf);
  t2.setUint32(4, first.length);
  first.forEach((p, i) => t2.setUint32(8 + 4 * i, p));
  t3.setUint32(4, rest.length);
  rest.forEach((p, i) => t3.setUint32(8 + 4 * i, p));
  dv.setUint32(36, 2 + first.length + rest.length);
  return {
    pageSize: PS,
    dbSize: N,
    storedPages: N,
    read: (pgno) => (pgno === 1 ? page1 : pgno === 2 ? trunk2 : pgno === 3 ? trunk3 : new Uint8Array(PS)),
    frameOf: () => 0,
    release: () => undefined,
  };
}

describe('the lock-byte page', () => {
  it('is not reported unused in a database past 1 GiB', () => {
    expect(checkDatabase(database(), { level: 5 })).toEqual([]);
  });

  it('is reported when the freelist claims it', () => {
    const found = checkDatabase(database(PENDING), { level: 4 });
    expect(found).toEqual([
      expect.objectContaining({ level: 4, kind: 'shared-page', pgno: PENDING }),
      expect.objectContaining({ level: 4, kind: 'freelist-count', pgno: 1 }), // the leaf it could not count
    ]);
  });
});
