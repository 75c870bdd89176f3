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
 *  - The exporter always holds a WAL read mark (snapshots with useWal), so no writer — walnut
 *    or sqlite3 — can restart the WAL over frames it has not exported yet. The base
 *    snapshot's mark (at most X) holds checkpoints at X: in follow mode it is traded for a
 *    snapshot of the newest state as soon as the first pass is out.
 *  - Each transaction is FRAMES record(s) (bit-exact WAL frames, at most 16 MiB each) ending
 *    at its commit frame, then COMMIT_META (sequence, time, xxh3-128 of its frames).
 *  - In follow mode, holding the read mark would stop the WAL from ever restarting. The
 *    exporter registers as a follower of its connection: when that connection's writer could
 *    restart (holding WRITE) and the exporter has taken every frame, its mark is released and
 *    the restart goes ahead. When the writers are other processes, the exporter restarts the
 *    WAL itself once caught up and everything is checkpointed, under WRITE
 *    (WalIndex.restartForFollower). Either way no frame can slip in between.
 */
import { Xxh3Stream } from '../checksum';
import { decodeFrameHeader, FRAME_HEADER_SIZE } from '../format/frame-header';
import { decodeWalHeader, WAL_HEADER_SIZE } from '../format/wal-header';
import type { Snapshot } from '../wal-index/snapshot';
import type { WalIndex } from '../wal-index/wal-index';
import { walnutError } from '../errors';
import { BaseImageReader } from './base-reader';
import { appendFramedRecords, MAX_RECORD, type WalRecordSink } from './framing';
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

/** WAL frames read at once. */
const READ_FRAMES = 256;
/** Frame headers counted between two turns of the event loop. */
const SCAN_YIELD = 4096;
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
  readonly #sink: WalRecordSink;
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

  constructor(index: WalIndex, sink: WalRecordSink, options: ExportOptions = {}) {
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

  /** Look for new commits now (the store calls this after its own commits). */
  poke(): void {
    this.#wake?.();
  }

  async run(): Promise<ExportStats> {
    let snap = await this.#index.beginOldestRead();
    const unregister = this.#index.addFollower({
      position: () => ({ mxFrame: this.#pos, salts: this.#salts ?? [0, 0] }),
      releaseMark: () => snap.release(),
    });
    try {
      const observed = this.#observe(); // after the snapshot: everything it shows was committed by now
      await this.#base(snap, observed);
      await this.#frames(snap, observed);
      await this.#sink.flush();
      if (this.#follow) snap = await this.#newest(snap); // the base snapshot's mark would hold checkpoints at the base
      while (this.#follow && !this.#stopped) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, this.#pollMs);
          this.#wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
        this.#wake = null;
        if (this.#stopped) break;
        const live = this.#index.liveHeader();
        if (live !== null && live.mxFrame === this.#pos && this.#salts && live.salts[0] === this.#salts[0] && live.salts[1] === this.#salts[1]) {
          // caught up: let the WAL restart if everything is checkpointed (we block it otherwise)
          const held = snap;
          if (this.#pos > 0 && (await this.#index.restartForFollower(this.#pos, () => held.release()))) {
            snap = await this.#index.beginRead({ useWal: true });
          } else if (held.released) {
            snap = await this.#index.beginRead({ useWal: true });
          }
          continue;
        }
        if (snap.released) {
          // this connection's writer restarted the WAL after we had taken everything
          snap = await this.#index.beginRead({ useWal: true });
        } else {
          const next = await this.#index.beginRead({ useWal: true });
          snap.release();
          snap = next;
        }
        await this.#frames(snap);
        await this.#sink.flush();
      }
      if (this.#follow) {
        // a last pass: everything committed before stop() is in the stream
        const last = await this.#index.beginRead({ useWal: true });
        snap.release();
        snap = last;
        await this.#frames(snap);
        await this.#sink.flush();
      }
      return this.stats;
    } finally {
      unregister();
      snap.release();
    }
  }

  async #append(payload: Uint8Array): Promise<void> {
    await this.#sink.appendRecord(payload);
    this.#stats.records++;
  }

  /** Now, as a stream time: never before the last time stamped. */
  #observe(): bigint {
    const now = BigInt(Date.now());
    if (now > this.#timeMs) this.#timeMs = now;
    return this.#timeMs;
  }

  /** A snapshot of the newest state in place of `snap` (taken first, so no restart slips in between). */
  async #newest(snap: Snapshot): Promise<Snapshot> {
    const next = await this.#index.beginRead({ useWal: true });
    snap.release();
    return next;
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
    const base = await BaseImageReader.open(this.#index, snap);
    try {
      for (let chunk = await base.next(); chunk !== null; chunk = await base.next()) {
        await appendFramedRecords(this.#sink, chunk.framed, chunk.records);
        this.#stats.records += chunk.records;
        this.#stats.basePages += chunk.pages;
      }
    } finally {
      await base.close();
    }
    await this.#append(encodeBaseEndRecord(snap.dbSize, base.digest()));
  }

  /**
   * Counts the commit frames in 1..x of the generation with `salts`, and returns the chain's
   * value after frame x, which must be a commit frame of that generation. Reads the 24-byte
   * frame headers only (one pread each, from the page cache: the pages may be 64 KiB),
   * letting other work run every SCAN_YIELD frames.
   */
  async #scanTo(salts: [number, number], x: number): Promise<{ commits: number; anchor: ChainAnchor }> {
    const wal = this.#index.wal.file;
    const frameSize = FRAME_HEADER_SIZE + this.#index.pageSize;
    const head = new Uint8Array(FRAME_HEADER_SIZE);
    let commits = 0;
    for (let f = 1; f <= x; f++) {
      if (f % SCAN_YIELD === 0) await new Promise((resolve) => setImmediate(resolve));
      if (wal.readSync(head, 0, FRAME_HEADER_SIZE, WAL_HEADER_SIZE + (f - 1) * frameSize) !== FRAME_HEADER_SIZE) {
        throw walnutError('WALNUT_CORRUPT', `frame ${f} is missing from the WAL`, { path: this.#index.walPath });
      }
      if (head[4]! | head[5]! | head[6]! | head[7]!) commits++;
    }
    const h = decodeFrameHeader(head);
    if (h.commitSize === 0 || h.salt1 !== salts[0] || h.salt2 !== salts[1]) {
      throw walnutError('WALNUT_CORRUPT', `WAL frame ${x}, the base image's last, is not a commit of the generation the wal-index describes`, { path: this.#index.walPath });
    }
    return { commits, anchor: { frame: x, checksum: h.checksum } };
  }

  /** Frames from..to of the WAL, READ_FRAMES at a time (each a view of 24 + pageSize bytes). */
  async *#walFrames(from: number, to: number): AsyncGenerator<Buffer> {
    const wal = this.#index.wal.file;
    const frameSize = FRAME_HEADER_SIZE + this.#index.pageSize;
    for (let f = from; f <= to; f += READ_FRAMES) {
      const count = Math.min(READ_FRAMES, to - f + 1);
      const buf = Buffer.allocUnsafe(count * frameSize);
      const got = await wal.read(buf, 0, buf.length, WAL_HEADER_SIZE + (f - 1) * frameSize);
      if (got !== buf.length) throw walnutError('WALNUT_CORRUPT', `frame ${f + Math.floor(got / frameSize)} is missing from the WAL`, { path: this.#index.walPath });
      for (let i = 0; i < count; i++) yield buf.subarray(i * frameSize, (i + 1) * frameSize);
    }
  }

  /**
   * Exports frames (pos, the snapshot's generation's mxFrame], each commit stamped `observed`
   * (a time after the snapshot was taken). A generation new to the stream starts with its
   * WAL_HEADER: at frame 1, or after the frames the base image holds (its anchor).
   */
  async #frames(snap: Snapshot, observed: bigint = this.#observe()): Promise<void> {
    const gen = snap.generation;
    if (gen.mxFrame === 0) return;
    const wal = this.#index.wal.file;
    if (this.#salts === null || this.#salts[0] !== gen.salts[0] || this.#salts[1] !== gen.salts[1]) {
      const head = new Uint8Array(WAL_HEADER_SIZE);
      await wal.read(head, 0, WAL_HEADER_SIZE, 0);
      const h = decodeWalHeader(head);
      if (h.status !== 'ok' || h.header!.salt1 !== gen.salts[0] || h.header!.salt2 !== gen.salts[1]) {
        throw walnutError('WALNUT_CORRUPT', 'the WAL header on disk is not the generation the wal-index describes', { path: this.#index.walPath });
      }
      const base = this.#baseGeneration;
      const anchor = base !== null && base.salts[0] === gen.salts[0] && base.salts[1] === gen.salts[1] ? base.anchor : null;
      this.#baseGeneration = null; // only the first generation continues the base image
      await this.#append(encodeWalHeaderRecord(head, anchor));
      this.#salts = [gen.salts[0], gen.salts[1]];
      this.#pos = anchor?.frame ?? 0;
      this.#stats.generations++;
    }
    const frameSize = FRAME_HEADER_SIZE + this.#index.pageSize;
    const framesPerRecord = Math.max(1, Math.floor((MAX_RECORD - 1) / frameSize));
    let txn: Uint8Array[] = [];
    let hash = new Xxh3Stream();
    for await (const frame of this.#walFrames(this.#pos + 1, gen.mxFrame)) {
      txn.push(frame);
      hash.update(frame);
      if (txn.length === framesPerRecord) {
        await this.#append(encodeFramesRecord(txn));
        txn = [];
      }
      if (frame.readUInt32BE(4) !== 0) {
        if (txn.length > 0) await this.#append(encodeFramesRecord(txn));
        txn = [];
        await this.#append(encodeCommitMetaRecord(++this.#seq, observed, hashBytes(hash)));
        hash = new Xxh3Stream();
        this.#stats.commits++;
      }
    }
    this.#pos = gen.mxFrame;
  }
}
