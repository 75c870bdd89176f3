/**
 * wal-index/wal-index.ts — WalIndex: one connection to a WAL-mode database, following SQLite's
 * wal-index and lock protocol (reference/sqlite-wal.md sections 6-11; DESIGN.md section 6).
 *
 * Files and locks (all OFD locks on this connection's own descriptors):
 *  - `<db>` (real path): SHARED (PENDING read-locked, the 510-byte SHARED range read-locked,
 *    PENDING released) from open to close, so a closing sqlite3 never concludes it is the last
 *    user and deletes the -wal/-shm under us. lockingMode 'exclusive' takes EXCLUSIVE instead
 *    and keeps the index in heap memory (no -shm), like SQLite's locking_mode=EXCLUSIVE.
 *  - `<db>-shm`: DMS byte 128 read-locked while attached (the first opener truncates a stale
 *    file while it holds it exclusively); WRITE (120) by the writer, CKPT (121) by
 *    checkpointers, RECOVER (122) during recovery, READ(i) (123 + i) by readers. With a write
 *    lease (holdWriteLease(), walnut/sql) WRITE stays locked until the last holdWriteLease()
 *    is given back (releaseWriteLease()) or close.
 *    Waiting for WRITE held by another connection (#lockShm): after the first tries (turns of the
 *    event loop), each of the busy handler's sleeps (1..100 ms, RETRY_DELAYS_MS) is a wait blocked
 *    in the kernel for WRITE of that length (F_OFD_SETLKW on the lock lane, #waitForWrite), which
 *    the kernel ends as WRITE is let go. That is the fairness rule between walnut writers: a
 *    committer that keeps WRITE across batches lets it go at least every few milliseconds
 *    (commit/group-committer.ts, WRITE_RUN_MS), and a walnut connection waiting for it (another
 *    process, a store of its own beside a commit lane) takes it in that gap, within its busy
 *    timeout; once it committed, that committer shares WRITE after every batch. Its sleeps landed
 *    in such a gap only now and then: beside a commit lane committing at full speed, a writer's
 *    first commit waited 1.6-3.3 s or failed WALNUT_BUSY (busy timeout 2 s) in 4 of 6 runs, now
 *    1-24 ms (test/hostile/writer-beside-full-lane). An
 *    uncontended WRITE costs nothing more (the first try takes it), and `giveUp` is still asked
 *    before each wait, as often as before each sleep. SQLite's writers poll (sleeps): beside
 *    walnut's full load they get in when a sleep ends in such a gap (README). The store's close()
 *    ends every such wait at once (cutLockWaits: the kernel wait is interrupted, and the wait
 *    rejects WALNUT_CLOSED, reason WriteWaitCut) instead of waiting out its busy timeout.
 *  - `<db>-journal`: never written; a hot one (journal-mode.ts) makes open() refuse the database.
 *    With `convert`, open() takes RESERVED and EXCLUSIVE briefly to put a rollback-journal
 *    database into WAL mode (journal-mode.ts), then returns to the lock it held.
 *
 * Invariants:
 *  - The header is read copy 0, barrier, copy 1; it is good only if both agree and its
 *    checksum holds; otherwise recovery rebuilds the index from the WAL under WRITE + CKPT +
 *    RECOVER, exactly as SQLite's walIndexRecover does (same bytes).
 *  - A snapshot holds a read lock until released; READ(0) means "the WAL is fully backfilled,
 *    read the database file only"; READ(i > 0) promises that frames up to aReadMark[i] stay.
 *    A snapshot under READ(i > 0) advanced past this connection's own commits
 *    (followOwnCommits: same generation, no other connection's commit since) reads frames
 *    past its mark, as SQLite's readers do when no slot has their exact frame: the held slot
 *    keeps the generation from restarting, and a checkpoint stopping at the mark cannot change
 *    a page it reads from the database file. A mark is raised only under its slot's exclusive
 *    lock, with no other snapshot here on the slot (#catchUpMark).
 *    The writer moves a snapshot that sees every frame, all of them backfilled, from READ(i) to
 *    READ(0) (same pages) before it decides whether the WAL can restart.
 *  - Followers (exporters) share one read slot marked READMARK_NOT_USED (the follow pin): no
 *    checkpoint stops at it, no restart passes it; the WAL restarts only with the followers
 *    handed the frames they have not read, and the pin is back before WRITE is released.
 *    While every follower has every frame, all copied, and another connection's checkpoint
 *    waits for the read slots, the pin rests on READ(0) instead (no frame past nBackfill can be
 *    copied, so none can be overwritten), back on a slot before frames past nBackfill are
 *    copied (settleFollowPin).
 *  - A write starts only from a snapshot whose header is still the live one (otherwise
 *    WALNUT_BUSY, reason BusySnapshot), or, for the committer's run of batches, from the live
 *    header under WRITE (beginWriteRun: only this connection publishes while it holds WRITE);
 *    frames are written (and synced), then indexed, then the header is published: readers never
 *    see a header whose frames are not in place. Frames written but not published (the index
 *    could not take them) are invalidated on disk, durably, before the failure is reported
 *    (WalFile.invalidateFrom; reason OutcomeUnknown when even that fails).
 *  - While the WAL's zero-ahead runs (WalFile.zeroAhead, started after an append under WRITE),
 *    WRITE stays locked at the OS level even after endWrite(): nobody else may append to or cut
 *    the WAL while zeros are written at its end; it is let go when the zeroing settles, or
 *    taken over by this connection's next beginWriteRun. close() waits for the zeroing.
 *  - Connections of this process to one database file close one at a time (inCloseTurn), so
 *    the last of several closing at once finds no other SHARED and does the last connection's
 *    checkpoint and removal of the -wal and -shm (closeAsLast); across worker_threads and
 *    processes the close turn is an OFD lock on CLOSE_TURN_BYTE, waited for a bounded time.
 *    close() closes every descriptor even when a step before fails. A database file is open (by
 *    walnut, in any thread or process) under one real path only (open-names.ts: a hard link's
 *    -wal and -shm would be a second WAL of the same pages).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';

import { CONSTRUCT_KEY } from '../constructed';
import { markOutcomeUnknown, walnutError } from '../errors';
import { DB_LOCK, isWalMode } from '../format/db-header';
import { decodeFrameHeader, FRAME_HEADER_SIZE } from '../format/frame-header';
import {
  CKPT_NBACKFILL,
  CKPT_NBACKFILL_ATTEMPTED,
  CKPT_READMARK,
  committedBetween,
  decodeShmHeaderCopies,
  encodeShmHeader,
  READMARK_NOT_USED,
  sameHeaderBytes,
  SHM_HEADER_SIZE,
  SHM_LOCK,
  SHM_VERSION,
  shmSegmentOf,
  type ShmHeader,
} from '../format/shm-header';
import { bigEndianChecksum, decodeWalHeader, frameOffset, sameSalts, WAL_HEADER_SIZE, walHeaderBeforeFrame1 } from '../format/wal-header';
import { nativeHandleOf, WalnutFile, type Durability, type LockMode, type OpenFileOptions } from '../io/file';
import { checkDbPath, refuseIrregularDatabase, requireRegularFiles, resolvedPath } from '../io/real-path';
import { settleRestores } from '../io/restore-asides';
import { ScratchWords } from '../io/scratch-words';
import { nativeCheckpoint, newShmRegion, type NativeCopyRequest, type NativeCopyStats, type NativeShmRegion } from '../native';
import { type EventRing, publish } from '../telemetry/events';
import { dbHeaderThroughWal, refuseForeignWal, refuseWalPage1OfOtherSize } from '../wal/page1-through-wal';
import { WalFile, type AppendResult, type WalRecovery, type WalTransaction } from '../wal/wal-file';
import { convertToWalMode, lockShared, refuseHotJournal, tryExclusive } from './journal-mode';
import { claimName, CLOSE_TURN_BYTE, releaseName } from './open-names';
import { Snapshot, type SnapshotState } from './snapshot';

/**
 * An in-process reader that tails the WAL (export/follow.ts): it reads the frames of each
 * generation in order and must have every frame before a restart overwrites it (see followWal).
 */
export interface Follower {
  /** The last frame it has read, and of which generation (frame 0: none of the live one yet). */
  position(): { mxFrame: number; salts: [number, number] };
  /** Bytes handed over to it and not exported yet: a writer hands it no more past MAX_HANDOVER_BYTES. */
  pendingBytes(): number;
  /** Called under WRITE just before the WAL restarts: the rest of the ending generation, read for it. */
  handOver(tail: WalTail): void;
}

/** The frames of a generation that a follower had not read when the WAL restarted. */
export interface WalTail {
  salts: [number, number];
  /** The generation's 32-byte WAL header (bit-exact). */
  header: Uint8Array;
  /** Frames (after, after + frames.length / frameSize] of the generation, bit-exact, through its last commit. */
  after: number;
  frames: Buffer;
}

/** A writer restarts the WAL past a follower only when what it hands over stays under this. */
export const MAX_HANDOVER_BYTES = 64 << 20;

/** What the checkpointer may do to a connection's wal-index (see checkpointTarget()). */
export interface CheckpointTarget {
  readonly pageSize: number;
  readonly dbPath: string;
  /** The database and WAL files on the background I/O lane (their own descriptors). */
  readonly db: WalnutFile;
  readonly walFile: WalnutFile;
  tryLock(byte: number, n: number, mode: LockMode): boolean;
  /**
   * With the busy timeout; false when still busy, or as soon as `giveUp()` says waiting cannot
   * help. Rejects WALNUT_CLOSED, reason ReadLockWaitCut, once the store's close() cut the waits
   * (WalIndex.cutLockWaits).
   */
  lock(byte: number, n: number, mode: LockMode, giveUp?: () => boolean): Promise<boolean>;
  unlock(byte: number, n: number): void;
  acquireWrite(): Promise<boolean>;
  releaseWrite(): void;
  /** The live header; an invalid one is recovered under the CKPT lock the checkpoint holds. */
  header(): Promise<ShmHeader>;
  liveMxFrame(): number;
  /**
   * True when the live header is of the WAL generation `salts` names: no writer restarted the
   * WAL since that header was read (a restart changes both salts). Checked after the
   * checkpoint info is read, so a state read across a restart is never planned from.
   */
  sameGeneration(salts: readonly [number, number]): boolean;
  info(): { nBackfill: number; nBackfillAttempted: number; readMarks: number[] };
  setReadMark(i: number, value: number): void;
  setNBackfill(value: number): void;
  setNBackfillAttempted(value: number): void;
  pageNumbers(firstFrame: number, out: Uint32Array): void;
  lookup(pgno: number, mxFrame: number, minFrame: number): number;
  resetWalIndex(h: ShmHeader): void;
  /** The read lock this connection's follow exports share (the follow pin: a slot, 0 on READ(0)), or null when it has none. */
  followPin(): number | null;
  /** WalIndex.settleFollowPin: a pin on READ(0) back on a slot before a copy (false: it stays, no slot is free). */
  followPinToSlot(): boolean;
  /** WalIndex.followerOfAnotherIn: one of READ(slot .. slot+n-1) is another connection's follow pin. */
  followerOfAnotherIn(slot: number, n: number): boolean;
  /** WalIndex.restartPastFollowers: the WAL restarted as this connection's writer restarts it (caller holds WRITE). */
  restartPastFollowers(): Promise<boolean>;
  /**
   * Every frame is in the database file (caller holds WRITE): this connection's snapshots that
   * see the live state move to READ(0), parked ones brought forward first and released where
   * they cannot be, as before a commit restarts the WAL (#moveCaughtUpSnapshots). Then only
   * readers that still need the WAL keep a restart or truncate out.
   */
  moveCaughtUpSnapshots(): void;
  /** The native copy (native/checkpoint_copy.h) from walFile into db, on the background lane. */
  copyFrames(pgnos: Uint32Array, request: NativeCopyRequest): Promise<NativeCopyStats>;
  /** Then, in one operation on the same lane: cut/grow db to `truncateTo` bytes (-1: leave it), and fdatasync it if `sync`. */
  syncDb(truncateTo: number, sync: boolean): Promise<void>;
  /** Frames of the generation `salts` known to be on stable storage (WalFile.durableThrough). */
  walDurableThrough(salts: readonly [number, number]): number;
  noteWalDurable(frame: number, salts: readonly [number, number]): void;
}

/**
 * A snapshot advanced past this connection's own commits (followOwnCommits) raises its
 * read mark once the mark lags the frames it reads by this many: other processes' checkpoints
 * then stop at most this far behind it (two fcntl per raise, not two per transaction).
 */
const MARK_LAG_FRAMES = 64;

/** #commitInline's answers when it wrote nothing: the live header is not this connection's own; not inline at all. */
const HEADER_NOT_OWN = 0;
const NOT_INLINE = 2;

/** Database-file lock bytes (SQLite's unix VFS). */
const { PENDING: PENDING_BYTE, SHARED_FIRST, SHARED_SIZE } = DB_LOCK;
const CLOSE_TURN_WAIT_MS = 5000;

export type LockingMode = 'shared' | 'exclusive';

export interface WalIndexOptions {
  /** 'shared' (default): SQLite-compatible -shm and locks. 'exclusive': heap index, no -shm. */
  lockingMode?: LockingMode;
  /** Milliseconds to retry locks held elsewhere before WALNUT_BUSY (default 5000). */
  busyTimeout?: number;
  /**
   * Settle what a killed restore left beside the database first (io/restore-asides.ts; default
   * true). False for a read-only verb (verify's read transaction): it reports, never settles.
   */
  settleRestores?: boolean;
  /** After a WAL restart, the first commit cuts the file back to this many bytes (default: no limit). */
  walSizeLimit?: number;
  /**
   * Called by recovery, under the recovery locks, when the WAL's chain breaks before its end:
   * may rewrite damaged frames (the FEC sidecar, fec/repair.ts); true when it did, and recovery
   * scans again. `recovery` is the scan recovery just made.
   */
  repairWal?: (wal: WalFile, recovery: WalRecovery) => Promise<boolean>;
  /**
   * A rollback-journal database is converted to WAL mode as `PRAGMA journal_mode=WAL` does
   * (journal-mode.ts); default false: refused (WALNUT_CANTOPEN, reason NotWalMode).
   */
  convert?: boolean;
  /** With `convert`: page 1 of a new WAL-mode database, written into an empty database file. */
  newPage1?: () => Uint8Array;
  /** The store's event ring: its recoveries are kept there (store.recentEvents()) besides being published. */
  events?: EventRing;
  /** cutLockWaits() from outside, from before the index exists (LockWaitCut). */
  cut?: LockWaitCut;
}

/**
 * cutLockWaits() for a connection from before it exists: an open whose caller may have to end it
 * while it waits for another connection's locks (the replication worker's own connection, which
 * the store's close() cuts as it cuts its own: replicate/worker.ts). WalIndex.open attaches the
 * index as soon as there is one (before its first header read): a cut() that came before is
 * applied then, one after at once; the index stays attached for its life, so the store's later
 * waits (snapshots) are cut too. The waits before the index exists (the database file's SHARED
 * lock, the -shm's DMS) are not: they last as long as another connection opens or closes.
 * The open's wait for a torn header another connection holds WRITE or RECOVER over went on for
 * the busy timeout (WALNUT_BUSY BusyRecovery), and the store's close() waited for it.
 */
export class LockWaitCut {
  #cut = false;
  #index: WalIndex | null = null;

  get isCut(): boolean {
    return this.#cut;
  }

  cut(): void {
    this.#cut = true;
    this.#index?.cutLockWaits();
  }

  /** (WalIndex.open) */
  attach(index: WalIndex): void {
    this.#index = index;
    if (this.#cut) index.cutLockWaits();
  }
}

const RETRY_DELAYS_MS = [0, 0, 0, 0, 0, 1, 1, 2, 5, 10, 20, 50, 100] as const;
/**
 * holdWriteLease()'s wait for WRITE (and one queued behind it), once the first quick tries failed,
 * waits for the lock blocked in the kernel on a thread of the addon's lock lane (WalnutFile.lockWithin,
 * F_OFD_SETLKW), in waits of up to this many milliseconds, one after the other until it has it or
 * the busy timeout passes (every other wait for WRITE blocks too, in waits as long as the busy
 * handler's sleeps: header comment). Beside a writer that takes WRITE again right after each commit the lock is
 * free only in gaps of tens of microseconds: a wait sampling it every 100 ms mostly missed them
 * (WALNUT_BUSY: 6 of 10 calls with busyTimeout 1000), one sampling it every millisecond from
 * timers still did under load (1 of 8 beside a CI run; test/hostile/lease-beside-busy-writer);
 * the kernel wakes a blocked waiter as the lock is let go. Its forerunner, bursts of tries every
 * few microseconds, caught the gaps too but cost about a CPU-second per second waited, and the
 * bursts of several stores took turns on one thread (test/hostile/lease-wait-blocking). A close
 * (#close, cutLockWaits) cancels a wait at once: the length bounds nothing but how long one
 * native wait may run.
 */
const LEASE_WAIT_SLICE_MS = 1000;
/** A wait for WRITE blocks after this many tries paced by RETRY_DELAYS_MS (the zero-delay ones). */
const WRITE_WAIT_BLOCKS_AFTER_TRIES = 5;

/**
 * Longest the committer holds back from taking WRITE for another connection's checkpointer
 * that waits for it (beginWriteRun): more than SQLite's longest busy-handler sleep (100 ms),
 * so the checkpointer's next try finds WRITE free. A checkpointer that does not take it by
 * then is given no such turn again for CHECKPOINT_YIELD_PAUSE_MS (a process stopped while it
 * held CKPT must not cost every run of batches a yield).
 */
const CHECKPOINT_YIELD_MS = 250;
const CHECKPOINT_YIELD_PAUSE_MS = 1000;

/** A waiter for WRITE in this process (WalIndex#writeQueue); `wake` ends its current pause early. */
interface WriteTurn {
  wake: (() => void) | null;
  /** holdWriteLease()'s wait: while it is queued, the waiter at the head waits blocked in the kernel (#lockShm). */
  readonly lease: boolean;
}

/**
 * An attempt at a read lock that lost a race, not a wait for anyone's lock: the header or the
 * read mark moved between reading and locking it (another connection committed, a checkpointer
 * moved the mark). Tried again at once; close() does not cut it (#retryRead): beside a python3
 * process inserting in a loop, 22% of the store.snapshot() calls made just before close() were
 * rejected WALNUT_CLOSED ReadLockWaitCut, though no lock was held against them.
 */
const RACED: unique symbol = Symbol('raced');
/** #lockReadMark's answer when the mark or the header moved while it was being locked (RACED). */
const READ_MARK_MOVED = -1;
/** #lockReadMark's answer when the slot it chose is locked exclusively by another connection (a wait: retried after a pause). */
const READ_MARK_HELD = -2;

/** The busy handler's sleep (ms) before retry `attempt`. */
function pauseMs(attempt: number): number {
  return RETRY_DELAYS_MS[Math.min(attempt, RETRY_DELAYS_MS.length - 1)]!;
}

/** The busy handler's sleep before retry `attempt`; with `turn`, cut short by turn.wake(). */

async function pause(attempt: number, turn?: WriteTurn): Promise<void> {
  const ms = pauseMs(attempt);
  await new Promise<void>((resolve) => {
    const timer = ms === 0 ? setImmediate(done) : setTimeout(done, ms);
    function done(): void {
      if (turn !== undefined) turn.wake = null;
      if (ms === 0) clearImmediate(timer as NodeJS.Immediate);
      else clearTimeout(timer as NodeJS.Timeout);
      resolve();
    }
    if (turn !== undefined) turn.wake = done;
  });
}

/** What a -shm lock byte is (SQLite's names), and the WALNUT_BUSY reason for failing to get it. */
function shmLockName(byte: number): { name: string; reason: string } {
  if (byte === SHM_LOCK.WRITE) return { name: 'WAL write (WRITE)', reason: 'BusyWrite' };
  if (byte === SHM_LOCK.CKPT) return { name: 'checkpoint (CKPT)', reason: 'BusyCheckpoint' };
  if (byte === SHM_LOCK.RECOVER) return { name: 'recovery (RECOVER)', reason: 'BusyRecovery' };
  return { name: `read mark (READ(${byte - SHM_LOCK.READ(0)}))`, reason: 'BusyRead' };
}

/** A WAL header that is damaged (bad magic, page size or checksum: SQLite reads the WAL as empty), not merely absent. */
function stillDamaged(r: WalRecovery): boolean {
  return r.headerStatus === 'bad-magic' || r.headerStatus === 'bad-page-size' || r.headerStatus === 'bad-checksum';
}

export class WalIndex {
  readonly dbPath: string;
  readonly walPath: string;
  readonly shmPath: string;
  readonly lockingMode: LockingMode;
  readonly busyTimeout: number;
  readonly walSizeLimit: number | undefined;
  readonly db: WalnutFile;
  readonly wal: WalFile;
  readonly pageSize: number;
  /** Snapshots check each page's XXH3-128 trailer (option pageChecksums; set by the store). */
  pageTrailers = false;
  /** The store was opened read-only (option readOnly; set by the store): a follow export never restarts the WAL (export/follow.ts). */
  readOnly = false;
  readonly #shm: WalnutFile | null;
  readonly #region: NativeShmRegion;
  /** The database file's identity (device and inode): its close turn in this process (inCloseTurn). */
  readonly #fileKey: string;
  /**
   * The region was seen mapping its first segment (a new -shm has none until recovery grows it):
   * it keeps it until close unmaps it (the native region drops segments nowhere else), so header
   * reads need not ask it per call once they saw one.
   */
  #regionMapped = false;
  readonly #headerScratch = new Uint8Array(2 * SHM_HEADER_SIZE);
  /** Its first copy (a view made once: dataVersion() reads the header several times per SQL transaction). */
  readonly #headerScratchFirst = this.#headerScratch.subarray(0, SHM_HEADER_SIZE);
  /**
   * The last good header #readHeader decoded and the 96 bytes it came from: while the -shm holds
   * the same bytes, a header read is one native copy and a compare (no decode, no allocation).
   */
  #lastRead: { header: ShmHeader; bytes: Uint8Array } | null = null;
  readonly #lastRaw = new Uint8Array(2 * SHM_HEADER_SIZE);
  /** Callers in this process waiting for WRITE (#lockShm): a writer keeping WRITE across batches lets it go. */
  #writeWaiters = 0;
  /**
   * Those callers in arrival order: only the first may take WRITE, and a release of WRITE in
   * this process wakes it at once (the others keep their busy-handler sleeps). Without the queue
   * each polled on its own schedule, so a later waiter with shorter sleeps overtook one that had
   * waited longer (a checkpoint could wait out turn after turn of a transaction's commits).
   * Another process's WRITE still comes back only by polling (no one can be told).
   */
  readonly #writeQueue: WriteTurn[] = [];
  /**
   * The writer reads the page number of the header's last frame before it appends: that maps
   * the segment holding it or refuses (WALNUT_CORRUPT) when the -shm ends before it. Growing
   * the file over such a header would give segments of empty page arrays, and every lookup
   * (SQLite's too) would miss the frames they should index.
   */
  readonly #lastPgno = new Uint32Array(1);
  readonly #snapshots = new Set<Snapshot>();
  readonly #held = new Map<number, { mode: LockMode; count: number }>();
  readonly #followers = new Set<Follower>();
  /**
   * The read lock that keeps the WAL from restarting past this connection's followers (followWal):
   * a read slot READ(1..4), or 0 while it rests on READ(0) (settleFollowPin).
   */
  #followPin: number | null = null;
  /**
   * #restart holds the follow pin's slot exclusively (converted in place) across an await (the
   * hand-over read): the last follower's unregister leaves the slot to it then (#pinReleaseDue),
   * and #restart lets it go once it has converted it back. Unlocked under it, the slot was
   * free to other processes' readers in the middle of the restart, and #restart's conversion
   * back found no lock (TypeError), leaving the other read slots locked exclusively for good.
   */
  #pinInRestart = false;
  #pinReleaseDue = false;
  /** Frames a restart read under WRITE for followers that had not read them yet (#handOverToFollowers). */
  #handedOverFrames = 0;
  #appends = 0;
  /**
   * WRITE waits of this connection in progress on a lock another connection holds (and yields
   * to another connection's checkpointer: beginWriteRun). Meanwhile parked snapshots are let go
   * at once (dropsParked): a read mark kept idle while this connection waits for WRITE could be
   * what the holder of WRITE waits for (a FULL/RESTART/TRUNCATE checkpoint waits for readers).
   */
  #waitsForOthersWrite = 0;
  /** When a yield to a checkpointer ran out without it taking WRITE (CHECKPOINT_YIELD_PAUSE_MS). */
  #yieldInVainAt = -Infinity;
  #background: Promise<[WalnutFile, WalnutFile]> | null = null;
  /** The WAL on the read lane, for followers (followerWalFile), once opened. */
  #followerWal: Promise<WalnutFile> | null = null;
  #writer = false;
  /** A zero-ahead of the WAL runs (WalFile.zeroAhead, started by appendAndPublish under WRITE). */
  #zeroing = false;
  /** The zero-ahead's descriptor of the WAL (one closure, not one per append: it is asked on every batch). */
  readonly #backgroundWal = async (): Promise<WalnutFile> => (await this.#backgroundFiles())[1];
  /**
   * endWrite() came while the zero-ahead ran: WRITE stays locked (no other process may append
   * to or cut the WAL while it writes at the file's end: native/wal_zero_ahead.h) until it
   * settles, and nobody in this connection holds it meanwhile; beginWriteRun takes it over.
   */
  #writeReleaseDeferred = false;
  /**
   * The write lease (holdWriteLease()): WRITE stays locked at the OS level until close, so no
   * other connection can commit; inside this connection WRITE is then a flag (#leaseInUse)
   * that the committer, checkpointers and recovery take and give back as they took the lock.
   */
  #leased = false;
  #leaseInUse = false;
  /** holdWriteLease() calls not yet given back (releaseWriteLease()): WRITE is unlocked at 0. */
  #leaseHolds = 0;
  /**
   * cutLockWaits(): the store is closing; no holdWriteLease() waits for WRITE any more, nor any
   * other wait for a WRITE another connection holds (#lockShm: WALNUT_CLOSED, reason WriteWaitCut),
   * nor a checkpoint's wait for readers or a store's snapshot's for a read slot (reason ReadLockWaitCut).
   */
  #lockWaitsCut = false;
  /** The wait for WRITE of a holdWriteLease() in progress (a second caller joins it: two waits would both "take" WRITE). */
  #leaseTaking: Promise<void> | null = null;
  /**
   * The lease's wait has a blocking wait for WRITE in flight on the lock lane (#waitForWrite):
   * nothing else of this connection may try WRITE through the same descriptor meanwhile (an OFD
   * lock is the descriptor's: its try would succeed too, and two would think they held it).
   */
  #writeWait: Promise<boolean> | null = null;
  /**
   * PRAGMA data_version's counter: bumped when the live header is found to differ from the one
   * this connection last saw or wrote itself, i.e. when another connection committed (or
   * restarted the WAL). This connection's own header writes (#writeOwnHeader) do not bump it.
   */
  #dataVersion = 0;
  #seenHeader: Uint8Array | null = null;
  /** The last good header liveHeader() read (liveOrLastGoodHeader()). */
  #lastGoodLive: ShmHeader | null = null;
  /**
   * Commits by other connections this connection has noticed (conditional commits,
   * othersCommittedSince()): bumped when a header it meets — a snapshot's as it begins, the live
   * one before each header it writes, the live one under WRITE when a commit is checked — is one
   * that only a commit by someone else explains after the last one it met or wrote itself
   * (format/shm-header.ts committedBetween: a restart or a recovery rewriting the same state is
   * not one). The headers met are in time order (each is the live one at that moment, or this
   * connection's own write under WRITE), so a snapshot's count at its start and the count under
   * WRITE differ exactly when another connection's commit fell in between.
   */
  #othersCommits = 0;
  /** When another connection's commit was last met (#meetHeader; not noteCommitForAnother). */
  #otherWriterAt = -Infinity;
  /**
   * When this connection's writer last found the WAL due to restart (everything copied) and
   * another connection's follow pin the only thing in the way (#noteRestartBlocked): only that
   * follower can restart it then, and it needs WRITE free for a moment (followerWaitsWithin).
   */
  #followerBlocked: { at: number; salts: readonly [number, number] } | null = null;
  #othersSeen: ShmHeader | null = null;
  /** The last header this connection published itself (#writeOwnHeader): followOwnCommits. */
  #ownHeader: Uint8Array | null = null;
  /** #ownHeader decoded (what #readHeader answers for those bytes). */
  #ownHeaderFields: ShmHeader | null = null;
  /** The header being published, encoded (#writeOwnHeader's scratch: read only within the call). */
  readonly #publishBytes = new Uint8Array(SHM_HEADER_SIZE);
  /**
   * The header commitInline expects, copied from #ownHeader: one array of this index's own that
   * meets the native call every commit (a fresh small array handed to a native call has its
   * bytes moved off the V8 heap: a malloc per commit; see encodeShmHeader).
   */
  readonly #expectBytes = new Uint8Array(SHM_HEADER_SIZE);
  /** An append's page numbers as the index append reads them (io/scratch-words.ts). */
  readonly #indexPgnos = new ScratchWords();
  /** #othersCommits as each snapshot began (the bases of conditional commits). */
  readonly #othersAtSnapshot = new WeakMap<Snapshot, number>();
  #closed = false;
  #repairWal: ((wal: WalFile, recovery: WalRecovery) => Promise<boolean>) | null = null;
  #createdWal = false;

  /** This connection's open created the -wal (none was there): a refused read-only open removes it again while still empty (commit/store.ts). */
  get createdWal(): boolean {
    return this.#createdWal;
  }
  #events: EventRing | null = null;

  private constructor(p: { dbPath: string; lockingMode: LockingMode; busyTimeout: number; walSizeLimit: number | undefined; db: WalnutFile; wal: WalFile; pageSize: number; shm: WalnutFile | null; region: NativeShmRegion; fileKey: string }) {
    this.walSizeLimit = p.walSizeLimit;
    this.dbPath = p.dbPath;
    this.walPath = `${p.dbPath}-wal`;
    this.shmPath = `${p.dbPath}-shm`;
    this.lockingMode = p.lockingMode;
    this.busyTimeout = p.busyTimeout;
    this.db = p.db;
    this.wal = p.wal;
    this.pageSize = p.pageSize;
    this.#shm = p.shm;
    this.#region = p.region;
    this.#fileKey = p.fileKey;
  }

  /**
   * Attaches to an existing WAL-mode database (its page 1 must be in the database file); with
   * `convert`, a rollback-journal database is converted first. A hot journal is refused.
   */
  static async open(path: string, options: WalIndexOptions = {}): Promise<WalIndex> {
    const lockingMode = options.lockingMode ?? 'shared';
    const busyTimeout = options.busyTimeout ?? 5000;
    let dbPath: string;
    try {
      dbPath = fs.realpathSync(path); // SQLite derives -wal/-shm from the real path
    } catch (e) {
      throw walnutError('WALNUT_CANTOPEN', `cannot open database ${path}: ${(e as Error).message}`, { path, cause: e });
    }
    if (options.settleRestores !== false) settleRestores(dbPath); // a restore that died replacing it: its -wal etc. back beside it (or the replaced one's gone) before they are looked at
    requireRegularFiles(dbPath, [`${dbPath}-wal`, `${dbPath}-shm`]); // a directory or FIFO: a clear refusal, not a failed pread
    const db = await openReadWrite(dbPath);
    const opened: { wal?: WalFile; shm?: WalnutFile } = {};
    let shmCreated = false;
    let walCreated = false;
    let fileKey: string | null = null;
    try {
      if (lockingMode === 'exclusive') {
        await db.lock(PENDING_BYTE, 1, 'exclusive', busyTimeout);
        await db.lock(SHARED_FIRST, SHARED_SIZE, 'exclusive', busyTimeout);
      } else {
        await lockShared(db, busyTimeout);
      }
      const head = new Uint8Array(100);
      let got = 0;
      // page 1 as SQLite reads it: the WAL's committed page 1 supersedes a torn or stale header in the file
      const through = dbHeaderThroughWal(dbPath, () => head.subarray(0, (got = db.readSync(head, 0, 100, 0))));
      refuseWalPage1OfOtherSize(dbPath, through);
      refuseForeignWal(dbPath, through); // before converting: a refused open leaves the database as it was
      let h = through.header;
      if (got === 0 && options.convert === true && options.newPage1 !== undefined) {
        refuseHotJournal(db, dbPath);
        h = await convertToWalMode(db, dbPath, { lockingMode, busyTimeout, newPage1: options.newPage1 });
      }
      if (h === null || h.pageSize === 0) {
        throw walnutError('WALNUT_CANTOPEN', got === 0 ? 'the database file is empty (page 1 must exist before a WAL)' : through.fromWal ? 'not a SQLite database (nor is page 1 in its WAL)' : 'not a SQLite database', { path: dbPath });
      }
      refuseHotJournal(db, dbPath); // SQLite would roll it back under us, whatever the mode
      if (!isWalMode(h)) {
        if (through.fromWal) {
          // converting rewrites the file's header, which the WAL's page 1 supersedes: nothing to convert safely
          throw walnutError('WALNUT_CORRUPT', 'page 1 in the WAL is not in WAL mode (format versions not 2)', { path: dbPath, pgno: 1 });
        }
        if (options.convert !== true) {
          throw walnutError('WALNUT_CANTOPEN', 'the database is not in WAL mode but in rollback-journal mode (open() converts it unless convert: false, as PRAGMA journal_mode=WAL does)', { path: dbPath, reason: 'NotWalMode' });
        }
        h = await convertToWalMode(db, dbPath, { lockingMode, busyTimeout });
      }
      const st = fs.fstatSync(db.fd);
      const key = `${st.dev}:${st.ino}`;
      claimName(db, key, dbPath);
      fileKey = key; // released again if this open fails
      const mode = st.mode & 0o777;
      walCreated = fs.lstatSync(`${dbPath}-wal`, { throwIfNoEntry: false }) === undefined;
      opened.wal = await WalFile.open(`${dbPath}-wal`, { create: true, mode });
      matchMode(opened.wal.file, mode);
      let region: NativeShmRegion;
      if (lockingMode === 'exclusive') {
        region = newShmRegion();
      } else {
        shmCreated = fs.lstatSync(`${dbPath}-shm`, { throwIfNoEntry: false }) === undefined;
        opened.shm = await WalnutFile.open(`${dbPath}-shm`, { create: true, mode });
        matchMode(opened.shm, mode);
        await attachDms(opened.shm, busyTimeout);
        region = newShmRegion(nativeHandleOf(opened.shm));
      }
      region.map(1);
      const index = new WalIndex({ dbPath, lockingMode, busyTimeout, walSizeLimit: options.walSizeLimit, db, wal: opened.wal, pageSize: h.pageSize, shm: opened.shm ?? null, region, fileKey: key });
      index.#repairWal = options.repairWal ?? null;
      index.#createdWal = walCreated;
      index.#events = options.events ?? null;
      options.cut?.attach(index); // its waits below are cut from now on (a cut() before: at once)
      if (lockingMode === 'exclusive') {
        await index.#recover(); // the heap index starts empty
      } else {
        await index.header();
      }
      return index;
    } catch (e) {
      // a -shm this open made for a database its recovery then refused (a -wal of another page
      // size beside an intact WAL-mode header) goes again, as SQLite's last connection removes
      // its own: only under EXCLUSIVE on the database file, so no other connection uses it
      if (opened.shm !== undefined && shmCreated && tryExclusive(db)) {
        fs.rmSync(`${dbPath}-shm`, { force: true });
      }
      // so does the empty -wal it made before its -shm was refused (a symbolic link there:
      // `walnut checkpoint` left a new 0-byte -wal behind), under the same EXCLUSIVE
      if (opened.wal !== undefined && walCreated && opened.wal.file.sizeSync() === 0 && tryExclusive(db)) {
        try {
          fs.unlinkSync(`${dbPath}-wal`);
        } catch {
          // (left, as SQLite leaves a -wal it cannot remove)
        }
      }
      await opened.shm?.close().catch(() => undefined);
      await opened.wal?.close().catch(() => undefined);
      await db.close().catch(() => undefined);
      if (fileKey !== null) releaseName(fileKey);
      throw e;
    }
  }

  // ---- locks on the -shm (no-ops in exclusive mode, where nobody else can attach) ----------

  /**
   * shm locks with per-connection accounting. OFD locks belong to the descriptor, and every
   * snapshot of this connection shares it: without counting, one snapshot's release would drop
   * a read lock another snapshot still relies on, and an exclusive request would silently
   * convert this connection's own shared locks (SQLite keeps the same per-process table).
   * A byte this connection holds in any mode is busy to an exclusive request from itself.
   */
  #tryShm(byte: number, n: number, mode: LockMode): boolean {
    if (this.#writeWait !== null && byte <= SHM_LOCK.WRITE && SHM_LOCK.WRITE < byte + n) return false;
    if (this.#leased && byte === SHM_LOCK.WRITE && n === 1) {
      if (mode !== 'exclusive' || this.#leaseInUse) return false;
      this.#leaseInUse = true;
      return true;
    }
    if (mode === 'shared') {
      const held = this.#held.get(byte);
      if (held !== undefined) {
        if (held.mode !== 'shared') return false;
        held.count++;
        return true;
      }
    } else {
      for (let b = byte; b < byte + n; b++) if (this.#held.has(b)) return false;
    }
    if (this.#shm !== null && !this.#shm.tryLock(byte, n, mode)) return false;
    for (let b = byte; b < byte + n; b++) this.#held.set(b, { mode, count: 1 });
    return true;
  }
  #unlockShm(byte: number, n: number): void {
    if (byte === SHM_LOCK.WRITE) this.#writeQueue[0]?.wake?.(); // its retry runs after this release
    if (this.#leased && byte === SHM_LOCK.WRITE && n === 1) {
      this.#leaseInUse = false;
      return;
    }
    for (let b = byte; b < byte + n; b++) {
      const held = this.#held.get(b);
      if (held === undefined) continue;
      if (--held.count > 0) continue;
      this.#held.delete(b);
      this.#shm?.unlock(b, 1);
    }
  }
  /** Takes the lock, retrying up to the busy timeout; true when it had to wait. */
  /** `giveUp`: asked before each sleep (told whether WRITE is held by another connection: this one holds none of it); true ends the wait at once as a timeout would (WALNUT_BUSY). */
  /** WRITE is taken in arrival order among this process's waiters (#writeQueue). */
  /** WRITE held by another connection: after the first tries, blocking waits on the lock lane as long as the sleeps would be (header comment). */
  /** `lease` (WRITE only, a lease's wait): those waits last up to LEASE_WAIT_SLICE_MS, its own or whoever's is ahead of it in #writeQueue. */
  /** `cuttable` (WRITE only): asked when cutLockWaits() came; false lets the wait go on (a batch holding other lane members' commits: beginWriteRun). */
  async #lockShm(byte: number, n: number, mode: LockMode, giveUp?: (othersHoldWrite: boolean) => boolean, lease = false, cuttable?: () => boolean): Promise<boolean> {
    const write = byte === SHM_LOCK.WRITE;
    if ((!write || this.#writeQueue.length === 0) && this.#tryShm(byte, n, mode)) return false;
    const deadline = performance.now() + this.busyTimeout;
    const turn: WriteTurn | undefined = write ? { wake: null, lease } : undefined;
    if (turn !== undefined) {
      this.#writeQueue.push(turn);
      this.#writeWaiters++; // writeWanted: the committer lets a WRITE it keeps go
      if (lease) this.#writeQueue[0]?.wake?.(); // a head asleep in a pause (a turn, or no blocking wait possible): it waits in LEASE_WAIT_SLICE_MS slices from now on (#leaseQueued)
    }
    let waitsForOther = false;
    try {
      for (let attempt = 0; !((turn === undefined || this.#writeQueue[0] === turn) && this.#tryShm(byte, n, mode)); attempt++) {
        if (write && !waitsForOther && !this.#holdsWrite()) {
          waitsForOther = true;
          this.#waitsForOthersWrite++;
        }
        if (waitsForOther) this.#releaseParked();
        if (performance.now() > deadline || giveUp?.(write && !this.#holdsWrite() && !this.#writeReleaseDeferred) === true) {
          const { name, reason } = shmLockName(byte);
          throw walnutError('WALNUT_BUSY', `SQLite's ${name} lock (-shm byte ${byte}${n > 1 ? `..${byte + n - 1}` : ''}, ${mode}) is held by another connection past the busy timeout (${this.busyTimeout} ms)`, { path: this.shmPath, reason });
        }
        // cut by close(): the head of the queue just found WRITE held, and not in this connection
        // (one behind it waits for the head, and is cut in its turn; after giveUp: a committer
        // answers its commits itself first)
        if (write && this.#lockWaitsCut && this.#writeQueue[0] === turn && !this.#holdsWrite() && !this.#writeReleaseDeferred && (cuttable?.() ?? true)) throw this.#writeWaitCutError();
        if (turn !== undefined && attempt >= WRITE_WAIT_BLOCKS_AFTER_TRIES && this.#writeQueue[0] === turn && this.#mayWaitForWrite()) {
          if (await this.#waitForWrite(deadline, this.#leaseQueued() ? LEASE_WAIT_SLICE_MS : pauseMs(attempt))) break;
          continue;
        }
        await pause(attempt, turn);
      }
    } finally {
      if (waitsForOther) this.#waitsForOthersWrite--;
      if (turn !== undefined) {
        this.#writeWaiters--;
        this.#writeQueue.splice(this.#writeQueue.indexOf(turn), 1);
        if (!this.#writer && !this.#held.has(SHM_LOCK.WRITE)) this.#writeQueue[0]?.wake?.(); // gave up: the next one's turn
      }
    }
    return true;
  }

  /**
   * A lease's wait is in #writeQueue: the head's blocking waits (#waitForWrite) last up to
   * LEASE_WAIT_SLICE_MS, whether it is that lease or a wait ahead of it. WRITE goes to this
   * connection's waiters in arrival order and only the head tries, so a lease behind a commit whose
   * wait slept up to 100 ms between tries (beside a writer that lets WRITE go only for moments)
   * never tried at all, and both failed WALNUT_BUSY (test/hostile/lease-behind-own-commit); the
   * commit takes WRITE in such a wait, and the lease after it.
   */
  #leaseQueued(): boolean {
    return this.#writeQueue.some((t) => t.lease);
  }

  /**
   * WRITE is nobody's in this connection: a blocking wait may take it through the descriptor
   * (#writeWait). Nor is a blocking wait then one whose holder could be waiting for this
   * connection: no walnut connection waits in the kernel while it holds WRITE (this condition),
   * and SQLite never waits in the kernel for a -shm lock (it polls); the kernel detects no
   * deadlock between OFD waiters (native/lock_wait.h).
   */
  #mayWaitForWrite(): boolean {
    return this.#shm !== null && !this.#closed && !this.#holdsWrite() && !this.#writeReleaseDeferred && !this.#leased;
  }

  /**
   * One blocking wait for WRITE on the lock lane, up to `sliceMs` or the deadline:
   * true when it took WRITE (then this connection's, as #tryShm would have made it). A close()
   * meanwhile cancels the wait and waits for it (#close), and the lock it got is let go here;
   * cutLockWaits() cancels it too.
   */
  async #waitForWrite(deadline: number, sliceMs: number): Promise<boolean> {
    const micros = Math.round(Math.max(0, Math.min(sliceMs, deadline - performance.now())) * 1000);
    const wait = this.#shm!.lockWithin(SHM_LOCK.WRITE, 1, 'exclusive', micros);
    this.#writeWait = wait;
    let took: boolean;
    try {
      took = await wait;
    } finally {
      this.#writeWait = null;
    }
    if (!took) return false;
    if (this.#closed) {
      this.#shm!.unlock(SHM_LOCK.WRITE, 1); // #close awaits the wait before it closes the -shm
      this.#checkOpen();
    }
    this.#held.set(SHM_LOCK.WRITE, { mode: 'exclusive', count: 1 });
    return true;
  }

  /**
   * Something in this process waits for WRITE (a checkpoint in restart, truncate or full mode,
   * a rebuild): the committer, which keeps WRITE across back-to-back batches, releases it after
   * its current batch (group-committer.ts).
   */
  get writeWanted(): boolean {
    return this.#writeWaiters > 0;
  }

  /** This connection holds WRITE itself (its committer, a checkpoint, recovery, the lease in use). */
  #holdsWrite(): boolean {
    return this.#writer || this.#held.has(SHM_LOCK.WRITE) || (this.#leased && this.#leaseInUse);
  }

  /**
   * This connection waits for (or holds back from) a WRITE another connection holds or wants:
   * a snapshot parked now (Snapshot.park(): idle between its owner's transactions) is released
   * at once instead (#waitsForOthersWrite).
   */
  get dropsParked(): boolean {
    return this.#waitsForOthersWrite > 0;
  }

  /** Releases every parked snapshot (their owners take new ones at their next use: Snapshot.advance() says false). */
  #releaseParked(): void {
    for (const s of this.#snapshots) if (s.parked) s.release();
  }

  /**
   * Another connection's checkpointer may be waiting for WRITE, and then for this connection's
   * readers: another connection holds CKPT (SQLite's and walnut's checkpoints take it first,
   * then, in full, restart and truncate mode, wait for WRITE with their busy handler) and is not
   * copying (a copy holds READ(0) exclusively; a passive checkpoint never waits for WRITE).
   * One F_OFD_GETLK (two when CKPT is held); false in exclusive locking mode and while this
   * connection checkpoints itself (its own checkpoints take turns through writeWanted).
   */
  checkpointerWaiting(): boolean {
    if (this.#shm === null || this.#closed || this.#held.has(SHM_LOCK.CKPT)) return false;
    if (this.#shm.lockHolder(SHM_LOCK.CKPT, 1, 'shared') === null) return false;
    return this.#shm.lockHolder(SHM_LOCK.READ(0), 1, 'shared') === null;
  }

  /**
   * Before the committer takes WRITE for a run of batches: while another connection's
   * checkpointer waits for it (checkpointerWaiting()), hold back — WRITE taken back to back
   * leaves a busy handler that polls with sleeps hardly a chance — until that checkpointer took
   * WRITE (then the committer waits for it like any writer), finished, or CHECKPOINT_YIELD_MS
   * passed. Parked snapshots go meanwhile (dropsParked), so this connection holds no idle read
   * mark for the checkpoint to wait for.
   */
  async #yieldToCheckpointer(): Promise<void> {
    const start = performance.now();
    // under the write lease nobody else can take WRITE: nothing to hold back for
    if (this.#leased || start - this.#yieldInVainAt < CHECKPOINT_YIELD_PAUSE_MS || this.#holdsWrite() || !this.checkpointerWaiting()) return;
    this.#waitsForOthersWrite++;
    try {
      for (;;) {
        this.#releaseParked();
        await new Promise((resolve) => setTimeout(resolve, 1));
        if (this.#closed || this.#shm!.lockHolder(SHM_LOCK.WRITE, 1, 'shared') !== null || !this.checkpointerWaiting()) return;
        if (performance.now() - start > CHECKPOINT_YIELD_MS) {
          this.#yieldInVainAt = performance.now();
          return;
        }
      }
    } finally {
      this.#waitsForOthersWrite--;
    }
  }

  // ---- header ---------------------------------------------------------------------------

  /**
   * Refuses (WALNUT_CORRUPT, reason ShmTruncated) when another user of the -shm has cut it
   * shorter than the segments this connection mapped: touching them would raise SIGBUS. One
   * lseek of the -shm, so it runs where a read transaction, a checkpoint or a recovery begins, where a
   * write transaction begins after waiting for WRITE, after each wait inside a checkpoint
   * (checkpointTarget), before a snapshot's asynchronous reads, and (as a null header) in
   * liveHeader(); not in a commit's batches (appendAndPublish relies on the guarded touches)
   * nor on a snapshot's synchronous reads and lookups (native/shm.h states the window).
   */
  checkMapping(): void {
    if (this.#region.coversMapping()) return;
    throw walnutError('WALNUT_CORRUPT', `the -shm was truncated under this connection (below the ${this.#region.segments() * 32} KiB it maps); reopen the database to rebuild it`, { path: this.shmPath, reason: 'ShmTruncated' });
  }

  /** `touch` (which uses the mapped index) after checkMapping(). */
  #mapped<T>(touch: () => T): T {
    this.checkMapping();
    return touch();
  }

  /** The live header if it is good, else null (no locks taken). */
  #readHeader(): { header: ShmHeader; bytes: Uint8Array } | null {
    if (!this.#regionMapped) {
      if (this.#region.segments() === 0 && this.#region.map(1) === 0) return null;
      this.#regionMapped = !this.#closed;
    }
    this.#region.readHeader(this.#headerScratch);
    return this.#decodeHeader(this.#headerScratch);
  }

  /** #readHeader's answer for `raw`, the two copies just read into #headerScratch. */
  #decodeHeader(raw: Uint8Array): { header: ShmHeader; bytes: Uint8Array } | null {
    if (this.#lastRead !== null && sameBytes(raw, this.#lastRaw)) return this.#lastRead;
    const header = decodeShmHeaderCopies(raw);
    if (header === null) return null;
    if (header.iVersion !== SHM_VERSION) {
      throw walnutError('WALNUT_CANTOPEN', `unsupported wal-index version ${header.iVersion}`, { path: this.shmPath });
    }
    this.#lastRaw.set(raw);
    this.#lastRead = { header, bytes: raw.slice(0, SHM_HEADER_SIZE) };
    return this.#lastRead;
  }

  /**
   * Rebuilds the wal-index from the WAL now, whatever the header says (`walnut recover`):
   * under WRITE, as SQLite's recovery runs. Returns the rebuilt header.
   */
  async rebuild(): Promise<ShmHeader> {
    this.#checkOpen();
    await this.#lockShm(SHM_LOCK.WRITE, 1, 'exclusive');
    this.#writer = true;
    try {
      this.checkMapping();
      await this.#recover();
      return this.#readHeader()!.header;
    } finally {
      this.endWrite();
    }
  }

  /**
   * The live header, running recovery first when it is not good (section 6 of the reference).
   * `ownCheckpointLock`: the caller is a checkpoint holding CKPT exclusively, and the recovery
   * runs under it, taking RECOVER only (SQLite's walIndexRecover skips the CKPT lock its
   * checkpointer holds): waiting for CKPT there waited for the checkpoint itself, a busy
   * timeout (holding WRITE) and then WALNUT_BUSY.
   * WRITE taken here for the recovery is let go again when CKPT or RECOVER is held elsewhere,
   * and the header read again after a pause, as SQLite's reader does (walIndexRecover takes
   * them without waiting, walTryBeginRead retries: WAL_RETRY): another process's checkpointer
   * holding CKPT waits for WRITE (sqlite3's wal_checkpoint(TRUNCATE) or RESTART), and recovers
   * the header itself once it has it. Waiting for CKPT while holding WRITE left both waiting:
   * open() beside such a checkpointer failed WALNUT_BUSY after the busy timeout.
   * Once the store's close() cut the waits (cutLockWaits), the wait for another connection to
   * let go of or recover the header ends, WALNUT_CLOSED reason RecoveryWaitCut: in this retry
   * loop, and in the recovery's wait for CKPT and RECOVER under a WRITE this connection held
   * already (a write lease's, a committer's kept run: beginWriteRun; not cut there, a commit and
   * a snapshot beside another process's RECOVER or CKPT waited the busy timeout, and close()
   * with them), unless `cuttable` says no (a batch holding other lane members' commits).
   */
  async header(ownCheckpointLock = false, cuttable: () => boolean = () => true): Promise<{ header: ShmHeader; bytes: Uint8Array }> {
    this.#checkOpen();
    const deadline = performance.now() + this.busyTimeout;
    for (let attempt = 0; ; attempt++) {
      this.checkMapping();
      const live = this.#readHeader();
      if (live !== null) return live;
      if (this.#writer || this.#tryShm(SHM_LOCK.WRITE, 1, 'exclusive')) {
        const tookWrite = !this.#writer;
        let recovered = true;
        try {
          if (this.#readHeader() === null) recovered = await this.#recover(ownCheckpointLock, true, !tookWrite, cuttable);
        } finally {
          if (tookWrite) this.#unlockShm(SHM_LOCK.WRITE, 1);
        }
        if (recovered) continue;
      } else if (this.#tryShm(SHM_LOCK.RECOVER, 1, 'shared')) {
        // someone holds WRITE: a writer between header copies, or a recovery in progress
        this.#unlockShm(SHM_LOCK.RECOVER, 1);
      }
      // close() began (cutLockWaits): the wait for another connection to let go of its locks or
      // finish its recovery ends now, holding nothing; close() waited the rest of the busy
      // timeout for it. (A store's close never waits here itself: its last checkpoint runs only
      // as the last connection, which no other connection's lock can stall.)
      // (not on the first try: a live writer between its two copies is done by the next one;
      // beside a python3 process inserting in a loop, 1 in ~380,000 snapshots before close() was cut)
      if (this.#lockWaitsCut && attempt > 0 && cuttable()) throw this.#recoveryWaitCutError();
      if (performance.now() > deadline) {
        throw walnutError('WALNUT_BUSY', 'the wal-index header stayed invalid while another connection held the write or checkpoint lock', { path: this.shmPath, reason: 'BusyRecovery' });
      }
      await pause(attempt);
    }
  }

  /**
   * Rebuilds the index from the WAL (caller holds WRITE, and CKPT too when `ckptHeld`: a
   * checkpoint's own header read), byte for byte as SQLite does. `onlyIfInvalid` (header()):
   * nothing is done when the header is good once RECOVER is held. WRITE is the connection's,
   * not the caller's: a snapshot or a follow export asking for the header while this
   * connection's committer holds WRITE and recovers a header a dead writer tore waited here for
   * RECOVER, then rebuilt the index again from a scan of the WAL racing the committer's next
   * append (or a WAL restart) and published that older state over it: acknowledged commits
   * vanished, and the committer failed WALNUT_CORRUPT ("frames of a WAL generation that is not
   * on disk"). SQLite's walIndexReadHdr reads the header again under its lock before it recovers.
   * `wait` false (header() took WRITE for it): CKPT and RECOVER are tried once, and when either is
   * held elsewhere nothing is done and the answer is false (header() lets WRITE go and retries).
   * `cuttable` (header()'s): the wait for them ends once the store's close() cut the waits
   * (cutLockWaits) and it says true, WALNUT_CLOSED reason RecoveryWaitCut; close() waited the rest
   * of the busy timeout for a FULL, RESTART or TRUNCATE beside another connection's RECOVER, and
   * for a commit under a write lease or a kept run.
   */
  async #recover(ckptHeld = false, onlyIfInvalid = false, wait = true, cuttable: () => boolean = () => false): Promise<boolean> {
    const underCkpt = ckptHeld && this.#held.get(SHM_LOCK.CKPT)?.mode === 'exclusive';
    const first = underCkpt ? SHM_LOCK.RECOVER : SHM_LOCK.CKPT;
    const count = underCkpt ? 1 : 2;
    // CKPT (unless held) + RECOVER
    const cut = (): boolean => this.#lockWaitsCut && cuttable();
    if (wait) await this.#lockShm(first, count, 'exclusive', cut).catch((e: unknown) => {
      throw cut() ? this.#recoveryWaitCutError() : e;
    });
    else if (!this.#tryShm(first, count, 'exclusive')) return false;
    const t0 = performance.now();
    try {
      if (onlyIfInvalid && this.#readHeader() !== null) return true; // another recovery of this connection made it good
      let r = await this.wal.recover();
      // the hook repairs damaged frames after the chain breaks, and a damaged header (bad magic,
      // page size or checksum: SQLite reads the WAL as empty) before any frame counts (fec/repair.ts)
      const damagedHeader = (r.headerStatus === 'bad-magic' || r.headerStatus === 'bad-page-size' || r.headerStatus === 'bad-checksum') && r.fileSize > WAL_HEADER_SIZE;
      if (this.#repairWal !== null && ((r.headerStatus === 'ok' && r.invalidTailBytes > 0) || damagedHeader) && (await this.#repairWal(this.wal, r))) r = await this.wal.recover();
      // a header still damaged under a live index that holds commits (`walnut recover` beside a
      // running sqlite3): restored from what that index knows, or the rebuild is refused
      if (stillDamaged(r) && r.fileSize > WAL_HEADER_SIZE && this.#restoreWalHeaderFromLiveIndex()) r = await this.wal.recover();
      const recovered = () => ({ path: this.dbPath, frames: r.mxFrame, commits: r.commits, micros: Math.round((performance.now() - t0) * 1000) });
      if (this.#events !== null) this.#events.emit('recovery', recovered);
      else publish('recovery', recovered);
      // SQLite takes salts and checksum order from a plausible header even when its checksum
      // fails (mxFrame stays 0 then); do the same so the bytes match.
      const head = new Uint8Array(WAL_HEADER_SIZE);
      const got = await this.wal.file.read(head, 0, WAL_HEADER_SIZE, 0);
      const raw = got === WAL_HEADER_SIZE ? decodeWalHeader(head) : null;
      const plausible = raw !== null && raw.header !== null && raw.status !== 'bad-magic' && raw.status !== 'bad-page-size';
      // Another page size matters only with a commit to read: a WAL that holds none is empty to
      // SQLite, whose next writer starts it again with the database's page size (and so does ours)
      if (r.headerStatus === 'ok' && r.mxFrame > 0 && r.pageSize !== this.pageSize) {
        throw walnutError('WALNUT_CORRUPT', `WAL page size ${r.pageSize} differs from the database's ${this.pageSize}`, { path: this.walPath });
      }
      const fields = {
        iChange: 0,
        bigEndCksum: plausible ? bigEndianChecksum(raw!.header!.magic) : false,
        pageSize: r.mxFrame > 0 ? r.pageSize : 0,
        mxFrame: r.mxFrame,
        nPage: r.dbSize,
        frameChecksum: (r.mxFrame > 0 ? r.running : [0, 0]) as [number, number],
        salts: (plausible ? [raw!.header!.salt1, raw!.header!.salt2] : [0, 0]) as [number, number],
      };
      // A header still valid that describes another WAL than the one recovered (`walnut recover`
      // of a WAL whose chain breaks before the header's mxFrame) is invalidated before any
      // segment is rewritten, and is valid again only when written whole below (copy 1, then
      // copy 0): killed between the two, a rebuild left that valid header over an index without
      // the frames past the break, and no connection recovered (readers saw pages of a state no
      // commit made). Where the header describes this WAL the copy rewrites the same words.
      const live = this.#readHeader();
      if (live !== null && !describesSameWal(live.header, fields)) {
        this.#meetHeader(live.header);
        this.#region.store32(SHM_HEADER_CKSUM, ~this.#region.load32(SHM_HEADER_CKSUM) >>> 0);
      }
      this.#region.grow(Math.max(1, r.lastValidFrame > 0 ? shmSegmentOf(r.lastValidFrame) + 1 : 1));
      // built aside and copied in whole: other connections' readers may be looking pages up
      if (r.lastValidFrame > 0) this.#region.rebuild(r.pgnos);
      this.#writeOwnHeader(fields, null);
      this.#region.store32(CKPT_NBACKFILL, 0);
      this.#region.store32(CKPT_NBACKFILL_ATTEMPTED, r.mxFrame);
      this.#region.store32(CKPT_READMARK(0), 0);
      for (let i = 1; i <= 4; i++) {
        if (this.#tryShm(SHM_LOCK.READ(i), 1, 'exclusive')) {
          this.#region.store32(CKPT_READMARK(i), i === 1 && r.mxFrame > 0 ? r.mxFrame : READMARK_NOT_USED);
          this.#unlockShm(SHM_LOCK.READ(i), 1);
        }
      }
      return true;
    } finally {
      this.#unlockShm(first, count);
    }
  }

  /**
   * The WAL header on disk is damaged (SQLite reads the WAL as empty), and this connection is
   * about to rebuild the index from it (rebuild(): `walnut recover`, `recover --repair` where no
   * sidecar copy fits): when the live index header is valid and counts committed frames, the
   * connections using it (a running sqlite3) have acknowledged those commits and would
   * checkpoint them from it, and a rebuild from the empty-reading WAL dropped every one (and
   * their last close removed the WAL). The header is restored from what the live index knows
   * (salts, page size, byte order) and frame 1 (the header's checksum, unwound from frame 1's;
   * format/wal-header.ts walHeaderBeforeFrame1), when every commit the index counts continues
   * its chain; else the rebuild is refused and the index left as it is. False when there is no
   * such live index (nothing to lose: recover as before); true when the header was rewritten.
   */
  #restoreWalHeaderFromLiveIndex(): boolean {
    const live = this.#readHeader();
    if (live === null || live.header.mxFrame === 0 || live.header.pageSize === 0) return false;
    const { pageSize, salts, bigEndCksum, mxFrame } = live.header;
    const frame = new Uint8Array(FRAME_HEADER_SIZE + pageSize);
    const got = this.wal.file.readSync(frame, 0, frame.length, WAL_HEADER_SIZE);
    const header = got === frame.length ? walHeaderBeforeFrame1(frame, { pageSize, salts, bigEndian: bigEndCksum }) : null;
    if (header === null || this.wal.scanUnderHeaderSync(header).mxFrame < mxFrame) {
      throw walnutError('WALNUT_CORRUPT', `the WAL header is damaged (SQLite reads the WAL as empty) while the live wal-index still counts ${mxFrame} committed frames of generation ${salts[0]}/${salts[1]}, and no header can be derived from it and frame 1: the index is left as it is (a rebuild from this WAL would drop those commits; the connections using it checkpoint them)`, { path: this.walPath, reason: 'WalHeaderDamaged' });
    }
    this.wal.file.writeSync(header, 0, WAL_HEADER_SIZE, 0);
    this.wal.file.fdatasyncSync();
    const restored = () => ({ stage: 'restore-header-from-index', path: this.walPath, salts, walFrames: mxFrame });
    if (this.#events !== null) this.#events.emit('wal', restored);
    else publish('wal', restored);
    return true;
  }

  // ---- read transactions (section 10) --------------------------------------------------

  /**
   * Begins a read transaction: a consistent view held until `release()`. With `useWal`, the
   * snapshot always holds a WAL read mark (never READ(0)), so no writer can restart the WAL
   * over its frames while it is held (SQLite's "must use WAL" reads; the exporter needs it).
   */
  /**
   * `cuttable`: a store's verb that close() waits for (store.snapshot(), begin()'s snapshot): once
   * cutLockWaits() came, a retry rejects WALNUT_CLOSED, reason ReadLockWaitCut (one that had to
   * wait for a read slot waited the rest of the busy timeout, and close() with it).
   */
  beginRead(options: { useWal?: boolean; cuttable?: boolean } = {}): Promise<Snapshot> {
    return this.#retryRead(() => this.#tryBeginRead(options.useWal === true), 'a read lock', options.cuttable === true);
  }

  /** Runs `attempt` until it gives a snapshot, retrying up to the busy timeout (WALNUT_BUSY, reason BusyRead); `cuttable`: beginRead()'s. */
  async #retryRead(attempt: () => Promise<Snapshot | null | typeof RACED>, what: string, cuttable = false): Promise<Snapshot> {
    this.#checkOpen();
    const deadline = performance.now() + this.busyTimeout;
    for (let n = 0; ; n++) {
      const s = await attempt();
      if (s !== null && s !== RACED) {
        this.#snapshots.add(s);
        return s;
      }
      // (a failed attempt holds nothing; one that lost a race waited for no lock: RACED)
      // (a lock another connection holds for a moment, as a writer setting its read mark does,
      // is let go by the next try: the cut comes on a second refusal in a row)
      if (cuttable && this.#lockWaitsCut && s !== RACED && n > 0) throw this.#readLockWaitCutError('a snapshot');
      if (performance.now() > deadline) {
        throw walnutError('WALNUT_BUSY', `could not take ${what} before the busy timeout`, { path: this.shmPath, reason: 'BusyRead' });
      }
      await pause(n);
    }
  }

  async #tryBeginRead(useWal: boolean): Promise<Snapshot | null | typeof RACED> {
    const { header, bytes } = await this.header();
    return this.#tryBeginReadAt(header, bytes, useWal);
  }

  /**
   * One synchronous attempt at beginRead(): null when a read mark could not be had right now
   * or when the header is not good (recovery is asynchronous: use beginRead()).
   */
  tryBeginReadSync(options: { useWal?: boolean } = {}): Snapshot | null {
    this.#checkOpen();
    this.checkMapping();
    const live = this.#readHeader();
    if (live === null) return null;
    const s = this.#tryBeginReadAt(live.header, live.bytes, options.useWal === true);
    if (s === RACED) return null;
    if (s !== null) this.#snapshots.add(s);
    return s;
  }

  #tryBeginReadAt(header: ShmHeader, bytes: Uint8Array, useWal: boolean): Snapshot | null | typeof RACED {
    const m = header.mxFrame;
    const nBackfill = this.#region.load32(CKPT_NBACKFILL);
    if (!useWal && nBackfill === m && this.#tryShm(SHM_LOCK.READ(0), 1, 'shared')) {
      if (this.#stillLive(bytes)) return this.#snapshot(0, header, bytes, 0);
      this.#unlockShm(SHM_LOCK.READ(0), 1);
      return RACED;
    }
    const slot = this.#lockReadMark(m, bytes);
    if (slot === READ_MARK_MOVED) return RACED;
    if (slot <= 0) return null;
    const minFrame = this.#region.load32(CKPT_NBACKFILL) + 1;
    return this.#snapshot(slot, header, bytes, minFrame, useWal);
  }

  /**
   * Holds (shared) the read slot whose mark is the largest at or below `limit`, first setting
   * a free slot's mark to `limit` when no slot has exactly it (SQLite's walTryBeginRead), and
   * checks that the mark and the header `bytes` are still live. Returns the slot;
   * READ_MARK_MOVED when the mark or the header moved meanwhile (retry at once); READ_MARK_HELD
   * when the slot is locked exclusively elsewhere; 0 when no slot at or below `limit` can be had.
   */
  #lockReadMark(limit: number, bytes: Uint8Array): number {
    let best = -1;
    let bestMark = 0;
    for (let i = 1; i <= 4; i++) {
      const mark = this.#region.load32(CKPT_READMARK(i));
      if (mark !== READMARK_NOT_USED && mark <= limit && (best < 0 || mark >= bestMark)) {
        best = i;
        bestMark = mark;
      }
    }
    if (best < 0 || bestMark < limit) {
      for (let i = 1; i <= 4; i++) {
        if (this.#tryShm(SHM_LOCK.READ(i), 1, 'exclusive')) {
          this.#region.store32(CKPT_READMARK(i), limit);
          this.#unlockShm(SHM_LOCK.READ(i), 1);
          best = i;
          bestMark = limit;
          break;
        }
      }
    }
    if (best < 0) return 0;
    if (!this.#tryShm(SHM_LOCK.READ(best), 1, 'shared')) return READ_MARK_HELD;
    if (this.#region.load32(CKPT_READMARK(best)) !== bestMark || !this.#stillLive(bytes)) {
      this.#unlockShm(SHM_LOCK.READ(best), 1);
      return READ_MARK_MOVED;
    }
    return best;
  }

  /**
   * A read transaction on the oldest state the WAL can still give: the state after frame
   * X = nBackfillAttempted of the live generation (0: the database file as the generation
   * found it). No checkpoint has copied a frame past X into the database file, so the file
   * with frames 1..X over it is exactly that state (minFrame 1: a partial checkpoint leaves
   * the file holding older versions of pages it skipped, which frames <= X still hold). The
   * snapshot keeps a read mark <= X, so checkpointers copy nothing past X and no writer
   * restarts the WAL while it is held; frames X+1..mxFrame are the commits since. The mark is
   * taken under CKPT shared, as sqlite3_snapshot_open does, so no checkpointer is between
   * choosing its safe frame and publishing nBackfillAttempted. After recovery X is mxFrame
   * (SQLite's rule: a crashed checkpointer may have copied anything). With every read slot in
   * use at marks above X it is an ordinary useWal snapshot of the newest state. Its
   * `generation` is the live header's; `mxFrame` is X. (An export's base image.)
   */
  beginOldestRead(): Promise<Snapshot> {
    return this.#retryRead(() => this.#tryBeginOldestRead(), 'a read lock on the oldest WAL state');
  }

  async #tryBeginOldestRead(): Promise<Snapshot | null | typeof RACED> {
    const { header, bytes } = await this.header();
    if (!this.#tryShm(SHM_LOCK.CKPT, 1, 'shared')) return null; // a checkpoint is running
    let x: number;
    let slot: number;
    try {
      x = Math.min(this.#region.load32(CKPT_NBACKFILL_ATTEMPTED), header.mxFrame);
      slot = this.#lockReadMark(x, bytes);
    } finally {
      this.#unlockShm(SHM_LOCK.CKPT, 1); // a mark we now hold keeps every later checkpointer at or below X
    }
    if (slot === 0 && x < header.mxFrame) return this.#tryBeginRead(true); // no slot at or below X: the newest state
    if (slot <= 0) return null;
    if (x === header.mxFrame) return this.#snapshot(slot, header, bytes, 1, true);
    try {
      return this.#snapshot(slot, header, bytes, 1, true, { mxFrame: x, dbSize: x > 0 ? this.#commitSizeOf(x) : undefined });
    } catch (e) {
      this.#unlockShm(SHM_LOCK.READ(slot), 1);
      throw e;
    }
  }

  /** The database size a commit frame records (WALNUT_CORRUPT when frame `n` is not a commit). */
  #commitSizeOf(n: number): number {
    const h = new Uint8Array(FRAME_HEADER_SIZE);
    const got = this.wal.file.readSync(h, 0, FRAME_HEADER_SIZE, frameOffset(n, this.pageSize));
    const size = got === FRAME_HEADER_SIZE ? decodeFrameHeader(h).commitSize : 0;
    if (size === 0) throw walnutError('WALNUT_CORRUPT', `WAL frame ${n}, where a checkpoint stopped, is not a commit frame`, { path: this.walPath });
    return size;
  }

  /**
   * Is the published header still `bytes` (a snapshot's headerBytes)? Nothing was committed,
   * restarted or recovered since. One read of the mapped header, no system call.
   */
  stillPublished(bytes: Uint8Array): boolean {
    return !this.closed && this.#region.segments() > 0 && this.#stillLive(bytes);
  }

  #stillLive(bytes: Uint8Array): boolean {
    this.#region.readHeader(this.#headerScratch);
    return sameHeaderBytes(this.#headerScratch, bytes);
  }

  /**
   * Snapshot.advance() and bringForward(): brings snapshot `s` (its `state`) up to date with ONE
   * read of the live header, or says it cannot. That read is also an observation for
   * dataVersion(), so `state.dataVersion` is the data version as of it: the view and its data
   * version come from the same moment (a SQL page cache is validated against that pair).
   *  - 'unchanged': the live header is still `state`'s (nothing committed, restarted or
   *    recovered since it began).
   *  - 'followed': every header published since `s` began is this connection's own (the live
   *    one is the last it wrote, and no other connection's commit was met since `s` began:
   *    #othersCommits, so its commit base holds), of the same WAL generation (no restart), and
   *    `s` holds a WAL read mark (READ(i > 0)): `state` is brought to the live header, as a
   *    snapshot begun now would see it, without a new read lock: no system call. Safe under
   *    SQLite's protocol: the frames past its read mark are this generation's, and the WAL
   *    cannot restart while READ(i) is held; a checkpoint copies no frame past the mark (a page
   *    `s` reads from the database file has no frame up to its new mxFrame, so none up to the
   *    mark: the checkpoint cannot change it). The mark then lags the frames `s` reads, which
   *    only limits checkpoints: it is moved up (#catchUpMark) once it lags MARK_LAG_FRAMES, and
   *    before each checkpoint of this connection (checkpointTarget's info()). minFrame stays
   *    (frames backfilled since are still in the WAL and the database file alike).
   *  - false, with `state` unchanged, otherwise (take a new snapshot).
   * (It was two reads of the header, and two asks whether the region is mapped: a lone SQL
   * transaction advances its kept snapshot over its own last commit every time.)
   */
  followOwnCommits(s: Snapshot, state: SnapshotState): 'unchanged' | 'followed' | false {
    if (this.#closed || (!this.#regionMapped && this.#region.segments() === 0)) return false;
    const raw = this.#headerScratch;
    this.#region.readHeader(raw);
    this.#observeHeaderBytes(this.#headerScratchFirst);
    if (sameHeaderBytes(raw, state.headerBytes)) {
      state.dataVersion = this.#dataVersion;
      return 'unchanged';
    }
    if (state.readLock === 0 || this.#ownHeader === null || !sameHeaderBytes(raw, this.#ownHeader)) return false;
    const base = this.#othersAtSnapshot.get(s);
    if (base === undefined) return false;
    const live = this.#decodeHeader(raw); // both copies agree and the checksum holds
    if (live === null || !sameHeaderBytes(live.bytes, this.#ownHeader)) return false;
    const h = live.header;
    const was = state.header;
    if (!sameSalts(h.salts, was.salts) || h.mxFrame < state.mxFrame || h.mxFrame === 0) return false;
    this.#meetHeader(h);
    if (this.#othersCommits !== base) return false;
    state.mxFrame = h.mxFrame;
    state.dbSize = state.dbFilePages = this.databaseSize(h);
    state.header = h;
    state.headerBytes = live.bytes;
    state.dataVersion = this.#dataVersion;
    if (h.mxFrame - this.#region.load32(CKPT_READMARK(state.readLock)) >= MARK_LAG_FRAMES) this.#catchUpMark(state.readLock);
    return 'followed';
  }

  /**
   * Raises READ(slot)'s mark to the frames this connection's snapshots on the slot read (the
   * lowest of their mxFrames; a snapshot advanced past the connection's own commits reads past
   * the mark it began with: followOwnCommits), when they are the slot's only holders here:
   * a mark changes only under the slot's exclusive lock (SQLite's rule: a reader of another
   * connection sharing the slot may rely on the lower mark), so the shared lock is converted to
   * exclusive and back (two fcntl; the slot stays locked throughout). Nothing happens when
   * another connection shares the slot, or a holder here is no snapshot (the follow pin): the
   * mark stays, which is safe.
   */
  #catchUpMark(slot: number): void {
    const byte = SHM_LOCK.READ(slot);
    const held = this.#held.get(byte);
    if (held === undefined || held.mode !== 'shared') return;
    let frame = Infinity;
    let holders = 0;
    for (const s of this.#snapshots) {
      if (s.readLock !== slot) continue;
      holders++;
      if (s.mxFrame < frame) frame = s.mxFrame;
    }
    if (holders !== held.count) return;
    const mark = this.#region.load32(CKPT_READMARK(slot));
    if (mark === READMARK_NOT_USED || mark >= frame) return;
    if (!this.#convertShm(byte, 'exclusive')) return;
    this.#region.store32(CKPT_READMARK(slot), frame);
    this.#convertShm(byte, 'shared'); // a downgrade always succeeds
  }

  /**
   * #catchUpMark for every read slot this connection's snapshots hold, parked ones brought
   * forward first (before a checkpoint plans what it may copy).
   */
  #catchUpMarks(): void {
    this.#bringParkedForward();
    for (let slot = 1; slot <= 4; slot++) this.#catchUpMark(slot);
  }

  /**
   * Brings each parked snapshot (Snapshot.park()) to the live header where only this connection
   * committed since; one that cannot follow (another connection committed, the WAL restarted
   * under it: it was moved to READ(0)) is let go: its owner would take a new snapshot at its
   * next use anyway, and meanwhile it would hold back checkpoints (READ(0) stops every copy).
   */
  #bringParkedForward(): void {
    for (const s of this.#snapshots) if (s.parked && !s.bringForward(CONSTRUCT_KEY)) s.release();
  }

  /** `at`: a view of an earlier frame of the generation than the header's (beginOldestRead). */
  #snapshot(readLock: number, header: ShmHeader, bytes: Uint8Array, minFrame: number, useWal = false, at?: { mxFrame: number; dbSize: number | undefined }): Snapshot {
    // The database file's size is needed only when the WAL is empty (it is then the database's
    // size); otherwise the header's nPage is, and a page below it that the file lacks reads
    // short and is zero-filled (Snapshot#locate). No stat per snapshot: on this ext4 a stat
    // makes the next fdatasync write the inode too (reference/commit-profile.md). A view of an
    // earlier frame (`at`) before the generation's first commit is the database file as it is.
    const dbFilePages = at !== undefined ? this.#databaseFilePages() : this.databaseSize(header);
    // READ(0): everything is in the database file; the WAL is not consulted at all.
    const mxFrame = readLock === 0 ? 0 : (at?.mxFrame ?? header.mxFrame);
    const dbSize = at !== undefined ? (at.dbSize ?? dbFilePages) : dbFilePages;
    // `bytes` is the live header (checked just now, nothing awaited since): an observation for
    // dataVersion(), whose count is then the snapshot's (Snapshot.dataVersion)
    this.#observeHeaderBytes(bytes);
    const dataVersion = this.#dataVersion;
    const snapshot = new Snapshot(CONSTRUCT_KEY, this, { readLock, mxFrame, minFrame, dbSize, dbFilePages, header, headerBytes: bytes, useWal, dataVersion }, (s) => {
      this.#snapshots.delete(s);
      if (!this.#closed) this.#unlockShm(SHM_LOCK.READ(s.readLock), 1); // READ(0) once moved (#moveCaughtUpSnapshots)
    });
    // `header` is the live one (checked just now, nothing awaited since): met in time order.
    // A view of an earlier frame (`at`) is no commit base: commits after it are already in `header`.
    this.#meetHeader(header);
    if (at === undefined) this.#othersAtSnapshot.set(snapshot, this.#othersCommits);
    return snapshot;
  }

  /**
   * The database's size in pages in the state header `h` describes: its nPage, or, when the WAL
   * is empty, the database file's size (one lseek; never a stat).
   */
  databaseSize(h: ShmHeader): number {
    return h.mxFrame > 0 ? h.nPage : this.#databaseFilePages();
  }

  /**
   * Pages in (from, to] that may still hold bytes of the database as it was before a commit
   * shrank it (the caller holds WRITE; `h` is the live header): a whole page of the database
   * file (a complete checkpoint cuts the file to nPage, but until one runs the old pages stay),
   * or a page with a frame in the WAL generation `h` names. A commit that grows the database
   * back over such a page without writing it writes zeros there (group-committer.ts): else the
   * old bytes came back, or zeros where a checkpoint had cut the file meanwhile. Pages past both
   * the file and every frame are skipped without a lookup (one lseek, and a pass over the
   * frames' page numbers only when the range starts below the highest).
   */
  pagesHoldingOldBytes(h: ShmHeader, from: number, to: number): number[] {
    const filePages = this.#databaseFilePages();
    let top = filePages;
    if (h.mxFrame > 0 && to > filePages) {
      const pgnos = new Uint32Array(h.mxFrame);
      this.#region.pageNumbers(1, pgnos);
      for (const p of pgnos) if (p > top) top = p;
    }
    const out: number[] = [];
    const end = Math.min(to, top);
    for (let p = from + 1; p <= Math.min(end, filePages); p++) out.push(p);
    const first = Math.max(from, filePages) + 1;
    if (h.mxFrame > 0 && end >= first) {
      const pgnos = new Uint32Array(end - first + 1);
      for (let i = 0; i < pgnos.length; i++) pgnos[i] = first + i;
      const frames = new Uint32Array(pgnos.length);
      this.#region.lookupMany(pgnos, h.mxFrame, 1, frames);
      for (let i = 0; i < pgnos.length; i++) if (frames[i] !== 0) out.push(pgnos[i]!);
    }
    return out;
  }

  /** Whole pages in the database file (one lseek; never a stat). */
  #databaseFilePages(): number {
    return Math.floor(this.db.sizeSync() / this.pageSize);
  }

  /**
   * The live header if it is good, else null, without locks or recovery. Also null when the
   * -shm was truncated under this connection (the next transaction reports it).
   */
  liveHeader(): ShmHeader | null {
    if (!this.#region.coversMapping()) return null;
    const h = this.#readHeader()?.header ?? null;
    if (h !== null) this.#lastGoodLive = h;
    return h;
  }

  /**
   * liveHeader(), or when the live header is not good the last good one liveHeader() read
   * (null when none, or the -shm truncated). Read without locks, the header is not good while
   * another process writes it: SQLite writes its two copies one after the other and may be
   * descheduled between them (measured: 16,838 of 5.96 million reads beside a sqlite3 writer).
   * The last good one is the commit boundary before that write: for a size, a frame count or
   * where conflicts count from, the older state (more conflicts, never fewer). Not for waiting
   * on new commits or recovery: a header that needs recovery stays not good (use header()).
   */
  liveOrLastGoodHeader(): ShmHeader | null {
    const h = this.liveHeader();
    if (h !== null) return h;
    return this.#region.coversMapping() ? this.#lastGoodLive : null;
  }

  /**
   * SQLite's PRAGMA data_version for this connection: a number that changes whenever another
   * connection (process, or another store on the same file) committed since this connection
   * last looked; its own commits do not change it. Synchronous: one read of the mapped header,
   * without checkMapping()'s fstat (it is asked several times per SQL transaction, whose read
   * transaction began with that check; the window left is the synchronous reads', native/shm.h).
   */
  dataVersion(): number {
    this.#checkOpen();
    this.#observeHeader();
    return this.#dataVersion;
  }

  /** Compares the live header (copy 0) with the last one seen; a difference is another connection's write. */
  #observeHeader(): void {
    if (!this.#regionMapped && this.#region.segments() === 0) return;
    this.#region.readHeader(this.#headerScratch);
    this.#observeHeaderBytes(this.#headerScratchFirst);
  }

  /** #observeHeader of a header's copy 0 already read (`live`: not kept). */
  #observeHeaderBytes(live: Uint8Array): void {
    if (this.#seenHeader !== null && sameHeaderBytes(live, this.#seenHeader)) return;
    if (this.#seenHeader !== null) this.#dataVersion++;
    this.#seenHeader = live.slice();
  }

  /**
   * Publishes a header this connection wrote over `replaces`, the live header (WRITE held);
   * what others wrote before it still counts (dataVersion, #othersCommits). `replaces` null:
   * rebuilt from the WAL by recovery, which may have found commits another connection wrote but
   * never published: counted as theirs unless the state is the one last met.
   */
  #writeOwnHeader(fields: Omit<ShmHeader, 'iVersion' | 'isInit'>, replaces: ShmHeader | null, replacesBytes?: Uint8Array): void {
    // `replacesBytes`: copy 0 of the live header `replaces` as read under this WRITE (an append's
    // publish: nobody else publishes meanwhile), so it is not read again
    if (replacesBytes === undefined) this.#observeHeader();
    else this.#observeHeaderBytes(replacesBytes);
    // one literal of a fixed shape: a spread of `fields` (whose shapes vary by caller) went
    // through V8's generic clone, ~5 µs of every batch's publish
    // (its numbers as the encoded bytes decode: it is also #readHeader's answer for them, below)
    const header: ShmHeader = {
      iVersion: SHM_VERSION,
      iChange: fields.iChange >>> 0,
      isInit: 1,
      bigEndCksum: fields.bigEndCksum,
      pageSize: fields.pageSize,
      mxFrame: fields.mxFrame >>> 0,
      nPage: fields.nPage >>> 0,
      frameChecksum: [fields.frameChecksum[0] >>> 0, fields.frameChecksum[1] >>> 0],
      salts: [fields.salts[0] >>> 0, fields.salts[1] >>> 0],
    };
    if (replaces !== null) {
      this.#meetHeader(replaces);
    } else {
      const met = this.#othersCommits;
      const live = this.#readHeader();
      if (live !== null) this.#meetHeader(live.header);
      this.#meetHeader(header);
      // Commits recovery found that this connection had not met are another connection's: the
      // data version changes, as for a header another connection published. #observeHeader
      // above compares copy 0 only, which a writer killed between its header's two copies left
      // as this connection last saw it (a page cache checked against dataVersion() kept the
      // pages from before that commit, and walnut/sql's next write overwrote it).
      if (this.#othersCommits !== met) this.#dataVersion++;
    }
    // encoded into one array of this index's own (see encodeShmHeader), kept as a fresh copy
    // that never meets a native call or a DataView (so it stays on the heap: no malloc)
    encodeShmHeader(fields, this.#publishBytes);
    this.#region.writeHeader(this.#publishBytes);
    this.#adoptOwnHeader(header, this.#publishBytes.slice());
  }

  /** After this connection published `header`, encoded as `bytes` (a fresh copy kept as is). */
  #adoptOwnHeader(header: ShmHeader, bytes: Uint8Array): void {
    this.#seenHeader = bytes;
    this.#ownHeader = bytes;
    this.#ownHeaderFields = header;
    this.#othersSeen = header;
    // the next #readHeader meets these bytes in both copies (WRITE is held): no decode and
    // checksum of what was just encoded (a snapshot advancing over this commit reads it)
    this.#lastRaw.set(bytes, 0);
    this.#lastRaw.set(bytes, SHM_HEADER_SIZE);
    this.#lastRead = { header, bytes };
  }

  /** Counts another connection's commit when only one explains `h` after the last header met (#othersCommits). */
  #meetHeader(h: ShmHeader): void {
    const last = this.#othersSeen;
    this.#othersSeen = h;
    if (last !== null && last !== h && committedBetween(last, h)) {
      this.#othersCommits++;
      this.#otherWriterAt = performance.now();
    }
  }

  /**
   * Another connection's commit was met within the last `ms` milliseconds (a writer of another
   * process or store is active: the committer then lets WRITE go after every batch, as SQLite's
   * writers do, instead of keeping it across batches).
   */
  otherWriterWithin(ms: number): boolean {
    return performance.now() - this.#otherWriterAt < ms;
  }

  /**
   * This connection's writer found the WAL due to restart within the last `ms` milliseconds and
   * could not restart it only because of another connection's follow pin (a follow export on a
   * connection of its own: `walnut export --follow`, createExportStream). That follower restarts
   * the WAL itself once it gets WRITE (export/follow.ts); a committer that kept WRITE from batch
   * to batch never let it, and the WAL grew without bound. The committer then lets WRITE go
   * after every batch, as for another writer (commit/group-committer.ts).
   */
  followerWaitsWithin(ms: number): boolean {
    const b = this.#followerBlocked;
    if (b === null || performance.now() - b.at >= ms) return false;
    const live = this.#closed ? null : this.liveHeader();
    return live !== null && sameSalts(live.salts, b.salts); // not restarted since
  }

  /**
   * After a restart found READ(1..4) held (caller holds WRITE, every frame copied; this
   * connection has no follower of its own, whose frames another connection could not hand
   * over): notes when every holder is another connection's follow pin (followerWaitsWithin). A slot this
   * connection cannot take exclusively and that is no such pin is a reader: the WAL waits for
   * it as before. A few F_OFD_GETLK per slot, only when a due restart failed.
   */
  #noteRestartBlocked(h: ShmHeader): void {
    let follower = false;
    for (let i = 1; i <= 4; i++) {
      if (this.followerOfAnotherIn(i, 1)) follower = true;
      else if (this.#shm!.lockHolder(SHM_LOCK.READ(i), 1, 'exclusive') !== null) return; // a reader
    }
    if (follower) this.#followerBlocked = { at: performance.now(), salts: [h.salts[0], h.salts[1]] };
  }

  /**
   * Under WRITE: did a connection other than this one commit after `base` began (a snapshot of
   * this connection)? Checks the live header against the count the snapshot recorded, so it
   * holds whatever happened in between: restarts and checkpoints by others (not commits), and
   * WALs of any length (no frame is read). Undefined when `base` is not a snapshot this
   * connection took with a base point (beginRead / tryBeginReadSync).
   * `live`: the live header as read under this WRITE (beginWriteRun, writeRunHeader): only this
   * connection publishes while it holds WRITE, so it is still the live one and is not read again
   * (the committer checks each conditional commit of a batch against the header it read for
   * the batch: one read of the -shm header per batch, not one more per commit).
   */
  othersCommittedSince(base: Snapshot, live?: ShmHeader): boolean | undefined {
    const mark = this.#othersAtSnapshot.get(base);
    if (mark === undefined) return undefined;
    if (!this.#writer) throw walnutError('WALNUT_INVALID_ARGUMENT', 'othersCommittedSince needs the write lock');
    const header = live ?? this.#readHeader()?.header;
    if (header === undefined) return true; // damaged under WRITE: nothing can be ruled out
    this.#meetHeader(header);
    return this.#othersCommits !== mark;
  }

  /**
   * othersCommitsMet after meeting the live header as it is now (read without a lock: a commit
   * waiting for WRITE asks, GroupCommitter #failOvertaken). A conditional commit whose base's
   * count (othersCommitsAt) is below it can only conflict once WRITE is had: another
   * connection's commit came after its base. A header not good at this moment (another process
   * writing it) is not met: the count stays what it was (fewer conflicts seen, never more).
   */
  othersCommitsNow(): number {
    const h = this.liveHeader();
    if (h !== null) this.#meetHeader(h);
    return this.#othersCommits;
  }

  /**
   * Other connections' commits this connection has met so far (#othersCommits; no header is
   * read), and the count as `base` began (undefined: no commit base). A conditional commit
   * whose base's count is below the current one can only conflict: othersCommittedSince, under
   * WRITE, meets at least the headers met by now (commit/sequencer.ts keeps snapshots from
   * laying such a commit's pages over the commit that overtook it).
   */
  get othersCommitsMet(): number {
    return this.#othersCommits;
  }
  othersCommitsAt(base: Snapshot): number | undefined {
    return this.#othersAtSnapshot.get(base);
  }

  /**
   * A commit this connection writes for another store (a commit lane's member: lane.ts) is
   * another connection's commit to this store's bases: it was not built on them. Counted when
   * the committer takes it into a batch (a batch that then fails leaves the count up: a base
   * taken before conflicts once more than it had to, never less), and once more as the batch
   * is published (GroupCommitter#writeBatch): a base taken between the two reads the state
   * without that commit, so it must conflict too. As it is published (`published`) it is also
   * another connection's commit to this connection's data version (PRAGMA data_version: every
   * store of a lane is a connection of its own; its own header write does not change
   * dataVersion(), so without this a page cache of the leader's, checked against
   * dataVersion() or Snapshot.dataVersion, kept the page as it was before a member's commit).
   */
  noteCommitForAnother(published = false): void {
    this.#othersCommits++;
    if (published) this.#dataVersion++;
  }

  /** Whether `s` can be a conditional commit's base here (a snapshot of this connection's, of the live state). */
  isCommitBase(s: unknown): s is Snapshot {
    return s instanceof Snapshot && this.#othersAtSnapshot.has(s);
  }

  /** The frame holding `pgno` for a snapshot (0 = read the database file). */
  lookup(pgno: number, mxFrame: number, minFrame: number): number {
    return this.#region.lookup(pgno, mxFrame, minFrame);
  }

  /** Batched lookups (benchmarks, checkpoint planning). */
  lookupMany(pgnos: Uint32Array, mxFrame: number, minFrame: number, out: Uint32Array): void {
    this.#region.lookupMany(pgnos, mxFrame, minFrame, out);
  }

  // ---- write transactions (section 11) -------------------------------------------------

  /**
   * Takes WRITE (retrying up to the busy timeout) for a snapshot that must still be the live
   * view; WALNUT_BUSY with reason BusySnapshot when another writer committed since.
   */
  async beginWrite(snapshot: Snapshot): Promise<void> {
    this.#checkOpen();
    const waited = await this.#lockShm(SHM_LOCK.WRITE, 1, 'exclusive'); // waits for this connection's checkpointer too
    this.#writer = true;
    try {
      if (waited) this.checkMapping(); // without a wait it runs within the read transaction checked as it began
    } catch (e) {
      this.endWrite();
      throw e;
    }
    const live = this.#readHeader();
    if (live === null || !sameHeaderBytes(live.bytes, snapshot.headerBytes)) {
      this.endWrite();
      throw walnutError('WALNUT_BUSY', 'the database changed since this snapshot was taken', { path: this.dbPath, reason: 'BusySnapshot' });
    }
  }

  /**
   * Takes WRITE for a run of commit batches (GroupCommitter keeps it across back-to-back batches;
   * endWrite() releases it), without a read snapshot: under WRITE only this connection publishes
   * headers, so the live header is the state the next append continues from (SQLite's writer
   * takes a read transaction first only to learn that state). Waits up to the busy timeout
   * (WALNUT_BUSY), checks the mapping and recovers an invalid header (header()). Returns the
   * live header. First it holds back for another connection's checkpointer that waits for
   * WRITE (#yieldToCheckpointer); `whileWaiting` is called before each sleep of the wait for
   * WRITE (the committer fails there the commits whose snapshots such a checkpointer may wait for,
   * and, `othersHoldWrite`, withdraws those of closing lane members); when it says true (nothing
   * is left to write) the wait ends at once, as a timeout would.
   * `cuttable`, asked once the store's close() cut the waits (cutLockWaits): false lets this
   * wait go on (the committer's batch holds other lane members' commits: their stores are open);
   * true ends it with WALNUT_CLOSED, reason WriteWaitCut while WRITE is held elsewhere, reason
   * RecoveryWaitCut while the header is torn and another connection holds CKPT or RECOVER.
   */
  async beginWriteRun(whileWaiting?: (othersHoldWrite: boolean) => boolean, cuttable?: () => boolean): Promise<ShmHeader> {
    this.#checkOpen();
    const deadline = performance.now() + this.busyTimeout;
    for (let attempt = 0; ; attempt++) {
      let kept = false;
      if (attempt === 0 && this.#writeReleaseDeferred && this.#writeQueue.length === 0) {
        this.#writeReleaseDeferred = false; // still locked during the zero-ahead: ours again (no yield: nobody else can take WRITE meanwhile)
        kept = true;
      } else {
        await this.#yieldToCheckpointer();
        this.#checkOpen();
        await this.#lockShm(SHM_LOCK.WRITE, 1, 'exclusive', whileWaiting, false, cuttable);
      }
      this.#writer = true;
      try {
        // (WRITE kept from the last run, or the lease's: held on, as before)
        if (kept || this.#leased) return (await this.header(false, cuttable)).header;
        const live = await this.#freshRunHeader();
        if (live !== null) return live.header;
      } catch (e) {
        this.endWrite();
        throw e;
      }
      this.endWrite();
      // the header is torn and another connection holds CKPT or RECOVER: close() cuts this wait
      // as header()'s (it waited the rest of the busy timeout for it), holding nothing; not a
      // batch holding other lane members' commits (`cuttable`), whose stores are open
      if (this.#lockWaitsCut && (cuttable?.() ?? true)) throw this.#recoveryWaitCutError();
      if (performance.now() > deadline) {
        throw walnutError('WALNUT_BUSY', 'the wal-index header stayed invalid while another connection held the checkpoint or recovery lock', { path: this.shmPath, reason: 'BusyRecovery' });
      }
      await pause(attempt);
    }
  }

  /**
   * beginWriteRun's header under the WRITE it just took, before anything of the run is written:
   * the live one, or one recovered now; null when the recovery's CKPT or RECOVER is held
   * elsewhere (tried once, not waited for): the run then lets WRITE go and takes it again after a
   * pause, as header() does for the WRITE it takes itself and as SQLite's walIndexReadHdr does
   * (walDisableBlocking, then walIndexRecover's locks without waiting: SQLITE_BUSY). Another
   * process's checkpointer holding CKPT waits for WRITE (sqlite3's TRUNCATE or RESTART) and
   * recovers the header itself once it has it; waiting for CKPT holding WRITE left both waiting
   * until a busy timeout ran out (test/interop/torn-shm-header-checkpointer).
   */
  async #freshRunHeader(): Promise<{ header: ShmHeader; bytes: Uint8Array } | null> {
    this.checkMapping();
    const live = this.#readHeader();
    if (live !== null) return live;
    return (await this.#recover(false, true, false)) ? this.#readHeader() : null;
  }

  /**
   * Under a WRITE run (beginWriteRun): the live header, re-validated (both copies equal, checksum
   * good) without a system call. Another user of the -shm cannot have published one without
   * WRITE; if one damaged it anyway, header() recovers it as a new reader would (WRITE held).
   * The mapping's size is not checked here (no system call per batch): the read is guarded
   * (native/shm_guard.h), so a -shm cut since the run began fails it with WALNUT_CORRUPT.
   */
  /** `cuttable`: beginWriteRun's (header()). */
  async writeRunHeader(cuttable?: () => boolean): Promise<ShmHeader> {
    return this.writeRunHeaderSync() ?? (await this.header(false, cuttable)).header;
  }

  /** writeRunHeader's answer when the live header is good (no promise), else null: then writeRunHeader() recovers it. */
  writeRunHeaderSync(): ShmHeader | null {
    if (!this.#writer) throw walnutError('WALNUT_INVALID_ARGUMENT', 'writeRunHeader needs the write lock (beginWriteRun)');
    return this.#readHeader()?.header ?? null;
  }

  /**
   * Appends transactions (WRITE held): fresh WAL header when the index says the WAL is
   * empty, frames + sync per `durability`, index entries, then the new header is published.
   * With `inline`, a small append (the group committer's lone commit) is written and synced on
   * the calling thread, as SQLite does, when that is safe and saves the I/O-thread round trip:
   * the WAL needs no new header and no I/O is pending on either lane (WalFile.lanesIdle);
   * otherwise, and to retry a stale window, it goes through the I/O thread as usual.
   * `onPublished` runs synchronously right after the header is published, before any other
   * code (a snapshot taken after it sees the transactions: commit/sequencer.ts needs that step).
   */
  async appendAndPublish(
    transactions: readonly WalTransaction[],
    durability: Durability,
    headerDurability: Durability = durability === 'none' ? 'none' : 'data',
    inline = false,
    onPublished?: () => void,
  ): Promise<AppendResult> {
    if (!this.#writer) throw walnutError('WALNUT_INVALID_ARGUMENT', 'appendAndPublish needs the write lock (beginWrite)');
    let live = this.#readHeader();
    if (live === null) throw walnutError('WALNUT_CORRUPT', 'the wal-index header became invalid under the write lock', { path: this.shmPath });
    const fullyBackfilled = this.#fullyBackfilled(live.header);
    let ownRestart = false;
    if (fullyBackfilled) {
      this.#moveCaughtUpSnapshots(live.header);
      // this WalFile's window names the generation being ended: its header is the one on disk
      const known = this.wal.windowIsAt(live.header.mxFrame, live.header.frameChecksum, live.header.salts);
      // Everything is in the database file and no reader uses the WAL: start it over from
      // frame 1 (SQLite's walRestartLog), so the file is reused instead of growing.
      if (await this.#restart(live.header)) {
        live = this.#readHeader()!;
        ownRestart = known;
      }
    }
    // frames past nBackfill are coming: a follow pin resting on READ(0) goes back to a slot, or
    // no checkpoint could copy them (this connection's own would copy past it: settleFollowPin)
    if (this.#followPin === 0) this.#followPinToSlot();
    const h = live.header;
    if (h.mxFrame > 0) this.#region.pageNumbers(h.mxFrame, this.#lastPgno); // WALNUT_CORRUPT when the -shm lacks its segment
    // A restart this connection made over its own generation reads nothing from the WAL before
    // the new header is written (WalFile.adoptOwnRestart); any other state is taken from the index.
    let current = false;
    if (ownRestart) this.wal.adoptOwnRestart();
    else current = await this.wal.adoptIndex({ mxFrame: h.mxFrame, nPage: h.nPage, running: h.frameChecksum, salts: h.salts, pageSize: h.pageSize, bigEndian: h.bigEndCksum });
    // The live header is still the one this connection published after its last append: nobody
    // changed the WAL since (SQLite's protocol publishes a new header with every commit, restart
    // and truncation; frames a writer left uncommitted after mxFrame are overwritten, as SQLite's
    // next writer does), so the append does not read the next slot for another writer's frame;
    // it still checks the WAL's header and size (a pread and an lseek: a file cut or rewritten
    // without the lock is refused).
    const unchanged = current && h.mxFrame > 0 && this.#ownHeader !== null && sameHeaderBytes(live.bytes, this.#ownHeader);
    // No lseek here (the mapping's size check): every touch of the mapping below is guarded
    // (native/shm_guard.h), so a -shm truncated meanwhile fails the index append or the header
    // publish with WALNUT_CORRUPT (ShmTruncated), and the catch below invalidates the frames.
    this.#growIndexFor(h.mxFrame, transactions);
    let result: AppendResult;
    if (h.mxFrame === 0) {
      // a new generation: its header written and synced, then the frames, in one I/O operation
      result = await this.wal.appendAfterHeader(transactions, durability, { pageSize: this.pageSize, checkpointSeq: this.wal.nextCheckpointSeq, durability: headerDurability });
    } else {
      try {
        result = await this.wal.append(transactions, durability, inline && WalFile.lanesIdle(), unchanged);
      } catch (e) {
        if ((e as { reason?: string }).reason !== 'StaleAppendWindow') throw e;
        // changed without the lock being visible to us (e.g. the file was truncated): re-read once
        await this.wal.adoptIndex({ mxFrame: h.mxFrame, nPage: h.nPage, running: h.frameChecksum, salts: h.salts, pageSize: h.pageSize, bigEndian: h.bigEndCksum }, true);
        result = await this.wal.append(transactions, durability);
      }
    }
    try {
      if (h.mxFrame === 0 && this.walSizeLimit !== undefined) await this.wal.limitSize(this.walSizeLimit);
      this.#publishAppend(transactions, result, h);
    } catch (e) {
      // written (and synced) but never published (the publish writes the header's copy 0 last:
      // a publish cut short by a truncated -shm published nothing), the batch fails: recovery
      // must not find its frames valid after a reopen, or commits reported failed would appear
      // (WRITE is still held: no other connection appends or recovers meanwhile)
      if (!(await this.wal.invalidateFrom(result.firstFrame, result.lastFrame))) markOutcomeUnknown(e);
      throw e;
    }
    return this.#published(result, onPublished);
  }

  /**
   * appendAndPublish(transactions, durability, _, true, onPublished) done without a promise when
   * it would run on this thread anyway: the WAL has frames and is not all backfilled (no restart,
   * no new header), this connection's WalFile wrote the last commit the live header names (its
   * window is current: nothing to read), and no I/O is pending (WalFile.lanesIdle). Null when any
   * of that does not hold, or the append found its window stale (nothing was written): then
   * appendAndPublish does it (a lone commit saves that path's four awaits, ~2 µs of its CPU).
   * Throws what appendAndPublish would reject with.
   */
  appendInline(transactions: readonly WalTransaction[], durability: Durability, onPublished?: () => void): AppendResult | null {
    if (!this.#writer) throw walnutError('WALNUT_INVALID_ARGUMENT', 'appendAndPublish needs the write lock (beginWrite)');
    const own = this.#ownHeaderFields;
    if (own !== null && own.mxFrame > 0 && this.wal.windowIsAt(own.mxFrame, own.frameChecksum, own.salts)) {
      // the common case in one native call: the live header is still the one this connection
      // published (checked there), so it is `own`; 0: it is not, go the long way below
      const done = this.#commitInline(transactions, durability, own, this.#ownHeader!);
      if (done === NOT_INLINE) return null;
      if (done !== HEADER_NOT_OWN) return this.#published(done, onPublished);
    }
    const live = this.#readHeader();
    if (live === null) return null;
    const h = live.header;
    if (h.mxFrame === 0 || this.#region.load32(CKPT_NBACKFILL) === h.mxFrame) return null;
    if (!this.wal.windowIsCurrent({ mxFrame: h.mxFrame, running: h.frameChecksum, salts: h.salts }) || !WalFile.lanesIdle()) return null;
    // as appendAndPublish: the live header still the one this connection published (no slot read)
    const unchanged = this.#ownHeader !== null && sameHeaderBytes(live.bytes, this.#ownHeader);
    // WALNUT_CORRUPT when the -shm lacks the last frame's segment; not asked when this connection
    // indexed that frame itself (the header it published after doing so is still the live one)
    if (!unchanged) this.#region.pageNumbers(h.mxFrame, this.#lastPgno);
    this.#growIndexFor(h.mxFrame, transactions);
    let result: AppendResult;
    try {
      result = this.wal.appendSync(transactions, durability, unchanged);
    } catch (e) {
      if ((e as { reason?: string }).reason === 'StaleAppendWindow') return null; // appendAndPublish re-reads it
      throw e;
    }
    try {
      this.#publishAppend(transactions, result, h, live.bytes); // read above, in this same synchronous step
    } catch (e) {
      // as appendAndPublish's: written and synced, never published
      if (!this.wal.invalidateFromSync(result.firstFrame, result.lastFrame)) markOutcomeUnknown(e);
      throw e;
    }
    return this.#published(result, onPublished);
  }

  /**
   * appendInline when the live header is `h` (this connection's own, encoded as `hBytes`):
   * WalFile.appendInline (native ShmRegion.commitInline) checks that, appends, indexes and
   * publishes the header after it in one call, as appendSync + #publishAppend do (the same
   * header fields; its checksums filled in natively). HEADER_NOT_OWN or NOT_INLINE when it
   * wrote nothing. A publish that failed after the write invalidated the frames (WalFile).
   */
  #commitInline(transactions: readonly WalTransaction[], durability: Durability, h: ShmHeader, hBytes: Uint8Array): AppendResult | typeof HEADER_NOT_OWN | typeof NOT_INLINE {
    let frames = 0;
    for (const t of transactions) frames += t.pages.length;
    const fields = {
      iChange: (h.iChange + 1) >>> 0,
      bigEndCksum: this.wal.bigEndianChecksums,
      pageSize: this.pageSize,
      mxFrame: (h.mxFrame + frames) >>> 0,
      nPage: transactions[transactions.length - 1]!.dbSize >>> 0,
      frameChecksum: h.frameChecksum, // filled in natively
      salts: this.wal.salts,
    };
    encodeShmHeader(fields, this.#publishBytes);
    this.#expectBytes.set(hBytes);
    const result = this.wal.appendInline(transactions, durability, this.#region, this.#expectBytes, this.#publishBytes);
    if (typeof result === 'number') return result === 0 ? HEADER_NOT_OWN : NOT_INLINE;
    // as #writeOwnHeader over `h` (its copy 0 `hBytes` is the live header: checked natively)
    this.#observeHeaderBytes(hBytes);
    this.#meetHeader(h);
    const running = this.wal.running;
    this.#adoptOwnHeader({
      iVersion: SHM_VERSION,
      iChange: fields.iChange,
      isInit: 1,
      bigEndCksum: fields.bigEndCksum,
      pageSize: fields.pageSize,
      mxFrame: fields.mxFrame,
      nPage: fields.nPage,
      frameChecksum: [running[0] >>> 0, running[1] >>> 0],
      salts: [fields.salts[0] >>> 0, fields.salts[1] >>> 0],
    }, this.#publishBytes.slice());
    return result;
  }

  /**
   * Before an append writes anything (WRITE held): the -shm grown to the segment of the last
   * frame `transactions` take after `mxFrame`, its blocks allocated (native GrowTo). A disk that
   * cannot hold that segment fails the append here, WALNUT_FULL with nothing written; grown only
   * by the index append after the write, it failed a batch that was already written and synced
   * (the store stopped: WALNUT_FAILED), as commitInline, which grows first, never did.
   */
  #growIndexFor(mxFrame: number, transactions: readonly WalTransaction[]): void {
    let frames = 0;
    for (const t of transactions) frames += t.pages.length;
    if (frames > 0) this.#region.grow(shmSegmentOf(mxFrame + frames) + 1);
  }

  /**
   * Indexes an append's frames and publishes the header after it over `h` (WRITE held);
   * `hBytes`: h's copy 0 when read in the same synchronous step (see #writeOwnHeader).
   */
  #publishAppend(transactions: readonly WalTransaction[], result: AppendResult, h: ShmHeader, hBytes?: Uint8Array): void {
    this.#region.append(result.firstFrame, this.#indexPgnos.copyOf(result.pgnos), h.mxFrame);
    this.#writeOwnHeader({
      iChange: (h.iChange + 1) >>> 0,
      bigEndCksum: this.wal.bigEndianChecksums,
      pageSize: this.pageSize,
      mxFrame: result.lastFrame,
      nPage: transactions[transactions.length - 1]!.dbSize,
      frameChecksum: this.wal.running,
      salts: this.wal.salts,
    }, h, hBytes);
  }

  #published(result: AppendResult, onPublished: (() => void) | undefined): AppendResult {
    this.#appends++;
    onPublished?.(); // synchronously after the publish (nothing awaited since)
    this.#startZeroAhead();
    return result;
  }

  /**
   * WRITE held: keeps zeros written and synced ahead of the WAL's last frame (WalFile.zeroAhead,
   * on the background lane, off the commit path). WRITE
   * is not let go until it settles (endWrite); this connection's appends go on meanwhile.
   */
  #startZeroAhead(): void {
    const zeroing = this.wal.zeroAhead(this.#backgroundWal);
    if (zeroing === null) return;
    this.#zeroing = true;
    void zeroing.then(() => {
      this.#zeroing = false;
      if (!this.#writeReleaseDeferred) return;
      this.#writeReleaseDeferred = false;
      if (!this.#closed) this.#unlockShm(SHM_LOCK.WRITE, 1);
    });
  }

  /**
   * Publishes an empty WAL generation (mxFrame 0, salt-1 + 1, fresh salt-2) and resets the
   * checkpoint info (walRestartHdr). Caller holds WRITE and READ(1..4).
   */
  #resetWalIndex(h: ShmHeader): void {
    const salt2 = (Math.random() * 0x100000000) >>> 0;
    this.#writeOwnHeader({ ...h, iChange: (h.iChange + 1) >>> 0, mxFrame: 0, salts: [(h.salts[0] + 1) >>> 0, salt2] }, h);
    this.#region.store32(CKPT_NBACKFILL, 0);
    this.#region.store32(CKPT_NBACKFILL_ATTEMPTED, 0);
    this.#region.store32(CKPT_READMARK(1), 0);
    for (let i = 2; i <= 4; i++) this.#region.store32(CKPT_READMARK(i), READMARK_NOT_USED);
  }

  /**
   * Followers (exporters) read the WAL's frames themselves, never the database file, so what
   * they need is only that no frame is overwritten before they have it. The connection holds one
   * read slot for all of them (the follow pin): READ(i) shared with aReadMark[i] = READMARK_NOT_USED.
   * A held read lock keeps every restart out (SQLite's and walnut's need READ(1..4) exclusively);
   * a mark above every mxFrame never limits a checkpoint (SQLite's walCheckpoint and
   * checkpoint/plan.ts skip marks >= mxSafeFrame), and no reader picks that slot (its mark is
   * above every mxFrame) nor can lock it to rewrite the mark. So checkpoints copy everything,
   * and the WAL restarts only through #restart, which hands each follower the frames it has
   * not read yet (WalTail) and takes the pin back before WRITE is released: no generation can
   * begin and end unseen. (Or, while the followers have every frame, READ(0) shared: see
   * settleFollowPin.) Returns the unregister function; WALNUT_BUSY when no slot frees up
   * within the busy timeout (four readers at four different marks).
   */
  async followWal(f: Follower): Promise<() => void> {
    this.#checkOpen();
    const deadline = performance.now() + this.busyTimeout;
    // a pin resting on READ(0) guards only followers that have every frame up to nBackfill: a
    // new one (at its snapshot's frame) gets the pin back on a slot first
    const pinned = (): boolean => (this.#followPin === null ? this.#takeFollowPin() : this.#followPinToSlot());
    for (let attempt = 0; !pinned(); attempt++) {
      if (performance.now() > deadline) throw walnutError('WALNUT_BUSY', 'no read slot free for the follower before the busy timeout', { path: this.shmPath, reason: 'BusyRead' });
      await pause(attempt);
      this.#checkOpen();
    }
    this.#followers.add(f);
    return () => {
      if (!this.#followers.delete(f) || this.#followers.size > 0 || this.#followPin === null) return;
      if (this.#pinInRestart) {
        this.#pinReleaseDue = true; // #restart lets it go (see #pinInRestart)
        return;
      }
      if (!this.#closed) this.#unlockShm(SHM_LOCK.READ(this.#followPin), 1);
      this.#followPin = null;
    };
  }

  /** The follow pin: a slot locked exclusively and marked unused, then kept shared (an atomic conversion). */
  #takeFollowPin(): boolean {
    for (let i = 4; i >= 1; i--) {
      if (!this.#tryShm(SHM_LOCK.READ(i), 1, 'exclusive')) continue;
      this.#region.store32(CKPT_READMARK(i), READMARK_NOT_USED);
      this.#convertShm(SHM_LOCK.READ(i), 'shared');
      this.#followPin = i;
      return true;
    }
    // every slot is held: share one already marked unused (another process's follower), if any
    for (let i = 4; i >= 1; i--) {
      if (this.#region.load32(CKPT_READMARK(i)) !== READMARK_NOT_USED || !this.#tryShm(SHM_LOCK.READ(i), 1, 'shared')) continue;
      if (this.#region.load32(CKPT_READMARK(i)) === READMARK_NOT_USED) {
        this.#followPin = i;
        return true;
      }
      this.#unlockShm(SHM_LOCK.READ(i), 1);
    }
    return false;
  }

  /**
   * Moves the follow pin between its read slot and READ(0), so that SQLite's RESTART and TRUNCATE
   * checkpoints (another process's `PRAGMA wal_checkpoint`) are not held up by it. Such a
   * checkpoint copies every frame, then waits, holding WRITE (every writer waits with it), for
   * READ(1..4) exclusively, and a slot pin is one of them: it waited out its busy timeout and
   * returned busy (a soak: ~40 s of 240 s stalled). READ(0) shared is as good a pin for
   * followers that have every frame up to nBackfill: no frame past nBackfill can be copied while
   * it is held (a copy needs READ(0) exclusively), and no restart comes before every frame is
   * copied (SQLite's walRestartLog and checkpoints restart only at nBackfill == mxFrame), so no
   * frame a follower lacks can be overwritten; it is what SQLite's own idle reader holds once
   * the WAL is all copied (walTryBeginRead). So the pin moves to READ(0) when every follower has
   * read every frame of the live generation, all of them copied, and another connection holds
   * CKPT and WRITE (a checkpoint waiting for readers): READ(0) shared is taken, the header is
   * read again (unchanged, still all copied), then the slot is let go. It goes back to a slot
   * (then READ(0) is let go) as soon as frames past nBackfill exist, else no checkpoint could
   * copy them (as behind an idle SQLite reader): here (the follower's timer, every pollMs), before
   * this connection's own appends and copies (OFD locks on one descriptor never conflict: its own
   * copy would pass the pin, and another process's restart then overwrite frames not yet read),
   * and before another follower joins. Not while #restart holds the slot.
   */
  settleFollowPin(): void {
    const pin = this.#followPin;
    if (pin === null || this.#pinInRestart || this.#closed || this.#shm === null || !this.#region.coversMapping()) return;
    const live = this.#readHeader();
    if (live === null) return; // another process is writing it: next time
    const copied = this.#region.load32(CKPT_NBACKFILL) === live.header.mxFrame;
    if (pin === 0) {
      if (!copied) this.#followPinToSlot();
      return;
    }
    if (!copied || !this.#followersHaveAll(live.header) || !this.#restartWaitsElsewhere()) return;
    const seen = live.bytes.slice();
    if (!this.#tryShm(SHM_LOCK.READ(0), 1, 'shared')) return; // a checkpointer is copying
    const again = this.#readHeader();
    if (again === null || !sameHeaderBytes(again.bytes, seen) || this.#region.load32(CKPT_NBACKFILL) !== again.header.mxFrame) {
      this.#unlockShm(SHM_LOCK.READ(0), 1);
      return;
    }
    this.#unlockShm(SHM_LOCK.READ(pin), 1);
    this.#followPin = 0;
  }

  /** Every follower has read every frame of the generation `h` (or `h` has none). */
  #followersHaveAll(h: ShmHeader): boolean {
    for (const f of this.#followers) {
      const at = f.position();
      if (h.mxFrame > 0 && !(sameSalts(at.salts, h.salts) && at.mxFrame >= h.mxFrame)) return false;
    }
    return true;
  }

  /** Another connection holds CKPT and WRITE: a checkpoint that may be waiting for the read slots (two F_OFD_GETLK). */
  #restartWaitsElsewhere(): boolean {
    return this.#shm!.lockHolder(SHM_LOCK.CKPT, 1, 'exclusive') !== null && this.#shm!.lockHolder(SHM_LOCK.WRITE, 1, 'exclusive') !== null;
  }

  /**
   * The follow pin off READ(0), back on a read slot taken as followWal takes one, READ(0) let go
   * once it is (settleFollowPin). True when the pin is not on READ(0) (now, or already); false
   * when no slot is free (it stays on READ(0), which keeps every frame past nBackfill in place).
   */
  #followPinToSlot(): boolean {
    if (this.#followPin !== 0) return true;
    if (this.#pinInRestart) return false;
    this.#followPin = null;
    if (!this.#takeFollowPin()) {
      this.#followPin = 0;
      return false;
    }
    this.#unlockShm(SHM_LOCK.READ(0), 1);
    return true;
  }

  /** Converts a lock this connection holds once (the follow pin) in place: no other holder can slip in between. */
  #convertShm(byte: number, mode: LockMode): boolean {
    const held = this.#held.get(byte)!;
    if (this.#shm !== null && !this.#shm.tryLock(byte, 1, mode)) return false;
    held.mode = mode;
    return true;
  }

  /**
   * Restarts the WAL (caller holds WRITE; every frame is in the database file): READ(1..4)
   * exclusively, the follow pin's slot converted in place, so no reader can start in between;
   * the followers get the frames they have not read (a read under WRITE: nothing can be appended
   * meanwhile); then the empty generation is published and the pin goes back to shared, marked
   * unused again. A pin resting on READ(0) (settleFollowPin) stays there: all four slots are
   * taken, and its followers have every frame (any they lack are handed over all the same).
   * False (nothing done) when a reader holds a slot or a follower lags by more than
   * MAX_HANDOVER_BYTES; a failed read of the tail also just leaves the WAL as it is.
   */
  async #restart(h: ShmHeader): Promise<boolean> {
    const pin = this.#followPin;
    if (pin === null) {
      if (!this.#tryShm(SHM_LOCK.READ(1), 4, 'exclusive')) {
        this.#noteRestartBlocked(h);
        return false;
      }
      try {
        this.#resetWalIndex(h);
      } finally {
        this.#unlockShm(SHM_LOCK.READ(1), 4);
      }
      return true;
    }
    const others = [1, 2, 3, 4].filter((i) => i !== pin);
    const got: number[] = [];
    const unlock = (): void => {
      for (const i of got) this.#unlockShm(SHM_LOCK.READ(i), 1);
    };
    // (another connection's follower in the way here cannot restart the WAL either: it cannot
    // hand this connection's followers their frames, so no WRITE is left free for it)
    for (const i of others) {
      if (!this.#tryShm(SHM_LOCK.READ(i), 1, 'exclusive')) {
        unlock();
        return false;
      }
      got.push(i);
    }
    // a pin resting on READ(0) (settleFollowPin) needs no conversion: it keeps no restart out
    if (pin > 0 && !this.#convertShm(SHM_LOCK.READ(pin), 'exclusive')) {
      unlock(); // another process's follower shares the slot
      return false;
    }
    this.#pinInRestart = true;
    try {
      if (!(await this.#handOverToFollowers(h))) return false;
      this.checkMapping();
      this.#resetWalIndex(h);
      if (pin > 0) this.#region.store32(CKPT_READMARK(pin), READMARK_NOT_USED); // the reset marked slot 1 as a reader at frame 0
      return true;
    } finally {
      this.#pinInRestart = false;
      if (!this.#closed) {
        if (pin > 0) this.#convertShm(SHM_LOCK.READ(pin), 'shared'); // a downgrade always succeeds
        unlock();
      }
      if (this.#pinReleaseDue) {
        // the last follower went during the restart: its pin goes now (unless another came since)
        this.#pinReleaseDue = false;
        if (this.#followers.size === 0 && this.#followPin === pin) {
          if (!this.#closed) this.#unlockShm(SHM_LOCK.READ(pin), 1);
          this.#followPin = null;
        }
      }
    }
  }

  /** Reads, for each follower, the frames of the generation `h` it has not read, and hands them over. */
  async #handOverToFollowers(h: ShmHeader): Promise<boolean> {
    const frameSize = FRAME_HEADER_SIZE + this.pageSize;
    const due: [Follower, number][] = [];
    for (const f of this.#followers) {
      const at = f.position();
      const after = sameSalts(at.salts, h.salts) ? at.mxFrame : 0;
      if (after >= h.mxFrame) continue;
      if (f.pendingBytes() + (h.mxFrame - after) * frameSize > MAX_HANDOVER_BYTES) return false;
      due.push([f, after]);
    }
    if (due.length === 0) return true;
    const from = Math.min(...due.map(([, after]) => after));
    const header = new Uint8Array(WAL_HEADER_SIZE);
    const frames = Buffer.allocUnsafe((h.mxFrame - from) * frameSize);
    try {
      const got = await Promise.all([this.wal.file.read(header, 0, WAL_HEADER_SIZE, 0), this.wal.file.read(frames, 0, frames.length, frameOffset(from + 1, this.pageSize))]);
      if (got[0] !== WAL_HEADER_SIZE || got[1] !== frames.length) return false;
    } catch {
      return false; // the restart waits; the followers read the frames themselves
    }
    for (const [f, after] of due) f.handOver({ salts: [h.salts[0], h.salts[1]], header, after, frames: frames.subarray((after - from) * frameSize) });
    this.#handedOverFrames += h.mxFrame - from;
    return true;
  }

  /**
   * Frames this connection's WAL restarts read under WRITE for its followers, which had not read
   * them yet: the restarting batch waited for those reads. Followers that keep up (an export
   * catches up while the batch waits for the checkpoint) leave none.
   */
  get handedOverFrames(): number {
    return this.#handedOverFrames;
  }

  /** Every frame of `h`'s (non-empty) WAL is in the database file: the WAL may restart once no reader uses it. */
  #fullyBackfilled(h: ShmHeader): boolean {
    return h.mxFrame > 0 && this.#region.load32(CKPT_NBACKFILL) === h.mxFrame;
  }

  /**
   * This connection's snapshots (transactions, store.snapshot()) are readers too, and while one
   * holds a WAL read mark the WAL cannot restart: under continuous load some transaction is
   * always open. A snapshot that sees every frame of the live generation, all of them copied
   * into the database file, reads exactly the same pages from the database file: it moves to
   * READ(0), as a snapshot begun now would get (SQLite's walTryBeginRead), keeping its
   * generation for the conflict check. Not a `useWal` snapshot (an export reads the WAL's frames
   * themselves; it gives its mark up as a follower instead). Caller holds WRITE, so no frame can be added meanwhile;
   * READ(0) is refused while a checkpointer copies (it holds READ(0) exclusively). A read of a WAL frame already queued completes before the restarted
   * WAL's first write: both run on this connection's I/O lane, in submission order. Not so for
   * a checkpoint's restart or truncate (`otherLane`): there a moved snapshot's old read mark is
   * let go only once its reads in flight have ended.
   */
  #moveCaughtUpSnapshots(h: ShmHeader, otherLane = false): void {
    this.#bringParkedForward(); // idle, kept across this connection's commits: they see `h` now
    for (const s of this.#snapshots) {
      if (s.readLock === 0 || !s.canMoveToDatabaseFile(CONSTRUCT_KEY, h)) continue;
      if (!this.#tryShm(SHM_LOCK.READ(0), 1, 'shared')) return; // a checkpointer is still copying
      const from = s.readLock;
      s.moveToDatabaseFile(CONSTRUCT_KEY);
      if (!otherLane) this.#unlockShm(SHM_LOCK.READ(from), 1);
      // A checkpoint's truncate cuts the WAL on the background lane, and its restart lets
      // another process's next commit overwrite frames from 1: neither is ordered after a read
      // of a WAL frame this snapshot has in flight on its lane (located before the move, pread
      // after). The old mark stays until those reads end, and the checkpoint's lock of
      // READ(1..4) waits for it (a snapshot read back to back through a truncate failed
      // WALNUT_CORRUPT "frame N is beyond the end of the WAL", dozens of reads in every run).
      else s.afterReadsInFlight(CONSTRUCT_KEY, () => {
        if (!this.#closed) this.#unlockShm(SHM_LOCK.READ(from), 1);
      });
    }
  }

  /**
   * For a follower when the WAL's writers are other processes (export/follow.ts): the WAL is
   * restarted as this connection's own writer would restart it (#restart), the caller holding
   * WRITE through checkpointTarget() and having checkpointed everything. False (nothing done)
   * when a frame is not yet in the database file or a reader is in the WAL.
   */
  async restartPastFollowers(): Promise<boolean> {
    this.#checkOpen();
    if (!this.#writer) throw walnutError('WALNUT_INVALID_ARGUMENT', 'restartPastFollowers needs the write lock');
    this.checkMapping();
    const live = this.#readHeader();
    if (live === null || !this.#fullyBackfilled(live.header)) return false;
    return this.#restart(live.header);
  }

  /**
   * This connection's descriptors of the database and the WAL on the background lane (opened
   * once, closed by close()): the checkpointer's and the WAL zero-ahead's. (They are OFD
   * descriptors: opening and closing them does not touch the connection's locks.) They are
   * opened through the connection's own descriptors (sameFileAs), not by name: a -wal removed
   * or replaced by name since this connection opened it is still the WAL its commits went
   * into, and the last closer's checkpoint must copy that one (opened by name, the open failed
   * and the unlinked WAL's acknowledged commits were lost, or it read a stranger's file).
   */
  #backgroundFiles(): Promise<[WalnutFile, WalnutFile]> {
    if (this.#background === null) {
      const opening = openBoth(this.db, this.wal.file);
      this.#background = opening;
      // a failed open is not kept: the next checkpoint (or zeroing) tries again (a transient
      // EMFILE/EIO once failed every later checkpoint of the connection)
      opening.catch(() => {
        if (this.#background === opening) this.#background = null;
      });
    }
    return this.#background;
  }

  /**
   * This connection's descriptor of the WAL on the read lane (opened once, closed by close()),
   * that followers (export/follow.ts) read frames through: on the background lane their reads
   * queued behind the checkpoint's copies and database sync (1-2 ms a read beside 64
   * committers), the follower fell behind, and the batch that restarted the WAL waited under
   * WRITE while the frames it had not read were read for it (#handOverToFollowers); the
   * checkpoint a batch waits for queued behind the follower's reads in turn.
   */
  followerWalFile(): Promise<WalnutFile> {
    this.#checkOpen();
    if (this.#followerWal === null) {
      const opening = openSameFile(this.wal.file, { lane: 'read', readOnly: true }); // (the WAL this connection writes: #backgroundFiles)
      this.#followerWal = opening;
      opening.catch(() => {
        if (this.#followerWal === opening) this.#followerWal = null; // the next follower tries again
      });
    }
    return this.#followerWal;
  }

  /**
   * The narrow interface the checkpointer works through (lib/checkpoint/execute.ts). Its file
   * I/O goes through descriptors on the background lane (#backgroundFiles), so a checkpoint's
   * copies and syncs never queue in front of this connection's commits.
   */
  async checkpointTarget(): Promise<CheckpointTarget> {
    this.#checkOpen();
    const [db, walFile] = await this.#backgroundFiles();
    return {
      pageSize: this.pageSize,
      dbPath: this.dbPath,
      db,
      walFile,
      tryLock: (byte, n, mode) => this.#tryShm(byte, n, mode),
      // (a wait for readers: cut by close(), cutLockWaits, at its next try; the checkpoint's
      // finally lets go of what it holds)
      lock: async (byte, n, mode, giveUp) => {
        try {
          await this.#lockShm(byte, n, mode, () => this.#lockWaitsCut || giveUp?.() === true);
          return true;
        } catch (e) {
          if ((e as { code?: string }).code !== 'WALNUT_BUSY') throw e;
          if (this.#lockWaitsCut) throw this.#readLockWaitCutError('a checkpoint');
          return false;
        }
      },
      // after close() the locks went with the descriptor: nothing to release (and a failure
      // that reached here must not be masked by WALNUT_CLOSED from the unlock)
      unlock: (byte, n) => {
        if (!this.#closed) this.#unlockShm(byte, n);
      },
      acquireWrite: async () => {
        try {
          await this.#lockShm(SHM_LOCK.WRITE, 1, 'exclusive');
        } catch (e) {
          if ((e as { code?: string }).code === 'WALNUT_BUSY') return false;
          throw e;
        }
        this.#writer = true;
        return true;
      },
      releaseWrite: () => this.endWrite(),
      header: async () => (await this.header(true)).header, // runCheckpoint holds CKPT: a recovery runs under it
      // The checkpointer awaits copies and syncs between these calls, and the -shm can be cut
      // meanwhile: each checks the mapping first (one lseek; a checkpoint makes a handful). The
      // lookups follow pageNumbers() without an await, so they need no check of their own.
      liveMxFrame: () => this.#mapped(() => this.#readHeader()?.header.mxFrame ?? -1),
      sameGeneration: (salts) =>
        this.#mapped(() => {
          // a null header is another writer between its two copies: read again (a copy is a
          // few dozen bytes); still torn after that many reads counts as changed
          for (let i = 0; i < 1000; i++) {
            const live = this.#readHeader();
            if (live !== null) return sameSalts(live.header.salts, salts);
          }
          return false;
        }),
      // this connection's snapshots advanced past its own commits raise their marks first (#catchUpMark)
      info: () =>
        this.#mapped(() => {
          this.#catchUpMarks();
          return this.checkpointInfo();
        }),
      setReadMark: (i, v) => this.#mapped(() => this.#region.store32(CKPT_READMARK(i), v)),
      setNBackfill: (v) => this.#mapped(() => this.#region.store32(CKPT_NBACKFILL, v)),
      setNBackfillAttempted: (v) => this.#mapped(() => this.#region.store32(CKPT_NBACKFILL_ATTEMPTED, v)),
      pageNumbers: (first, out) => this.#mapped(() => this.#region.pageNumbers(first, out)),
      lookup: (pgno, mx, min) => this.#region.lookup(pgno, mx, min),
      resetWalIndex: (h) => this.#mapped(() => this.#resetWalIndex(h)),
      followPin: () => this.#followPin,
      followPinToSlot: () => this.#mapped(() => this.#followPinToSlot()),
      followerOfAnotherIn: (slot, n) => this.#mapped(() => this.followerOfAnotherIn(slot, n)),
      restartPastFollowers: () => this.restartPastFollowers(),
      moveCaughtUpSnapshots: () =>
        this.#mapped(() => {
          const live = this.#readHeader();
          if (live !== null && this.#fullyBackfilled(live.header)) this.#moveCaughtUpSnapshots(live.header, true);
        }),
      copyFrames: (pgnos, request) => nativeCheckpoint.copy(nativeHandleOf(walFile), nativeHandleOf(db), pgnos, request),
      syncDb: (truncateTo, sync) => nativeCheckpoint.syncDb(nativeHandleOf(db), truncateTo, sync),
      walDurableThrough: (salts) => this.wal.durableThrough(salts),
      noteWalDurable: (frame, salts) => this.wal.noteDurable(frame, salts),
    };
  }

  /**
   * True when one of READ(slot .. slot+n-1) is another connection's follow pin: held shared
   * while its mark is READMARK_NOT_USED. No SQLite reader holds such a slot (a reader's mark is
   * at most mxFrame, and a mark changes only under its slot's exclusive lock), and a follower
   * keeps its pin for as long as its export runs, so a restart or truncate that waits for it
   * holds WRITE, and with it every commit of every connection, for its whole busy timeout, and
   * is busy all the same: only that connection's own writer restarts past it (#restart hands its
   * followers the frames they lack). Up to three F_OFD_GETLK per slot; own pin excluded.
   */
  followerOfAnotherIn(slot: number, n: number): boolean {
    if (this.#shm === null || this.#closed) return false;
    for (let i = Math.max(slot, 1); i < slot + n && i <= 4; i++) {
      if (i === this.#followPin || this.#region.load32(CKPT_READMARK(i)) !== READMARK_NOT_USED) continue;
      // held (an exclusive lock would wait), and by shared holders only (a shared one would not)
      if (this.#shm.lockHolder(SHM_LOCK.READ(i), 1, 'exclusive') !== null && this.#shm.lockHolder(SHM_LOCK.READ(i), 1, 'shared') === null) return true;
    }
    return false;
  }

  /**
   * Takes EXCLUSIVE on the database file if no other connection (walnut or SQLite) has it open
   * (our SHARED lock converts only when nobody else holds part of the range), as SQLite's last
   * connection does before it checkpoints and deletes the -wal and -shm. Openers then wait.
   */
  #tryExclusive(): boolean {
    return this.lockingMode === 'exclusive' || tryExclusive(this.db);
  }

  /**
   * close() as SQLite's last connection closes (sqlite3WalClose): when no other connection has
   * the database open (EXCLUSIVE on the database file) and `removable()` then says every frame is
   * in the database file (it may checkpoint to make it so), the -shm, then the -wal, are removed
   * while EXCLUSIVE is still held. Resolves with whether they were. In this process's close turn
   * of the file (inCloseTurn): another connection of this process closing at the same moment has
   * closed, its SHARED gone, before this one asks, so the last of them to close is the last
   * connection.
   */
  closeAsLast(removable: () => boolean | Promise<boolean>): Promise<boolean> {
    return inCloseTurn(this.#fileKey, async () => {
      let remove = false;
      try {
        await this.#takeCloseTurnLock();
        remove = !this.#closed && this.#tryExclusive() && (await removable());
      } finally {
        await this.#close(remove);
      }
      return remove;
    });
  }

  /** Commits this connection has appended (a follower leaves restarts to this connection's writer while it writes). */
  get appends(): number {
    return this.#appends;
  }

  /** True while this connection holds CKPT: one of its checkpoints runs (its auto-checkpoint, a follower's restart attempt, a caller's). */
  get checkpointing(): boolean {
    return this.#held.has(SHM_LOCK.CKPT);
  }

  /** True while this connection holds WRITE (its committer, a checkpoint's restart, a follower). */
  get writing(): boolean {
    return this.#writer;
  }

  /** Takes WRITE if it is free now (a follower's restart, export/follow.ts); endWrite() releases it. */
  tryBeginWrite(): boolean {
    this.#checkOpen();
    if (this.#writer || !this.#tryShm(SHM_LOCK.WRITE, 1, 'exclusive')) return false;
    this.#writer = true;
    return true;
  }

  /**
   * Keeps SQLite's WAL write lock (WRITE) from now until close(): other connections (sqlite3
   * processes, other stores) can still read and checkpoint, but every commit of theirs waits
   * and then fails busy. This connection's own writers (commits, checkpoints that restart the
   * WAL, recovery) take turns as before. Waits for WRITE up to the busy timeout (WALNUT_BUSY);
   * after cutLockWaits() not at all (WALNUT_CLOSED).
   */
  async holdWriteLease(): Promise<void> {
    this.#checkOpen();
    while (this.#leaseTaking !== null) await this.#leaseTaking.catch(() => undefined);
    this.#checkOpen();
    if (this.#leased) {
      this.#leaseHolds++;
      return;
    }
    if (this.#lockWaitsCut) throw this.#leaseWaitCutError();
    this.#leaseTaking = this.#lockShm(SHM_LOCK.WRITE, 1, 'exclusive', () => this.#lockWaitsCut, true).then(
      () => {
        if (this.#lockWaitsCut) {
          this.#unlockShm(SHM_LOCK.WRITE, 1); // had in the same moment: the closing store would only let it go
          throw this.#leaseWaitCutError();
        }
        this.#leased = true; // the OS lock stays; in-process turns go by #leaseInUse from now on
        this.#leaseInUse = false;
        this.#leaseHolds = 1;
      },
      (e: unknown) => {
        throw this.#lockWaitsCut ? this.#leaseWaitCutError(e) : e;
      },
    );
    try {
      await this.#leaseTaking;
    } finally {
      this.#leaseTaking = null;
    }
  }

  /**
   * The store's close() began (it waits for the calls already running): every wait for WRITE
   * held by another connection gives up now — a holdWriteLease() with WALNUT_CLOSED, a commit's
   * (beginWriteRun), a checkpoint's or a rebuild's with WALNUT_CLOSED, reason WriteWaitCut
   * (#lockShm) — and none starts waiting any more (one joined to a lease's wait would otherwise
   * start its own). So do, with reason ReadLockWaitCut, a checkpoint's wait for another
   * connection's readers (checkpointTarget's lock: READ(i) exclusive) and a store's snapshot's
   * wait for a read slot (beginRead's `cuttable`), at their next try (within a busy handler's
   * sleep, 100 ms at most); they held nothing else but what their own finally lets go. A wait beside a lock another process holds went on for the rest of the busy
   * timeout, and close() waited for it: for a lease close() would only let go
   * (test/hostile/lease-wait-cut-by-close), for a commit or checkpoint up to the busy timeout
   * (test/hostile/close-cuts-write-waits). So does a wait in header() for another connection to
   * let go of or recover a torn header (reason RecoveryWaitCut). A wait for WRITE held in this connection (its
   * committer's run, its checkpoint) is not cut: that ends by itself. A lease held stays held
   * until the close.
   */
  cutLockWaits(): void {
    this.#lockWaitsCut = true;
    for (const t of this.#writeQueue) t.wake?.(); // asleep in a pause: it sees the cut now
    if (this.#writeWait !== null) this.#shm?.cancelLockWithin(); // blocked in the kernel: it ends now, and its loop sees the cut
  }

  /** cutLockWaits() came: a wait for another connection's WRITE ends with WALNUT_CLOSED (#lockShm). */
  get lockWaitsCut(): boolean {
    return this.#lockWaitsCut;
  }

  /** What a wait for another connection's WRITE rejects with once cutLockWaits() came (#lockShm). */
  #writeWaitCutError(): Error {
    return walnutError('WALNUT_CLOSED', "the store closed while this waited for SQLite's WAL write lock (WRITE), which another connection holds; nothing was written", { path: this.dbPath, reason: 'WriteWaitCut' });
  }

  /** What a wait for another connection to let go of or recover a torn wal-index header rejects with once cutLockWaits() came (header(), beginWriteRun, #recover). */
  #recoveryWaitCutError(): Error {
    return walnutError('WALNUT_CLOSED', 'the store closed while this waited to read a wal-index header another connection must first let go of or recover (it holds WRITE, CKPT or RECOVER); it holds nothing now', { path: this.shmPath, reason: 'RecoveryWaitCut' });
  }

  /** What a checkpoint's wait for readers or a snapshot's wait for a read slot rejects with once cutLockWaits() came. */
  #readLockWaitCutError(what: string): Error {
    return walnutError('WALNUT_CLOSED', `the store closed while ${what} waited for a read lock another connection holds; it holds nothing now`, { path: this.dbPath, reason: 'ReadLockWaitCut' });
  }

  #leaseWaitCutError(cause?: unknown): Error {
    return walnutError('WALNUT_CLOSED', 'the store closed while holdWriteLease() waited for the write lock', { path: this.dbPath, ...(cause === undefined ? {} : { cause }) });
  }

  /**
   * Gives back one holdWriteLease(); the last one unlocks WRITE for other connections. When a
   * writer of this connection (its committer, a checkpoint's restart, recovery) is inside the
   * lease's turn at that moment, it keeps WRITE as a lock of its own, released when it ends
   * (its #unlockShm), so nobody else appends in the middle of its run.
   */
  releaseWriteLease(): void {
    if (!this.#leased || --this.#leaseHolds > 0) return;
    this.#leased = false;
    if (this.#closed) return;
    // WRITE has been in #held (count 1) since the lease took it
    if (this.#leaseInUse) {
      this.#leaseInUse = false;
      return;
    }
    this.#unlockShm(SHM_LOCK.WRITE, 1);
  }

  /** holdWriteLease() is in force: no other connection can commit. */
  get leased(): boolean {
    return this.#leased;
  }

  endWrite(): void {
    if (!this.#writer) return;
    this.#writer = false;
    if (this.#closed) return;
    if (this.#zeroing) this.#writeReleaseDeferred = true; // unlocked once the zero-ahead settles (#startZeroAhead)
    else this.#unlockShm(SHM_LOCK.WRITE, 1);
  }

  /** nBackfill and the read marks, as SQLite keeps them. */
  checkpointInfo(): { nBackfill: number; nBackfillAttempted: number; readMarks: number[] } {
    return {
      nBackfill: this.#region.load32(CKPT_NBACKFILL),
      nBackfillAttempted: this.#region.load32(CKPT_NBACKFILL_ATTEMPTED),
      readMarks: [0, 1, 2, 3, 4].map((i) => this.#region.load32(CKPT_READMARK(i))),
    };
  }

  /**
   * Who reads the WAL now, without taking or waiting for any lock: this connection's own
   * snapshots (count; how many hold a WAL read mark, READ(1..4), which keeps the WAL from
   * restarting; the oldest frame one still sees, 0 for a READ(0) snapshot, which keeps the
   * checkpointer from copying at all), and the read locks READ(0..4) that other
   * connections hold (found with F_OFD_GETLK on this connection's descriptor, which never
   * reports this connection's own locks; `pid` is -1 for OFD holders such as walnut, the
   * process id for SQLite's POSIX locks), leaving out another connection's follow pin (no
   * reader: followerOfAnotherIn) when this connection has no follower of its own. Used to say
   * what keeps the WAL from restarting.
   * Snapshots in `except` (the committer's, released before its next append) are not counted;
   * nor, in `walSnapshots`, those the next append moves to READ(0) (#moveCaughtUpSnapshots).
   */
  walReaders(except: ReadonlySet<Snapshot> = new Set()): { snapshots: number; walSnapshots: number; oldestSnapshotFrame: number | null; others: { slot: number; mark: number; pid: number }[] } {
    let oldest: number | null = null;
    let snapshots = 0;
    let walSnapshots = 0;
    const live = this.#closed ? null : this.#readHeader()?.header ?? null;
    const backfilled = live !== null && this.#region.load32(CKPT_NBACKFILL) === live.mxFrame;
    if (live !== null) this.#bringParkedForward();
    for (const s of this.#snapshots) {
      if (except.has(s)) continue;
      // parked at the live header: it follows this connection's commits, limits no checkpoint
      // (its mark catches up first) and moves to READ(0) before a restart (#moveCaughtUpSnapshots)
      if (live !== null && s.parked && s.readLock > 0 && s.canMoveToDatabaseFile(CONSTRUCT_KEY, live)) continue;
      snapshots++;
      if (oldest === null || s.mxFrame < oldest) oldest = s.mxFrame;
      if (s.readLock > 0 && !(backfilled && s.canMoveToDatabaseFile(CONSTRUCT_KEY, live))) walSnapshots++;
    }
    const others: { slot: number; mark: number; pid: number }[] = [];
    if (this.#shm !== null && !this.#closed) {
      for (let i = 0; i <= 4; i++) {
        const holder = this.#shm.lockHolder(SHM_LOCK.READ(i), 1, 'exclusive');
        if (holder === null) continue;
        // another connection's follow pin reads no WAL frame through its slot: the WAL waits for
        // no reader there (that follower restarts it once this writer leaves it WRITE:
        // followerWaitsWithin). Counted as a reader, it put the store's auto-checkpoint into its
        // back-off for good: the WAL grew by another autoCheckpoint frames each time, unbounded.
        // Unless this connection has followers of its own: then it does keep the WAL from
        // restarting (neither connection can hand the other's followers their frames), and the
        // back-off is right (else every batch waited for a checkpoint whose restart then failed).
        if (i > 0 && this.#followPin === null && this.followerOfAnotherIn(i, 1)) continue;
        others.push({ slot: i, mark: i === 0 ? 0 : this.#region.load32(CKPT_READMARK(i)), pid: holder.pid });
      }
    }
    return { snapshots, walSnapshots, oldestSnapshotFrame: oldest, others };
  }

  #checkOpen(): void {
    if (this.#closed) throw walnutError('WALNUT_CLOSED', 'the database connection is closed', { path: this.dbPath });
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Releases snapshots and locks, unmaps the index, closes the files (DMS and SHARED last), in this process's close turn of the file (closeAsLast). */
  close(): Promise<void> {
    return inCloseTurn(this.#fileKey, async () => {
      await this.#takeCloseTurnLock();
      await this.#close(false);
    });
  }

  /**
   * The close turn across this process's threads (and other processes' walnut connections):
   * closeTurns is one worker_thread's own, so a store in a worker and one on the main thread
   * closing at once each saw the other's SHARED, and both left the -wal and -shm (every round).
   * An OFD lock on CLOSE_TURN_BYTE of the database file, waited for up to the busy timeout and
   * at most CLOSE_TURN_WAIT_MS (past it the close goes on: at worst the files stay, as before; a
   * stopped process holding it delays closes no longer); it goes with the database file's
   * descriptor at the end of #close. SQLite locks no byte past its SHARED range.
   */
  async #takeCloseTurnLock(): Promise<void> {
    if (this.#closed || this.lockingMode === 'exclusive') return;
    await this.db.lock(CLOSE_TURN_BYTE, 1, 'exclusive', Math.min(this.busyTimeout, CLOSE_TURN_WAIT_MS)).catch(() => undefined);
  }

  /**
   * Releases every snapshot still held (a read in flight keeps its lock until it ends): the
   * store's close() does it before the last connection's checkpoint, which a forgotten
   * snapshot's read mark would otherwise stop short, leaving the -wal and -shm behind.
   */
  releaseSnapshots(): void {
    for (const s of [...this.#snapshots]) s.release();
  }

  async #close(removeWal: boolean): Promise<void> {
    if (this.#closed) return;
    this.releaseSnapshots();
    this.endWrite();
    this.#closed = true;
    if (this.#writeWait !== null) this.#shm?.cancelLockWithin(); // a lease's wait for WRITE ends now...
    await this.#writeWait?.catch(() => false); // ...and what it took is let go first (#waitForWrite)
    await this.wal.zeroingSettled(); // it relies on WRITE, which closing the -shm drops
    this.#regionMapped = false;
    this.#region.unmap();
    // Every step runs whatever an earlier one threw (the first failure is passed on at the end):
    // a removal that threw left the database file's SHARED and EXCLUSIVE held by this process
    // for good, and every other connection got "database is locked".
    const failures: unknown[] = [];
    const step = async (f: () => unknown): Promise<void> => {
      try {
        await f();
      } catch (e) {
        failures.push(e);
      }
    };
    const shm = this.#shm;
    if (removeWal && shm !== null) await step(() => removeIfStillNaming(this.shmPath, shm));
    if (shm !== null) await step(() => shm.close()); // drops DMS with its descriptor
    if (removeWal) await step(() => removeIfStillNaming(this.walPath, this.wal.file));
    if (this.#background !== null) {
      const handles = await this.#background.catch(() => [] as WalnutFile[]);
      for (const h of handles) await h.close().catch(() => undefined);
    }
    if (this.#followerWal !== null) await (await this.#followerWal.catch(() => null))?.close().catch(() => undefined);
    await step(() => this.wal.close());
    await step(() => this.db.close()); // drops SHARED (or EXCLUSIVE)
    releaseName(this.#fileKey);
    if (failures.length > 0) throw failures[0];
  }
}

/**
 * The close in progress or queued last of this process's connections to each database file
 * (WalIndex#fileKey), settled or not. OFD locks are each descriptor's own: two connections of
 * one process closing at the same moment each saw the other's SHARED on the database file,
 * neither took EXCLUSIVE, and neither did the last connection's checkpoint and removal (the -wal
 * and -shm stayed after every connection had closed). Closed one after the other, the first
 * drops its SHARED before the next one asks, and the last of them is the last connection, as in
 * SQLite, whose unix VFS keeps one lock table per process. A close never waits for anything but
 * the closes queued before it (each ends on its own), so no close waits for another for good.
 */
const closeTurns = new Map<string, Promise<unknown>>();

/** Runs `close` once the closes of the same file queued before it in this process have ended. */
function inCloseTurn<T>(fileKey: string, close: () => Promise<T>): Promise<T> {
  const mine = (closeTurns.get(fileKey) ?? Promise.resolve()).then(close);
  const settled = mine.catch(() => undefined);
  closeTurns.set(fileKey, settled);
  void settled.then(() => {
    if (closeTurns.get(fileKey) === settled) closeTurns.delete(fileKey);
  });
  return mine;
}

/**
 * The database and WAL files on the background lane, both or neither: when one open fails the
 * other's descriptor is closed before the failure is passed on.
 */
async function openBoth(dbFile: WalnutFile, walFile: WalnutFile): Promise<[WalnutFile, WalnutFile]> {
  const [db, wal] = await Promise.allSettled([
    openSameFile(dbFile, { lane: 'background' }),
    openSameFile(walFile, { lane: 'background' }),
  ]);
  if (db.status === 'fulfilled' && wal.status === 'fulfilled') return [db.value, wal.value];
  for (const r of [db, wal]) if (r.status === 'fulfilled') await r.value.close().catch(() => undefined);
  throw db.status === 'rejected' ? db.reason : (wal as PromiseRejectedResult).reason;
}

/**
 * The database file, opened for reading and writing: walnut writes every database it opens (its
 * -wal and -shm, and the header when it converts one). One it may only read is WALNUT_READONLY
 * (SQLite would open it read-only; walnut has no read-only file access: walnut/sql's readOnly
 * refuses SQL's writes only, and says so when this refuses its open, sql/database.ts).
 */
async function openReadWrite(dbPath: string): Promise<WalnutFile> {
  try {
    return await WalnutFile.open(dbPath);
  } catch (e) {
    if (!deniedByPermissions(e)) throw e;
    try {
      fs.accessSync(dbPath, fs.constants.R_OK);
    } catch {
      throw e; // not even readable
    }
    throw walnutError('WALNUT_READONLY', `${dbPath} can be read but not written here (${(e as Error).message}); walnut writes every database it opens`, { path: dbPath, errno: (e as { errno?: number }).errno, syscall: 'open', cause: e });
  }
}

/** Linux's per-process descriptor directory, which sameFileAs opens through (absent without /proc mounted). */
const hasProcSelfFd = fs.existsSync('/proc/self/fd');

/**
 * Another descriptor (its own open file description, so its own OFD locks) of the very file
 * `file` has open, reported under its name (sameFileAs): it reaches the inode even when the name
 * was removed or now names another file. Without /proc mounted, by `file`'s name. The caller
 * keeps `file` open until the open has settled (the descriptor number must not be reused meanwhile).
 */
function openSameFile(file: WalnutFile, options: OpenFileOptions): Promise<WalnutFile> {
  return WalnutFile.open(file.path, hasProcSelfFd ? { ...options, sameFileAs: file.fd } : options);
}

/**
 * Removes `name` (removeIfAllowed) only while it names the file `ours` has open: a -wal or -shm
 * removed or replaced by name under this connection is somebody else's file now (a new
 * connection's, or a stranger's), which the last close must leave alone.
 */
function removeIfStillNaming(name: string, ours: WalnutFile): void {
  const there = fs.lstatSync(name, { throwIfNoEntry: false });
  if (there === undefined) return;
  const mine = fs.fstatSync(ours.fd);
  if (there.dev !== mine.dev || there.ino !== mine.ino) return;
  removeIfAllowed(name);
}

/**
 * Removes the -wal or -shm after a complete checkpoint, as SQLite's last connection does; where
 * the directory forbids it (a read-only directory holding writable -wal and -shm files) the
 * file stays, as SQLite leaves it: every frame is in the database file and the next opener's
 * recovery finds nothing that differs from it.
 */
function removeIfAllowed(file: string): void {
  try {
    // unlink, not fs.rmSync: its rimraf takes unlink's EPERM (an immutable or sticky directory)
    // for a directory and throws ENOTDIR from a readdir of the file, which close() passed on
    fs.unlinkSync(file);
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOENT') return; // gone already
    // something else under the name now (a directory: EISDIR) is not ours to remove: it stays
    if (!deniedByPermissions(e) && !isADirectory(e)) throw e;
  }
}

/** node:fs refusing to remove a directory without `recursive` (ERR_FS_EISDIR, or EISDIR). */
function isADirectory(e: unknown): boolean {
  const code = (e as { code?: string }).code;
  return code === 'ERR_FS_EISDIR' || code === 'EISDIR';
}

/** EACCES, EPERM or EROFS, from the addon (positive errno) or from node:fs (negative). */
function deniedByPermissions(e: unknown): boolean {
  const { EACCES, EPERM, EROFS } = os.constants.errno;
  return [EACCES, EPERM, EROFS].includes(Math.abs((e as { errno?: number }).errno ?? 0));
}

/**
 * The -wal and -shm get the database file's permission bits (as SQLite does), whatever the
 * umask: a group-writable database must not get a -shm its group cannot map. Only files this
 * process owns are changed. Through the opened descriptor (fstat, fchmod), never the path: a
 * link put there after the open must not have its target's mode changed.
 */
function matchMode(file: WalnutFile, mode: number): void {
  try {
    const st = fs.fstatSync(file.fd);
    if ((st.mode & 0o777) !== mode && st.uid === process.getuid?.()) fs.fchmodSync(file.fd, mode);
  } catch {
    // permissions are best effort; opening already succeeded
  }
}

/** The first-opener protocol on the DMS byte (reference/sqlite-wal.md section 7.3). */
async function attachDms(shm: WalnutFile, busyTimeout: number): Promise<void> {
  const deadline = performance.now() + busyTimeout;
  for (let attempt = 0; ; attempt++) {
    const holder = shm.lockHolder(SHM_LOCK.DMS, 1, 'exclusive');
    if (holder === null) {
      if (shm.tryLock(SHM_LOCK.DMS, 1, 'exclusive')) {
        // nobody is attached: whatever the file holds is stale
        await shm.truncate(3);
        if (shm.tryLock(SHM_LOCK.DMS, 1, 'shared')) return; // atomic downgrade
      }
    } else if (holder.type === 'shared' && shm.tryLock(SHM_LOCK.DMS, 1, 'shared')) {
      return;
    }
    if (performance.now() > deadline) {
      throw walnutError('WALNUT_BUSY', 'another connection is initialising the wal-index', { path: shm.path, reason: 'BusyDms' });
    }
    await pause(attempt);
  }
}

/**
 * Rebuilds a database's -shm from its -wal, as SQLite's recovery does (`walnut recover`). A
 * database that had no -wal has nothing to recover: the empty -wal and the -shm this call
 * created are removed again when no other connection has the database open, as SQLite's last
 * connection removes them (they were left behind, looking like a WAL to recover).
 */
export async function rebuildWalIndex(dbPath: string, options: WalIndexOptions = {}): Promise<{ walFrames: number; pageSize: number }> {
  checkDbPath(dbPath); // (node:path's raw TypeError for a non-string, before)
  refuseIrregularDatabase(dbPath); // (a pipe named through /dev/stdin has no real path: resolvedPath and realpath give /proc/PID/fd/pipe:[N])
  const hadWal = fs.existsSync(`${resolvedPath(dbPath)}-wal`);
  const index = await WalIndex.open(dbPath, options);
  let nothingToKeep = false;
  try {
    const h = await index.rebuild();
    nothingToKeep = !hadWal && h.mxFrame === 0;
    return { walFrames: h.mxFrame, pageSize: index.pageSize };
  } finally {
    await index.closeAsLast(() => nothingToKeep);
  }
}

/** Copy 0's first checksum word (offset 40): flipped, the copies differ and the header is invalid. */
const SHM_HEADER_CKSUM = 40;

/** The header `h` describes the WAL state `f` a recovery found (so rebuilding its index rewrites the same words). */
function describesSameWal(h: ShmHeader, f: Omit<ShmHeader, 'iVersion' | 'isInit'>): boolean {
  return h.mxFrame === f.mxFrame && h.nPage === f.nPage && h.pageSize === f.pageSize && h.bigEndCksum === f.bigEndCksum
    && h.frameChecksum[0] === f.frameChecksum[0] && h.frameChecksum[1] === f.frameChecksum[1]
    && sameSalts(h.salts, f.salts);
}

/** Same length, same bytes. */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
