// commit() and sequence() checked each page as they read it, then copied them all: an accessor
// of a later page (its `data` or `pgno` getter) ran the caller's code after an earlier page was
// checked and before it was copied. One that shrank the earlier page's resizable ArrayBuffer
// (a length-tracking Uint8Array) made the copy take its few remaining bytes and leave the rest
// of walnut's reused slab as it was: the commit was acknowledged with a page made of the
// caller's bytes and a previous commit's. One that transferred it made the copy throw its raw
// TypeError. And a Uint8Array subclass whose `length` getter lied passed the size check (its
// real bytes fewer), with the same stale page; tx.write() took it too. Now every page is read
// before any is checked, and the size checked is the typed array's own (not a getter's): such a
// page is WALNUT_INVALID_ARGUMENT, reason 'pageSize', and nothing is written, sequenced or broken.
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
  // walnut's slab now holds these bytes (a stale page would show them)
  await store.commit([{ pgno: 2, data: Buffer.alloc(PAGE, 0xee) }, { pgno: 3, data: Buffer.alloc(PAGE, 0xee) }]);
});
afterAll(async () => {
  await store.close();
});

/** A length-tracking page over a resizable buffer, and a later page whose `data` getter spoils it. */
function spoiledPair(spoil: 'shrink' | 'transfer'): { pgno: number; data: Uint8Array }[] {
  // a resizable ArrayBuffer (ES2024: Node 20 has it, the project's lib typings do not)
  const Resizable = ArrayBuffer as unknown as new (length: number, options: { maxByteLength: number }) => ArrayBuffer & { resize(length: number): void };
  const rab = new Resizable(PAGE, { maxByteLength: 4 * PAGE });
  const first = new Uint8Array(rab).fill(0x11);
  const later = {
    pgno: 5,
    get data() {
      if (spoil === 'shrink') rab.resize(10);
      else structuredClone(rab, { transfer: [rab] });
      return Buffer.alloc(PAGE, 0x22);
    },
  };
  return [{ pgno: 4, data: first }, later];
}

class LyingLength extends Uint8Array {
  override get length(): number {
    return PAGE;
  }
}

async function nothingChanged(): Promise<void> {
  expect(store.metrics()).toMatchObject({ walFrames: 2, commits: 1 });
  expect(store.lastTicket).toBe(0);
  expect(store.chainBrokenBy).toBeNull();
  const snap = await store.snapshot();
  try {
    expect(snap.dbSize).toBe(3);
    expect((await snap.read(4)).every((b) => b === 0)).toBe(true);
  } finally {
    snap.release();
  }
}

describe('a page spoiled by the caller while commit() reads its pages', () => {
  for (const spoil of ['shrink', 'transfer'] as const) {
    it(`commit(): an earlier page whose buffer a later page's getter ${spoil}s is refused (pageSize), nothing written`, async () => {
      await expectRejectsWalnut(store.commit(spoiledPair(spoil)), 'WALNUT_INVALID_ARGUMENT', { reason: 'pageSize' });
      await nothingChanged();
    });

    it(`sequence(): the same page is refused (pageSize), no ticket`, async () => {
      expectWalnutError(() => store.sequence(spoiledPair(spoil)), 'WALNUT_INVALID_ARGUMENT', { reason: 'pageSize' });
      await nothingChanged();
    });
  }

  it('a Uint8Array whose length getter lies is refused by its real size: commit(), sequence(), tx.write()', async () => {
    const lying = new LyingLength(10).fill(0x33);
    expect(lying.length).toBe(PAGE);
    await expectRejectsWalnut(store.commit([{ pgno: 4, data: lying }]), 'WALNUT_INVALID_ARGUMENT', { reason: 'pageSize' });
    expectWalnutError(() => store.sequence([{ pgno: 4, data: lying }]), 'WALNUT_INVALID_ARGUMENT', { reason: 'pageSize' });
    const tx = store.begin();
    expectWalnutError(() => tx.write(4, lying), 'WALNUT_INVALID_ARGUMENT', { reason: 'pageSize' });
    tx.rollback();
    // a Proxy of a page is no typed array (its traps are the caller's code): refused as data
    await expectRejectsWalnut(store.commit([{ pgno: 4, data: new Proxy(new Uint8Array(PAGE), {}) }]), 'WALNUT_INVALID_ARGUMENT', { reason: 'data' });
    await nothingChanged();
  });

  it('a page of the right size is still committed whole: a subclass, a view into a larger buffer at an offset, a SharedArrayBuffer', async () => {
    const honest = new LyingLength(PAGE).fill(0x44);
    const big = new Uint8Array(3 * PAGE + 7).fill(0x55);
    const shared = new Uint8Array(new SharedArrayBuffer(PAGE)).fill(0x66);
    await store.commit([{ pgno: 4, data: honest }, { pgno: 5, data: big.subarray(7, 7 + PAGE) }, { pgno: 6, data: shared }]);
    const snap = await store.snapshot();
    try {
      for (const [pgno, byte] of [[4, 0x44], [5, 0x55], [6, 0x66]] as const) {
        expect((await snap.read(pgno)).every((b) => b === byte)).toBe(true);
      }
    } finally {
      snap.release();
    }
  });
});
