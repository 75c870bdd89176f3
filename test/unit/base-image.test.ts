// replicate/base-image.ts: a later base image read from a snapshot of a real store (pages in the
// database file and in the WAL) into BASE_PAGES records of pooled memory, with a turn of the event
// loop after each record (read in one go into fresh memory, a 12 MB base held the replication
// worker's loop, and every publish ack, for 50-440 ms); the records are the snapshot's pages and
// BASE_END names the page count and the XXH3-128 of all pages, also when the pool hands out
// memory a previous base wrote.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { xxh3_128 } from '../../lib/checksum';
import { open } from '../../lib/commit/store';
import { decodeRecord } from '../../lib/export/records';
import { readBaseImage } from '../../lib/replicate/base-image';
import { BufferPool } from '../../lib/replicate/buffers';
import { expectWalnutError } from '../helpers/expect-error';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

const page = (v: number): Buffer => {
  const b = Buffer.alloc(4096, v & 0xff);
  b.writeUInt32BE(v, 8);
  return b;
};

describe('readBaseImage', () => {
  it('reads every page into pooled records (memory given back is used again, every byte rewritten), gives the event loop a turn after each record, and ends with the page count and XXH3-128', async () => {
    const store = await open(path.join(dir, 'base.db'), { autoCheckpoint: false });
    try {
      for (let p = 2; p <= 200; p++) await store.commit([{ pgno: p, data: page(p) }]);
      await store.checkpoint('passive'); // pages 2..200 in the database file
      for (let p = 150; p <= 301; p++) await store.commit([{ pgno: p, data: page(p + 1000) }]); // 150..301 in the WAL
      const snap = await store.snapshot();
      try {
        const expected = Buffer.concat(Array.from({ length: snap.dbSize }, (_, i) => snap.readRawSync(i + 1)));
        expect(snap.dbSize).toBe(301);
        const pool = new BufferPool(8 << 20);
        const read = async (): Promise<{ records: Uint8Array[]; turnsSeen: number[] }> => {
          const turnsSeen: number[] = [];
          let recordsSoFar = 0;
          // the loop's turn: an immediate queued now runs before the read goes on
          const records = await readBaseImage(snap, 64, pool, async () => {
            recordsSoFar++;
            let ran = false;
            setImmediate(() => (ran = true));
            await new Promise((r) => setImmediate(r));
            expect(ran).toBe(true);
            turnsSeen.push(recordsSoFar);
          });
          return { records, turnsSeen };
        };
        const check = (records: Uint8Array[]): void => {
          expect(records.length).toBe(6); // 5 records of <= 64 pages, BASE_END
          const pages: Uint8Array[] = [];
          records.slice(0, 5).forEach((r, i) => {
            const rec = decodeRecord(r);
            if (rec.kind !== 'basePages') throw new Error(`record ${i} is ${rec.kind}`);
            expect(rec.firstPgno).toBe(1 + 64 * i);
            expect(rec.count).toBe(Math.min(64, 301 - 64 * i));
            pages.push(rec.pages);
          });
          expect(Buffer.compare(Buffer.concat(pages), expected)).toBe(0);
          const end = decodeRecord(records[5]!);
          if (end.kind !== 'baseEnd') throw new Error(`last record is ${end.kind}`);
          expect(end.dbSize).toBe(301);
          expect(Buffer.from(end.hash).toString('hex')).toBe(xxh3_128(expected).toString(16).padStart(32, '0'));
        };
        const first = await read();
        expect(first.turnsSeen).toEqual([1, 2, 3, 4, 5]);
        check(first.records);
        // given back (as the publisher does once the base is stored), scribbled over: the next base reads into the same memory
        const buffers = new Set(first.records.slice(0, 5).map((r) => r.buffer));
        expect(buffers.size).toBe(5);
        for (const r of first.records.slice(0, 5)) {
          new Uint8Array(r.buffer).fill(0xaa);
          pool.give(r.buffer as ArrayBuffer);
        }
        const second = await read();
        for (const r of second.records.slice(0, 5)) expect(buffers.has(r.buffer)).toBe(true);
        check(second.records);
      } finally {
        snap.release();
      }
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
