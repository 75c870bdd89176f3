/**
 * replicate/base-image.ts — readBaseImage: the pages of a later base image (publisher.ts) read
 * from a snapshot into BASE_PAGES records of `recordPages` pages each, then BASE_END (the page
 * count and the XXH3-128 of all pages in order, as the export's own base ends).
 *
 * Why it reads this way (the replica lag's p99 spikes): on the replication worker the read ran in
 * one go into fresh records, and for a 12 MB database (3,000 pages) it held the worker's event
 * loop 245-441 ms on the loaded 2-vCPU VM (50-124 ms into reused memory: memory touched for the
 * first time costs a page fault per 4 KiB): no publish ack was taken and no record accepted
 * meanwhile, so every commit in flight waited for the whole read. Now:
 *  - each record's memory is taken from `memory` (a BufferPool; the publisher gives a base's
 *    records back once its final part is stored, so the next base reads into the same memory);
 *  - the event loop gets a turn (`turn`) after each record, so acks and the log go on beside the
 *    read. The snapshot's read mark (which keeps the WAL from restarting) is held those turns
 *    longer.
 * Every byte of a record is written (the pool's memory is not zeroed): each page by
 * readPagesIntoSync, which fills every page (runs of the database file's pages in one pread).
 */
import { Xxh3Stream } from '../checksum';
import { hashBytes } from '../export/exporter';
import { BASE_PAGES_HEADER, basePagesRecord, encodeBaseEndRecord } from '../export/records';
import type { Snapshot } from '../wal-index/snapshot';
import type { BufferPool } from './buffers';

/** The BASE_PAGES records of pages 1..snap.dbSize and the BASE_END after them. */
export async function readBaseImage(snap: Snapshot, recordPages: number, memory: BufferPool, turn: () => Promise<void>): Promise<Uint8Array[]> {
  const pageSize = snap.pageSize;
  const payloads: Uint8Array[] = [];
  const hash = new Xxh3Stream();
  for (let first = 1; first <= snap.dbSize; first += recordPages) {
    const count = Math.min(recordPages, snap.dbSize + 1 - first);
    const record = basePagesRecord(first, count, pageSize, memory);
    snap.readPagesIntoSync(first, count, record.subarray(BASE_PAGES_HEADER));
    hash.update(record.subarray(BASE_PAGES_HEADER));
    payloads.push(record);
    await turn();
  }
  payloads.push(encodeBaseEndRecord(snap.dbSize, hashBytes(hash)));
  return payloads;
}
