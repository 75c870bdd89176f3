/**
 * replicate/base-image.ts — BaseImageStream: the records of a later base image (publisher.ts),
 * read from a snapshot one record at a time as the publisher cuts the base's next part: its
 * head (BASE_META), BASE_PAGES records of `recordPages` pages each, then BASE_END (the page
 * count and the XXH3-128 of all pages in order, as the export's own base ends) and its tail
 * (the anchored WAL_HEADER).
 *
 * Why one record at a time: the base was read whole into records before its first part was
 * published, so the publisher held the whole database (979 MiB: RSS 1.25 GiB); now it holds
 * the part being cut and the records read ahead of it. The snapshot (its read mark, which keeps
 * the WAL from restarting) is held until release(): the publisher calls it once the base's
 * final part is stored, or when the base is dropped.
 * Why the reads are small (the replica lag's p99 spikes): read in one go into fresh records, a
 * 12 MB base held the replication worker's event loop 245-441 ms, no ack taken meanwhile; now
 * a part's records (256 KiB) are read per turn of the publisher's pump, between acks.
 * Each BASE_PAGES record's memory is taken from `memory` (a BufferPool; the publisher gives a
 * record back once it is framed into its part's body, so the next record reads into the same
 * memory). Every byte of a record is written (the pool's memory is not zeroed): each page by
 * readPagesIntoSync, which fills every page (runs of the database file's pages in one pread).
 */
import { Xxh3Stream } from '../checksum';
import { hashBytes } from '../export/exporter';
import { BASE_PAGES_HEADER, basePagesRecord, encodeBaseEndRecord } from '../export/records';
import type { Snapshot } from '../wal-index/snapshot';
import type { BufferPool } from './buffers';

export class BaseImageStream {
  readonly #snap: Snapshot;
  readonly #recordPages: number;
  readonly #memory: BufferPool;
  readonly #head: Uint8Array[];
  readonly #tail: Uint8Array[];
  readonly #hash = new Xxh3Stream();
  /** The next page to read; whether BASE_END went out; whether the snapshot was released. */
  #pgno = 1;
  #ended = false;
  #released = false;

  /** `head` goes before the pages (BASE_META), `tail` after BASE_END (a WAL_HEADER). */
  constructor(snap: Snapshot, recordPages: number, memory: BufferPool, head: Uint8Array[], tail: Uint8Array[]) {
    this.#snap = snap;
    this.#recordPages = recordPages;
    this.#memory = memory;
    this.#head = [...head];
    this.#tail = [...tail];
  }

  /** The base's size in bytes (its pages; the basis of the publisher's "log since the last base" rule). */
  get bytes(): number {
    return this.#snap.dbSize * this.#snap.pageSize;
  }

  /** The next record, or null after the last. BASE_PAGES records are in `memory` (give them back once copied). */
  next(): Uint8Array | null {
    if (this.#head.length > 0) return this.#head.shift()!;
    const snap = this.#snap;
    if (this.#pgno <= snap.dbSize) {
      const first = this.#pgno;
      const count = Math.min(this.#recordPages, snap.dbSize + 1 - first);
      const record = basePagesRecord(first, count, snap.pageSize, this.#memory);
      try {
        snap.readPagesIntoSync(first, count, record.subarray(BASE_PAGES_HEADER));
      } catch (e) {
        this.#memory.give(record.buffer as ArrayBuffer);
        throw e;
      }
      this.#hash.update(record.subarray(BASE_PAGES_HEADER));
      this.#pgno += count;
      return record;
    }
    if (!this.#ended) {
      this.#ended = true;
      return encodeBaseEndRecord(snap.dbSize, hashBytes(this.#hash));
    }
    return this.#tail.shift() ?? null;
  }

  /** Releases the snapshot (once; later calls do nothing). */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#snap.release();
  }
}
