/**
 * export/exporter.ts — Exporter: a consistent base image, then every committed transaction,
 * as walnut records (records.ts) in an ARKHEXP1 stream (framing.ts).
 *
 * Invariants:
 *  - The base image is read under one snapshot (pages 1..dbSize of that view) and ends with
 *    BASE_END carrying its xxh3-128.
 *  - Until the base image and the WAL as of then are out, the exporter holds a snapshot with a
 *    WAL read mark (useWal), so no writer — walnut or sqlite3 — can restart the WAL over frames
 *    it has not exported yet.
 *  - A generation is exported from its frame 1 after a WAL_HEADER record, so a restore can
 *    verify the whole checksum chain (frames the base already holds are replayed harmlessly;
 *    as a consequence, point-in-time restore reaches the commits made after the export began).
 *  - Each transaction is FRAMES record(s) (bit-exact WAL frames, at most 16 MiB each) ending
 *    at its commit frame, then COMMIT_META (sequence, time, xxh3-128 of its frames).
 *  - In follow mode the snapshot gives way to a WalFollower (follow.ts), taken before the
 *    snapshot is released: it keeps every frame until the exporter has it without keeping
 *    checkpoints from copying, receives the frames it has not read when this connection's
 *    writer restarts the WAL, and restarts the WAL itself, under WRITE, when the writers are
 *    other processes. Either way no frame can slip past the export.
 */
import { Xxh3Stream, xxh3_128Into } from '../checksum';
import { FRAME_HEADER_SIZE } from '../format/frame-header';
import type { Snapshot } from '../wal-index/snapshot';
import type { WalIndex } from '../wal-index/wal-index';
import { walnutError } from '../errors';
import { snapshotFrames, WalFollower, type FrameSource } from './follow';
import { ByteBlocks, MAX_RECORD, type RecordBatchSink } from './framing';
import { encodeBaseEndRecord, encodeBasePagesRecord, encodeCommitMetaRecord, encodeFramesRecord, encodeWalHeaderRecord } from './records';

export interface ExportOptions {
  /** Keep exporting new commits until stop() (default false: base image and the WAL as of now). */
  follow?: boolean;
  /** How often follow mode looks for commits made by other processes (ms, default 20). */
  pollMs?: number;
}

export interface ExportStats {
  records: number;
  commits: number;
  generations: number;
  basePages: number;
}

const BASE_CHUNK_PAGES = 256;
/** Poked passes (this store's commits) begin at most this often (or pollMs, if shorter). */
const MIN_PASS_GAP_MS = 4;
/** Bytes of frames per WAL read. */
const READ_BYTES = 4 << 20;
/** The longest poll interval setTimeout keeps (2^31 - 1 ms); a longer one would fire at once. */
const MAX_POLL_MS = 0x7fffffff;

/** Export options: undefined or null (none), else follow a boolean and pollMs a whole number of ms. */
function checkExportOptions(options: unknown): ExportOptions {
  const invalid = (reason: string, message: string): never => {
    throw walnutError('WALNUT_INVALID_ARGUMENT', `export option ${message}`, { reason });
  };
  if (options === undefined || options === null) return {};
  if (typeof options !== 'object' || Array.isArray(options)) invalid('options', 'options must be an object: { follow, pollMs }');
  const o = options as Record<string, unknown>;
  if (o['follow'] !== undefined && typeof o['follow'] !== 'boolean') invalid('follow', 'follow must be true or false');
  const poll = o['pollMs'];
  if (poll !== undefined && (typeof poll !== 'number' || !Number.isInteger(poll) || poll < 1 || poll > MAX_POLL_MS)) invalid('pollMs', `pollMs must be an integer in 1..${MAX_POLL_MS}`);
  return o as ExportOptions;
}

export function hashBytes(h: Xxh3Stream): Uint8Array {
  const v = h.digest128();
  const out = new Uint8Array(16);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, v >> 64n);
  dv.setBigUint64(8, v & 0xffffffffffffffffn);
  return out;
}

export class Exporter {
  readonly #index: WalIndex;
  readonly #sink: RecordBatchSink;
  readonly #follow: boolean;
  readonly #pollMs: number;
  readonly #stats: ExportStats = { records: 0, commits: 0, generations: 0, basePages: 0 };
  #salts: [number, number] | null = null;
  #pos = 0;
  #seq = 0n;
  #stopped = false;
  #wake: (() => void) | null = null;
  #poked: (() => void) | null = null;
  #passBegan = 0;
  /** WAL reads and the records made from them reuse the same memory (ByteBlocks says why). */
  #readBuffer = Buffer.alloc(0);
  readonly #payloads = new ByteBlocks();

  constructor(index: WalIndex, sink: RecordBatchSink, options: ExportOptions = {}) {
    this.#index = index;
    this.#sink = sink;
    const o = checkExportOptions(options);
    this.#follow = o.follow === true;
    this.#pollMs = o.pollMs ?? 20;
  }

  get stats(): ExportStats {
    return { ...this.#stats };
  }

  /** Ends follow mode after a last pass over what is committed now; run() then resolves. */
  stop(): void {
    this.#stopped = true;
    this.#wake?.();
  }

  /**
   * Look for new commits now (the store calls this after its own commits): at once, or, when a
   * pass began less than MIN_PASS_GAP_MS ago, that long after it. A pass per batch of commits
   * would cost more than the export itself (each wakes two I/O threads); commits coalesce instead.
   */
  poke(): void {
    this.#poked?.();
  }

  async run(): Promise<ExportStats> {
    const snap = await this.#index.beginRead({ useWal: true });
    let follower: WalFollower | null = null;
    try {
      await this.#base(snap);
      await this.#frames(snapshotFrames(this.#index, snap));
      await this.#sink.flush();
      if (!this.#follow) return this.stats;
      // the pin is taken while the snapshot still holds the WAL: no frame can go in between
      follower = new WalFollower(this.#index, { mxFrame: this.#pos, salts: this.#salts ?? snap.generation.salts });
      await follower.start();
      snap.release();
      while (!this.#stopped) {
        await this.#nextPass();
        if (this.#stopped) break;
        this.#passBegan = performance.now();
        await this.#drain(follower);
        await this.#sink.flush();
        await follower.restartIfDue(() => this.#stopped);
      }
      await this.#drain(follower); // a last pass: everything committed before stop() is in the stream
      await this.#sink.flush();
      return this.stats;
    } finally {
      follower?.stop();
      snap.release();
    }
  }

  /** Resolves after pollMs, on stop(), or on a poke (see poke()). */
  #nextPass(): Promise<void> {
    return new Promise<void>((resolve) => {
      const timers = [setTimeout(() => this.#wake?.(), this.#pollMs)];
      this.#wake = () => {
        for (const t of timers) clearTimeout(t);
        this.#wake = this.#poked = null;
        resolve();
      };
      this.#poked = () => {
        const wait = this.#passBegan + Math.min(this.#pollMs, MIN_PASS_GAP_MS) - performance.now();
        if (wait <= 0) this.#wake?.();
        else if (timers.length === 1) timers.push(setTimeout(() => this.#wake?.(), wait));
      };
    });
  }

  /** Exports generations from the follower until it has nothing newer. */
  async #drain(source: WalFollower): Promise<void> {
    for (;;) {
      const gen = await source.generation();
      if (gen.mxFrame === 0 || (gen.mxFrame === this.#pos && this.#salts !== null && gen.salts[0] === this.#salts[0] && gen.salts[1] === this.#salts[1])) return;
      await this.#frames(source);
    }
  }

  async #append(payload: Uint8Array): Promise<void> {
    await this.#sink.appendRecord(payload);
    this.#stats.records++;
  }

  async #appendAll(payloads: Uint8Array[]): Promise<void> {
    if (payloads.length === 0) return;
    await this.#sink.appendRecords(payloads);
    this.#stats.records += payloads.length;
  }

  async #base(snap: Snapshot): Promise<void> {
    const pageSize = this.#index.pageSize;
    const hash = new Xxh3Stream();
    for (let first = 1; first <= snap.dbSize; first += BASE_CHUNK_PAGES) {
      const pages: Uint8Array[] = [];
      for (let p = first; p < first + BASE_CHUNK_PAGES && p <= snap.dbSize; p++) {
        const page = Buffer.allocUnsafe(pageSize);
        snap.readIntoSync(p, page);
        hash.update(page);
        pages.push(page);
      }
      await this.#append(encodeBasePagesRecord(first, pages));
      this.#stats.basePages += pages.length;
    }
    await this.#append(encodeBaseEndRecord(snap.dbSize, hashBytes(hash)));
  }

  /** Exports frames (pos, mxFrame] of the source's generation. */
  async #frames(source: FrameSource): Promise<void> {
    const gen = await source.generation();
    if (gen.mxFrame === 0) return;
    if (this.#salts === null || this.#salts[0] !== gen.salts[0] || this.#salts[1] !== gen.salts[1]) {
      await this.#append(encodeWalHeaderRecord(await source.walHeader(gen)));
      this.#salts = [gen.salts[0], gen.salts[1]];
      this.#pos = 0;
      this.#stats.generations++;
    }
    const pageSize = this.#index.pageSize;
    const frameSize = FRAME_HEADER_SIZE + pageSize;
    const framesPerRecord = Math.max(1, Math.floor((MAX_RECORD - 1) / frameSize));
    const readFrames = Math.max(1, Math.floor(READ_BYTES / frameSize));
    // A transaction's frames are contiguous in a read: each goes out as one FRAMES record (one
    // copy, one hash call), split only where a record would pass MAX_RECORD or the read ends; a
    // transaction in several pieces is hashed as it goes. Once a read's records are appended
    // nothing refers to its buffer or their payloads: the next read reuses both.
    let hash: Xxh3Stream | null = null;
    const digest = new Uint8Array(16);
    for (let f = this.#pos + 1; f <= gen.mxFrame; f += readFrames) {
      const count = Math.min(readFrames, gen.mxFrame - f + 1);
      if (this.#readBuffer.length < count * frameSize) this.#readBuffer = Buffer.allocUnsafeSlow(readFrames * frameSize);
      const buf = this.#readBuffer.subarray(0, count * frameSize);
      await source.read(gen, buf, f, count);
      const records: Uint8Array[] = []; // this read's, appended together
      for (let i = 0, start = 0; i < count; i++) {
        const commit = buf.readUInt32BE(i * frameSize + 4) !== 0;
        if (!commit && i + 1 - start < framesPerRecord && i + 1 < count) continue;
        const piece = buf.subarray(start * frameSize, (i + 1) * frameSize);
        start = i + 1;
        records.push(encodeFramesRecord([piece], this.#payloads));
        if (!commit) {
          (hash ??= new Xxh3Stream()).update(piece);
          continue;
        }
        if (hash === null) xxh3_128Into(piece, digest);
        else digest.set(hashBytes(hash.update(piece)));
        hash = null;
        records.push(encodeCommitMetaRecord(++this.#seq, BigInt(Date.now()), digest, this.#payloads));
        this.#stats.commits++;
      }
      await this.#appendAll(records);
      this.#payloads.reuse();
    }
    this.#pos = gen.mxFrame;
  }
}
