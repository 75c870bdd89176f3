/**
 * native.ts — the one place that loads the addon (node-gyp-build: build/Release when there is
 * one, from `npm install` or `npm run build`, else a matching prebuild in prebuilds/) and gives
 * its raw names types. No other module may touch the addon object; they import the typed
 * handles below.
 */
import { createRequire } from 'node:module';
import * as path from 'node:path';

import { WalnutError } from './errors';

export type LockMode = 'shared' | 'exclusive';

/** What a write waits for after the bytes are written: nothing, fdatasync, or fsync. */
export type Durability = 'none' | 'data' | 'full';

export interface NativeOpenOptions {
  /**
   * Which of the environment's I/O threads runs this file's async operations (default 'main'):
   * 'background' is the checkpoint's, 'read' one that a follow export's WAL reads have to
   * themselves (they queue behind neither a commit nor a checkpoint's sync).
   */
  lane?: 'main' | 'background' | 'read';
  create?: boolean;
  readOnly?: boolean;
  exclusive?: boolean;
  truncate?: boolean;
  mode?: number;
  /** Follow a symbolic link at the last path component (default false: such an open fails with WALNUT_CANTOPEN, reason 'Symlink'). */
  followSymlinks?: boolean;
  /**
   * O_NONBLOCK: an open of a FIFO does not wait for its other end (an O_RDONLY open of one blocks
   * until a writer comes); for a file walnut only reads whose name someone else may have taken
   * (a restore's marker), checked to be a regular file once open.
   */
  nonBlocking?: boolean;
  /**
   * Opens another description (its own OFD locks) of the file this descriptor of the process has
   * open, through /proc/self/fd, even when its name was removed or now names another file; the
   * path is then only the name errors and `path` report. Not with create, exclusive or truncate.
   */
  sameFileAs?: number;
}

export interface NativeLockHolder {
  type: LockMode;
  start: number;
  length: number;
  /** Owner pid for classic POSIX locks (e.g. sqlite3); -1 when the kernel cannot tell (OFD). */
  pid: number;
}

/** The addon's file handle (native/file.h). */
export interface NativeFileHandle {
  readonly fd: number;
  readonly path: string;
  readonly closed: boolean;
  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number>;
  /** read() straight into `buffer` on the I/O thread (native/file.h: walnut's own memory only). */
  readLent(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number>;
  readSync(buffer: Uint8Array, offset: number, length: number, position: number): number;
  write(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number>;
  writeSync(buffer: Uint8Array, offset: number, length: number, position: number): number;
  writev(buffers: readonly Uint8Array[], position: number, durability?: Durability): Promise<number>;
  /** writev() straight from the buffers on the I/O thread (native/file.h: walnut's own memory only). */
  writevLent(buffers: readonly Uint8Array[], position: number, durability?: Durability): Promise<number>;
  writevSync(buffers: readonly Uint8Array[], position: number, durability?: Durability): number;
  fsync(): Promise<void>;
  fsyncSync(): void;
  fdatasync(): Promise<void>;
  fdatasyncSync(): void;
  truncate(length: number): Promise<void>;
  truncateSync(length: number): void;
  allocate(offset: number, length: number): Promise<void>;
  allocateSync(offset: number, length: number): void;
  size(): Promise<number>;
  sizeSync(): number;
  close(): Promise<void>;
  closeSync(): void;
  tryLock(start: number, length: number, mode: LockMode): boolean;
  /** Waits for the lock, blocked in the kernel on a thread of the addon's lock lane, for up to `micros` (<= 1e6): true once acquired, false when the time ran out or cancelLockWithin() came; WALNUT_CLOSED when closed first. */
  lockWithin(start: number, length: number, mode: LockMode, micros: number): Promise<boolean>;
  /** Every lockWithin() of this file so far resolves false now (unless it had the lock first). */
  cancelLockWithin(): void;
  unlock(start: number, length: number): void;
  queryLock(start: number, length: number, mode: LockMode): NativeLockHolder | null;
}

interface NativeFileClass {
  new (path: string, options?: NativeOpenOptions): NativeFileHandle;
  open(path: string, options?: NativeOpenOptions): Promise<NativeFileHandle>;
  syncDirectory(path: string): Promise<void>;
  syncDirectorySync(path: string): void;
  /** Descriptors kept open while a SQLite library in this process holds locks on their files. */
  pendingCloses(): number;
  /** Closes those whose files no longer carry such locks; returns how many remain. */
  sweepPendingCloses(): number;
}

export type ChecksumTier = 'scalar' | 'sse4.2' | 'avx2' | 'avx512';

export interface NativeXxh3Stream {
  update(data: Uint8Array, offset?: number, length?: number): NativeXxh3Stream;
  digest64(): bigint;
  digest128(): bigint;
}

export interface NativeChecksum {
  /** state = [s0, s1, bigEndianWords ? 1 : 0], updated in place. */
  sqliteWalChecksum(data: Uint8Array, state: Uint32Array): void;
  sqliteWalChecksumReference(data: Uint8Array, state: Uint32Array): void;
  sqliteWalFrameChecksums(frames: Uint8Array, pageSize: number, s0: number, s1: number,
    salt1: number, salt2: number, bigEndianWords: boolean, out: Uint32Array): void;
  crc32c(data: Uint8Array, initial: number): number;
  xxh3_64(data: Uint8Array, offset: number | undefined, length: number | undefined, seed: bigint | number): bigint;
  xxh3_128(data: Uint8Array, offset: number | undefined, length: number | undefined, seed: bigint | number): bigint;
  xxh3_128_into(data: Uint8Array, offset: number | undefined, length: number | undefined, out: Uint8Array, outOffset: number): void;
  Xxh3Stream: new (seed?: bigint | number) => NativeXxh3Stream;
  paths(): Record<'xxh3' | 'crc32c' | 'sqliteWal', { active: ChecksumTier; best: ChecksumTier }>;
  TEST_setPath(kind: 'xxh3' | 'crc32c' | 'sqliteWal', tier: ChecksumTier | 'best'): ChecksumTier;
}

export interface FaultSpec {
  failWrite?: { nth: number; errno?: number } | null;
  shortWrite?: { nth: number; errno?: number } | null;
  failSync?: { nth: number; errno?: number } | null;
  /** The process is SIGKILLed at the Nth sync, before it is made (a crash between a write and its sync; errno unused). */
  killAtSync?: { nth: number } | null;
  /** The Nth WalnutFile open (a parked descriptor's reuse too) fails with errno (default EIO). */
  failOpen?: { nth: number; errno?: number } | null;
  /** The Nth commit-lane member's environment cleanup hook counts as not added (errno unused). */
  failLaneCleanupHook?: { nth: number } | null;
  /** The -shm is cut to 0 bytes after the Nth ShmRegion.commitInline's frames are written and synced, before they are indexed. */
  cutShmAfterInlineWrite?: { nth: number } | null;
}

/** Checksum chain parameters shared by the frame scan and the frame append. */
export interface NativeChain {
  pageSize: number;
  bigEndian: boolean;
  salt1: number;
  salt2: number;
  s0: number;
  s1: number;
}

export interface NativeScanResult {
  lastValidFrame: number;
  mxFrame: number;
  dbSize: number;
  commits: number;
  fileSize: number;
  mxChecksum: [number, number];
  lastValidChecksum: [number, number];
  pgnos: Uint32Array;
}

/**
 * The append's chain, positional (one typed array instead of an object's named properties: a
 * lone commit makes one append call): [pageSize, bigEndian (0|1), salt1, salt2, s0, s1, size
 * low, size high]. On success the native append stores the new running checksum into [4] and
 * [5], and the file's size after it into [6] and [7] (the low and high 32 bits; read back where
 * a full disk or a file-size limit refused the zeros after the frames: growTo is then not it).
 */
export type NativeAppendChain = Uint32Array;

/** The append's durability, as the native call takes it. */
export const APPEND_DURABILITY: Readonly<Record<Durability, number>> = { none: 0, data: 1, full: 2 };

/** The wal-index mapping (native/shm.h). */
export interface NativeShmRegion {
  map(count: number): number;
  grow(count: number): void;
  segments(): number;
  /** False when the -shm is now shorter than the mapped segments (one lseek). */
  coversMapping(): boolean;
  readHeader(out: Uint8Array): void;
  writeHeader(header: Uint8Array): void;
  load32(offset: number): number;
  store32(offset: number, value: number): void;
  append(firstFrame: number, pgnos: Uint32Array, mxFrame: number): void;
  /** Indexes frames 1..pgnos.length from scratch, each segment built aside and copied in whole (recovery under live readers). */
  rebuild(pgnos: Uint32Array): void;
  /**
   * A lone commit in one call (native/shm.cc): walAppendSync's arguments after its file, then
   * `expect` (the live header must be these 48 bytes in both copies) and `publish` (the header to
   * publish; its aFrameCksum and aCksum are filled in and written back). 1: appended, indexed
   * and published; 0: the live header is not `expect`; 2: not inline (WAL all backfilled, an
   * I/O lane busy, a stale window); nothing written for 0 and 2. A thrown error's `stage` is
   * 'write' (frames may be on disk) or 'publish' (written, never published); none: nothing written.
   */
  commitInline(wal: NativeFileHandle, chain: NativeAppendChain, offset: number, pgnos: Uint32Array, commitSizes: Uint32Array, pages: readonly Uint8Array[],
    durability: number, header: Uint8Array, size: number, slot: undefined, growTo: number, expect: Uint8Array, publish: Uint8Array): 0 | 1 | 2;
  lookup(pgno: number, mxFrame: number, minFrame: number): number;
  lookupMany(pgnos: Uint32Array, mxFrame: number, minFrame: number, out: Uint32Array): void;
  pageNumbers(firstFrame: number, out: Uint32Array): void;
  unmap(): void;
}

/** Reed-Solomon over GF(2^8) (native/fec/rs.h); lengths are checked natively. */
export interface NativeFec {
  rsEncode(data: Uint8Array, repairOut: Uint8Array, k: number, r: number, symbolSize: number): void;
  rsDecode(data: Uint8Array, repair: Uint8Array, present: Uint8Array, k: number, r: number, symbolSize: number): boolean;
  gfMul(a: number, b: number): number;
  gfInv(a: number): number;
  gfMulAddRegion(dst: Uint8Array, src: Uint8Array, c: number): void;
  TEST_setRegionPath(path: 'scalar' | 'ssse3' | 'avx2'): boolean;
  regionPaths(): { active: string; best: string };
}

/** What one base-image chunk read found (native/base_image.h); bytes is 0 unless it succeeded. */
export interface NativeChunkResult {
  bytes: number;
  /** A WAL frame the snapshot needs lies beyond the WAL's end (0: none). */
  missingFrame: number;
  /** A page whose walnut page trailer does not match it (0: none). */
  badTrailerPgno: number;
}

/** One base image being read: its pages framed as BASE_PAGES records, its running xxh3-128 (native/export_io.h). */
export interface NativeBaseImageReader {
  readChunk(db: NativeFileHandle, wal: NativeFileHandle, out: Uint8Array, pageSize: number, pagesPerRecord: number,
    firstPgno: number, pageCount: number, dbFilePages: number, frames: Uint32Array | null, checkTrailers: boolean): Promise<NativeChunkResult>;
  /** As readChunk, the records written to `sink` at `position` one by one instead (bytes: written). */
  writeChunk(db: NativeFileHandle, wal: NativeFileHandle, sink: NativeFileHandle, pageSize: number, pagesPerRecord: number,
    firstPgno: number, pageCount: number, dbFilePages: number, frames: Uint32Array | null, checkTrailers: boolean, position: number): Promise<NativeChunkResult>;
  /** The canonical xxh3-128 of the pages read so far (high u64 then low u64, big-endian). */
  digest(): Uint8Array;
}

/** What one run of a restore's base image did (native/base_restore.h). */
export interface NativeBaseRunResult {
  /** Stream offset of the first record not applied. */
  end: number;
  pages: number;
  /** The run's page size (0: no record applied and none given). */
  pageSize: number;
  /** Stopped at maxBytes: the record at `end` may be another to apply. */
  more: boolean;
}

export interface NativeBaseImageWriter {
  /**
   * Applies the BASE_PAGES records at `offset` of the stream file on (pgno nextPgno first, pages of
   * pageSize, 0: the first record's) to the database file, hashing their pages, until a record
   * it does not apply or past maxBytes of the stream.
   */
  applyRun(stream: NativeFileHandle, db: NativeFileHandle, offset: number, nextPgno: number, pageSize: number, maxBytes: number): Promise<NativeBaseRunResult>;
  /** Pages the caller applied itself, in order with the runs'. */
  update(bytes: Uint8Array): void;
  /** The canonical xxh3-128 of every page so far (high u64 then low u64, big-endian). */
  digest(): Uint8Array;
}

/** Commit frames among frames 1..lastFrame of a WAL (native/frame_scan.h CountCommitFrames). */
export interface NativeCommitCount {
  commits: number;
  /** The first frame whose header the file does not hold (0: none). */
  missingFrame: number;
  /** Frame lastFrame's 24-byte header. */
  lastHeader: Uint8Array;
}

/** What a CommitFramer call framed (native/commit_records.h FramedRun). */
export interface NativeFramedRun {
  /** Bytes of framed records written (to `out`, or to the sink file). */
  bytes: number;
  /** FRAMES and COMMIT_META records among them. */
  records: number;
  /** COMMIT_META records: numbered lastSeq + 1 .. lastSeq + commits. */
  commits: number;
}

export interface NativeReadFramesResult extends NativeFramedRun {
  /** The first frame the WAL does not hold (0: none); nothing framed then. */
  missingFrame: number;
  /** A hand-over came (epoch[0] is not seenEpoch): nothing framed or written, the framer unchanged. */
  dropped: boolean;
}

/**
 * One export's FRAMES + COMMIT_META records, native (native/commit_records.h; the bytes
 * lib/export/commit-records.ts makes). A transaction a run ends inside goes on in the next.
 * One call at a time; after a call that failed, none.
 */
export interface NativeCommitFramer {
  /** Frames in memory into `out` (commitRecordsBound bytes at least), at once. */
  frameBytes(frames: Uint8Array, pageSize: number, framesPerRecord: number, lastSeq: number, timeMs: number, out: Uint8Array): NativeFramedRun;
  /**
   * Frames first..first+count-1 of the WAL, read on the WAL file's lane and framed there, into
   * `out`, or (out null) written to the file `sink` at `position`. Dropped when `epoch[0]` is
   * no longer `seenEpoch` once they are read.
   */
  readFrames(
    wal: NativeFileHandle,
    pageSize: number,
    framesPerRecord: number,
    lastSeq: number,
    timeMs: number,
    first: number,
    count: number,
    epoch: Int32Array | null,
    seenEpoch: number,
    out: Uint8Array | null,
    sink: NativeFileHandle | null,
    position: number,
  ): Promise<NativeReadFramesResult>;
  /** A transaction has frames framed but not yet its commit frame. */
  inTransaction(): boolean;
  /** Delta mode (a framer made with a version budget): the base image's pages firstPgno.. as their versions. */
  keepPages(firstPgno: number, pages: Uint8Array, pageSize: number): void;
  /** Delta mode: the database's size in pages after the base image. */
  setDbSize(dbSize: number): void;
}

export interface NativeExportIo {
  /**
   * With `versionBudget` (bytes of page versions kept, 0 allowed): the replication's records,
   * pages sent again as PAGE_DELTA and runs of whole frames of at most framesPerRecord
   * (native/commit_records.h, delta mode).
   */
  CommitFramer: new (versionBudget?: number) => NativeCommitFramer;
  BaseImageReader: new () => NativeBaseImageReader;
  BaseImageWriter: new () => NativeBaseImageWriter;
  countCommits(wal: NativeFileHandle, pageSize: number, lastFrame: number): Promise<NativeCommitCount>;
  /** Starts writeback of [offset, offset + length) of the file (sync_file_range); makes nothing durable. */
  startWriteback(file: NativeFileHandle, offset: number, length: number): Promise<void>;
}

/** What the checkpoint's native copy did (native/checkpoint_copy.h). */
export interface NativeCopyStats {
  /** Pages written to the database file, pwritev calls, preads of the WAL and bytes they read. */
  pages: number;
  writes: number;
  reads: number;
  bytesRead: number;
}

export interface NativeCopyRequest {
  /** Frame of pgnos[0] (nBackfill + 1); pgnos runs through the checkpointer's mxFrame. */
  firstFrame: number;
  /** The last frame that may be copied (mxSafeFrame). */
  upTo: number;
  /** The database size in pages: higher pages are not copied. */
  nPage: number;
  pageSize: number;
  /** fdatasync the WAL before the first write. */
  syncWal: boolean;
}

/**
 * One member of the process's commit lane of a database file (native/commit_lane.h). The
 * callback runs on this thread: `ok` holds 4 numbers per settled commit (id, first frame, last
 * frame, durable), `failed` one [id, code, message, reason, errno] each; `lead`: this member now
 * leads; `work`: (leader) commits are queued for take(); `closing`: the set of members whose
 * store is closing changed (closingMembers()).
 */
export type NativeLaneEvents = (ok: Float64Array, failed: Array<[number, string, string, string, number]>, lead: boolean, work: boolean, gathered: boolean, closing: boolean) => void;

export interface NativeLaneMetrics {
  batches: number;
  commits: number;
  crossMemberBatches: number;
  memberSlotsInBatches: number;
  leaderChanges: number;
  abandonedCommits: number;
  publishes: number;
  wakeups: number;
  leaderWakeups: number;
  members: number;
  leader: number;
  perMember: Array<{ member: number; commits: number; batches: number }>;
}

export interface NativeCommitLane {
  readonly member: number;
  readonly leader: boolean;
  /**
   * Copies the pages; returns the commit's lane-wide id. conflict: [mxFrame, salt1, salt2, pgnos,
   * readLock?] (readLock: the read-lock slot its snapshot holds until the commit settles).
   * The commit enters the lane at the end of the event-loop turn in which it was called, with
   * every other commit of this member in that turn (natively; that also tells a gathering leader
   * this member's turn of submits ended: commit_lane.h).
   */
  submit(pgnos: Uint32Array, pages: readonly Uint8Array[], dbSize: number, conflict: [number, number, number, Uint32Array] | [number, number, number, Uint32Array, number] | null): number;
  /**
   * Leader: the queued commits; 11 numbers each in meta (id, pageCount, readCount, dbSize,
   * hasConflict, mxFrame, salt1, salt2, member, offset, readLock (-1: none)): at `offset` in buffer (from its byteOffset; `into` when they fit in it), the pages, their
   * page numbers (u32), the conflict set's page numbers (u32).
   */
  take(into?: Uint8Array): { meta: Float64Array; buffer: Uint8Array };
  /** Leader, before a batch: take(); with wait, wait is true when members are awaited (the leader is woken with gathered). */
  gather(wait: boolean, into?: Uint8Array): { meta: Float64Array; buffer: Uint8Array; wait: boolean };
  /** Leader, its committer idle: take() when commits are queued, else the next publish (a member's turn of submits) wakes it. */
  rest(into?: Uint8Array): { meta: Float64Array; buffer: Uint8Array };
  /** This member is the lane's only one (read without the lane's lock). */
  readonly alone: boolean;
  /**
   * ok: 5 numbers per taken commit written (id, member, first frame, last frame, durable); failed:
   * [id, member, code, message, reason, errno] each (member: meta's, as take() gave it).
   * `batches` > 1: that many batches of this leader's own commits (no outcomes), reported late.
   */
  settle(ok: Float64Array, failed: Array<[number, number, string, string, string, number]>, own: number, batches?: number): void;
  resign(): void;
  /** This member's store is closing: every other member is woken with `closing` (after leave(): nothing). */
  closing(): void;
  /** The members whose store is closing (closing()), still in the lane. */
  closingMembers(): Uint32Array;
  leave(): void;
  metrics(): NativeLaneMetrics;
}

interface NativeCommitLaneClass {
  new (db: NativeFileHandle, key: string, pageSize: number, onEvents: NativeLaneEvents): NativeCommitLane;
  /** Lanes in this process's registry. */
  count(): number;
}

interface Addon {
  CommitLane: NativeCommitLaneClass;
  checkpointCopy(wal: NativeFileHandle, db: NativeFileHandle, pgnos: Uint32Array, request: NativeCopyRequest): Promise<NativeCopyStats>;
  checkpointSyncDb(db: NativeFileHandle, truncateTo: number, sync: boolean): Promise<void>;
  ShmRegion: new (file?: NativeFileHandle) => NativeShmRegion;
  walScan(file: NativeFileHandle, chain: NativeChain): Promise<NativeScanResult>;
  walScanSync(file: NativeFileHandle, chain: NativeChain): NativeScanResult;
  /**
   * The window (header, size, slot) is checked before writing: header undefined = not checked;
   * slot undefined = the next slot is not read, null = it must hold no frame of this generation,
   * else the frame header seen there (a leftover frame may be overwritten). `fresh`: a new WAL
   * header written at 0 and synced per freshDurability before the frames (from frame 1), in the
   * same operation; no window with it. Its failure has `stage: 'header'` (no frame written).
   */
  walAppend(file: NativeFileHandle, chain: NativeAppendChain, offset: number, pgnos: Uint32Array, commitSizes: Uint32Array,
    pages: readonly Uint8Array[], durability: number, header: Uint8Array | undefined, size: number, slot: Uint8Array | null | undefined, growTo: number,
    fresh?: Uint8Array, freshDurability?: number): Promise<void>;
  walAppendSync(file: NativeFileHandle, chain: NativeAppendChain, offset: number, pgnos: Uint32Array, commitSizes: Uint32Array,
    pages: readonly Uint8Array[], durability: number, header: Uint8Array | undefined, size: number, slot: Uint8Array | null | undefined, growTo: number): void;
  walLanesIdle(): boolean;
  walZeroAhead(file: NativeFileHandle, through: NativeFileHandle, floor: number, target: number): Promise<number>;
  encodePageDelta(frame: Uint8Array, previous: Uint8Array, out: Uint8Array, updatePrevious: boolean): number;
  TEST_setPageDeltaPath(tier: 'scalar' | 'avx2' | 'avx512' | 'best'): 'scalar' | 'avx2' | 'avx512';
  setThreadBackground(): boolean;
  NativeFile: NativeFileClass;
  setErrorClass(ctor: typeof WalnutError): void;
  faultInjectionArmed: boolean;
  TEST_setFaults(spec: FaultSpec): void;
  checksum: NativeChecksum;
  fec: NativeFec;
  exportIo: NativeExportIo;
}

function load(): Addon {
  const requireHere = createRequire(__filename);
  // WALNUT_NATIVE_PATH selects a specific build (the sanitizer build of `npm run test:asan`).
  const explicit = process.env['WALNUT_NATIVE_PATH'];
  const nodeGypBuild = requireHere('node-gyp-build') as (dir: string) => unknown;
  const addon = (explicit ? requireHere(path.resolve(explicit)) : nodeGypBuild(path.resolve(__dirname, '..'))) as Addon;
  addon.setErrorClass(WalnutError);
  return addon;
}

const addon = load();

export const NativeFile: NativeFileClass = addon.NativeFile;
export const nativeChecksum: NativeChecksum = addon.checksum;
export const nativeFec: NativeFec = addon.fec;
export const nativeExportIo: NativeExportIo = addon.exportIo;
export const NativeCommitLane: NativeCommitLaneClass = addon.CommitLane;

/** A wal-index over a -shm file's handle, or in heap memory when no file is given. */
export function newShmRegion(file?: NativeFileHandle): NativeShmRegion {
  return file === undefined ? new addon.ShmRegion() : new addon.ShmRegion(file);
}

/** WAL frame scan and append (native/frames.h). */
export const nativeFrames = {
  scan: addon.walScan,
  scanSync: addon.walScanSync,
  append: addon.walAppend,
  appendSync: addon.walAppendSync,
  /** No operation queued or running on the main or the background I/O lane (native/frames.cc; the read lane writes nothing). */
  lanesIdle: addon.walLanesIdle,
  /** Zeros (synced, through another descriptor of the file) from its end up to `target` bytes, never below `floor` (a file cut below it is left short), on the background lane; resolves to the size (native/wal_zero_ahead.h). */
  zeroAhead: addon.walZeroAhead,
};

/** PAGE_DELTA encoding (native/page_delta.h): the payload's size written into `out`, or 0 (the frame goes whole). */
export const nativeEncodePageDelta = addon.encodePageDelta;
/** Tests only: forces the PAGE_DELTA encoder's scan (clamped to what the CPU has); the active one. */
export const TEST_setPageDeltaPath = addon.TEST_setPageDeltaPath;

/**
 * Moves the calling thread into the kernel's background class (Linux SCHED_IDLE: it gets a CPU
 * when no normal thread wants one), for good; threads it creates later inherit it. False where
 * the class does not exist or was refused (native/thread_class.h).
 */
export const setThreadBackground: () => boolean = addon.setThreadBackground;

/** The checkpoint's copy and its database sync (native/checkpoint.h), on the files' lane. */
export const nativeCheckpoint = {
  copy: addon.checkpointCopy,
  syncDb: addon.checkpointSyncDb,
};

/** True when the process started with WALNUT_FAULT_INJECTION=1. */
export const faultInjectionArmed: boolean = addon.faultInjectionArmed;

/** Test hook: arm write/sync faults (throws unless WALNUT_FAULT_INJECTION=1 at start-up). */
export function TEST_setFaults(spec: FaultSpec): void {
  addon.TEST_setFaults(spec);
}
