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
 *    at its commit frame, then COMMIT_META (sequence, time, xxh3-128 of its frames): framed
 *    natively (native/commit_records.h; for a file sink the WAL read, the records and their
 *    write at the sink's end are one op on the WAL's lane, no record passes through JavaScript).
 *    A sink that asks for page deltas (framing.ts SinkPageDeltas: the replication's sessions)
 *    gets them encoded in the same op (commit_records.h delta mode): pages sent again as
 *    PAGE_DELTA against their previous version in this export's stream, the base image's pages
 *    the first versions.
 *  - In follow mode the snapshot gives way to a WalFollower (follow.ts), taken before the
 *    snapshot is released: it keeps every frame until the exporter has it without keeping
 *    checkpoints from copying, receives the frames it has not read when this connection's
 *    writer restarts the WAL, and restarts the WAL itself, under WRITE, when the writers are
 *    other processes. Either way no frame can slip past the export.
 */
import { describeValue, readInput } from '../arguments';
import type { Xxh3Stream } from '../checksum';
import { sizeBeyondFiles, sizeNoCommitMakes } from '../checkpoint/plan';
import { decodeFrameHeader, FRAME_HEADER_SIZE } from '../format/frame-header';
import { hasSalts, sameSalts } from '../format/wal-header';
import { nativeHandleOf } from '../io/file';
import { nativeExportIo, type NativeCommitFramer, type NativeFramedRun, type NativeReadFramesResult } from '../native';
import type { Snapshot } from '../wal-index/snapshot';
import type { WalIndex } from '../wal-index/wal-index';
import { walnutError } from '../errors';
import { LONGEST_TIMER_MS } from '../longest-timer';
import { unknownOptionName } from '../option-names';
import { BaseImageReader } from './base-reader';
import { commitRecordsBound, digestBytesInto, framesPerRecordOf } from './commit-records';
import { snapshotFrames, WalFollower, type FrameSource, type Generation } from './follow';
import { appendFramedRecords, framedPayloads, type RecordBatchSink } from './framing';
import { BASE_PAGES_HEADER, encodeBaseEndRecord, encodeBaseMetaRecord, encodeWalHeaderRecord, KIND, type ChainAnchor } from './records';

export interface ExportOptions {
  /** Keep exporting new commits until stop() (default false: base image and the WAL as of now). */
  follow?: boolean;
  /** How often follow mode looks for commits made by other processes (ms, default 20). */
  pollMs?: number;
}

/**
 * What the export's owner (not its caller's options) may hear of: `caughtUp` once the base image
 * and the WAL's commits as of the export's start have been handed to the sink and flushed, so
 * that a prefix of the stream holds the database's state as of then (`walnut export --follow
 * --force` renames its new file over the old one at that point). Called once, before any later
 * pass; a throw there fails the export.
 */
export interface ExportHooks {
  caughtUp?: () => void;
}

export interface ExportStats {
  records: number;
  commits: number;
  generations: number;
  basePages: number;
}

/** Poked passes (this store's commits) begin at most this often (or pollMs, if shorter)... */
const MIN_PASS_GAP_MS = 4;
/**
 * ... and at most this often after a pass that exported BUSY_PASS_COMMITS or more: a busy
 * export makes fewer, larger passes. Each pass wakes the read lane twice and hands its records
 * on (for replication: a message to the worker, and to the stream); at 64 committers (~45,000
 * commits/s, a pass of ~180 commits every 4 ms) that cost a replicating primary ~4 µs of CPU
 * per commit more across its threads and the nats-server than passes every 8 ms (session 17,
 * bench/README.md), and the 2 vCPUs it shares with the commit path are what bound the
 * primary's throughput. A trickle (5,000 commits/s: ~20 commits a pass) keeps the short gap,
 * so a replica's lag there does not grow.
 */
const BUSY_PASS_GAP_MS = 8;
const BUSY_PASS_COMMITS = 64;
/** Bytes of frames per WAL read. */
const READ_BYTES = 4 << 20;

/** Export options: undefined (none), else an object (null is refused: option-names.ts) whose follow is a boolean and pollMs a whole number of ms, and nothing else (a misspelt follow exported once and ended). */
export function checkExportOptions(options: unknown): ExportOptions {
  return readInput('options', () => exportOptionsAsGiven(options));
}

function exportOptionsAsGiven(options: unknown): ExportOptions {
  const invalid = (reason: string, message: string): never => {
    throw walnutError('WALNUT_INVALID_ARGUMENT', `export option ${message}`, { reason });
  };
  if (options === undefined) return {};
  if (typeof options !== 'object' || options === null || Array.isArray(options)) invalid('options', `options must be an object: { follow, pollMs }, not ${describeValue(options)}`);
  const o = options as Record<string, unknown>;
  const key = unknownOptionName(o, ['follow', 'pollMs']);
  if (key !== undefined) invalid('options', `${key} does not exist (only follow, pollMs)`);
  const follow = o['follow'];
  if (follow !== undefined && typeof follow !== 'boolean') invalid('follow', 'follow must be true or false');
  const poll = o['pollMs'];
  if (poll !== undefined && (typeof poll !== 'number' || !Number.isInteger(poll) || poll < 1 || poll > LONGEST_TIMER_MS)) invalid('pollMs', `pollMs must be an integer in 1..${LONGEST_TIMER_MS}`);
  // each value read once: what was checked is what the export uses
  return { follow: follow as boolean | undefined, pollMs: poll as number | undefined };
}

/** A stream's digest as the records carry it (high u64 then low u64, big-endian). */
export function hashBytes(h: Xxh3Stream): Uint8Array {
  return digestBytesInto(h.digest128(), new Uint8Array(16));
}

export class Exporter {
  readonly #index: WalIndex;
  readonly #sink: RecordBatchSink;
  readonly #follow: boolean;
  readonly #pollMs: number;
  readonly #stats: ExportStats = { records: 0, commits: 0, generations: 0, basePages: 0 };
  #salts: [number, number] | null = null;
  /** The last frame of generation #salts in the sink (its records taken). */
  #pos = 0;
  /**
   * The last frame of generation #salts read: #pos, or past it by the frames of the read whose
   * records the sink has not taken yet (#inSinkBytes of them; tails' frames included).
   */
  #readTo = 0;
  #inSinkBytes = 0;
  /** Follow mode: the snapshot's generation and frame X (the base image's state), once taken; whether run() has ended. */
  #from: Generation | null = null;
  #ended = false;
  /** In follow mode, where the frames come from (run()). */
  #follower: WalFollower | null = null;
  #seq = 0n;
  /** Where the base image's generation continues in the stream (its frames up to `anchor.frame` are in the base). */
  #baseGeneration: { salts: [number, number]; anchor: ChainAnchor } | null = null;
  /** The latest time stamped on the stream (times never go back, whatever the clock does). */
  #timeMs = 0n;
  #stopped = false;
  #wake: (() => void) | null = null;
  #poked: (() => void) | null = null;
  #passBegan = 0;
  /** The gap after the last pass (MIN_PASS_GAP_MS, or BUSY_PASS_GAP_MS after a busy one). */
  #passGap = MIN_PASS_GAP_MS;
  /**
   * A poke came while a pass ran (between passes nobody listens): the pass may have read the
   * live header before that commit, so the next wait is cut short as that poke would have cut
   * it, instead of lasting pollMs (a commit left unexported until the next poll or poke).
   */
  #pokedInPass = false;
  /** catchUp() came: the next pass begins at once. */
  #catchUp = false;
  /**
   * The commits' records, framed natively (native/commit_records.h; the WAL read, framed and, for
   * a file sink, written in one op on the WAL's lane), with page deltas when the sink asks for
   * them (made with the base image then: its pages are the first versions). One per export (a
   * transaction may go on from one read to the next: its hash so far lives in the framer).
   */
  #framer: NativeCommitFramer | null = null;
  /** The native framer's records for a sink that is not a file (reused: the sink copies them). */
  #framed = Buffer.alloc(0);

  /** Told once the first pass is in the sink (flushed): see ExportHooks. */
  readonly #caughtUp: (() => void) | undefined;

  constructor(index: WalIndex, sink: RecordBatchSink, options: ExportOptions = {}, hooks: ExportHooks = {}) {
    this.#index = index;
    this.#sink = sink;
    const o = checkExportOptions(options);
    this.#follow = o.follow === true;
    this.#pollMs = o.pollMs ?? 20;
    this.#caughtUp = hooks.caughtUp;
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
   * pass began less than MIN_PASS_GAP_MS (BUSY_PASS_GAP_MS after a busy pass) ago, that long after it. A pass per batch of commits
   * would cost more than the export itself (each wakes two I/O threads); commits coalesce instead.
   */
  poke(): void {
    if (this.#poked !== null) this.#poked();
    else this.#pokedInPass = true; // a pass is under way: it may have looked before this commit
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

  /**
   * Follow mode: bytes of frames committed that the sink has not taken yet: unreadBytes() and the
   * frames of the read whose records are in the sink call under way. What a slow sink leaves
   * behind in the WAL, where no queue of the sink's counts it. From the snapshot on: during the
   * first pass, the commits after the base image's state (frame X) are behind it (it read 0
   * until the follow began, however long the base image took); 0 once run() has ended.
   */
  behindBytes(): number {
    const unread = this.unreadBytes();
    return this.#from === null || this.#ended ? unread : unread + this.#inSinkBytes;
  }

  /**
   * Follow mode: bytes of frames committed that the export has not read yet (the WAL after the
   * last frame read, tails handed over and not read), without those of the records handed to the
   * sink and not taken: a sink that counts what it holds itself (replication's worker hand-over,
   * thread.ts) adds this, and a pass's records are not counted twice (they were, as frames here
   * until the sink took them, and as records there).
   */
  unreadBytes(): number {
    const from = this.#from;
    if (from === null || this.#ended) return 0;
    const pending = this.#follower?.pendingBytes() ?? 0;
    // read without locks, the header is not good while another process writes it: counted as
    // nothing in the WAL, a backlog of megabytes read 0 now and then. The last good one stands in
    const live = this.#index.liveOrLastGoodHeader();
    if (live === null) return pending;
    // before the first WAL_HEADER (the base image): the snapshot's generation, read up to X
    const salts = this.#salts ?? from.salts;
    const readTo = this.#salts === null ? from.mxFrame : this.#readTo;
    const frames = sameSalts(live.salts, salts) ? Math.max(0, live.mxFrame - readTo) : live.mxFrame;
    return pending + frames * (FRAME_HEADER_SIZE + this.#index.pageSize);
  }

  async run(): Promise<ExportStats> {
    const snap = await this.#index.beginOldestRead();
    if (this.#follow) this.#from = { mxFrame: snap.mxFrame, salts: [snap.generation.salts[0], snap.generation.salts[1]] };
    let follower: WalFollower | null = null;
    try {
      const observed = this.#observe(); // after the snapshot: everything it shows was committed by now
      await this.#base(snap, observed);
      await this.#frames(snapshotFrames(this.#index, snap), observed);
      await this.#sink.flush();
      this.#caughtUp?.();
      if (!this.#follow) return this.stats;
      // the pin is taken while the snapshot still holds the WAL: no frame can go in between
      follower = new WalFollower(this.#index, { mxFrame: this.#pos, salts: this.#salts ?? snap.generation.salts });
      await follower.start();
      this.#follower = follower;
      follower.keepRestarting(this.#pollMs);
      snap.release(); // its mark (at most X) would hold checkpoints at the base
      while (!this.#stopped) {
        await this.#nextPass();
        if (this.#stopped) break;
        this.#passBegan = performance.now();
        const before = this.#stats.commits;
        await this.#drain(follower);
        this.#passGap = this.#stats.commits - before >= BUSY_PASS_COMMITS ? BUSY_PASS_GAP_MS : MIN_PASS_GAP_MS;
        await this.#sink.flush();
      }
      await this.#drain(follower); // a last pass: everything committed before stop() is in the stream
      await this.#sink.flush();
      return this.stats;
    } finally {
      this.#ended = true;
      this.#follower = null;
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
        const wait = this.#passBegan + Math.min(this.#pollMs, this.#passGap) - performance.now();
        if (wait <= 0) this.#wake?.();
        else if (timers.length === 1) timers.push(setTimeout(() => this.#wake?.(), wait));
      };
      if (this.#pokedInPass) {
        this.#pokedInPass = false;
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
      if (gen.mxFrame === 0 || (gen.mxFrame === this.#pos && this.#salts !== null && sameSalts(gen.salts, this.#salts))) return;
      await this.#frames(source);
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

  /**
   * BASE_META, then the image of `snap` (the state after its frame X = snap.mxFrame of its
   * generation) as BASE_PAGES, then BASE_END. The base is commit N, N the commit frames in 1..X.
   */
  async #base(snap: Snapshot, observed: bigint): Promise<void> {
    // a damaged or hand-made commit frame's size (0xffffffff pages: a base image of 16 TiB of
    // zeros that never ended), refused as the checkpoint refuses it; walnut's own sparse growth
    // has its top page in a frame (or the file, once checkpointed)
    if (sizeBeyondFiles(snap.dbSize, snap.pageSize, await this.#index.db.size(), snap.mxFrame) && (sizeNoCommitMakes(snap.dbSize, snap.pageSize) || snap.frameOf(snap.dbSize) === 0)) {
      throw walnutError('WALNUT_CORRUPT', `the WAL's last commit says the database has ${snap.dbSize} pages, more than the database file and the WAL hold (SQLite's checkpoint refuses it too)`, { path: this.#index.dbPath, reason: 'DbSizeImplausible' });
    }
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
    const deltas = this.#sink.pageDeltas;
    const framer = deltas === null ? null : (this.#framer = new nativeExportIo.CommitFramer(deltas.versionBudget));
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
          if (framer !== null) keepBasePages(framer, chunk.framed, chunk.records, this.#index.pageSize);
          await appendFramedRecords(this.#sink, chunk.framed, chunk.records, true);
          counted(chunk);
        }
      }
    } finally {
      await base.close();
    }
    framer?.setDbSize(snap.dbSize);
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
    if (h.commitSize === 0 || !hasSalts(h, salts)) {
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
    if (this.#salts === null || !sameSalts(this.#salts, gen.salts)) {
      const base = this.#baseGeneration;
      const anchor = base !== null && sameSalts(base.salts, gen.salts) ? base.anchor : null;
      this.#baseGeneration = null; // only the first generation continues the base image
      await this.#append(encodeWalHeaderRecord(await source.walHeader(gen), anchor));
      this.#salts = [gen.salts[0], gen.salts[1]];
      this.#pos = this.#readTo = anchor?.frame ?? 0;
      this.#stats.generations++;
    }
    const pageSize = this.#index.pageSize;
    const frameSize = FRAME_HEADER_SIZE + pageSize;
    const readFrames = Math.max(1, Math.floor(READ_BYTES / frameSize));
    for (let f = this.#pos + 1; f <= gen.mxFrame; f += readFrames) {
      await this.#framesNative(source, gen, f, Math.min(readFrames, gen.mxFrame - f + 1), stamp);
    }
    this.#pos = this.#readTo = gen.mxFrame;
  }

  /**
   * Frames f..f+count-1 as records, natively: one op reads them from the WAL and frames them
   * (and writes them to a file sink at its end), or, handed over in memory, framed at once. A
   * transaction's frames go out as one FRAMES record (split only where a record would pass
   * MAX_RECORD or the read ends), then its COMMIT_META; the framer carries a transaction's hash
   * from one read to the next. A read a hand-over overtook is dropped and served from the tail.
   * With page deltas (the sink's SinkPageDeltas), runs of whole frames hold at most its
   * runFrames, and a PAGE_DELTA ends one.
   */
  async #framesNative(source: FrameSource, gen: Generation, f: number, count: number, stamp: bigint): Promise<void> {
    const framer = (this.#framer ??= new nativeExportIo.CommitFramer());
    const pageSize = this.#index.pageSize;
    const deltas = this.#sink.pageDeltas;
    const framesPerRecord = deltas === null ? framesPerRecordOf(pageSize) : Math.max(1, Math.min(deltas.runFrames, framesPerRecordOf(pageSize)));
    const bound = commitRecordsBound(count, pageSize);
    for (;;) {
      const span = source.span(gen, f, count);
      const lastSeq = Number(this.#seq);
      const timeMs = Number(stamp);
      let run: NativeFramedRun;
      if (span.kind === 'memory') {
        if (this.#framed.length < bound) this.#framed = Buffer.allocUnsafeSlow(bound);
        run = framer.frameBytes(span.frames, pageSize, framesPerRecord, lastSeq, timeMs, this.#framed);
        await this.#handOver(f, count, span.frames.length, () => appendFramedRecords(this.#sink, this.#framed.subarray(0, run.bytes), run.records));
      } else if (this.#sink.direct) {
        const done: { read: NativeReadFramesResult | null } = { read: null };
        await this.#sink.appendDirect(async (file, position) => {
          done.read = await framer.readFrames(nativeHandleOf(span.file), pageSize, framesPerRecord, lastSeq, timeMs, f, count, span.epoch, span.seen, null, nativeHandleOf(file), position);
          return { bytes: done.read.bytes, records: done.read.records };
        });
        const r = done.read;
        if (r === null) throw walnutError('WALNUT_IO', 'the export sink did not let the exporter append its records', { reason: 'SinkRefused' });
        if (r.missingFrame !== 0) this.#missing(r.missingFrame);
        if (r.dropped) continue;
        source.served(gen, f, count);
        run = r;
        this.#pos = this.#readTo = f + count - 1; // read and written in the one op
      } else {
        if (this.#framed.length < bound) this.#framed = Buffer.allocUnsafeSlow(bound);
        const r = await framer.readFrames(nativeHandleOf(span.file), pageSize, framesPerRecord, lastSeq, timeMs, f, count, span.epoch, span.seen, this.#framed, null, 0);
        if (r.missingFrame !== 0) this.#missing(r.missingFrame);
        if (r.dropped) continue;
        source.served(gen, f, count);
        run = r;
        await this.#handOver(f, count, count * (FRAME_HEADER_SIZE + pageSize), () => appendFramedRecords(this.#sink, this.#framed.subarray(0, r.bytes), r.records));
      }
      this.#seq += BigInt(run.commits);
      this.#stats.commits += run.commits;
      this.#stats.records += run.records;
      return;
    }
  }

  /**
   * Frames f..f+count-1 (`bytes` of them) are read; `append` hands their records to the sink,
   * which holds them until it has taken them (behindBytes() counts them meanwhile,
   * unreadBytes() does not). The position moves read by read, not at the end of the
   * generation: a pass of several reads counted those already taken as behind.
   */
  async #handOver(f: number, count: number, bytes: number, append: () => Promise<void>): Promise<void> {
    this.#readTo = f + count - 1;
    this.#inSinkBytes = bytes;
    try {
      await append();
    } finally {
      this.#inSinkBytes = 0;
    }
    this.#pos = f + count - 1;
  }

  #missing(frame: number): never {
    throw walnutError('WALNUT_CORRUPT', `frame ${frame} is missing from the WAL`, { path: this.#index.walPath });
  }
}

/** The base image's pages in `framed` (its BASE_PAGES records) as the framer's first page versions (delta mode). */
function keepBasePages(framer: NativeCommitFramer, framed: Uint8Array, records: number, pageSize: number): void {
  for (const p of framedPayloads(framed, records)) {
    if (p[0] === KIND.BASE_PAGES) framer.keepPages(new DataView(p.buffer, p.byteOffset, 5).getUint32(1), p.subarray(BASE_PAGES_HEADER), pageSize);
  }
}
