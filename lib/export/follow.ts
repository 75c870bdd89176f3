/**
 * export/follow.ts — where the exporter reads WAL frames from: FrameSource, over a snapshot
 * (snapshotFrames) or, in follow mode, WalFollower, which tails the WAL without keeping it from
 * restarting.
 *
 * A FrameSource names one generation (salts, mxFrame, always a commit boundary) and serves its
 * WAL header and frames, bit-exact.
 *
 * WalFollower (follow mode, after the base image) holds no snapshot: the connection's follow pin
 * (WalIndex.followWal) keeps every frame in place until the follower has it, and never limits a
 * checkpoint. It is a read slot marked unused, except while the follower has every frame, all
 * copied, and another process's RESTART or TRUNCATE checkpoint waits for the read slots: then it
 * rests on READ(0), as SQLite's idle readers do, and lets that checkpoint restart the WAL, back
 * on a slot as soon as new frames come (WalIndex.settleFollowPin, on keepRestarting's timer).
 * Invariants:
 *  - Frames are served in order, each once; `position()` is the last frame read into memory.
 *  - A restart happens only under WRITE, after the connection hands the follower the frames of
 *    the ending generation it has not read (WalTail); those are served before anything newer.
 *    A WAL read (frames or header) that was in flight when a tail arrived is dropped (the
 *    restarted WAL may have overwritten its bytes) and served from the tail instead.
 *  - When the WAL's writers are other processes (sqlite3), nothing restarts the WAL but the
 *    follower: once a writer has checkpointed the generation (nBackfill > 0, which SQLite's
 *    writers do past wal_autocheckpoint and then restart), the follower waits for a gap between
 *    writers (tried every pollMs beside the exporter's reads and sink writes, a short wait each:
 *    keepRestarting), takes WRITE, checkpoints the rest (passive: it never waits for a reader) and
 *    restarts the WAL, handed its own tail like any follower (restartIfDue) — Litestream's
 *    approach, with no frame slipping past and no sink call under WRITE. It leaves this to the
 *    connection's own writer while that one is appending (whose restart waits for nothing).
 */
import { FRAME_HEADER_SIZE } from '../format/frame-header';
import { decodeWalHeader, frameOffset, hasSalts, sameSalts, WAL_HEADER_SIZE } from '../format/wal-header';
import type { WalnutFile } from '../io/file';
import type { Snapshot } from '../wal-index/snapshot';
import type { Follower, WalIndex, WalTail } from '../wal-index/wal-index';
import { runCheckpoint } from '../checkpoint/execute';
import { walnutError } from '../errors';

export interface Generation {
  mxFrame: number;
  salts: [number, number];
}

/**
 * Where frames of a generation are: in memory (a handed-over tail's, served by span() as read()
 * serves them), or in the WAL file, to be read there (native/commit_records: read and framed in
 * one op) and good only if `epoch[0]` is still `seen` once they are read (no hand-over came, so
 * no restart overwrote them); `epoch` null: nothing can restart the WAL under the read.
 */
export type FrameSpan = { kind: 'memory'; frames: Buffer } | { kind: 'wal'; file: WalnutFile; epoch: Int32Array | null; seen: number };

/** One generation's WAL header and frames (see the header). */
export interface FrameSource {
  generation(): Promise<Generation>;
  walHeader(gen: Generation): Promise<Uint8Array>;
  /** Fills `buf` with frames first..first + count - 1 of `gen` (WALNUT_CORRUPT when missing). */
  read(gen: Generation, buf: Buffer, first: number, count: number): Promise<void>;
  /** Where frames first..first + count - 1 of `gen` are (WALNUT_CORRUPT when a tail lacks them). */
  span(gen: Generation, first: number, count: number): FrameSpan;
  /** The caller read frames first..first + count - 1 of `gen` from the WAL span() named (and they were good). */
  served(gen: Generation, first: number, count: number): void;
}


function missing(index: WalIndex, first: number, got: number, frameSize: number): never {
  throw walnutError('WALNUT_CORRUPT', `frame ${first + Math.floor(got / frameSize)} is missing from the WAL`, { path: index.walPath });
}

/** Reads the WAL header on disk, which must be the generation's. */
async function readWalHeader(index: WalIndex, file: WalnutFile, gen: Generation): Promise<Uint8Array> {
  const head = new Uint8Array(WAL_HEADER_SIZE);
  await file.read(head, 0, WAL_HEADER_SIZE, 0);
  const h = decodeWalHeader(head);
  if (h.status !== 'ok' || !hasSalts(h.header!, gen.salts)) {
    throw walnutError('WALNUT_CORRUPT', 'the WAL header on disk is not the generation the wal-index describes', { path: index.walPath });
  }
  return head;
}

/** The snapshot's generation, read from the WAL (its read mark keeps the frames in place). */
export function snapshotFrames(index: WalIndex, snap: Snapshot): FrameSource {
  const file = index.wal.file;
  return {
    generation: async () => snap.generation,
    walHeader: (gen) => readWalHeader(index, file, gen),
    read: async (_gen, buf, first) => {
      const frameSize = frameSizeOf(index);
      const got = await file.read(buf, 0, buf.length, frameOffset(first, index.pageSize));
      if (got !== buf.length) missing(index, first, got, frameSize);
    },
    span: () => ({ kind: 'wal', file, epoch: null, seen: 0 }),
    served: () => undefined,
  };
}

const frameSizeOf = (index: WalIndex): number => FRAME_HEADER_SIZE + index.pageSize;

/** How long a follower's restart waits, under WRITE, for another connection's checkpoint to end. */
const CKPT_WAIT_MS = 50;

/** How long one pass waits for WRITE for a due restart (then it drains, and tries again next pass). */
const RESTART_WAIT_MS = 100;

export class WalFollower implements FrameSource, Follower {
  readonly #index: WalIndex;
  readonly #frameSize: number;
  readonly #tails: WalTail[] = [];
  #pendingBytes = 0;
  /** The last frame read into memory, and its generation (frame 0: none of the live one yet). */
  #at: Generation;
  /**
   * Hand-overs so far, bumped by every one: a WAL read that saw it change is dropped. An
   * Int32Array: a native read (span()) loads it on its I/O thread once its frames are read.
   */
  readonly #epoch = new Int32Array(1);
  #file: WalnutFile | null = null;
  #unregister: (() => void) | null = null;
  /** The connection's appends when the follower last looked (its own writer restarts the WAL then). */
  #appends = -1;
  #stopped = false;
  /** The restart attempt under way (one at a time: keepRestarting's and the exporter's). */
  #restarting: Promise<boolean> | null = null;
  #restartTimer: ReturnType<typeof setTimeout> | null = null;
  /** What a background restart attempt threw (keepRestarting), for the exporter's next call. */
  #failure: { error: unknown } | null = null;

  constructor(index: WalIndex, from: Generation) {
    this.#index = index;
    this.#frameSize = frameSizeOf(index);
    this.#at = { mxFrame: from.mxFrame, salts: [from.salts[0], from.salts[1]] };
  }

  /** Takes the follow pin (the caller still holds the snapshot it exported up to `from`). */
  async start(): Promise<void> {
    this.#file = await this.#index.followerWalFile(); // the read lane: behind neither commits nor checkpoints
    this.#unregister = await this.#index.followWal(this);
  }

  /** Drops the pin (once) and ends keepRestarting(). */
  stop(): void {
    this.#stopped = true;
    if (this.#restartTimer !== null) clearTimeout(this.#restartTimer);
    this.#restartTimer = null;
    this.#unregister?.();
    this.#unregister = null;
  }

  /**
   * Moves the follow pin (WalIndex.settleFollowPin: onto READ(0) while every frame is read and
   * copied and another process's checkpoint waits for the read slots, back as frames come) and
   * tries restartIfDue every `everyMs` until stop(), beside the exporter's reads and sink
   * writes: a sink slower than other processes' writers takes seconds to export one 4 MiB read,
   * and a restart tried only between reads let their WAL grow past 16-24 MiB in 3 s (three
   * python3 writers, a sink taking 2 ms a record). A failed attempt is thrown by the next
   * generation() or read(), so the export ends with it.
   */
  keepRestarting(everyMs: number): void {
    const tick = (): void => {
      this.#restartTimer = null;
      if (this.#stopped) return;
      const settled = new Promise<void>((resolve) => resolve(this.#index.settleFollowPin())); // what it throws ends the export too
      settled.then(() => this.restartIfDue(() => this.#stopped)).then(
        () => {
          if (!this.#stopped) this.#restartTimer = setTimeout(tick, everyMs);
        },
        (e: unknown) => {
          this.#failure ??= { error: e };
        },
      );
    };
    if (!this.#stopped && this.#restartTimer === null) this.#restartTimer = setTimeout(tick, everyMs);
  }

  // ---- Follower (called by the connection) ------------------------------------------------

  position(): Generation {
    return this.#at;
  }

  pendingBytes(): number {
    return this.#pendingBytes;
  }

  handOver(tail: WalTail): void {
    const end = tail.after + tail.frames.length / this.#frameSize;
    // frames read while the connection read the tail for us are not served twice
    const skip = sameSalts(tail.salts, this.#at.salts) ? Math.max(0, this.#at.mxFrame - tail.after) : 0;
    Atomics.add(this.#epoch, 0, 1);
    if (tail.after + skip >= end) return;
    const frames = tail.frames.subarray(skip * this.#frameSize);
    this.#tails.push({ ...tail, after: tail.after + skip, frames });
    this.#pendingBytes += frames.length;
    this.#at = { mxFrame: end, salts: tail.salts };
  }

  // ---- FrameSource (called by the exporter) -----------------------------------------------

  /** The oldest tail handed over, else the live generation. */
  async generation(): Promise<Generation> {
    this.#throwFailure();
    const tail = this.#tails[0];
    if (tail !== undefined) return { salts: tail.salts, mxFrame: tail.after + tail.frames.length / this.#frameSize };
    const live = this.#index.liveHeader() ?? (await this.#index.header()).header; // header(): recovery when it is not good
    return { mxFrame: live.mxFrame, salts: [live.salts[0], live.salts[1]] };
  }

  async walHeader(gen: Generation): Promise<Uint8Array> {
    for (;;) {
      const tail = this.#tails.find((t) => sameSalts(t.salts, gen.salts));
      if (tail !== undefined) return tail.header;
      const handOvers = this.#epoch[0];
      try {
        const head = await readWalHeader(this.#index, this.#file!, gen);
        if (this.#epoch[0] === handOvers) return head;
      } catch (e) {
        if (this.#epoch[0] === handOvers) throw e;
      }
      // the generation ended under the read (its header may be overwritten): the tail has it
    }
  }

  async read(gen: Generation, buf: Buffer, first: number, count: number): Promise<void> {
    this.#throwFailure();
    for (;;) {
      const tail = this.#tails[0];
      if (tail !== undefined && sameSalts(tail.salts, gen.salts)) {
        const from = (first - 1 - tail.after) * this.#frameSize;
        if (from < 0 || from + buf.length > tail.frames.length) missing(this.#index, first, Math.max(0, -from), this.#frameSize);
        tail.frames.copy(buf, 0, from, from + buf.length);
        if (from + buf.length === tail.frames.length) {
          this.#tails.shift();
          this.#pendingBytes -= tail.frames.length;
        }
        return;
      }
      const handOvers = this.#epoch[0];
      const got = await this.#file!.read(buf, 0, buf.length, frameOffset(first, this.#index.pageSize));
      if (this.#epoch[0] !== handOvers) continue; // the WAL may have restarted under the read: the tail has these frames
      if (got !== buf.length) missing(this.#index, first, got, this.#frameSize);
      if (!sameSalts(this.#at.salts, gen.salts) || this.#at.mxFrame < first + count - 1) this.#at = { mxFrame: first + count - 1, salts: gen.salts };
      return;
    }
  }

  span(gen: Generation, first: number, count: number): FrameSpan {
    this.#throwFailure();
    const tail = this.#tails[0];
    if (tail === undefined || !sameSalts(tail.salts, gen.salts)) return { kind: 'wal', file: this.#file!, epoch: this.#epoch, seen: this.#epoch[0]! };
    const from = (first - 1 - tail.after) * this.#frameSize;
    const length = count * this.#frameSize;
    if (from < 0 || from + length > tail.frames.length) missing(this.#index, first, Math.max(0, -from), this.#frameSize);
    // served from memory: they leave the tail (and pendingBytes) now, read by read. Left in it
    // until the tail's last read, a tail of megabytes was counted whole while its first reads'
    // records were already in the sink's hands (behindBytes counted them twice)
    if (from + length === tail.frames.length) this.#tails.shift();
    else this.#tails[0] = { ...tail, after: first + count - 1, frames: tail.frames.subarray(from + length) };
    this.#pendingBytes -= from + length;
    return { kind: 'memory', frames: tail.frames.subarray(from, from + length) };
  }

  /**
   * Frames up to first + count - 1 of `gen` were read from the WAL, good: a hand-over that came
   * after they were read, but before this, handed them over again, and they are not served twice.
   */
  served(gen: Generation, first: number, count: number): void {
    const last = first + count - 1;
    if (!sameSalts(this.#at.salts, gen.salts) || this.#at.mxFrame < last) this.#at = { mxFrame: last, salts: gen.salts };
    while (this.#tails.length > 0 && sameSalts(this.#tails[0]!.salts, gen.salts) && this.#tails[0]!.after < last) {
      const tail = this.#tails[0]!;
      const end = tail.after + tail.frames.length / this.#frameSize;
      if (end <= last) {
        this.#tails.shift();
        this.#pendingBytes -= tail.frames.length;
      } else {
        const cut = (last - tail.after) * this.#frameSize;
        this.#tails[0] = { ...tail, after: last, frames: tail.frames.subarray(cut) };
        this.#pendingBytes -= cut;
      }
    }
  }

  // ---- the follower's own restart -----------------------------------------------------------

  /**
   * Restarts the WAL when its writers are other processes and one of them has checkpointed
   * this generation (see the header): waits for WRITE (at most RESTART_WAIT_MS or the busy
   * timeout, until `stopped()`, or until this connection's own writer is active),
   * copies what is left (passive: it waits for no reader), and restarts, the frames this
   * follower has not read handed over to it in memory — under WRITE nothing waits on the sink,
   * which may be slow. True when the WAL restarted.
   */
  restartIfDue(stopped: () => boolean): Promise<boolean> {
    this.#throwFailure();
    if (this.#restarting === null) {
      const attempt = this.#tryRestart(stopped);
      this.#restarting = attempt;
      const done = (): void => {
        if (this.#restarting === attempt) this.#restarting = null;
      };
      attempt.then(done, done);
    }
    return this.#restarting;
  }

  #throwFailure(): void {
    if (this.#failure !== null) throw this.#failure.error;
  }

  async #tryRestart(stopped: () => boolean): Promise<boolean> {
    const index = this.#index;
    const live = index.liveHeader();
    const appends = index.appends;
    const ownWriter = appends !== this.#appends;
    this.#appends = appends;
    // (a read-only store's export writes nothing: the WAL's writers restart it; commit/read-only.ts)
    if (index.readOnly || live === null || live.mxFrame === 0 || ownWriter || index.writing || index.checkpointInfo().nBackfill === 0) return false;
    const target = await index.checkpointTarget();
    // a pass waits for a gap between writers at most RESTART_WAIT_MS: the export drains what
    // they commit meanwhile and the next pass tries again (waiting the busy timeout here froze
    // the export for seconds under sustained commits); this connection's own writer, once it
    // appends or holds WRITE, restarts the WAL itself: the wait ends then
    const deadline = performance.now() + Math.min(index.busyTimeout, RESTART_WAIT_MS);
    // every millisecond: a walnut writer in the way leaves WRITE free for a few (commit/group-committer.ts FOLLOWER_GAP_MS).
    // WRITE may be another process's RESTART or TRUNCATE checkpoint's, waiting for the read
    // slots: the pin moves off its slot meanwhile (settleFollowPin), not only at the next tick
    while (!index.tryBeginWrite()) {
      if (stopped() || index.closed || performance.now() > deadline || index.appends !== appends || index.writing) return false;
      index.settleFollowPin();
      await sleep(1);
    }
    try {
      const until = performance.now() + CKPT_WAIT_MS;
      // another connection's checkpoint may still run (CKPT busy): it ends soon, no commit can start one now
      while ((await runCheckpoint(target, 'passive', { sync: true })).walFrames < 0) {
        if (stopped() || performance.now() > until) return false;
        await sleep(1);
      }
      return await index.restartPastFollowers();
    } finally {
      index.endWrite();
    }
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
