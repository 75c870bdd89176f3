/**
 * export/exporter.ts — Exporter: a consistent base image, then every committed transaction
 * after it, as walnut records (records.ts) in an ARKHEXP1 stream (framing.ts).
 *
 * Invariants:
 *  - Every commit boundary in the stream is a state the database had. The base image is the
 *    oldest state the WAL can still give (WalIndex.beginOldestRead: the state after frame X,
 *    where no checkpoint has copied past X; the newest state once everything was copied or
 *    after recovery), read under that one snapshot (pages 1..dbSize) and closed by BASE_END
 *    with its xxh3-128. Only the commits after X follow it: the first generation's WAL_HEADER
 *    carries the anchor (X, the chain's value after frame X), later generations start at
 *    their frame 1.
 *  - Numbering: BASE_META names the base's commit sequence N = the number of commit frames
 *    in 1..X of the generation current when the export began (commit k = that generation's
 *    k-th commit, whatever X is); the commits after it are N+1, N+2, ... across generations.
 *  - Times: a commit's (and the base's) time is taken after the snapshot that first showed it
 *    committed, never decreasing: the moment the exporter knew of it, never before the commit.
 *  - Until the base image and the WAL as of then are out, the exporter holds a snapshot with a
 *    WAL read mark (useWal), so no writer — walnut or sqlite3 — can restart the WAL over frames
 *    it has not exported yet. The base snapshot's mark (at most X) holds checkpoints at X; in
 *    follow mode it gives way to a WalFollower as soon as that first pass is out.
 *  - Each transaction is FRAMES record(s) (bit-exact WAL frames, at most 16 MiB each) ending
 *    at its commit frame, then COMMIT_META (sequence, time, xxh3-128 of its frames).
 *  - In follow mode the snapshot gives way to a WalFollower (follow.ts), taken before the
 *    snapshot is released: it keeps every frame until the exporter has it without keeping
 *    checkpoints from copying, receives the frames it has not read when this connection's
 *    writer restarts the WAL, and restarts the WAL itself, under WRITE, when the writers are
 *    other processes. Either way no frame can slip past the export.
 */
import { readInput } from '../arguments';
import { Xxh3Stream, xxh3_128Into } from '../checksum';
import { decodeFrameHeader, FRAME_HEADER_SIZE } from '../format/frame-header';
import { nativeHandleOf } from '../io/file';
import { nativeExportIo } from '../native';
import type { Snapshot } from '../wal-index/snapshot';
import type { WalIndex } from '../wal-index/wal-index';
import { walnutError } from '../errors';
import { unknownOptionName } from '../option-names';
import { BaseImageReader } from './base-reader';
import { snapshotFrames, WalFollower, type FrameSource } from './follow';
import { appendFramedRecords, ByteBlocks, MAX_RECORD, type RecordBatchSink } from './framing';
import { encodeBaseEndRecord, encodeBaseMetaRecord, encodeCommitMetaRecord, encodeFramesRecord, encodeWalHeaderRecord, type ChainAnchor } from './records';

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

/** Poked passes (this store's commits) begin at most this often (or pollMs, if shorter). */
const MIN_PASS_GAP_MS = 4;
/** Bytes of frames per WAL read. */
const READ_BYTES = 4 << 20;
/** A frame's records beyond its bytes, framing included: FRAMES' kind (1) and COMMIT_META (33), 8 each framed. */
const RECORD_BOUND_PER_FRAME = 8 + 1 + 8 + 33;
/** The longest poll interval setTimeout keeps (2^31 - 1 ms); a longer one would fire at once. */
const MAX_POLL_MS = 0x7fffffff;

/** Export options: undefined or null (none), else follow a boolean and pollMs a whole number of ms, and nothing else (a misspelt follow exported once and ended). */
export function checkExportOptions(options: unknown): ExportOptions {
  return readInput('options', () => exportOptionsAsGiven(options));
}

function exportOptionsAsGiven(options: unknown): ExportOptions {
  const invalid = (reason: string, message: string): never => {
    throw walnutError('WALNUT_INVALID_ARGUMENT', `export option ${message}`, { reason });
  };
  if (options === undefined || options === null) return {};
  if (typeof options !== 'object' || Array.isArray(options)) invalid('options', 'options must be an object: { follow, pollMs }');
  const o = options as Record<string, unknown>;
  const key = unknownOptionName(o, ['follow', 'pollMs']);
  if (key !== undefined) invalid('options', `${key} does not exist (only follow, pollMs)`);
  const follow = o['follow'];
  if (follow !== undefined && typeof follow !== 'boolean') invalid('follow', 'follow must be true or false');
  const poll = o['pollMs'];
  if (poll !== undefined && (typeof poll !== 'number' || !Number.isInteger(poll) || poll < 1 || poll > MAX_POLL_MS)) invalid('pollMs', `pollMs must be an integer in 1..${MAX_POLL_MS}`);
  // each value read once: what was checked is what the export uses
  return { follow: follow as boolean | undefined, pollMs: poll as number | undefined };
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
  /** Where the base image's generation continues in the stream (its frames up to `anchor.frame` are in the base). */
  #baseGeneration: { salts: [number, number]; anchor: ChainAnchor } | null = null;
  /** The latest time stamped on the stream (times never go back, whatever the clock does). */
  #timeMs = 0n;
  #stopped = false;
  #wake: (() => void) | null = null;
  #poked: (() => void) | null = null;
  /** A poke came while no wait was armed (during the start or a pass): the next wait takes it. */
  #pokePending = false;
  #passBegan = 0;
  /** catchUp() came: the next pass begins at once. */
  #catchUp = false;
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
    // A commit published after the pass (or the start) read the WAL's header must still wake the
    // next wait: with a long pollMs a lost poke left that commit unexported until the next one
    // (the restart batch's single I/O operation made the first commit land in that window).
    if (this.#poked !== null) this.#poked();
    else this.#pokePending = true;
  }

  /**
   * Look for new commits at once, however recently a pass began: the store calls this when its
   * next batch waits for a checkpoint under WRITE before it restarts the WAL. The restart hands
   * the follower every frame it has not read by then, read for it under WRITE while that batch
   * (the slowest of all, the one p99 falls in) waits (WalIndex #handOverToFollowers); a pass now
   * reads them on the follower's own lane while the checkpoint copies, and nothing is left to
   * hand over. Kept until the next wait for a pass (a pass may be ending as it comes).
   */
  catchUp(): void {
    this.#catchUp = true;
    this.#wake?.();
  }

  async run(): Promise<ExportStats> {
    const snap = await this.#index.beginOldestRead();
    let follower: WalFollower | null = null;
    try {
      const observed = this.#observe(); // after the snapshot: everything it shows was committed by now
      await this.#base(snap, observed);
      await this.#frames(snapshotFrames(this.#index, snap), observed);
      await this.#sink.flush();
      if (!this.#follow) return this.stats;
      // the pin is taken while the snapshot still holds the WAL: no frame can go in between
      follower = new WalFollower(this.#index, { mxFrame: this.#pos, salts: this.#salts ?? snap.generation.salts });
      await follower.start();
      follower.keepRestarting(this.#pollMs);
      snap.release(); // its mark (at most X) would hold checkpoints at the base
      while (!this.#stopped) {
        await this.#nextPass();
        if (this.#stopped) break;
        this.#passBegan = performance.now();
        await this.#drain(follower);
        await this.#sink.flush();
      }
      await this.#drain(follower); // a last pass: everything committed before stop() is in the stream
      await this.#sink.flush();
      return this.stats;
    } finally {
      follower?.stop();
      snap.release();
    }
  }

  /** Resolves after pollMs, on stop(), on a poke (see poke()), or at once after catchUp(). */
  #nextPass(): Promise<void> {
    if (this.#catchUp) {
      this.#catchUp = false;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const timers = [setTimeout(() => this.#wake?.(), this.#pollMs)];
      this.#wake = () => {
        for (const t of timers) clearTimeout(t);
        this.#wake = this.#poked = null;
        this.#catchUp = false;
        resolve();
      };
      this.#poked = () => {
        const wait = this.#passBegan + Math.min(this.#pollMs, MIN_PASS_GAP_MS) - performance.now();
        if (wait <= 0) this.#wake?.();
        else if (timers.length === 1) timers.push(setTimeout(() => this.#wake?.(), wait));
      };
      if (this.#pokePending) {
        this.#pokePending = false;
        this.#poked();
      }
    });
  }

  /**
   * Exports generations from the follower until it has nothing newer. The follower restarts the
   * WAL meanwhile when that is due (WalFollower.keepRestarting: other processes' writers
   * checkpointed it), handing itself the frames not exported yet, and serves those first.
   */
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

  /** Now, as a stream time: never before the last time stamped. */
  #observe(): bigint {
    const now = BigInt(Date.now());
    if (now > this.#timeMs) this.#timeMs = now;
    return this.#timeMs;
  }

  /**
   * BASE_META, then the image of `snap` (the state after its frame X = snap.mxFrame of its
   * generation) as BASE_PAGES, then BASE_END. The base is commit N, N the commit frames in 1..X.
   */
  async #base(snap: Snapshot, observed: bigint): Promise<void> {
    const gen = snap.generation;
    if (snap.mxFrame > 0) {
      const { commits, anchor } = await this.#scanTo(gen.salts, snap.mxFrame);
      this.#seq = BigInt(commits);
      this.#baseGeneration = { salts: gen.salts, anchor };
    }
    await this.#append(encodeBaseMetaRecord(this.#seq, observed));
    // a file sink gets the records written by the addon as they are read; any other sink gets
    // each chunk in a buffer of its own to keep (no copy)
    const direct = this.#sink.direct;
    const base = await BaseImageReader.open(this.#index, snap, { fresh: !direct });
    const counted = (chunk: { records: number; pages: number }): void => {
      this.#stats.records += chunk.records;
      this.#stats.basePages += chunk.pages;
    };
    try {
      if (direct) {
        for (let more = true; more; ) {
          await this.#sink.appendDirect(async (file, position) => {
            const chunk = await base.writeNext(file, position);
            more = chunk !== null;
            if (chunk !== null) counted(chunk);
            return chunk ?? { bytes: 0, records: 0 };
          });
        }
      } else {
        for (let chunk = await base.next(); chunk !== null; chunk = await base.next()) {
          await appendFramedRecords(this.#sink, chunk.framed, chunk.records, true);
          counted(chunk);
        }
      }
    } finally {
      await base.close();
    }
    await this.#append(encodeBaseEndRecord(snap.dbSize, base.digest()));
  }

  /**
   * Counts the commit frames in 1..x of the generation with `salts`, and returns the chain's
   * value after frame x, which must be a commit frame of that generation. One native call on
   * the background lane reads the 24-byte frame headers only (one pread each, from the page
   * cache: the pages may be 64 KiB), off the JavaScript thread.
   */
  async #scanTo(salts: [number, number], x: number): Promise<{ commits: number; anchor: ChainAnchor }> {
    const { walFile } = await this.#index.checkpointTarget(); // the background-lane descriptors
    const r = await nativeExportIo.countCommits(nativeHandleOf(walFile), this.#index.pageSize, x);
    if (r.missingFrame !== 0) throw walnutError('WALNUT_CORRUPT', `frame ${r.missingFrame} is missing from the WAL`, { path: this.#index.walPath });
    const h = decodeFrameHeader(r.lastHeader);
    if (h.commitSize === 0 || h.salt1 !== salts[0] || h.salt2 !== salts[1]) {
      throw walnutError('WALNUT_CORRUPT', `WAL frame ${x}, the base image's last, is not a commit of the generation the wal-index describes`, { path: this.#index.walPath });
    }
    return { commits: r.commits, anchor: { frame: x, checksum: h.checksum } };
  }

  /**
   * Exports frames (pos, mxFrame] of the source's generation, each commit stamped `observed`
   * (default: now, after the source showed them). A generation new to the stream starts with
   * its WAL_HEADER: at frame 1, or after the frames the base image holds (its anchor).
   */
  async #frames(source: FrameSource, observed?: bigint): Promise<void> {
    const gen = await source.generation();
    if (gen.mxFrame === 0) return;
    const stamp = observed ?? this.#observe(); // after the view that showed these commits
    if (this.#salts === null || this.#salts[0] !== gen.salts[0] || this.#salts[1] !== gen.salts[1]) {
      const base = this.#baseGeneration;
      const anchor = base !== null && base.salts[0] === gen.salts[0] && base.salts[1] === gen.salts[1] ? base.anchor : null;
      this.#baseGeneration = null; // only the first generation continues the base image
      await this.#append(encodeWalHeaderRecord(await source.walHeader(gen), anchor));
      this.#salts = [gen.salts[0], gen.salts[1]];
      this.#pos = anchor?.frame ?? 0;
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
    // The records go into the sink's lent memory when it has some (framing.ts SinkRecordMemory).
    let hash: Xxh3Stream | null = null;
    const digest = new Uint8Array(16);
    const lent = this.#sink.recordMemory;
    const memory = lent ?? this.#payloads;
    for (let f = this.#pos + 1; f <= gen.mxFrame; f += readFrames) {
      const count = Math.min(readFrames, gen.mxFrame - f + 1);
      if (this.#readBuffer.length < count * frameSize) this.#readBuffer = Buffer.allocUnsafeSlow(readFrames * frameSize);
      const buf = this.#readBuffer.subarray(0, count * frameSize);
      await source.read(gen, buf, f, count);
      // at most a FRAMES and a COMMIT_META record per frame, each framed (8 bytes)
      lent?.expect(count * (frameSize + RECORD_BOUND_PER_FRAME));
      const records: Uint8Array[] = []; // this read's, appended together
      for (let i = 0, start = 0; i < count; i++) {
        const commit = buf.readUInt32BE(i * frameSize + 4) !== 0;
        if (!commit && i + 1 - start < framesPerRecord && i + 1 < count) continue;
        const piece = buf.subarray(start * frameSize, (i + 1) * frameSize);
        start = i + 1;
        records.push(encodeFramesRecord([piece], memory));
        if (!commit) {
          (hash ??= new Xxh3Stream()).update(piece);
          continue;
        }
        if (hash === null) xxh3_128Into(piece, digest);
        else digest.set(hashBytes(hash.update(piece)));
        hash = null;
        records.push(encodeCommitMetaRecord(++this.#seq, stamp, digest, memory));
        this.#stats.commits++;
      }
      await this.#appendAll(records);
      this.#payloads.reuse();
    }
    this.#pos = gen.mxFrame;
  }
}
