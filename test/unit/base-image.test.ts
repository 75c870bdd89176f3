// replicate/base-image.ts: a later base image read from a snapshot of a real store (pages in the
// database file and in the WAL) one record at a time, as the publisher cuts its parts (read whole
// before its first part went out, a 979 MiB base took the publisher's RSS to 1.25 GiB), into
// BASE_PAGES records of pooled memory: the records are the snapshot's pages, framed by the head
// (BASE_META) and tail (WAL_HEADER) records given, and BASE_END names the page count and the
// XXH3-128 of all pages, also when the pool hands out memory a previous record wrote. Each page
// is read only when its record is asked for (a page the store commits in between is read as the
// snapshot has it), and release() releases the snapshot once.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { xxh3_128 } from '../../lib/checksum';
import { open } from '../../lib/commit/store';
import { decodeRecord } from '../../lib/export/records';
import { BaseImageStream } from '../../lib/replicate/base-image';
import { BufferPool } from '../../lib/replicate/buffers';
import { expectWalnutError } from '../helpers/expect-error';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

const page = (v: number): Buffer => {
  const b = Buffer.alloc(4096, v & 0xff);
  b.writeUInt32BE(v, 8);
  return b;
};

describe('BaseImageStream', () => {
  it('reads each record when asked (into pooled records; memory given back is used again, every byte rewritten), head first and tail last, BASE_END with the page count and XXH3-128', async () => {
    const store = await open(path.join(dir, 'base.db'), { autoCheckpoint: false });
    try {
      for (let p = 2; p <= 200; p++) await store.commit([{ pgno: p, data: page(p) }]);
      await store.checkpoint('passive'); // pages 2..200 in the database file
      for (let p = 150; p <= 301; p++) await store.commit([{ pgno: p, data: page(p + 1000) }]); // 150..301 in the WAL
      const snap = await store.snapshot();
      let released = 0;
      const release = snap.release.bind(snap);
      snap.release = () => {
        released++;
        release();
      };
      const expected = Buffer.concat(Array.from({ length: snap.dbSize }, (_, i) => snap.readRawSync(i + 1)));
      expect(snap.dbSize).toBe(301);
      const pool = new BufferPool(8 << 20);
      const head = new Uint8Array([0xf1]);
      const tail = new Uint8Array([0xf2]);
      const stream = new BaseImageStream(snap, 64, pool, [head], [tail]);
      expect(stream.bytes).toBe(301 * 4096);
      expect(stream.next()).toBe(head);
      const pages: Uint8Array[] = [];
      const buffers = new Set<ArrayBufferLike>();
      for (let i = 0; i < 5; i++) {
        const r = stream.next()!;
        const rec = decodeRecord(r);
        if (rec.kind !== 'basePages') throw new Error(`record ${i} is ${rec.kind}`);
        expect(rec.firstPgno).toBe(1 + 64 * i);
        expect(rec.count).toBe(Math.min(64, 301 - 64 * i));
        pages.push(Buffer.from(rec.pages));
        if (i === 0) {
          // read when asked: a commit after record 0 does not change what record 1 holds (the snapshot's pages)
          await store.commit([{ pgno: 100, data: page(9999) }]);
        }
        // given back (as the publisher does once a record is framed into its part), scribbled over: the next record reads into it
        buffers.add(r.buffer);
        new Uint8Array(r.buffer).fill(0xaa);
        pool.give(r.buffer as ArrayBuffer);
      }
      expect(buffers.size).toBeLessThan(5); // the pool's memory used again
      expect(Buffer.compare(Buffer.concat(pages), expected)).toBe(0);
      const end = decodeRecord(stream.next()!);
      if (end.kind !== 'baseEnd') throw new Error(`record after the pages is ${end.kind}`);
      expect(end.dbSize).toBe(301);
      expect(Buffer.from(end.hash).toString('hex')).toBe(xxh3_128(expected).toString(16).padStart(32, '0'));
      expect(stream.next()).toBe(tail);
      expect(stream.next()).toBeNull();
      expect(released).toBe(0);
      stream.release();
      stream.release();
      expect(released).toBe(1);
    } finally {
      await store.close();
    }
  });
  it('Snapshot.readPagesIntoSync (runs of the database file\'s pages in one pread) reads every range as readIntoSync reads its pages: database file, WAL, pages past the end as zeros; a bad buffer is refused', async () => {
    const store = await open(path.join(dir, 'runs.db'), { autoCheckpoint: false });
    try {
      for (let p = 2; p <= 120; p++) await store.commit([{ pgno: p, data: page(p) }]);
      await store.checkpoint('passive');
      for (const p of [3, 4, 40, 41, 42, 90, 119, 120, 121, 122]) await store.commit([{ pgno: p, data: page(p + 5000) }]); // some in the WAL, the file grown by two
      const snap = await store.snapshot();
      try {
        const one = (pgno: number): Buffer => {
          const b = Buffer.alloc(4096, 0xee);
          snap.readIntoSync(pgno, b);
          return b;
        };
        for (const [first, count] of [[1, 122], [1, 1], [3, 2], [5, 35], [39, 5], [100, 30], [121, 4], [130, 3], [7, 0]] as const) {
          const out = Buffer.alloc(count * 4096, 0xee); // every byte must be written
          snap.readPagesIntoSync(first, count, out);
          const expected = Buffer.concat(Array.from({ length: count }, (_, i) => (first + i > snap.dbSize ? Buffer.alloc(4096) : one(first + i))));
          expect(out.equals(expected), `pages ${first}+${count}`).toBe(true);
        }
        expectWalnutError(() => snap.readPagesIntoSync(1, 3, new Uint8Array(2 * 4096)), 'WALNUT_INVALID_ARGUMENT', { reason: 'out' });
        // a bad count is named as such (it was told as "out must hold -1 pages", reason out)
        for (const count of [-1, 1.5, Number.NaN, 2 ** 53]) expectWalnutError(() => snap.readPagesIntoSync(1, count, new Uint8Array(2 * 4096)), 'WALNUT_INVALID_ARGUMENT', { reason: 'count' });
      } finally {
        snap.release();
      }
    } finally {
      await store.close();
    }
  });
});
