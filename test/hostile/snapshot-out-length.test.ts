// A snapshot's readInto / readIntoSync checked the caller's buffer with its `length`, which the
// caller can make say anything (an own property, a subclass's getter). A buffer of 10 bytes
// that said pageSize: a page of a sequenced commit not yet durable was copied into it with
// set() and threw a raw RangeError; a page past the snapshot's size "read" as success, 10 zeros
// written; a committed page was refused by the addon without a reason. Now the buffer's own size
// is checked (the intrinsic length): WALNUT_INVALID_ARGUMENT, reason 'out', wherever the page
// would come from, and an honest buffer still reads every one of them. readPagesIntoSync's first
// page number was not checked at all: a bigint threw a raw TypeError, an object with valueOf was
// read as its number; now it is WALNUT_INVALID_ARGUMENT, reason 'pgno', as read()'s is.
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { open, type Store } from '../../lib/index';
import { expectRejectsWalnut, expectWalnutError } from '../helpers/expect-error';
import { tmpDir } from '../helpers/tmp';

const PAGE = 1024;
const dir = tmpDir();
let store: Store;

beforeAll(async () => {
  store = await open(path.join(dir, 'a.db'), { pageSize: PAGE, autoCheckpoint: false, shareLane: false });
  await store.commit([{ pgno: 2, data: Buffer.alloc(PAGE, 2) }]);
});
afterAll(async () => {
  await store.close();
});

/** 10 bytes whose `length` says a page. */
function saysAPage(): Uint8Array {
  const u = new Uint8Array(10).fill(0xaa);
  Object.defineProperty(u, 'length', { value: PAGE });
  return u;
}

describe("a snapshot read into a buffer whose length is not its size", () => {
  it("is WALNUT_INVALID_ARGUMENT (out) for a committed page, a sequenced one and one past the size; an honest buffer reads them", async () => {
    const seq = store.sequence([{ pgno: 3, data: Buffer.alloc(PAGE, 3) }]);
    const snap = store.trySnapshotSync()!;
    try {
      expect(snap.pendingTicket).toBe(seq.ticket);
      for (const pgno of [2, 3, 4]) {
        const out = saysAPage();
        await expectRejectsWalnut(snap.readInto(pgno, out), 'WALNUT_INVALID_ARGUMENT', { reason: 'out' });
        expectWalnutError(() => snap.readIntoSync(pgno, out), 'WALNUT_INVALID_ARGUMENT', { reason: 'out' });
        expect(Array.from(new Uint8Array(out.buffer))).toEqual(new Array(10).fill(0xaa)); // untouched
        const honest = new Uint8Array(PAGE);
        await snap.readInto(pgno, honest);
        expect(honest.every((b) => b === (pgno === 4 ? 0 : pgno))).toBe(true);
        snap.readIntoSync(pgno, honest.fill(9));
        expect(honest.every((b) => b === (pgno === 4 ? 0 : pgno))).toBe(true);
      }
    } finally {
      snap.release();
    }
    await seq.durable;
  });

  it("readPagesIntoSync refuses a first page number that is not one (pgno) and a buffer shorter than its pages (out)", async () => {
    const snap = await store.snapshot();
    try {
      for (const first of [2n, { valueOf: () => 2 }, 0, -1, 1.5, NaN, 2 ** 32]) {
        expectWalnutError(() => snap.readPagesIntoSync(first as never, 1, new Uint8Array(PAGE)), 'WALNUT_INVALID_ARGUMENT', { reason: 'pgno' });
      }
      expectWalnutError(() => snap.readPagesIntoSync(2, 1, saysAPage()), 'WALNUT_INVALID_ARGUMENT', { reason: 'out' });
      const out = new Uint8Array(2 * PAGE);
      snap.readPagesIntoSync(2, 2, out);
      expect(out.subarray(0, PAGE).every((b) => b === 2) && out.subarray(PAGE).every((b) => b === 3)).toBe(true); // page 3: the first case's sequenced commit
    } finally {
      snap.release();
    }
  });
});
