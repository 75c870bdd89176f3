/**
 * export/base-reader.ts — BaseImageReader: the exporter's base image (pages 1..dbSize of one
 * snapshot) as chunks of complete ARKHEXP1 records of BASE_PAGES, read and framed natively
 * (native/base_image.h) with the xxh3-128 that BASE_END carries computed in the same pass.
 *
 * Invariants:
 *  - Every page is the snapshot's: the WAL frame the wal-index names for it under the snapshot
 *    (looked up here, in one batch per chunk), else the database file, else zeros. The
 *    snapshot's read mark keeps a checkpoint from overwriting a database-file page this reads
 *    (a checkpoint copies only frames the snapshot sees, and those pages come from the WAL).
 *  - Records hold BASE_RECORD_PAGES pages (fewer where 256 pages would pass the 16 MiB record
 *    limit: 255 of 64 KiB), the last one the rest: the stream is the same byte for byte as
 *    when the pages went through JS one by one.
 *  - Pages are read by the addon straight into the chunk's buffer (one copy, from the page
 *    cache), on the background I/O lane through the connection's background descriptors (the
 *    checkpointer's), so the reads never queue in front of commits and a close queued on that
 *    lane runs after them. The next chunk is read while the caller sends the current one, into
 *    the other of two buffers the reader keeps (a chunk's bytes are valid until the following
 *    call to next(): sinks copy what they keep, appendFramedRecords()).
 *  - writeNext() is the other way to take the chunks, for a sink that is a file: each record is
 *    read into one record-sized native buffer and written to the file at once (still in the CPU
 *    cache; no chunk buffer, no JavaScript between the read and the write), chunk by chunk.
 *  - Chunks taken with next() come in two reused buffers, or, with `fresh`, each in a buffer of
 *    its own that the caller may keep (a Writable queues it: a copy would cost more than the
 *    new buffer's page faults do).
 *  - close() waits for a chunk still being read (or written), so the caller releases the snapshot only once
 *    no read of it is in flight.
 */
import { walnutError } from '../errors';
import { nativeHandleOf, type WalnutFile } from '../io/file';
import { nativeExportIo, type NativeChunkResult, type NativeFileHandle } from '../native';
import type { Snapshot } from '../wal-index/snapshot';
import type { WalIndex } from '../wal-index/wal-index';
import { MAX_RECORD } from './framing';

/** Pages per BASE_PAGES record (the stream's layout since the first version). */
export const BASE_RECORD_PAGES = 256;
/** Bytes of pages read per native call. */
const CHUNK_BYTES = 8 << 20;
/** Length prefix (8) + kind (1) + first pgno (4) + count (4). */
const RECORD_OVERHEAD = 17;

export interface BaseChunk {
  /** Complete records: u64 length, payload, u64 length, payload, ... */
  framed: Buffer;
  records: number;
  pages: number;
}

export class BaseImageReader {
  readonly #snap: Snapshot;
  readonly #walPath: string;
  readonly #dbPath: string;
  readonly #db: NativeFileHandle;
  readonly #wal: NativeFileHandle;
  readonly #native = new nativeExportIo.BaseImageReader();
  readonly #pageSize: number;
  readonly #perRecord: number;
  readonly #perChunk: number;
  readonly #checkTrailers: boolean;
  #nextPgno = 1;
  #ahead: Promise<BaseChunk | null> | null = null;
  readonly #buffers: (Buffer | undefined)[] = [undefined, undefined];
  #turn = 0;
  readonly #fresh: boolean;

  private constructor(index: WalIndex, snap: Snapshot, db: NativeFileHandle, wal: NativeFileHandle, fresh: boolean) {
    this.#fresh = fresh;
    this.#snap = snap;
    this.#dbPath = index.dbPath;
    this.#walPath = index.walPath;
    this.#db = db;
    this.#wal = wal;
    this.#pageSize = index.pageSize;
    this.#perRecord = Math.min(BASE_RECORD_PAGES, Math.floor((MAX_RECORD - (RECORD_OVERHEAD - 8)) / index.pageSize));
    this.#perChunk = this.#perRecord * Math.max(1, Math.floor(CHUNK_BYTES / (this.#perRecord * index.pageSize)));
    this.#checkTrailers = index.pageTrailers;
  }

  /** `fresh`: each chunk of next() in a buffer of its own, which the caller may keep. */
  static async open(index: WalIndex, snap: Snapshot, options: { fresh?: boolean } = {}): Promise<BaseImageReader> {
    const files = await index.checkpointTarget(); // the background-lane descriptors
    return new BaseImageReader(index, snap, nativeHandleOf(files.db), nativeHandleOf(files.walFile), options.fresh === true);
  }

  /** The xxh3-128 of every page returned so far (16 bytes, canonical order: BASE_END's hash). */
  digest(): Uint8Array {
    return this.#native.digest();
  }

  /**
   * The next chunk, or null after page dbSize; starts reading the one after it into the other
   * buffer. A chunk's bytes stay valid until the following call.
   */
  async next(): Promise<BaseChunk | null> {
    const chunk = await (this.#ahead ?? this.#read());
    this.#ahead = null;
    if (chunk !== null) {
      this.#ahead = this.#read();
      this.#ahead.catch(() => undefined); // surfaced by the next call
    }
    return chunk;
  }

  /** Waits for a chunk still being read (its outcome no longer matters). */
  async close(): Promise<void> {
    const ahead = this.#ahead;
    this.#ahead = null;
    await ahead?.catch(() => undefined);
  }

  /**
   * The next of the two chunk buffers, at least `bytes` long: reused, because a fresh multi-MiB
   * buffer per chunk costs its page faults (and its unmapping) every time, more than the read.
   */
  #buffer(bytes: number): Buffer {
    if (this.#fresh) return Buffer.allocUnsafeSlow(bytes);
    const i = this.#turn;
    this.#turn ^= 1;
    if (this.#buffers[i] === undefined || this.#buffers[i]!.length < bytes) this.#buffers[i] = Buffer.allocUnsafeSlow(bytes);
    return this.#buffers[i]!.subarray(0, bytes);
  }

  /**
   * The next chunk's records written to `sink` at `position` (the caller's file: nothing else may
   * write to it meanwhile); null after page dbSize. Not to be mixed with next().
   */
  async writeNext(sink: WalnutFile, position: number): Promise<Omit<BaseChunk, 'framed'> & { bytes: number } | null> {
    const target = nativeHandleOf(sink);
    const writing = this.#chunk((c) => this.#native.writeChunk(this.#db, this.#wal, target, this.#pageSize, this.#perRecord, c.first, c.count, this.#snap.dbFilePages, c.frames, this.#checkTrailers, position));
    this.#ahead = writing.then(() => null); // close() waits for it, as for a chunk read ahead
    this.#ahead.catch(() => undefined);
    return writing;
  }

  async #read(): Promise<BaseChunk | null> {
    let framed: Buffer = Buffer.alloc(0);
    const chunk = await this.#chunk((c) => {
      framed = this.#buffer(c.records * RECORD_OVERHEAD + c.count * this.#pageSize);
      return this.#native.readChunk(this.#db, this.#wal, framed, this.#pageSize, this.#perRecord, c.first, c.count, this.#snap.dbFilePages, c.frames, this.#checkTrailers);
    });
    return chunk === null ? null : { framed, records: chunk.records, pages: chunk.pages };
  }

  /** The next chunk's pages, looked up under the snapshot, handed to `io`; its result checked. */
  async #chunk(io: (c: { first: number; count: number; records: number; frames: Uint32Array | null }) => Promise<NativeChunkResult>): Promise<{ records: number; pages: number; bytes: number } | null> {
    const snap = this.#snap;
    const first = this.#nextPgno;
    if (first > snap.dbSize) return null;
    const count = Math.min(this.#perChunk, snap.dbSize - first + 1);
    this.#nextPgno += count;
    const frames = new Uint32Array(count);
    const inWal = snap.framesOf(first, frames); // WALNUT_CLOSED once the snapshot is released
    const records = Math.ceil(count / this.#perRecord);
    const r = await io({ first, count, records, frames: inWal ? frames : null });
    if (r.missingFrame !== 0) throw walnutError('WALNUT_CORRUPT', `frame ${r.missingFrame} is beyond the end of the WAL`, { path: this.#walPath });
    if (r.badTrailerPgno !== 0) {
      const pgno = r.badTrailerPgno;
      const frame = frames[pgno - first]!;
      throw walnutError('WALNUT_CORRUPT', `page ${pgno}${frame ? ` (WAL frame ${frame})` : ''}: the XXH3-128 page trailer does not match the page`, { path: this.#dbPath, pgno });
    }
    return { records, pages: count, bytes: r.bytes };
  }
}
