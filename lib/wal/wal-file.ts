/**
 * wal/wal-file.ts — WalFile: one SQLite `-wal` file. Recovery scan, fresh header (create and
 * restart), and batched append of whole transactions. Formats: format/wal-header.ts,
 * format/frame-header.ts; the scan and append loops are native (native/frames.h).
 *
 * The append window is the state a writer continues from: page size, checksum byte order,
 * salts, checkpoint sequence, mxFrame (last commit frame), the running checksum at mxFrame,
 * and the header bytes and file size last seen. Invariants:
 *  - mxFrame only ever names a commit frame; frames after it (a torn or abandoned tail) are
 *    overwritten by the next append, starting at mxFrame + 1.
 *  - Every append re-checks, on the I/O thread right before writing, that the header bytes
 *    are still what this WalFile last saw, that the file is no shorter, and that the slot it
 *    writes into holds no frame of this generation it did not see there (a frame a recovery
 *    dropped may be overwritten; one appended since may not); if not, nothing is written and
 *    WALNUT_BUSY (reason StaleAppendWindow) tells the caller to re-read (recover) and retry.
 *    (The file may have grown: this WalFile's zero-ahead, or another writer's frames, which
 *    the slot test catches.) An append whose caller vouches that nobody changed the WAL since
 *    this WalFile's last append (`unchanged`: it holds SQLite's WRITE lock and the wal-index
 *    header is still the one it published after that append: wal-index.ts, appendAndPublish)
 *    does not read the slot (pread + lseek instead of pread, lseek, pread): no other writer
 *    can have appended there. The header and size are still checked: a WAL cut under it or
 *    rewritten in place without the lock is refused, not written into a hole or under a
 *    header whose salts disown the new frames.
 *  - Past the last frame the file may hold zeros (zeroAhead, preallocation), an older
 *    generation's frames or a tail a recovery dropped; zeroAhead only ever writes past the
 *    file's end, so it never changes a byte of a frame.
 *  - Every append (append, appendSync, appendInline, appendAfterHeader: all native/frames.cc
 *    RunAppend) writes zeros over the frame header right after its last frame, as far as the
 *    file holds it, in the same pwritev as its frames (so the same fdatasync covers them): the
 *    tail. What lay there (frames of this generation a killed writer or a failed batch left
 *    unpublished, which a recovery dropped) then never continues the chain after this append,
 *    even when its frames repeat theirs byte for byte (same salts, same running checksums: a
 *    caller retrying its transaction as it was); without it the next recovery, sqlite3's too,
 *    read on into them and revived commits nobody acknowledged or that were reported failed
 *    (test/interop/dropped-tail-crash, failed-batch-tail). Past the file's end nothing is
 *    written (no frame is there; those bytes would need space a full disk may not have), so the
 *    tail never changes the file's size: a WAL ends where its frames, preallocation or zero-ahead
 *    put its end. Until the append's sync returns, a crash may keep its frames without the tail
 *    (as any unsynced write may be torn): only a synced append is guaranteed to end the chain.
 *  - A new header (create/restart) always has new salts, so frames of the previous generation
 *    fail the salt test; it is synced before any frame is written after it (unless the
 *    caller asks for durability 'none', i.e. synchronous=off).
 *  - Checksums are written in the host's word order for a new WAL, as SQLite does; an existing
 *    WAL continues in its own order (both are read).
 *
 *  - append() checksums and writes the page buffers on the I/O thread, as they are then: they
 *    must neither change nor be detached until it settles (the store hands it its own copies of
 *    callers' pages: commit/page-arena.ts; native/frames.h).
 *
 * WalFile takes no locks: callers (the wal-index / commit layers) hold SQLite's WRITE lock
 * around append and restart when other processes share the database.
 */
import { randomFillSync } from 'node:crypto';
import * as os from 'node:os';
import * as path from 'node:path';

import { markOutcomeUnknown, walnutError } from '../errors';
import { decodeFrameHeader, FRAME_HEADER_SIZE } from '../format/frame-header';
import { isValidPageSize } from '../format/page-size';
import {
  bigEndianChecksum,
  decodeWalHeader,
  encodeWalHeader,
  frameOffset,
  hasSalts,
  hostMagic,
  sameSalts,
  WAL_HEADER_SIZE,
  walHeaderBeforeFrame1,
  type WalHeaderStatus,
} from '../format/wal-header';
import { nativeHandleOf, WalnutFile, type Durability } from '../io/file';
import { ScratchWords } from '../io/scratch-words';
import { APPEND_DURABILITY, nativeFrames, type NativeAppendChain, type NativeChain, type NativeScanResult, type NativeShmRegion } from '../native';

/** Frame numbers are u32 in the wal-index; SQLite's limit. */
export const MAX_FRAME = 0xffffffff;

export interface WalRecovery {
  /** 'ok', or why the header is unusable (then the WAL counts as empty). */
  headerStatus: WalHeaderStatus | 'empty';
  pageSize: number;
  bigEndianChecksums: boolean;
  salts: [number, number];
  checkpointSeq: number;
  /** Valid frames through the last commit frame. */
  mxFrame: number;
  /** Database size in pages after the last valid commit (0 when none). */
  dbSize: number;
  commits: number;
  /** Running checksum at mxFrame (the header checksum when mxFrame is 0). */
  running: [number, number];
  /** Frames that passed every check, including an uncommitted tail after mxFrame. */
  lastValidFrame: number;
  /** Page number of each valid frame 1..lastValidFrame (index 0 = frame 1). */
  pgnos: Uint32Array;
  fileSize: number;
  /** Bytes after the end of frame mxFrame (or the whole file when the header is unusable). */
  invalidTailBytes: number;
}

export interface WalPage {
  pgno: number;
  data: Uint8Array;
}

export interface WalTransaction {
  pages: readonly WalPage[];
  /** Database size in pages after this transaction (the commit frame's field). */
  dbSize: number;
  /**
   * The pages as the commit was submitted, when the committer wrote more (zero pages over pages a
   * shrink dropped: group-committer.ts #withRegrownZeros): the sequencer knows a commit by them.
   */
  submitted?: readonly WalPage[];
}

export interface AppendResult {
  firstFrame: number;
  lastFrame: number;
  /** Commit frame of each transaction, in order. */
  commitFrames: number[];
  /** The page number of each frame written, firstFrame..lastFrame (the wal-index's entries). */
  pgnos: Uint32Array;
}

export interface WalOpenOptions {
  create?: boolean;
  readOnly?: boolean;
  /** Permission bits for a new file (SQLite copies the database file's). */
  mode?: number;
}

/** One append, validated and flattened for the native call. */
interface AppendPlan {
  /** [pageSize, bigEndian, salt1, salt2, s0, s1]; the native append leaves the new running checksum in [4], [5]. */
  chain: NativeAppendChain;
  offset: number;
  /** The append's result; nativePgnos (a copy) and commitSizes are what the native call reads. */
  pgnos: Uint32Array;
  nativePgnos: Uint32Array;
  commitSizes: Uint32Array;
  pages: Uint8Array[];
  commitFrames: number[];
  frames: number;
  dbSize: number;
  /**
   * The window: the header and size seen, and the frame header seen in the next slot (null:
   * none of this generation; undefined: the caller vouches for it (append's `unchanged`), only
   * the header and size are checked).
   */
  header: Uint8Array;
  size: number;
  slot: Uint8Array | null | undefined;
  /** File size to zero-fill up to after the frames (0 = no growth). */
  growTo: number;
  durability: Durability;
}

/**
 * A failed write may have extended the file (a short write) before failing: our own bytes past
 * mxFrame, which the next append overwrites. The window takes the new size so that retry works;
 * only a stale window (someone else's change) must not be adopted blindly.
 */
function isStaleWindow(e: unknown): boolean {
  return (e as { reason?: string }).reason === 'StaleAppendWindow';
}

/**
 * Preallocation: an append that would extend the file also writes GROWTH_CHUNK zeros after its
 * frames, in the same pwritev, after the native window check. Later appends then overwrite
 * written, already-sized space, so most fdatasyncs have no file-size or block-allocation
 * metadata to commit (the reason SQLite's FULL commits beat an appending fsync); the batch that
 * grows the file pays for flushing the chunk. Measured here (64 committers, growing WAL):
 * commit p50 ~0.55 ms instead of ~1.5 ms, p99 ~6 ms instead of ~3 ms, same throughput. Once
 * checkpoints restart the WAL, appends reuse its space and never grow it. Zero frames are
 * invalid (page number 0) to every reader, SQLite included.
 */
const GROWTH_CHUNK = 1 << 20;

/** errno of a write past a file-size limit (RLIMIT_FSIZE). */
const { EFBIG } = os.constants.errno;

/**
 * Zero-ahead (zeroAhead): a WAL that grows keeps ZERO_AHEAD bytes of zeros, written and synced
 * by the background lane (native/wal_zero_ahead.h), past the end of its last frame, so that
 * appends overwrite synced blocks and their fdatasync commits no metadata (measured on this
 * ext4: 0.86x the overwrite loop, against 0.67x for the zero-fill above, which remains the
 * fallback when appends outrun the zeroing). A new zeroing starts when less than
 * ZERO_AHEAD_LOW is left (64 one-page 4 KiB commits take ~264 KiB: 4 MiB is ~15 such batches
 * of slack for the zeroing's 4+ MiB). Only a WAL whose frames reach past ZERO_AHEAD_FROM is
 * zeroed ahead: one that checkpoints restarts and reuses its space (the default auto-checkpoint,
 * 1000 frames, stays under 4.1 MiB with 4 KiB pages), and its file stays as small as before.
 * Bounded: the file is never zeroed past the end of the last frame + ZERO_AHEAD; a restart that
 * cuts the file to walSizeLimit (journal_size_limit) cuts the zeros too, and they come back only
 * when the WAL grows that far again.
 */
const ZERO_AHEAD = 8 << 20;
const ZERO_AHEAD_LOW = 4 << 20;
const ZERO_AHEAD_FROM = 8 << 20;

/** `d` when it is a Durability (a caller's value, unchecked by types at run time), else WALNUT_INVALID_ARGUMENT. */
function checkDurability(d: Durability): Durability {
  if (d !== 'none' && d !== 'data' && d !== 'full') {
    throw walnutError('WALNUT_INVALID_ARGUMENT', "durability must be 'none', 'data' or 'full'", { reason: 'durability' });
  }
  return d;
}

/**
 * Random words for new salts, drawn from a pool refilled RANDOM_POOL_WORDS at a time: a WAL
 * restart (every ~16 batches of 64 under the default auto-checkpoint) made a randomBytes(8)
 * call of its own, a Buffer and a system call's worth of CPU each time (bench/README.md, session
 * 27). The words are as random; no two restarts share one.
 */
const RANDOM_POOL_WORDS = 256;
const randomPool = new Uint32Array(RANDOM_POOL_WORDS);
let randomNext = RANDOM_POOL_WORDS;

function randomU32Pair(): [number, number] {
  if (randomNext + 2 > RANDOM_POOL_WORDS) {
    randomFillSync(randomPool);
    randomNext = 0;
  }
  const pair: [number, number] = [randomPool[randomNext]!, randomPool[randomNext + 1]!];
  randomNext += 2;
  return pair;
}

/**
 * Takes the addon's `nothingWritten` mark off a failed append's error (native/frames.cc
 * AppendOutcome): true when the write of its frames was refused before its first byte (EROFS,
 * EPERM of an immutable file, ENOSPC at once). The WAL then holds nothing of them: there is
 * nothing to invalidate, and the failure is definite. Before, the invalidation was tried, failed
 * the same way (a read-only file takes no zeros either), and the commit was reported with reason
 * OutcomeUnknown though none of it could ever appear.
 */
function takeNothingWritten(e: unknown): boolean {
  const err = e as { nothingWritten?: unknown } | null;
  if (err === null || typeof err !== 'object' || err.nothingWritten !== true) return false;
  delete err.nothingWritten;
  return true;
}

/** The 24 zeros WalFile's invalidation writes over a frame header (never written to: lent to every such write). */
const ZERO_FRAME_HEADER = new Uint8Array(FRAME_HEADER_SIZE);

/** Zeros to write over a frame header: `length` bytes from file offset `at` (its bytes that are not zeros yet). */
interface HeaderZeros {
  at: number;
  length: number;
}

/**
 * The frame headers in `bytes` (read from file offset `offset`, frames of `frameSize` bytes
 * back to back, the last header maybe cut by the end of the file) that are not all zeros: the
 * frames an invalidation must zero, each through its last byte that is not zero. The rest of a
 * header already reads as zeros, and may be a hole (a WAL extended without allocating after a
 * write that hit a full disk: native/frames.cc): zeros written there would need a block.
 */
function liveFrameHeaders(bytes: Uint8Array, offset: number, frameSize: number): HeaderZeros[] {
  const live: HeaderZeros[] = [];
  for (let at = 0; at < bytes.length; at += frameSize) {
    for (let i = Math.min(at + FRAME_HEADER_SIZE, bytes.length) - 1; i >= at; i--) {
      if (bytes[i] !== 0) {
        live.push({ at: offset + at, length: i - at + 1 });
        break;
      }
    }
  }
  return live;
}

export class WalFile {
  readonly path: string;
  readonly #file: WalnutFile;
  // The append window (see the file comment).
  #pageSize = 0;
  #bigEndian = false;
  #salts: [number, number] = [0, 0];
  #checkpointSeq = 0;
  #mxFrame = 0;
  #dbSize = 0;
  #running: [number, number] = [0, 0];
  #header: Uint8Array | null = null;
  #fileSize = 0;
  /** The frame header in slot mxFrame + 1 when the window was read (null: none of this generation). */
  #slot: Uint8Array | null = null;
  /**
   * The append's chain words, one array per WalFile (appends of one WalFile run one at a time:
   * each continues from the last one's adopted state), so no call allocates one: the native
   * call's view of a small typed array moves its bytes off the heap (malloc + sweep). After an
   * append, words 6 and 7 hold the file's size (NativeAppendChain).
   */
  readonly #chainWords = new Uint32Array(8);
  /**
   * The native append's page numbers and commit sizes (io/scratch-words.ts: it reads them only
   * during the call, into the frame headers it builds). The page numbers the append returns are
   * a fresh array of their own: the caller reads them after the call.
   */
  readonly #nativePgnos = new ScratchWords();
  readonly #nativeCommitSizes = new ScratchWords();
  /** A valid header was seen (salts and checkpoint sequence are a real generation's). */
  #hadGeneration = false;
  /** Frames 1..frame of the generation with these salts are on stable storage (see durableThrough). */
  #durable = { frame: 0, salt1: 0, salt2: 0 };
  #preallocate = true;
  /**
   * An append's zeros after its frames did not fit and the file could not be extended over a
   * hole either, or a zero-ahead failed with EFBIG: a file-size limit (RLIMIT_FSIZE). Until the
   * WAL restarts, appends grow it by their frames only and no zero-ahead runs: each append's
   * GROWTH_CHUNK zeros would be written up to the limit, fail (EFBIG, SIGXFSZ) and be cut off
   * again, each zeroing fail there again.
   */
  #growthRefused = false;
  /** zeroAhead runs only when asked (the store's `zeroAhead` option). */
  #zeroAheadOn = false;
  /** The zero-ahead in flight (zeroAhead), or null. */
  #zeroing: Promise<void> | null = null;

  private constructor(file: WalnutFile) {
    this.#file = file;
    this.path = file.path;
  }

  /** Opens (and with `create`, creates and makes the directory entry durable) a WAL file. */
  static async open(walPath: string, options: WalOpenOptions = {}): Promise<WalFile> {
    if (options.create && !options.readOnly) {
      try {
        const file = await WalnutFile.open(walPath, { exclusive: true, mode: options.mode ?? 0o644 });
        await WalnutFile.syncDirectory(path.dirname(walPath));
        return new WalFile(file);
      } catch (e) {
        if ((e as { errno?: number }).errno !== 17) throw e; // EEXIST: open it below
      }
    }
    return new WalFile(await WalnutFile.open(walPath, { readOnly: options.readOnly === true }));
  }

  static openSync(walPath: string, options: WalOpenOptions = {}): WalFile {
    if (options.create && !options.readOnly) {
      try {
        const file = WalnutFile.openSync(walPath, { exclusive: true, mode: options.mode ?? 0o644 });
        WalnutFile.syncDirectorySync(path.dirname(walPath));
        return new WalFile(file);
      } catch (e) {
        if ((e as { errno?: number }).errno !== 17) throw e;
      }
    }
    return new WalFile(WalnutFile.openSync(walPath, { readOnly: options.readOnly === true }));
  }

  /** The underlying file (for checkpoint copies and diagnostics). */
  get file(): WalnutFile {
    return this.#file;
  }

  get pageSize(): number {
    return this.#pageSize;
  }
  get mxFrame(): number {
    return this.#mxFrame;
  }
  get dbSize(): number {
    return this.#dbSize;
  }
  get salts(): [number, number] {
    return [this.#salts[0], this.#salts[1]];
  }
  get checkpointSeq(): number {
    return this.#checkpointSeq;
  }
  get running(): [number, number] {
    return [this.#running[0], this.#running[1]];
  }
  get bigEndianChecksums(): boolean {
    return this.#bigEndian;
  }
  /** Checkpoint sequence a new generation should carry: the last one on disk + 1, or 0. */
  get nextCheckpointSeq(): number {
    return this.#hadGeneration ? (this.#checkpointSeq + 1) >>> 0 : 0;
  }

  /**
   * How far the generation with `salts` is known to be on stable storage: a sync of this file
   * (an append with durability 'data'/'full', or a checkpoint's WAL sync, noteDurable) covered
   * frames 1..n. A sync covers every byte written to the file before it, other connections'
   * frames included, so the n of the last such sync is a safe bound; 0 for any other
   * generation (frames recovery found, or another connection appended since, may still be in
   * the page cache only). The checkpoint skips its WAL sync when its range is below it.
   */
  durableThrough(salts: readonly [number, number]): number {
    return hasSalts(this.#durable, salts) ? this.#durable.frame : 0;
  }

  /** A sync of this file (through any descriptor) finished after frames 1..frame of `salts` were written. */
  noteDurable(frame: number, salts: readonly [number, number]): void {
    if (this.durableThrough(salts) < frame) this.#durable = { frame, salt1: salts[0], salt2: salts[1] };
  }

  /** True once the WAL has a usable header (after recover() found one, or create/restart). */
  get hasHeader(): boolean {
    return this.#header !== null;
  }

  /** Recovery scan exactly as SQLite does it (reference/sqlite-wal.md sections 4 and 9). */
  async recover(): Promise<WalRecovery> {
    const head = new Uint8Array(WAL_HEADER_SIZE);
    const got = await this.#file.read(head, 0, WAL_HEADER_SIZE, 0);
    const fileSize = await this.#file.size();
    const decoded = this.#decodeForRecovery(head, got, fileSize);
    if (decoded === null) return this.#adoptEmpty(fileSize, got < WAL_HEADER_SIZE ? 'empty' : decodeWalHeader(head).status);
    return this.#adoptScan(head, await nativeFrames.scan(nativeHandleOf(this.#file), decoded));
  }

  recoverSync(): WalRecovery {
    const head = new Uint8Array(WAL_HEADER_SIZE);
    const got = this.#file.readSync(head, 0, WAL_HEADER_SIZE, 0);
    const fileSize = this.#file.sizeSync();
    const decoded = this.#decodeForRecovery(head, got, fileSize);
    if (decoded === null) return this.#adoptEmpty(fileSize, got < WAL_HEADER_SIZE ? 'empty' : decodeWalHeader(head).status);
    return this.#adoptScan(head, nativeFrames.scanSync(nativeHandleOf(this.#file), decoded));
  }

  /**
   * What a recovery would find if the WAL's header were `head` (a usable header, not the one on
   * disk): the frames that continue its salts and checksum chain. Reads only; adopts nothing.
   * FEC uses it to check a header copy against the frames before restoring it (fec/repair.ts).
   */
  scanUnderHeaderSync(head: Uint8Array): { mxFrame: number; lastValidFrame: number; commits: number } {
    const { status, header } = decodeWalHeader(head);
    if (status !== 'ok') throw new RangeError(`scanUnderHeaderSync takes a usable WAL header, not one that is ${status}`);
    const h = header!;
    const r = nativeFrames.scanSync(nativeHandleOf(this.#file), { pageSize: h.pageSize, bigEndian: bigEndianChecksum(h.magic), salt1: h.salt1, salt2: h.salt2, s0: h.checksum[0], s1: h.checksum[1] });
    return { mxFrame: r.mxFrame, lastValidFrame: r.lastValidFrame, commits: r.commits };
  }

  /** The chain to scan with, or null when the WAL counts as empty; throws CANTOPEN. */
  #decodeForRecovery(head: Uint8Array, got: number, fileSize: number): NativeChain | null {
    // SQLite requires more than the header: a 32-byte WAL has no frames either way.
    if (got < WAL_HEADER_SIZE || fileSize <= WAL_HEADER_SIZE) return null;
    const { status, header } = decodeWalHeader(head);
    if (status === 'unknown-version') {
      throw walnutError('WALNUT_CANTOPEN', `unsupported WAL format version ${header!.version} (expected 3007000)`, {
        path: this.path,
        reason: 'UnknownWalVersion',
      });
    }
    if (status !== 'ok') return null;
    const h = header!;
    return { pageSize: h.pageSize, bigEndian: bigEndianChecksum(h.magic), salt1: h.salt1, salt2: h.salt2, s0: h.checksum[0], s1: h.checksum[1] };
  }

  #adoptEmpty(fileSize: number, status: WalRecovery['headerStatus']): WalRecovery {
    this.#header = null;
    this.#mxFrame = 0;
    this.#dbSize = 0;
    this.#fileSize = fileSize;
    this.#slot = null;
    this.#running = [0, 0];
    return {
      headerStatus: status === 'ok' ? 'empty' : status,
      pageSize: 0,
      bigEndianChecksums: false,
      salts: [0, 0],
      checkpointSeq: 0,
      mxFrame: 0,
      dbSize: 0,
      commits: 0,
      running: [0, 0],
      lastValidFrame: 0,
      pgnos: new Uint32Array(0),
      fileSize,
      invalidTailBytes: fileSize,
    };
  }

  #adoptScan(head: Uint8Array, r: NativeScanResult): WalRecovery {
    const h = decodeWalHeader(head).header!;
    this.#header = head;
    this.#hadGeneration = true;
    this.#pageSize = h.pageSize;
    this.#bigEndian = bigEndianChecksum(h.magic);
    this.#salts = [h.salt1, h.salt2];
    this.#checkpointSeq = h.checkpointSeq;
    this.#mxFrame = r.mxFrame;
    this.#dbSize = r.dbSize;
    this.#running = r.mxFrame > 0 ? r.mxChecksum : h.checksum;
    this.#fileSize = r.fileSize;
    this.#slot = this.#readSlotSync(r.mxFrame + 1);
    const validEnd = frameOffset(r.mxFrame + 1, h.pageSize);
    return {
      headerStatus: 'ok',
      pageSize: h.pageSize,
      bigEndianChecksums: this.#bigEndian,
      salts: [h.salt1, h.salt2],
      checkpointSeq: h.checkpointSeq,
      mxFrame: r.mxFrame,
      dbSize: r.dbSize,
      commits: r.commits,
      running: this.running,
      lastValidFrame: r.lastValidFrame,
      pgnos: r.pgnos,
      fileSize: r.fileSize,
      invalidTailBytes: Math.max(0, r.fileSize - validEnd),
    };
  }

  /**
   * True when the index's state is the one this WalFile's last append (or adoptIndex) left: this
   * WalFile wrote the last commit the index names, so its window is current and adoptIndex would
   * read nothing. (The append re-checks the header bytes and the size natively before writing,
   * so a change made without the lock still cannot be written over; with `unchanged`, its
   * header and size.) Synchronous: a lone commit's append skips adoptIndex's promise with it.
   */
  windowIsCurrent(state: { mxFrame: number; running: [number, number]; salts: [number, number] }): boolean {
    return this.windowIsAt(state.mxFrame, state.running, state.salts);
  }

  /** windowIsCurrent with the state's parts (a wal-index header's mxFrame, frameChecksum, salts). */
  windowIsAt(mxFrame: number, running: readonly [number, number], salts: readonly [number, number]): boolean {
    return (
      this.#header !== null &&
      mxFrame > 0 &&
      mxFrame === this.#mxFrame &&
      sameSalts(salts, this.#salts) &&
      running[0] === this.#running[0] &&
      running[1] === this.#running[1]
    );
  }

  /**
   * The WAL header on disk is damaged (SQLite and walnut's recovery read the WAL as empty) while
   * the live wal-index, valid, counts committed frames (a running sqlite3 goes on from its index
   * and never reads the header again): the header is restored from what the index knows (salts,
   * page size, byte order) and frame 1 (format/wal-header.ts walHeaderBeforeFrame1) when every
   * commit the index counts continues its chain, written and synced, and returned; else null
   * (the caller refuses as before). Without it every commit of a store beside that sqlite3 failed
   * WALNUT_CORRUPT, and reopening did not help (the index is valid: no recovery runs). The caller
   * holds WRITE: SQLite writes the WAL header only as a writer, and reads it only in recovery.
   */
  #headerFromIndex(state: { mxFrame: number; pageSize: number; salts: [number, number]; bigEndian: boolean }): Uint8Array | null {
    const frame = new Uint8Array(FRAME_HEADER_SIZE + state.pageSize);
    if (!isValidPageSize(state.pageSize) || this.#file.readSync(frame, 0, frame.length, WAL_HEADER_SIZE) !== frame.length) return null;
    const header = walHeaderBeforeFrame1(frame, { pageSize: state.pageSize, salts: state.salts, bigEndian: state.bigEndian });
    if (header === null || this.scanUnderHeaderSync(header).mxFrame < state.mxFrame) return null;
    this.#file.writeSync(header, 0, WAL_HEADER_SIZE, 0);
    this.#file.fdatasyncSync();
    return header;
  }

  /**
   * Takes the append window from the wal-index (another connection may have appended since
   * this WalFile last looked): mxFrame, the running checksum and db size come from the
   * index header; the WAL header bytes and size are re-read from disk. When the index says
   * the WAL is empty, or the header on disk is not the generation the index describes, the
   * window has no header and the next writer must write a fresh one. True when the window was
   * already current (this WalFile wrote the last commit the index names: nothing was read).
   */
  async adoptIndex(state: { mxFrame: number; nPage: number; running: [number, number]; salts: [number, number]; pageSize?: number; bigEndian?: boolean }, force = false): Promise<boolean> {
    if (!force && this.windowIsCurrent(state)) return true;
    const head = new Uint8Array(WAL_HEADER_SIZE);
    const got = await this.#file.read(head, 0, WAL_HEADER_SIZE, 0);
    this.#fileSize = await this.#file.size();
    let decoded = got === WAL_HEADER_SIZE ? decodeWalHeader(head) : null;
    if (decoded !== null && state.mxFrame > 0 && state.pageSize !== undefined && state.bigEndian !== undefined && (decoded.status === 'bad-magic' || decoded.status === 'bad-page-size' || decoded.status === 'bad-checksum')) {
      const restored = this.#headerFromIndex({ mxFrame: state.mxFrame, pageSize: state.pageSize, salts: state.salts, bigEndian: state.bigEndian });
      if (restored !== null) {
        head.set(restored);
        decoded = decodeWalHeader(head);
      }
    }
    const header = decoded?.status === 'ok' ? decoded.header : null;
    if (header !== null) {
      // remember the generation on disk, so that a new header continues from its salts
      this.#pageSize = header.pageSize;
      this.#bigEndian = bigEndianChecksum(header.magic);
      this.#salts = [header.salt1, header.salt2];
      this.#checkpointSeq = header.checkpointSeq;
      this.#hadGeneration = true;
    }
    this.#header = null;
    this.#mxFrame = 0;
    this.#dbSize = 0;
    if (state.mxFrame === 0) return false; // the next writer writes a fresh header
    if (header === null || !hasSalts(header, state.salts)) {
      throw walnutError('WALNUT_CORRUPT', 'the wal-index describes frames of a WAL generation that is not on disk', { path: this.path });
    }
    await this.#requireLastFrame(state, header.pageSize);
    this.#header = head;
    this.#mxFrame = state.mxFrame;
    this.#dbSize = state.nPage;
    this.#running = [state.running[0], state.running[1]];
    this.#slot = this.#readSlotSync(state.mxFrame + 1);
    return false;
  }

  /**
   * Writes a fresh header: a new generation with mxFrame 0. Without `salts`, salt-1 continues
   * from the previous generation + 1 (SQLite's restart rule) when there is one, and is random
   * otherwise; salt-2 is always random. The header is synced unless durability is 'none'.
   */
  async writeHeader(options: { pageSize: number; checkpointSeq: number; salts?: [number, number]; durability?: Durability }): Promise<void> {
    const { bytes, chain } = this.#newHeader(options);
    await this.#file.writev([bytes], 0, options.durability ?? 'data');
    this.#adoptHeader(bytes, chain);
  }

  writeHeaderSync(options: { pageSize: number; checkpointSeq: number; salts?: [number, number]; durability?: Durability }): void {
    const { bytes, chain } = this.#newHeader(options);
    this.#file.writevSync([bytes], 0, options.durability ?? 'data');
    this.#adoptHeader(bytes, chain);
  }

  /**
   * A new generation and its first transactions in one I/O operation (a WAL restart or the first
   * commit into an empty WAL): the fresh header, chosen as writeHeader chooses it, is written and
   * synced per `options.durability` first, then the frames from frame 1 are written and synced per
   * `durability` (native walAppend's fresh mode: one I/O-thread round trip, not two). The header
   * is never left to the frames' sync: a frame on disk under the old header cuts the old
   * generation short and recovery reads its stale prefix (bench/probes/restart-fold-hazard.py).
   * No window is checked: the header is replaced and frames from frame 1 leave no hole.
   * A failure at the header (error stage 'header'; no frame was written) leaves this WalFile
   * without a header, as what offset 0 holds is then unknown (the next append re-reads it); a
   * failure at the frames leaves it on the new generation with mxFrame 0, its first slot
   * invalidated as append's failures do.
   */
  async appendAfterHeader(transactions: readonly WalTransaction[], durability: Durability, options: { pageSize: number; checkpointSeq: number; durability?: Durability }): Promise<AppendResult> {
    const { bytes, chain } = this.#newHeader(options);
    const headerDurability = checkDurability(options.durability ?? 'data');
    const before = { header: this.#header, mxFrame: this.#mxFrame, dbSize: this.#dbSize, running: this.#running, slot: this.#slot };
    this.#adoptHeader(bytes, chain);
    let plan: AppendPlan;
    try {
      plan = this.#planAppend(transactions, durability, true);
    } catch (e) {
      // refused before anything was written: the window is as it was
      this.#header = before.header;
      this.#mxFrame = before.mxFrame;
      this.#dbSize = before.dbSize;
      this.#running = before.running;
      this.#slot = before.slot;
      throw e;
    }
    try {
      await nativeFrames.append(nativeHandleOf(this.#file), plan.chain, plan.offset, plan.nativePgnos, plan.commitSizes, plan.pages, APPEND_DURABILITY[durability], undefined, plan.size, undefined, plan.growTo, bytes, APPEND_DURABILITY[headerDurability]);
    } catch (e) {
      if ((e as { stage?: string }).stage === 'header') {
        delete (e as { stage?: string }).stage;
        this.#header = null; // written in part, or unsynced: what offset 0 holds is unknown
        throw e;
      }
      if (!takeNothingWritten(e) && !(await this.#invalidate(plan.offset, plan.frames))) markOutcomeUnknown(e);
      this.#fileSize = await this.#file.size().catch(() => this.#fileSize);
      throw e;
    }
    return this.#adoptAppend(plan);
  }

  /**
   * This connection restarted the WAL itself (wal-index #restart, WRITE held) over the generation
   * this WalFile wrote or adopted last (its window named the live header's last frame): the header
   * on disk is this WalFile's own, so nothing is re-read (adoptIndex would read the header and the
   * file's size). The window is emptied, as adoptIndex leaves it for an index with mxFrame 0: the
   * next append writes the new generation's header (appendAfterHeader, salt-1 + 1 from this one).
   */
  adoptOwnRestart(): void {
    this.#requireHeader('adopt its own restart');
    this.#header = null;
    this.#mxFrame = 0;
    this.#dbSize = 0;
    this.#slot = null;
  }

  /** Restart after a complete checkpoint: checkpoint sequence + 1, new salts, frames from 1. */
  restart(durability: Durability = 'data'): Promise<void> {
    this.#requireHeader('restart');
    return this.writeHeader({ pageSize: this.#pageSize, checkpointSeq: (this.#checkpointSeq + 1) >>> 0, durability });
  }

  #newHeader(options: { pageSize: number; checkpointSeq: number; salts?: [number, number] }) {
    if (!isValidPageSize(options.pageSize)) {
      throw walnutError('WALNUT_INVALID_ARGUMENT', `page size ${options.pageSize} is not a power of two in 512..65536`, { reason: 'pageSize' });
    }
    const fresh = randomU32Pair();
    const salts: [number, number] = options.salts ?? (this.#hadGeneration ? [(this.#salts[0] + 1) >>> 0, fresh[1]] : fresh);
    const magic = this.#hadGeneration && options.pageSize === this.#pageSize ? (this.#bigEndian ? 0x377f0683 : 0x377f0682) : hostMagic();
    const { bytes, checksum } = encodeWalHeader({ pageSize: options.pageSize, checkpointSeq: options.checkpointSeq, salt1: salts[0], salt2: salts[1], magic });
    return { bytes, chain: { pageSize: options.pageSize, salts, checkpointSeq: options.checkpointSeq, checksum, bigEndian: bigEndianChecksum(magic) } };
  }

  #adoptHeader(bytes: Uint8Array, c: { pageSize: number; salts: [number, number]; checkpointSeq: number; checksum: [number, number]; bigEndian: boolean }) {
    this.#header = bytes;
    this.#hadGeneration = true;
    this.#pageSize = c.pageSize;
    this.#salts = c.salts;
    this.#checkpointSeq = c.checkpointSeq;
    this.#bigEndian = c.bigEndian;
    this.#running = c.checksum;
    this.#mxFrame = 0;
    this.#dbSize = 0;
    this.#fileSize = Math.max(this.#fileSize, WAL_HEADER_SIZE);
    this.#slot = null; // new salts: nothing in the file is of this generation
    this.#growthRefused = false; // (a restart reuses the file's space: growth is tried again once that is used)
  }

  #requireHeader(what: string): void {
    if (this.#header === null) {
      throw walnutError('WALNUT_INVALID_ARGUMENT', `cannot ${what}: the WAL has no valid header (recover() or writeHeader() first)`, { path: this.path });
    }
  }

  /**
   * After a failed write or sync, some of the batch's frames may be on disk, even whole
   * commits: they are invalidated (invalidateFrom), so that recovery never resurrects commits
   * whose callers were told they failed, and the slot never looks live.
   *
   * Appends whole transactions after mxFrame in one pwritev (plus fdatasync/fsync per
   * `durability`). Each transaction's last frame carries its dbSize (the commit mark). With
   * `onThisThread` the write and sync run on the calling thread (appendSync). `unchanged`: the
   * caller vouches that nobody changed the WAL since this WalFile's last append or adoptIndex
   * (see the file comment): the native re-check of the window does not read the next slot.
   */
  async append(transactions: readonly WalTransaction[], durability: Durability = 'none', onThisThread = false, unchanged = false): Promise<AppendResult> {
    if (onThisThread) return this.appendSync(transactions, durability, unchanged); // see WalFile.lanesIdle
    const plan = this.#planAppend(transactions, durability, unchanged);
    try {
      await nativeFrames.append(nativeHandleOf(this.#file), plan.chain, plan.offset, plan.nativePgnos, plan.commitSizes, plan.pages, APPEND_DURABILITY[durability], plan.header, plan.size, plan.slot, plan.growTo);
    } catch (e) {
      if (isStaleWindow(e)) throw e;
      if (!takeNothingWritten(e) && !(await this.#invalidate(plan.offset, plan.frames))) markOutcomeUnknown(e);
      this.#fileSize = await this.#file.size().catch(() => this.#fileSize);
      throw e;
    }
    return this.#adoptAppend(plan);
  }

  /**
   * Makes frames `first`..`last` invisible to recovery, durably: the header of each of them the
   * file holds is zeroed (page number 0 ends the chain there for SQLite's recovery and walnut's),
   * the first one's whenever the file holds it, last to first (#headersToZero), then the file is synced. For frames written but never published,
   * whose callers are told they failed (a write or sync that failed, a publish that failed after
   * the write): without it a reopen, or a power loss after an unsynced zeroing, could bring them
   * back as committed. Every frame's header, not the first one's only: the next append starts
   * at `first`, and when it is the failed batch's first commits again, byte for byte (a caller
   * retrying its transaction), its frames have the same checksums, so the failed batch's later
   * frames, past the append's end, continued a valid chain and recovery read their commits
   * (test/interop/failed-batch-tail.test.ts). Headers that read as zeros are not written: past
   * what the failed write put in the file there may be a hole (a WAL extended without
   * allocating: native/frames.cc), and zeros written there would need space the full disk that
   * failed the write does not have (test/hostile/full-disk-wal-growth); nor is any past the
   * file's end (nothing of the batch is there: true at once, no sync). False when a read,
   * write or the sync failed: whether those frames survive is then unknown. (The next append's
   * tail zeros, the file comment, also end the chain after it: this one is for a reopen before.)
   */
  invalidateFrom(first: number, last: number): Promise<boolean> {
    return this.#invalidate(frameOffset(first, this.#pageSize), last - first + 1);
  }

  async #invalidate(offset: number, frames: number): Promise<boolean> {
    try {
      const bytes = new Uint8Array(this.#invalidRange(offset, frames, await this.#file.size()));
      if (bytes.length > 0) await this.#file.read(bytes, 0, bytes.length, offset);
      const headers = this.#headersToZero(bytes, offset);
      for (let i = 0; i < headers.length; i++) await this.#file.writevLent([ZERO_FRAME_HEADER.subarray(0, headers[i]!.length)], headers[i]!.at, i === headers.length - 1 ? 'data' : 'none');
      return true;
    } catch {
      return false;
    }
  }

  /** invalidateFrom on the calling thread (after an append that ran there: appendSync). */
  invalidateFromSync(first: number, last: number): boolean {
    return this.#invalidateSync(frameOffset(first, this.#pageSize), last - first + 1);
  }

  #invalidateSync(offset: number, frames: number): boolean {
    try {
      const bytes = new Uint8Array(this.#invalidRange(offset, frames, this.#file.sizeSync()));
      if (bytes.length > 0) this.#file.readSync(bytes, 0, bytes.length, offset);
      const headers = this.#headersToZero(bytes, offset);
      for (let i = 0; i < headers.length; i++) this.#file.writevSync([ZERO_FRAME_HEADER.subarray(0, headers[i]!.length)], headers[i]!.at, i === headers.length - 1 ? 'data' : 'none');
      return true;
    } catch {
      return false;
    }
  }

  /** The bytes of `frames` frames from `offset` the file of `size` bytes holds (#invalidate reads them). */
  #invalidRange(offset: number, frames: number, size: number): number {
    return Math.max(0, Math.min(frames * (FRAME_HEADER_SIZE + this.#pageSize), size - offset));
  }

  /**
   * The frame headers #invalidate zeroes, `bytes` read from `offset`: the first one (when the
   * file holds it whole), and every other that is not zeros, in the order written: the last frame's first, the first frame's
   * last. An invalidation cut short (a zero's write that fails: OutcomeUnknown; the process
   * killed) so leaves a prefix of the batch and zeros after it, never zeros before frames it
   * left: past a zeroed first header, the batch's later frames continued a valid chain that a
   * reopen did not read (the caller reading to find out saw none of the batch) but a byte-for-byte
   * retry of the first commit brought back after a crash (test/interop/failed-batch-tail.test.ts).
   */
  #headersToZero(bytes: Uint8Array, offset: number): HeaderZeros[] {
    const live = liveFrameHeaders(bytes, offset, FRAME_HEADER_SIZE + this.#pageSize);
    // The first one's even when it reads as zeros (they may not be on disk yet), but only when the
    // file holds it whole: none past the file's end, where no frame is (zeros written there needed
    // space a nearly full disk lacked: ENOSPC, and the batch reported OutcomeUnknown although
    // nothing of it could come back).
    const first = bytes.length >= FRAME_HEADER_SIZE && live[0]?.at !== offset ? [{ at: offset, length: FRAME_HEADER_SIZE }] : [];
    return [...first, ...live].reverse();
  }

  /**
   * True when an append may run on the calling thread (appendSync) without overtaking or
   * contending with other I/O: neither of the environment's I/O lanes has an operation queued
   * or running (their FIFO order is what keeps a queued read of a frame before a later write
   * over it).
   */
  static lanesIdle(): boolean {
    return nativeFrames.lanesIdle();
  }

  appendSync(transactions: readonly WalTransaction[], durability: Durability = 'none', unchanged = false): AppendResult {
    const plan = this.#planAppend(transactions, durability, unchanged);
    try {
      nativeFrames.appendSync(nativeHandleOf(this.#file), plan.chain, plan.offset, plan.nativePgnos, plan.commitSizes, plan.pages, APPEND_DURABILITY[durability], plan.header, plan.size, plan.slot, plan.growTo);
    } catch (e) {
      if (isStaleWindow(e)) throw e;
      if (!takeNothingWritten(e) && !this.#invalidateSync(plan.offset, plan.frames)) markOutcomeUnknown(e);
      try {
        this.#fileSize = this.#file.sizeSync();
      } catch {
        // keep the old size; the next append then reports a stale window and the caller recovers
      }
      throw e;
    }
    return this.#adoptAppend(plan);
  }

  /**
   * appendSync, then the wal-index entries and header in the same native call (WRITE held):
   * `region`.commitInline (native/shm.cc) appends only when the live -shm header is `expect`
   * (the one the caller published last: nobody changed the WAL since, so the window is current
   * and its slot needs no read), and publishes `publish` with its checksums filled in. 0 or 2
   * (commitInline's answers) when it wrote nothing. A failed write or sync invalidates the frames
   * as appendSync does; a failed index append or publish after them (-shm truncated) too, after
   * this WalFile took them (its frame counter is past the published header, as after appendSync
   * + a failed publish): the caller's error says the batch's frames went unpublished.
   */
  appendInline(transactions: readonly WalTransaction[], durability: Durability, region: NativeShmRegion, expect: Uint8Array, publish: Uint8Array): AppendResult | 0 | 2 {
    const plan = this.#planAppend(transactions, durability, true);
    let done: 0 | 1 | 2;
    try {
      done = region.commitInline(nativeHandleOf(this.#file), plan.chain, plan.offset, plan.nativePgnos, plan.commitSizes, plan.pages, APPEND_DURABILITY[durability], plan.header, plan.size, undefined, plan.growTo, expect, publish);
    } catch (e) {
      const stage = (e as { stage?: string }).stage;
      if (stage === undefined) throw e; // refused before anything was written
      delete (e as { stage?: string }).stage;
      if (stage === 'publish') this.#adoptAppend(plan);
      if (!takeNothingWritten(e) && !this.#invalidateSync(plan.offset, plan.frames)) markOutcomeUnknown(e);
      if (stage === 'write') {
        try {
          this.#fileSize = this.#file.sizeSync();
        } catch {
          // as appendSync's
        }
      }
      throw e;
    }
    return done === 1 ? this.#adoptAppend(plan) : done;
  }

  #planAppend(transactions: readonly WalTransaction[], durability: Durability, unchanged: boolean): AppendPlan {
    this.#requireHeader('append');
    checkDurability(durability);
    let frames = 0;
    for (const t of transactions) {
      if (t.pages.length === 0) throw walnutError('WALNUT_INVALID_ARGUMENT', 'a transaction needs at least one page', { reason: 'pages' });
      if (!Number.isInteger(t.dbSize) || t.dbSize < 1 || t.dbSize > MAX_FRAME) {
        throw walnutError('WALNUT_INVALID_ARGUMENT', `dbSize ${t.dbSize} must be an integer in 1..2^32-1`, { reason: 'dbSize' });
      }
      frames += t.pages.length;
    }
    if (frames === 0) throw walnutError('WALNUT_INVALID_ARGUMENT', 'nothing to append', { reason: 'pages' });
    if (this.#mxFrame + frames > MAX_FRAME) {
      throw walnutError('WALNUT_FULL', `the WAL frame counter would pass 2^32-1 (${this.#mxFrame} + ${frames}); checkpoint first`, { path: this.path });
    }
    const pgnos = new Uint32Array(frames);
    const commitSizes = this.#nativeCommitSizes.take(frames).fill(0);
    const pages: Uint8Array[] = new Array(frames);
    const commitFrames: number[] = [];
    let i = 0;
    for (const t of transactions) {
      for (const p of t.pages) {
        if (!Number.isInteger(p.pgno) || p.pgno < 1 || p.pgno > MAX_FRAME) {
          throw walnutError('WALNUT_INVALID_ARGUMENT', `page number ${p.pgno} must be an integer in 1..2^32-1`, { reason: 'pgno' });
        }
        if (!(p.data instanceof Uint8Array) || p.data.length !== this.#pageSize) {
          throw walnutError('WALNUT_INVALID_ARGUMENT', `page ${p.pgno} must be a Uint8Array of exactly ${this.#pageSize} bytes`, { reason: 'pageSize' });
        }
        pgnos[i] = p.pgno;
        pages[i] = p.data;
        i++;
      }
      commitSizes[i - 1] = t.dbSize;
      commitFrames.push(this.#mxFrame + i);
    }
    const nativePgnos = this.#nativePgnos.copyOf(pgnos);
    const chain = this.#chainWords;
    chain[0] = this.#pageSize;
    chain[1] = this.#bigEndian ? 1 : 0;
    chain[2] = this.#salts[0];
    chain[3] = this.#salts[1];
    chain[4] = this.#running[0];
    chain[5] = this.#running[1];
    const offset = frameOffset(this.#mxFrame + 1, this.#pageSize);
    const end = offset + frames * (this.#pageSize + FRAME_HEADER_SIZE);
    const growTo = this.#preallocate && !this.#growthRefused && end > this.#fileSize ? end + GROWTH_CHUNK : 0;
    return { chain, offset, pgnos, nativePgnos, commitSizes, pages, commitFrames, frames, dbSize: transactions[transactions.length - 1]!.dbSize, header: this.#header!, size: this.#fileSize, slot: unchanged ? undefined : this.#slot, growTo, durability };
  }

  /**
   * Cuts the file back to `size` bytes (never below the end of frame mxFrame): SQLite's
   * journal_size_limit after a WAL restart, so a WAL that once grew large does not stay large.
   */
  async limitSize(size: number): Promise<void> {
    await this.zeroingSettled(); // it writes at the end of the file: never cut under it
    const floor = this.#header === null ? 0 : frameOffset(this.#mxFrame + 1, this.#pageSize);
    const target = Math.max(size, floor);
    if (this.#fileSize <= target) return;
    await this.#file.truncate(target);
    this.#fileSize = target;
  }

  /** Turns zero-filled growth ahead of appends (in the append and zeroAhead) on or off (on by default). */
  set preallocate(on: boolean) {
    this.#preallocate = on;
  }

  /** Turns the zero-ahead (zeroAhead) on or off (off by default: the store's `zeroAhead` option). */
  set zeroAheadOn(on: boolean) {
    this.#zeroAheadOn = on;
  }

  /**
   * Starts zeroing ahead on the background lane when the frames reach past ZERO_AHEAD_FROM and
   * less than ZERO_AHEAD_LOW bytes of the file are left after them (see ZERO_AHEAD): returns its promise (it never rejects: a
   * failed zeroing only leaves appends to grow the file themselves), or null when none is
   * needed or one is already running. The caller
   * must hold SQLite's WRITE lock until the promise settles (no other process may append or
   * truncate meanwhile: wal_zero_ahead.h); appends of this WalFile may run meanwhile.
   * `through` gives another descriptor of this file (its own open file description): the zeros
   * are written and synced through it, so that a write-back error they meet is still reported to
   * this WalFile's next sync (which fails the commits it covers) instead of being consumed by
   * the zeroing.
   */
  zeroAhead(through: () => Promise<WalnutFile>): Promise<void> | null {
    if (!this.#zeroAheadOn || this.#zeroing !== null || !this.#preallocate || this.#growthRefused || this.#header === null) return null;
    const end = frameOffset(this.#mxFrame + 1, this.#pageSize);
    const target = end + ZERO_AHEAD;
    if (end < ZERO_AHEAD_FROM || this.#fileSize - end >= ZERO_AHEAD_LOW) return null;
    const zeroing = through().then((f) => nativeFrames.zeroAhead(nativeHandleOf(this.#file), nativeHandleOf(f), end, target)).then(
      (size) => {
        this.#fileSize = Math.max(this.#fileSize, size);
      },
      (e: { errno?: number }) => {
        // a file-size limit: every later zeroing would fail at it again (#growthRefused)
        if (e?.errno === EFBIG) this.#growthRefused = true;
      },
    ).finally(() => {
      this.#zeroing = null;
    });
    this.#zeroing = zeroing;
    return zeroing;
  }

  /** Settles once no zero-ahead runs (at once when none does). */
  zeroingSettled(): Promise<void> {
    return this.#zeroing ?? Promise.resolve();
  }

  #adoptAppend(plan: AppendPlan): AppendResult {
    const firstFrame = this.#mxFrame + 1;
    this.#mxFrame += plan.frames;
    this.#dbSize = plan.dbSize;
    this.#running = [plan.chain[4]!, plan.chain[5]!];
    // the size the native append read back or wrote, not the one it was asked for: under a
    // file-size limit the file ends short of growTo, and a window expecting growTo was stale at
    // every later append (StaleAppendWindow: re-read and retry, each time). (Never below a
    // zero-ahead's size, which may have landed after the append read the file's.)
    const size = plan.chain[6]! + plan.chain[7]! * 2 ** 32;
    this.#fileSize = Math.max(this.#fileSize, size);
    if (plan.growTo > size) this.#growthRefused = true;
    this.#slot = null; // after our frames: zeros we wrote, or the end of the file
    if (plan.durability !== 'none') this.noteDurable(this.#mxFrame, this.#salts);
    return { firstFrame, lastFrame: this.#mxFrame, commitFrames: plan.commitFrames, pgnos: plan.pgnos };
  }

  /**
   * The frame the wal-index header calls the last one must be on disk as its header says: of
   * this generation, a commit of `nPage` pages, with the header's running checksum (a frame
   * header stores the checksum through itself). One 24-byte read. Otherwise the header was
   * forged or damaged by another user of the -shm: appending after it could leave a hole of
   * empty frames that breaks the chain, and recovery would drop every commit written past it.
   */
  async #requireLastFrame(state: { mxFrame: number; nPage: number; running: [number, number]; salts: [number, number] }, pageSize: number): Promise<void> {
    const h = new Uint8Array(FRAME_HEADER_SIZE);
    const at = frameOffset(state.mxFrame, pageSize);
    const got = at + FRAME_HEADER_SIZE <= this.#fileSize ? await this.#file.read(h, 0, FRAME_HEADER_SIZE, at) : 0;
    const f = decodeFrameHeader(h);
    if (got === FRAME_HEADER_SIZE && f.commitSize !== 0 && f.commitSize === state.nPage && hasSalts(f, state.salts) && f.checksum[0] === state.running[0] && f.checksum[1] === state.running[1]) return;
    throw walnutError('WALNUT_CORRUPT', `the wal-index header's last frame ${state.mxFrame} is not a commit of that WAL generation with the header's checksum (a damaged or forged -shm header); reopen the database to rebuild the index`, { path: this.path, reason: 'ShmHeaderNotWal' });
  }

  /** The frame header in slot `n` if it holds a frame of this generation (a frame recovery dropped). */
  #readSlotSync(n: number): Uint8Array | null {
    const at = frameOffset(n, this.#pageSize);
    if (at + FRAME_HEADER_SIZE > this.#fileSize) return null;
    const h = new Uint8Array(FRAME_HEADER_SIZE);
    if (this.#file.readSync(h, 0, FRAME_HEADER_SIZE, at) !== FRAME_HEADER_SIZE) return null;
    const f = decodeFrameHeader(h);
    return f.pgno !== 0 && hasSalts(f, this.#salts) ? h : null;
  }

  /** Test hook: pretend the WAL holds `n` frames (for the frame-counter limit). */
  TEST_setMxFrame(n: number): void {
    this.#mxFrame = n;
  }

  /**
   * Reads the page image of frame `n` into `out`. `pageSize` defaults to this WAL's; callers
   * that know the database's page size pass it (a WAL recovered as empty has none yet).
   * `lent`: `out` is the caller's own until this settles (WalnutFile.readLent: no copy).
   */
  async readFramePage(n: number, out: Uint8Array, pageSize = this.#pageSize, lent = false): Promise<void> {
    if (!isValidPageSize(pageSize)) throw walnutError('WALNUT_INVALID_ARGUMENT', 'the WAL page size is not known yet', { path: this.path });
    const at = frameOffset(n, pageSize) + FRAME_HEADER_SIZE;
    const got = await (lent ? this.#file.readLent(out, 0, pageSize, at) : this.#file.read(out, 0, pageSize, at));
    if (got !== pageSize) throw walnutError('WALNUT_CORRUPT', `frame ${n} is beyond the end of the WAL`, { path: this.path });
  }

  readFramePageSync(n: number, out: Uint8Array, pageSize = this.#pageSize): void {
    if (!isValidPageSize(pageSize)) throw walnutError('WALNUT_INVALID_ARGUMENT', 'the WAL page size is not known yet', { path: this.path });
    const got = this.#file.readSync(out, 0, pageSize, frameOffset(n, pageSize) + FRAME_HEADER_SIZE);
    if (got !== pageSize) throw walnutError('WALNUT_CORRUPT', `frame ${n} is beyond the end of the WAL`, { path: this.path });
  }

  async close(): Promise<void> {
    await this.zeroingSettled();
    return this.#file.close();
  }

  closeSync(): void {
    this.#file.closeSync();
  }
}
