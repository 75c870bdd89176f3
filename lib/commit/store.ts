/**
 * commit/store.ts — open() and Store, the public face of a walnut database (DESIGN.md
 * section 2): one-shot commits through the group committer, transactions, snapshots, metrics.
 *
 * For databases built on walnut: commit(pages, { base }) is conditional on a snapshot (it fails
 * with WALNUT_CONFLICT, reason OtherWriter, when any other connection committed after the
 * snapshot began; this store's own commits after it are what a pipelining writer builds on and
 * do not count), and commits are fail-stop chained: a failed commit fails every commit after
 * it until resumeCommits() (group-committer.ts, "The commit chain"). sequence() gives a commit
 * its ticket (its place in the order) at once: this store's snapshots see it from then on,
 * before it is durable (sequencer.ts); commit() and transactions are seen once durable.
 *
 * A new database is created as SQLite creates one in WAL mode (a 1-page file whose page 1 is
 * an empty schema b-tree), made durable (file and directory fsync) before any WAL exists; an
 * empty file gets the same page 1 (index/journal-mode.ts, as PRAGMA journal_mode=WAL does).
 * Beyond that walnut never writes page contents of its own. An existing rollback-journal
 * database is put into WAL mode first (header bytes only; index/journal-mode.ts, option convert).
 * Commits go to the store's group committer, or (option shareLane, the default) through the
 * process's commit lane of the file to the committer of the store that leads it (lane.ts).
 */
import { asInputError, extraArgumentError, readInput, refuseExtraArguments, describeValue } from '../arguments';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { CONSTRUCT_KEY, refuseDirectConstruction, refuseOutsideCall } from '../constructed';
import { refusedOnLaterTurn, walnutError, withoutCode, type WalnutError } from '../errors';
import { givenOr, unknownOptionName } from '../option-names';
import { DB_HEADER_SIZE, isWalMode, newDatabasePage1 } from '../format/db-header';
import { dbHeaderThroughWal } from '../wal/page1-through-wal';
import { PAGE_TRAILER_RESERVED, stampPageTrailer } from '../wal/page-trailer';
import type { Snapshot } from '../wal-index/snapshot';
import type { WalFile, WalPage, WalRecovery, WalTransaction } from '../wal/wal-file';
import { WalIndex, type LockWaitCut } from '../wal-index/wal-index';
import { nativeHandleOf, WalnutFile } from '../io/file';
import { refuseCompanionName, refuseIrregularDatabase, resolvedPath } from '../io/real-path';
import { sleepSync } from '../io/sleep-sync';
import { closeAsLastConnection, runCheckpoint, type CheckpointResult, type CopyReport } from '../checkpoint/execute';
import { CHECKPOINT_MODES, type CheckpointMode } from '../checkpoint/plan';
import type { Writable } from 'node:stream';

import type { ExportOptions } from '../export/exporter';
import type { WalRecordSink } from '../export/framing';
import { startExport, type ExportHandle, type ExportRun } from '../export/stream';
import { resolveReplicateOptions, startReplication, stopArgumentError, type ReplicateOptions, type ReplicationHandle } from '../replicate/publisher';
import { ReplicationThread } from '../replicate/thread';
import type { WalnutFile as ExportFile } from '../io/file';
import { EventRing, type RecordedEvent } from '../telemetry/events';
import { toPrometheus } from '../telemetry/prometheus';
import { AutoCheckpointPolicy, type WalMetrics } from './auto-checkpoint';
import { CloseGate } from './close-gate';
import { GroupCommitter, type CommitCheck, type CommitMetrics, type CommitResult } from './group-committer';
import { SharedLane, type CommitSink, type LaneMetrics } from './lane';
import { resolveOptions, type OpenOptions, type ResolvedOptions } from './options';
import { PageArena, type PageCopies } from './page-arena';
import { commitDbSize, normalizePages, type PageRules, type PageWrite } from './pages';
import { Sequencer, type SequencedCommit } from './sequencer';
import { notWritableForReadOnly, OPENED_READ_ONLY, readOnlyError, type ReadOnly } from './read-only';
import { Transaction } from './transaction';

/** The FEC sidecar's counters (option fec; filled in by lib/fec/extension.ts). */
export interface FecMetrics {
  codec: 'rs' | 'raptorq';
  repairSymbols: number;
  /** Groups appended, the frames they protect, sidecar bytes written. */
  groups: number;
  frames: number;
  bytes: number;
  /** Appends that failed (their frames are unprotected) and groups dropped as stale. */
  writeErrors: number;
  staleGroups: number;
  /** Batches that waited for room in the sidecar queue, and the page bytes queued now. */
  backpressureWaits: number;
  queuedBytes: number;
  /** What recovery did with the sidecar when this store opened the database (restoredHeaders: damaged WAL headers restored). */
  recovery: { repairedFrames: number; repairedGroups: number; restoredHeaders: number; fallbacks: Partial<Record<string, number>> };
}

export interface StoreMetrics extends CommitMetrics {
  /** The FEC sidecar (when option fec is on): groups written, repairs and fallbacks in recovery. */
  fec?: FecMetrics;
  /** WAL frames in the live index (also wal.frames). */
  walFrames: number;
  /** The WAL: its size, and what keeps it from restarting when a reader does (commit/auto-checkpoint.ts). */
  wal: WalMetrics;
  /** Checkpoints run (auto and explicit) and how many were busy. */
  checkpoints: number;
  busyCheckpoints: number;
  /** Batches that waited for an auto-checkpoint so that the WAL could restart. */
  checkpointWaits: number;
  /**
   * WAL frames a restart read under WRITE for this store's following exports (exportTo with
   * follow), which had not read them yet: the batch that restarted the WAL waited for those
   * reads. Exports that keep up read them on their own lane before the restart and leave none.
   */
  handedOverFrames: number;
  /** The last background (auto) checkpoint failure, if any. */
  lastCheckpointError: string | null;
  /** The process's commit lane of this database file (option shareLane; commit/lane.ts). */
  lane?: LaneMetrics;
}

const COMMIT_OPTIONS: readonly (keyof CommitOptions)[] = ['dbSize', 'base'];
const SEQUENCE_OPTIONS: readonly (keyof SequenceOptions)[] = ['dbSize', 'base', 'release', 'alone'];

/** store.commit()'s options. */
export interface CommitOptions {
  /** The database size in pages after the commit (default: max(previous size, highest pgno)). */
  dbSize?: number;
  /**
   * Conditional commit: a snapshot of this store (store.snapshot(), trySnapshotSync(),
   * snapshotSync(); released or not) the pages were built on. The commit fails with
   * WALNUT_CONFLICT, reason OtherWriter, writing nothing, when any other connection (a sqlite3
   * process, another store, another process's walnut) committed after the snapshot began; this
   * store's own commits after it do not count (pipelining). A base still held (not released)
   * while the commit waits for the WAL write lock, which another connection's full, restart or
   * truncate checkpoint holds while it waits for readers, fails the commit at once with
   * WALNUT_BUSY, reason CheckpointWaits (SQLite's SQLITE_BUSY for a reader that wants to write),
   * instead of stalling both until a busy timeout: release the base once the pages are built
   * (the commit needs only its identity) and it waits for that checkpoint instead. Bases of
   * store.sequence() commits are not failed this way: a pipelining writer does not wait for its
   * commit while holding its base (walnut/sql's are parked: released while WRITE is awaited).
   */
  base?: Snapshot;
}

/** store.sequence()'s options: commit()'s, and a hook for the page buffers. */
export interface SequenceOptions extends CommitOptions {
  /**
   * Called once the store holds none of the commit's page buffers any more (written, or failed,
   * and read by no snapshot), with the pages it took (every one it was given: a page given twice
   * is committed with its last image, and both buffers come back): the caller may reuse them
   * from then on (a pipelining writer's buffer pool). Its exceptions are ignored. With it the
   * store borrows the buffers instead of copying them (they must be neither changed nor
   * transferred until then); without it the pages are copied before sequence() returns.
   */
  release?: (pages: PageWrite[]) => void;
  /**
   * True: the caller knows no other commit of this store will be submitted before this one
   * settles (a lone pipelining writer): the group committer writes it at once instead of first
   * letting a turn of the event loop pass for other commits to join its batch (~10 µs of CPU a
   * commit). Wrong only costs batching: commits that come later go in the next batch.
   */
  alone?: boolean;
}

/** store.snapshot()'s (trySnapshotSync(), snapshotSync()) options. */
export interface SnapshotOptions {
  /**
   * See this store's sequenced commits that are not durable yet (store.sequence()): default
   * true. False: durable commits only (what any other connection sees).
   */
  sequenced?: boolean;
}

/**
 * What a higher layer adds to a store (the FEC sidecar, lib/fec/extension.ts): a recovery
 * repair hook, and, once the store is open, a batch observer with back-pressure.
 */
export interface StoreExtension {
  /** Recovery's repair hook (WalIndexOptions.repairWal); `events` is the store's event ring. */
  repairWal?: (wal: WalFile, recovery: WalRecovery, events: EventRing) => Promise<boolean>;
  /** Refuses what attach() would, where it can be told from the paths alone, before open() converts a rollback-journal database. */
  beforeOpen?(walPath: string): Promise<void>;
  /** `committed`: the WAL's committed frames and generation as the store opened (null: not known). */
  attach(ctx: { walPath: string; pageSize: number; events: EventRing; synchronous: ResolvedOptions['synchronous']; committed: { mxFrame: number; salts: [number, number] } | null }): Promise<AttachedExtension>;
}

export interface AttachedExtension {
  /** A batch's frames are written (durable at the store's level); must copy what it keeps. */
  onWritten(txns: readonly WalTransaction[], firstFrame: number, salts: [number, number]): void;
  /** A TRUNCATE checkpoint emptied the WAL. */
  onWalTruncated(): void;
  /** Null, or a promise the next batch waits for. */
  room(): Promise<void> | null;
  metrics(): { fec: FecMetrics };
  /** After the index closed; `walRemoved` when the last connection removed the WAL. */
  close(walRemoved: boolean): Promise<void>;
}

/**
 * `cut`: the open's waits for other connections' locks, and the store's later ones, can be cut
 * from outside (LockWaitCut: the replication worker's connection). `readOnlyAs`: with option
 * readOnly, why its writes are refused (walnut/sql's reasons; default OPENED_READ_ONLY).
 */
export async function open(file: string, options?: OpenOptions, extension?: StoreExtension, cut?: LockWaitCut, readOnlyAs?: ReadOnly): Promise<Store> {
  const o = resolveOptions(options);
  if (typeof file !== 'string' || file.length === 0 || file.includes('\0')) {
    // (a NUL was refused by the addon, without the reason)
    throw walnutError('WALNUT_INVALID_ARGUMENT', 'path must be a non-empty string without NUL bytes', { reason: 'path' });
  }
  refuseIrregularDatabase(file);
  const real = resolvedPath(file);
  const readOnly = o.readOnly ? (readOnlyAs ?? OPENED_READ_ONLY) : null;
  if (readOnly === null) await createIfMissing(real, o.pageSize, o.pageChecksums === true); // through a dangling link: its target, as sqlite3 creates it
  // (SQLite opens no missing file read-only either: SQLITE_CANTOPEN)
  else if (!fs.existsSync(real)) throw walnutError('WALNUT_CANTOPEN', `${file} does not exist, and ${readOnly.why} (a read-only open creates nothing)`, { path: file, reason: 'NotFound' });
  refuseTrailersBeforeConverting(real, o.pageChecksums);
  await extension?.beforeOpen?.(`${real}-wal`);
  const events = new EventRing();
  const repair = extension?.repairWal;
  const index = await WalIndex.open(file, { lockingMode: o.lockingMode, busyTimeout: o.busyTimeout, walSizeLimit: o.walSizeLimit, convert: o.convert, newPage1: () => newPage1(o.pageSize, o.pageChecksums === true), events, repairWal: repair && ((wal, recovery) => repair(wal, recovery, events)), cut }).catch((e: unknown) => {
    throw readOnly === null ? e : notWritableForReadOnly(e, file, 'readOnly: true');
  });
  index.wal.zeroAheadOn = o.zeroAhead;
  let attached: AttachedExtension | null = null;
  try {
    let reservedBytes: number;
    ({ trailers: index.pageTrailers, reservedBytes } = await pageTrailersWanted(index, o.pageChecksums));
    const live = index.liveHeader();
    if (extension) attached = await extension.attach({ walPath: index.walPath, pageSize: index.pageSize, events, synchronous: o.synchronous, committed: live === null ? null : { mxFrame: live.mxFrame, salts: live.salts } });
    return new Store(CONSTRUCT_KEY, index, o, events, attached, reservedBytes, readOnly); // (joins the commit lane: may be refused)
  } catch (e) {
    // as SQLite's last connection closes: no -wal/-shm left behind by an open that was refused;
    // a read-only one checkpoints nothing (it copied the WAL into the database file and removed
    // the -wal when, say, pageChecksums: true was refused on a database without trailers:
    // test/hostile/store-read-only-refused-open): as the last connection it removes the -wal
    // (and -shm) only when this open created that -wal and it is still empty
    const removed = readOnly !== null ? await index.closeAsLast(() => index.createdWal && index.wal.file.sizeSync() === 0).catch(() => false) : await closeAsLastConnection(index, o.synchronous !== 'off').catch(() => false);
    await attached?.close(removed).catch(() => undefined);
    throw e;
  }
}

/**
 * pageChecksums: true on a rollback-journal database that does not reserve the trailer's bytes:
 * refused before WalIndex.open converts it to WAL mode (a refused open changes nothing; it
 * converted the database, then refused). A WAL-mode database is checked once open
 * (pageTrailersWanted: its page 1 may be in the WAL).
 */
function refuseTrailersBeforeConverting(file: string, option: boolean | undefined): void {
  if (option !== true) return;
  let h;
  try {
    h = dbHeaderThroughWal(file, () => WalnutFile.readPrefixSync(file, DB_HEADER_SIZE)).header; // page 1 in the WAL supersedes the file's
  } catch {
    return; // unreadable: WalIndex.open says why
  }
  if (h !== null && h.pageSize !== 0 && !isWalMode(h)) refuseTrailerRoom(file, h.reservedBytes);
}

function refuseTrailerRoom(file: string, reserved: number): void {
  if (reserved === PAGE_TRAILER_RESERVED) return;
  throw walnutError('WALNUT_INVALID_ARGUMENT', `option pageChecksums: ${file} reserves ${reserved} bytes per page, not ${PAGE_TRAILER_RESERVED}; page checksums need a database created with them`, { reason: 'pageChecksums' });
}

/** Trailers follow the database: its header reserves 16 bytes per page or it does not. */
async function pageTrailersWanted(index: WalIndex, option: boolean | undefined): Promise<{ trailers: boolean; reservedBytes: number }> {
  // (cuttable: its wait for a read slot ends once an open's LockWaitCut cut it; nothing else cuts an opening index's waits)
  const snap = await index.beginRead({ cuttable: true });
  let reserved: number;
  try {
    reserved = (await snap.readRaw(1))[20]!;
  } finally {
    snap.release();
  }
  if (option === true) refuseTrailerRoom(index.dbPath, reserved);
  return { trailers: option ?? reserved === PAGE_TRAILER_RESERVED, reservedBytes: reserved };
}

/** Page 1 of a new database (an empty schema), with its checksum trailer when asked. */
function newPage1(pageSize: number, pageChecksums: boolean): Uint8Array {
  const page1 = newDatabasePage1(pageSize, undefined, pageChecksums ? PAGE_TRAILER_RESERVED : 0);
  if (pageChecksums) stampPageTrailer(page1);
  return page1;
}

const { EEXIST, ENOENT, EACCES, ENOTDIR, EISDIR, ENAMETOOLONG, ELOOP } = os.constants.errno;
/** errno of a create that cannot succeed as asked. */
const CANNOT_CREATE = new Set([ENOENT, EACCES, ENOTDIR, EISDIR, ENAMETOOLONG, ELOOP]);

async function createIfMissing(file: string, pageSize: number, pageChecksums: boolean): Promise<void> {
  // a new database named as another's -wal (-shm, ...): SQLite would take it for that file
  if (!fs.existsSync(file)) refuseCompanionName(file, `create the database ${file}`);
  let f: WalnutFile;
  try {
    f = await WalnutFile.open(file, { exclusive: true, mode: 0o644 });
  } catch (e) {
    const errno = (e as { errno?: number }).errno;
    if (errno === EEXIST) return;
    // a directory that is not there, a path through a file, no permission: SQLite's
    // SQLITE_CANTOPEN, as restore() and the CLI say for a database they cannot open
    if (errno !== undefined && CANNOT_CREATE.has(errno)) {
      const { syscall } = e as WalnutError;
      throw walnutError('WALNUT_CANTOPEN', `cannot create the database ${file}: ${withoutCode((e as Error).message)}`, { path: file, errno, syscall, cause: e });
    }
    throw e;
  }
  try {
    await f.writev([newPage1(pageSize, pageChecksums)], 0, 'full');
  } catch (e) {
    // created here (O_EXCL) and never filled: a refused open leaves nothing behind (a full disk
    // left a 0-byte file, SQLite's empty database, which the next open() took as one)
    await f.close().catch(() => undefined);
    fs.rmSync(file, { force: true });
    throw e;
  }
  await f.close();
  await WalnutFile.syncDirectory(path.dirname(path.resolve(file)));
}

export class Store {
  readonly #index: WalIndex;
  readonly #options: ResolvedOptions;
  readonly #committer: GroupCommitter;
  /** The process's commit lane of this file (shareLane), null when this store writes alone. */
  readonly #lane: SharedLane | null;
  /** Where commits go: the lane, or the committer. */
  readonly #sink: CommitSink;
  #checkpoints = 0;
  #busyCheckpoints = 0;
  #lastCheckpointError: string | null = null;
  #autoCheckpoint: Promise<unknown> | null = null;
  readonly #policy: AutoCheckpointPolicy;
  readonly #exports = new Set<ExportRun>();
  readonly #replications = new Set<ReplicationHandle>();
  readonly #events: EventRing;
  readonly #extension: AttachedExtension | null;
  /** What every page written is checked against (pages.ts). */
  readonly #rules: PageRules;
  /** Verbs against close(); `#closed` once close() has begun. */
  readonly #gate: CloseGate;
  #closing: Promise<void> | null = null;
  /** Resolved once close() has settled this store's commits (null until a close is announced or begins): see #stopAfterCommitsSettle. */
  #commitsSettled: { promise: Promise<void>; resolve: () => void } | null = null;
  /** Tickets of sequenced commits, and the overlay through which snapshots see them (sequencer.ts). */
  readonly #sequencer: Sequencer;
  /** This store's copies of the pages its own committer writes (page-arena.ts). */
  readonly #pageCopies: PageArena;
  /** Opened read-only (option readOnly): why its writing verbs fail WALNUT_READONLY (read-only.ts); else null. */
  readonly #readOnly: ReadOnly | null;

  constructor(key: typeof CONSTRUCT_KEY, index: WalIndex, options: ResolvedOptions, events = new EventRing(), extension: AttachedExtension | null = null, reservedBytes?: number, readOnly: ReadOnly | null = null) {
    refuseDirectConstruction(key, 'Store', 'open()'); // before any argument is read (constructed.ts)
    this.#readOnly = readOnly;
    index.readOnly = readOnly !== null; // (a follow export never restarts its WAL: export/follow.ts)
    reservedBytes ??= index.pageTrailers ? PAGE_TRAILER_RESERVED : 0;
    this.#rules = { pageSize: index.pageSize, reservedBytes, maxPageCount: options.maxPageCount };
    this.#pageCopies = new PageArena(index.pageSize);
    this.#gate = new CloseGate(index.dbPath);
    this.#index = index;
    this.#options = options;
    this.#events = events;
    this.#extension = extension;
    this.#sequencer = new Sequencer(
      index.dbPath,
      () => {
        const h = index.closed ? null : index.liveOrLastGoodHeader(); // (not good while sqlite3 writes it: 0 pages was the size then)
        return h === null ? 0 : index.databaseSize(h);
      },
      () => index.othersCommitsMet,
    );
    this.#policy = new AutoCheckpointPolicy(options.autoCheckpoint, {
      holders: () => {
        const r = index.walReaders(this.#committer.committingSnapshots);
        return { snapshots: r.snapshots, walSnapshots: r.walSnapshots, exports: this.#exports.size, oldestSnapshotFrame: r.oldestSnapshotFrame, connections: r.others.map((o) => ({ slot: o.slot, mark: o.mark, pid: o.pid > 0 ? o.pid : null })) };
      },
      walBytes: () => (index.closed ? 0 : index.wal.file.sizeSync()),
      mxFrame: () => (index.closed ? 0 : (index.liveOrLastGoodHeader()?.mxFrame ?? 0)),
    }, events);
    this.#committer = new GroupCommitter(index, {
      synchronous: options.synchronous,
      maxBatchBytes: options.maxBatchBytes,
      maxWaitMicros: options.maxWaitMicros,
      stampTrailers: index.pageTrailers,
      events: this.#events,
      onWritten: extension === null ? undefined : (txns, firstFrame, salts) => extension.onWritten(txns, firstFrame, salts),
      onPublished: (txns) => this.#sequencer.published(txns),
      onCommitted: (mxFrame) => {
        for (const e of this.#exports) e.poke();

        // off the commit's latency path: a passive checkpoint in the background, one at a time,
        // backed off while a reader keeps the WAL from restarting (auto-checkpoint.ts)
        if (this.#autoCheckpoint === null && !this.#closed && this.#policy.dueAfterCommit(mxFrame)) this.#startAutoCheckpoint();
      },
      // null when the sidecar has room: the committer then keeps its WRITE run going
      beforeBatch: () => extension?.room() ?? null,
      // the lane's members whose last commits a batch settled resubmit into this one (lane.ts
      // gather(): bounded by the time a batch takes); the committer keeps WRITE meanwhile, as in
      // its own gathering turn (a new WRITE run per batch cost two fcntl locks, an lseek and the
      // -shm header's validation on the leader per batch: #21)
      gatherBatch: () => this.#lane?.gather() ?? null,
      // while a batch waits for WRITE held by a checkpointer that waits for readers: the lane's
      // queued transactions join the queue, to fail at once as its own do (CheckpointWaits)
      // and the commits of members whose store is closing leave such a wait (GroupCommitter.withdrawClosing)
      laneQueue: { shared: () => this.#lane?.takesFromOthers ?? false, take: () => this.#lane?.takeQueued(), closing: () => this.#lane?.hasClosingMembers ?? false },
      // Under WRITE, once the batch's transactions gave up their read marks: the batch that
      // restarts the WAL copies what the background checkpoint left (the frames appended while
      // it ran, or past its readers' marks) and waits for that only (auto-checkpoint.ts). A
      // passive checkpoint takes no WRITE.
      // `mx`: the live header's mxFrame, as the committer read it under WRITE (no lseek per batch)
      // null (the usual case: nothing to copy first) lets the batch go on without an await
      beforeAppend: (frames, mx) => {
        if (this.#closed) return null;
        const action = this.#policy.beforeBatch(mx, frames, this.#autoCheckpoint !== null, this.#backfilled);
        return action === null ? null : this.#checkpointBeforeAppend(action, mx);
      },
    });
    // the options the leader's committer applies to every member's commits must agree, and
    // the real path: the -wal and -shm are named after it, so names of one file by hard links
    // (one inode, several WALs) never share a lane, whose leader writes into its own -wal
    const laneKey = JSON.stringify([options.synchronous, options.fec, index.dbPath]);
    this.#lane = options.shareLane && index.lockingMode === 'shared' && readOnly === null ? new SharedLane(nativeHandleOf(index.db), laneKey, index.pageSize, this.#committer, index.dbPath) : null;
    // read-only: a transaction's commit with writes is refused there (its reads and a commit
    // without writes work: Transaction.commit resolves null before it submits anything)
    this.#sink = readOnly !== null ? { submit: () => Promise.reject(this.#readOnlyError('a transaction\'s commit')) } : (this.#lane ?? this.#committer);
  }

  /** The WALNUT_READONLY refusal of `what` on a store opened read-only. */
  #readOnlyError(what: string): WalnutError {
    return readOnlyError(this.#readOnly!, this.#index.dbPath, `${what} would write the database`);
  }

  /** Throws the WALNUT_READONLY refusal of `what` when the store was opened read-only (before anything is locked or written). */
  #refuseWrite(what: string): void {
    if (this.#readOnly !== null) throw this.#readOnlyError(what);
  }

  readonly #backfilled = (): number => this.#index.checkpointInfo().nBackfill;

  /** The auto-checkpoint's `action` before a batch's append (the committer's beforeAppend). */
  async #checkpointBeforeAppend(action: 'wait' | 'start' | 'wait-then-start', mx: number): Promise<void> {
    // the WAL restarts after this wait: following exports read what they lack meanwhile (Exporter.catchUp)
    for (const e of this.#exports) e.catchUp();
    if (action === 'wait' || action === 'wait-then-start') await this.#autoCheckpoint;
    if (action === 'start' || action === 'wait-then-start' || (action === 'wait' && !this.#policy.pinned && this.#backfilled() < mx)) await this.#startAutoCheckpoint();
  }

  get #closed(): boolean {
    return this.#gate.closed;
  }

  /** The database's real path. */
  get path(): string {
    return this.#index.dbPath;
  }
  get pageSize(): number {
    return this.#index.pageSize;
  }
  get options(): Readonly<ResolvedOptions> {
    return this.#options;
  }

  /**
   * Commits page images as one transaction. Concurrent calls are written together (group
   * commit); each resolves once its own commit is durable at the store's synchronous level.
   * `dbSize` defaults to max(previous size, highest page number); a smaller one truncates the
   * database (never below a page of the same commit). Input SQLite could not open is refused
   * (pages.ts). The pages are copied before it returns (page-arena.ts): the caller's buffers are
   * its own again at once.
   */
  commit(pages: readonly PageWrite[], options?: CommitOptions): Promise<CommitResult> {
    let reading = 'options';
    try {
      if (arguments.length > 2) refuseExtraArguments('store.commit', 'pages and options', 2, arguments);
      this.#checkOpen();
      const dbSize = commitDbSize(options, this.#rules, COMMIT_OPTIONS);
      const check = this.#commitCheck(options, true);
      reading = 'pages';
      const normalized = normalizePages(pages, this.#rules, dbSize);
      reading = '';
      // (after the input's checks, as open()'s readOnly refuses an option's bad value as bad
      // first: bad input says what is wrong with it on a read-only store too)
      this.#refuseWrite('store.commit()');
      return this.#sink.submit(normalized, dbSize, check, this.#copyPages(normalized));
    } catch (e) {
      // before submit() nothing was taken: what threw there is the input (a getter of the caller's);
      // refused on a later turn, as the committer refuses (a caller retrying at once must not starve its timers)
      return refusedOnLaterTurn(reading === '' ? e : asInputError(e, reading));
    }
  }

  /**
   * Copies the pages of a commit this store's own committer will write into the store's arena
   * (page-arena.ts): the copies to release once it settled. A store that shares a commit lane it
   * does not lead copies nothing here: the lane's native submit copies the pages at once.
   */
  #copyPages(pages: WalPage[]): PageCopies | null {
    if (this.#lane !== null && !this.#lane.leader) return null;
    return this.#pageCopies.copy(pages);
  }

  /**
   * Sequences page images as one commit: synchronously it takes its place in the commit order
   * (its ticket, ascending per store), and every snapshot of this store taken from then on
   * (snapshot(), trySnapshotSync(), snapshotSync(), unless { sequenced: false }) sees its pages
   * and database size; it is durable when `durable` resolves (or whenDurable(ticket)). Options
   * as commit()'s (dbSize, base), and `release` and `alone` (SequenceOptions). It is written as commit() would write it, in order with every
   * commit and transaction of this store; the pages' buffers are the store's until durable.
   * Fail-stop: when it fails, every commit sequenced after it fails too (the commit chain,
   * chainBrokenBy), its pages leave every snapshot at once (snapshots that saw them fail their
   * reads and whenDurable() with the failure), and sequence() refuses until resumeCommits().
   * Throws (nothing sequenced): WALNUT_CLOSED after close() began, the broken chain's
   * WALNUT_FAILED (ChainBroken), WALNUT_FAILED of a stopped store, WALNUT_INVALID_ARGUMENT for
   * bad input and, reason shareLane, on a store that shares a commit lane it does not lead
   * (its commits are written by another store's committer; open it with shareLane: false).
   */
  sequence(pages: readonly PageWrite[], options: SequenceOptions = {}): SequencedCommit {
    if (arguments.length > 2) refuseExtraArguments('store.sequence', 'pages and options', 2, arguments);
    this.#checkOpen();
    let dbSize: number | undefined;
    let release: SequenceOptions['release'];
    let alone: unknown;
    let check: CommitCheck | undefined;
    try {
      dbSize = commitDbSize(options, this.#rules, SEQUENCE_OPTIONS);
      release = options?.release;
      if (release !== undefined && typeof release !== 'function') {
        throw walnutError('WALNUT_INVALID_ARGUMENT', 'option release must be a function', { reason: 'options' });
      }
      alone = options?.alone;
      if (alone !== undefined && typeof alone !== 'boolean') throw walnutError('WALNUT_INVALID_ARGUMENT', 'option alone must be a boolean', { reason: 'options' });
      check = this.#commitCheck(options);
    } catch (e) {
      throw asInputError(e, 'options');
    }
    if (this.#lane !== null && !this.#lane.leader) {
      throw walnutError('WALNUT_INVALID_ARGUMENT', 'a sequenced commit needs a store that writes its own commits: this one shares a commit lane it does not lead; open it with shareLane: false', { reason: 'shareLane' });
    }
    // the lane's chain too: a store whose commit through the lane failed may lead it now
    const refusal = this.#lane?.chainRefusal ?? this.#committer.chainRefusal;
    if (refusal !== null) throw refusal;
    const normalized = readInput('pages', () => normalizePages(pages, this.#rules, dbSize));
    this.#refuseWrite('store.sequence()'); // (after the input's checks, as commit())
    let handBack: ((pages: WalPage[]) => void) | undefined;
    if (release === undefined) {
      // no hook: the pages are copied now (the caller's buffers are its own again at once), and
      // the copies go back to the arena once neither the overlay nor the committer reads them
      const copies = this.#pageCopies.copy(normalized);
      if (copies !== null) handBack = () => copies.release();
    } else {
      // the hook: the caller lends its buffers until it is called (walnut/sql's pool), no copy;
      // a page written twice keeps its last image: the hook still gets every buffer it was given
      const given = normalized.length < pages.length ? pages.slice() : null;
      handBack = given === null ? release : () => release(given);
    }
    const baseOthers = check !== undefined && 'base' in check ? this.#index.othersCommitsAt(check.base) : undefined;
    const sequenced = this.#sequencer.sequence(normalized, dbSize, (walPages) => this.#sink.submit(walPages, dbSize, check), handBack, baseOthers);
    if (alone === true && this.#lane === null) this.#committer.noneToGather(); // (a lane brings other stores' commits)
    return sequenced;
  }

  /**
   * Resolves once the sequenced commit `ticket` is durable (at once when it is); rejects with
   * its failure (the first failed commit's own error, the ones sequenced after it their
   * WALNUT_FAILED ChainBroken refusal). WALNUT_INVALID_ARGUMENT for a ticket not issued.
   */
  whenDurable(ticket: number): Promise<void> {
    if (arguments.length > 1) {
      const refused = extraArgumentError('store.whenDurable', 'only a ticket', 1, arguments);
      if (refused !== null) return Promise.reject(refused);
    }
    return this.#sequencer.whenDurable(ticket);
  }

  /** The last ticket sequence() issued (0: none yet). */
  get lastTicket(): number {
    return this.#sequencer.lastTicket;
  }

  /**
   * What commit options `base` asks the committer to check (commit() and sequence()). `held`:
   * the caller may keep the base until the commit settles (commit()): group-committer.ts.
   */
  #commitCheck(options: CommitOptions | undefined, held = false): CommitCheck | undefined {
    const base = options?.base;
    if (base === undefined) return undefined;
    if (!this.#index.isCommitBase(base)) {
      throw walnutError('WALNUT_INVALID_ARGUMENT', 'base must be a snapshot of this store (store.snapshot(), trySnapshotSync() or snapshotSync())', { reason: 'base' });
    }
    if (this.#lane !== null && !this.#lane.leader) {
      // a member that does not lead commits through the leader's connection, which cannot
      // check a base of this store's (the leader counts the others' commits against its own
      // bases: WalIndex.noteCommitForAnother)
      throw walnutError('WALNUT_INVALID_ARGUMENT', 'a conditional commit (base) needs a store that writes its own commits: this one shares a commit lane it does not lead; open it with shareLane: false', { reason: 'shareLane' });
    }
    return { base, held };
  }

  /**
   * The failure that broke the commit chain, or null. When a commit() or sequence() commit this
   * store had taken into the commit order fails (a write error, ENOSPC, busy, a conditional
   * commit's conflict: any failure), every commit after it may have been built on it: those
   * still queued and every later commit(), including Transactions', reject with WALNUT_FAILED,
   * reason ChainBroken (`cause`: the failure), until resumeCommits(). A Transaction's failure
   * breaks no chain: nothing is built on it before it is published (group-committer.ts).
   */
  get chainBrokenBy(): unknown {
    return this.#lane?.chainBrokenBy ?? this.#committer.chainBrokenBy;
  }

  /**
   * Acknowledges the failure that broke the commit chain (once whatever was built on the failed
   * commit has been discarded) and accepts commits again. With `failure` (the failed commit's
   * error or a ChainBroken refusal), only that break is mended, not a newer one. True when a
   * broken chain was mended. After a failed sync (WALNUT_FAILED, the store stopped) it changes
   * nothing: reopen.
   */
  resumeCommits(failure?: unknown): boolean {
    if (arguments.length > 1) refuseExtraArguments('store.resumeCommits', 'only the failure', 1, arguments);
    // a lane member keeps its own chain for what it handed to the lane (lane.ts), its committer
    // the chain of what it wrote while it led
    const lane = this.#lane?.resumeCommits(failure) ?? false;
    return this.#committer.resumeCommits(failure) || lane;
  }

  /**
   * A read-write transaction whose snapshot is taken now. It reads durable commits only (not
   * sequenced ones still in flight): its first-committer-wins check compares against what was
   * committed after its snapshot, which a commit it had seen in flight would also be.
   */
  begin(): Transaction {
    if (arguments.length > 0) refuseExtraArguments('store.begin', 'no arguments', 0, arguments);
    this.#checkOpen();
    // taken synchronously where a read mark can be had at once: beginRead() reads the header after
    // a hop, and a lone commit made right after begin() now completes within its call
    // (WalIndex.appendInline), so the snapshot would otherwise already hold that commit and the
    // transaction would miss its conflict with it
    // A snapshot that fails (the -shm cut under this connection: WALNUT_CORRUPT, ShmTruncated)
    // fails the transaction's read() and commit(), as when it is taken asynchronously: begin()
    // itself throws only WALNUT_CLOSED and its argument refusal, both before it does anything.
    let begunAt: { mxFrame: number; salts: [number, number] } | null = null;
    let snapshot: Promise<Snapshot>;
    try {
      const now = this.#index.tryBeginReadSync();
      if (now !== null) {
        snapshot = Promise.resolve(now);
      } else {
        // no read mark at once (another connection's checkpointer holds the read slots while it
        // moves their marks): the snapshot comes later, perhaps after commits made right after
        // begin(); its conflicts are counted from the header begin() saw (Transaction's
        // `begunAt`), so those commits are conflicts, not overwritten (a lost update)
        // (the last good header while another process writes it: read not good, begunAt was
        // null and conflicts counted from the later snapshot, past that process's commit)
        const h = this.#index.liveOrLastGoodHeader();
        begunAt = h === null ? null : { mxFrame: h.mxFrame, salts: [h.salts[0], h.salts[1]] };
        snapshot = this.#index.beginRead({ cuttable: true }); // close() cuts its wait (ReadLockWaitCut)
      }
    } catch (e) {
      snapshot = Promise.reject(e);
    }
    return new Transaction(CONSTRUCT_KEY, this.#gate.track(snapshot), this.#sink, this.#rules, this.#gate, begunAt);
  }

  /**
   * A consistent read view; holds a read mark until release(). close() releases the snapshots
   * still held; their reads then reject with WALNUT_CLOSED. It sees this store's sequenced
   * commits not durable yet (sequence(); its pendingTicket, whenDurable()) unless
   * `{ sequenced: false }`.
   */
  snapshot(options?: SnapshotOptions): Promise<Snapshot> {
    try {
      if (arguments.length > 1) refuseExtraArguments('store.snapshot', 'only options', 1, arguments);
      this.#checkOpen();
      const sequenced = sequencedOption(options);
      return this.#gate.track(this.#asyncSnapshot(sequenced));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Its view of the sequenced commits must be taken in the step that read its header (a commit
   * published in between would be in neither): an asynchronous snapshot that finds the header
   * changed since is taken again, synchronously.
   */
  async #asyncSnapshot(sequenced: boolean): Promise<Snapshot> {
    for (;;) {
      const s = await this.#index.beginRead({ cuttable: true }); // close() cuts its wait for a read slot (ReadLockWaitCut)
      if (!sequenced) return s;
      if (this.#sequencer.idle || this.#index.stillPublished(s.headerBytes)) return this.#withPending(s, true);
      s.release();
      const now = this.#index.tryBeginReadSync();
      if (now !== null) return this.#withPending(now, true);
    }
  }

  #withPending(s: Snapshot, sequenced: boolean): Snapshot {
    if (sequenced) s.attachPending(CONSTRUCT_KEY, this.#sequencer.view());
    return s;
  }

  /**
   * snapshot(), synchronously and once: null when no read mark can be had right now (a
   * checkpointer or writer is between steps, every read slot is taken) or when the wal-index
   * needs recovery first (then snapshot()). For callers that begin a read inside synchronous
   * code, as a SQLite VFS's xLock does.
   */
  trySnapshotSync(options?: SnapshotOptions): Snapshot | null {
    if (arguments.length > 1) refuseExtraArguments('store.trySnapshotSync', 'only options', 1, arguments);
    this.#checkOpen();
    const sequenced = sequencedOption(options);
    const s = this.#index.tryBeginReadSync();
    return s === null ? null : this.#withPending(s, sequenced);
  }

  /**
   * snapshot(), synchronously: retries trySnapshotSync() (sleeping the thread, as SQLite's busy
   * handler does) up to the busy timeout, then throws WALNUT_BUSY (reason BusyRead).
   */
  snapshotSync(options?: SnapshotOptions): Snapshot {
    if (arguments.length > 1) refuseExtraArguments('store.snapshotSync', 'only options', 1, arguments);
    const deadline = performance.now() + this.#index.busyTimeout;
    for (let attempt = 0; ; attempt++) {
      const s = this.trySnapshotSync(options);
      if (s !== null) return s;
      if (performance.now() > deadline) {
        throw walnutError('WALNUT_BUSY', 'could not take a read lock before the busy timeout (snapshotSync)', { path: this.#index.shmPath, reason: 'BusyRead' });
      }
      sleepSync(Math.min(attempt, 10));
    }
  }

  /**
   * Keeps the WAL write lock until close() or releaseWriteLease(): other connections (a sqlite3
   * process, another store) can read and checkpoint but not commit (SQLITE_BUSY / WALNUT_BUSY
   * when their busy timeout ends); this store's commits and checkpoints go on. For a writer that
   * cannot check its commits against others' (walnut/sql's pipelined SQL transactions), or one
   * whose long write another connection's commits keep overtaking (walnut/sql takes it for
   * that write). Waits for the lock up to the busy timeout (WALNUT_BUSY). Calls are counted:
   * the lock is let go when each has been given back.
   */
  holdWriteLease(): Promise<void> {
    if (arguments.length > 0) {
      const refused = extraArgumentError('store.holdWriteLease', 'no arguments', 0, arguments);
      if (refused !== null) return Promise.reject(refused);
    }
    if (this.#readOnly !== null && !this.#closed) return Promise.reject(this.#readOnlyError('store.holdWriteLease() (the WAL write lock)'));
    if (this.#lane !== null && !this.#lane.leader) {
      return Promise.reject(walnutError('WALNUT_INVALID_ARGUMENT', 'another store of this process writes the commits of this database file (its commit lane); a write lease here would lock it out: open this store with shareLane: false', { reason: 'shareLane', path: this.#index.dbPath }));
    }
    return this.#gate.run(() => this.#index.holdWriteLease());
  }

  /**
   * Gives back one holdWriteLease(); with the last one, other connections can commit again
   * (a batch of this store's that is being written then keeps the lock until it is in). After
   * close() it does nothing (close() let the lock go); without a lease held it is
   * WALNUT_INVALID_ARGUMENT (reason 'lease').
   */
  releaseWriteLease(): void {
    // (takes any argument, as close() and release() do: a verb that ends something is used as a callback)
    if (this.#gate.closed) return;
    if (!this.#index.leased) throw walnutError('WALNUT_INVALID_ARGUMENT', 'no write lease is held (holdWriteLease() first)', { reason: 'lease', path: this.#index.dbPath });
    this.#index.releaseWriteLease();
  }

  /**
   * SQLite's PRAGMA data_version: changes whenever another connection (a sqlite3 process,
   * another store) commits; this store's own commits leave it. Synchronous (the mapped
   * -shm header), so a page cache can be checked at the start of every read.
   */
  dataVersion(): number {
    if (arguments.length > 0) refuseExtraArguments('store.dataVersion', 'no arguments', 0, arguments);
    this.#checkOpen();
    return this.#index.dataVersion();
  }

  /**
   * Copies committed frames into the database file, with SQLite's modes and results
   * (PRAGMA wal_checkpoint): passive never waits and stops at the oldest reader; full waits for
   * writers and readers (busy timeout) to copy everything; restart also waits until no reader
   * uses the WAL so the next writer starts it over; truncate then cuts it to zero bytes.
   * Commits continue during a passive checkpoint.
   */
  checkpoint(mode: CheckpointMode = 'passive'): Promise<CheckpointResult> {
    try {
      // checkpoint takes no options: { busyTimeout } or a callback after the mode would be
      // dropped, as a misspelt option name would be (option-names.ts), so it is refused
      if (arguments.length > 1) refuseExtraArguments('store.checkpoint', 'only a mode', 1, arguments);
      this.#checkOpen();
      if (!CHECKPOINT_MODES.includes(mode)) {
        throw walnutError('WALNUT_INVALID_ARGUMENT', "mode must be 'passive', 'full', 'restart' or 'truncate'", { reason: 'mode' });
      }
      this.#refuseWrite('store.checkpoint()'); // (after the mode's check, as commit())
      return this.#gate.track(this.#checkpoint(mode));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Exports the database as an ARKHEXP1 stream: a consistent base image, then every committed
   * transaction (with follow, until stop(); commits by other processes are picked up too).
   * close() cuts an export still running (done rejects with WALNUT_CLOSED): await done, or
   * stop(), before close() for a complete stream.
   */
  exportTo(target: WalRecordSink | Writable | ExportFile, options: ExportOptions = {}): ExportHandle {
    if (arguments.length > 2) refuseExtraArguments('store.exportTo', 'a target and options', 2, arguments);
    this.#checkOpen();
    return this.#startExport(target, options);
  }

  #startExport(target: WalRecordSink | Writable | ExportFile, options: ExportOptions): ExportHandle {
    const handle = startExport(this.#index, target, options);
    this.#exports.add(handle);
    void handle.done.finally(() => this.#exports.delete(handle)).catch(() => undefined);
    return handle;
  }

  /**
   * Publishes every commit to a NATS JetStream stream, with base images from time to time
   * (lib/replicate/publisher.ts: sessions, back-pressure, the lag bound). Commits never wait
   * for the network. close() stops it after publishing what was committed (within its
   * stopTimeoutMs); stop() does the same earlier. By default the publisher runs on a worker
   * thread (replicate/thread.ts) fed by an export of this connection; with thread: false, or in
   * lockingMode 'exclusive' (the worker's own connection reads base images), on this event loop.
   */
  replicateTo(options: ReplicateOptions): ReplicationHandle {
    if (arguments.length > 1) refuseExtraArguments('store.replicateTo', 'only options', 1, arguments);
    this.#checkOpen();
    const resolved = readInput('options', () => resolveReplicateOptions(options));
    // the class is the worker's, and an exclusive store runs none (its publisher is on this
    // loop): asked for there, it was silently not had, as with thread: false (publisher.ts)
    if (resolved.background && this.#options.lockingMode !== 'shared') {
      throw walnutError('WALNUT_INVALID_ARGUMENT', "replication option background: true needs the worker thread, which a store in lockingMode 'exclusive' does not run", { reason: 'background' });
    }
    let r: ReplicationHandle;
    // close() stops a replication (it publishes what was committed, even when stopped before it
    // began) before it cuts exports: until it has ended, its exports pass the close gate
    const exportTo = (sink: WalRecordSink, o: ExportOptions): ExportHandle => (this.#replications.has(r) ? this.#startExport(sink, o) : this.exportTo(sink, o));
    if (resolved.thread && this.#options.lockingMode === 'shared') {
      const { dev, ino } = fs.fstatSync(this.#index.db.fd);
      r = new ReplicationThread(this.#index.dbPath, { dev, ino }, exportTo, resolved, this.#options.busyTimeout, this.#readOnly !== null);
    } else {
      // base images are durable state: the publisher's snapshots do not see sequenced commits
      const source = { path: this.path, pageSize: this.pageSize, exportTo, snapshot: () => this.snapshot({ sequenced: false }), checkpoint: this.checkpoint.bind(this) };
      r = startReplication(source, resolved);
    }
    this.#replications.add(r);
    r.once('end', () => this.#replications.delete(r));
    return this.#stopAfterCommitsSettle(r);
  }

  /**
   * The handle, whose stop() waits, once close() has begun (or walnut/sql announced it), until
   * close() has settled this store's commits, then stops: its export's last pass reads every
   * commit close() acknowledges, and its stopTimeoutMs counts from there, as for the stop()
   * close() makes itself. A stop() during close() (right after it, or by a signal handler) ended
   * the export at once, and the commits close() was still writing were acknowledged and never
   * published, without a word (40 commits of 1,000 pages: 8 in the stream); made to wait in the
   * export instead, its deadline ran out meanwhile and, the server answering, the commits close()
   * settled after it were left out, said only by a StopTimeout (200 commits settling in 0.5 s,
   * stopTimeoutMs 200: 137 left out), where close() alone published them all. An argument stop()
   * refuses (a number) is refused at once, nothing stopped.
   */
  #stopAfterCommitsSettle(r: ReplicationHandle): ReplicationHandle {
    const stopNow = r.stop.bind(r) as (...args: unknown[]) => Promise<void>;
    r.stop = (...args: unknown[]): Promise<void> => {
      const settled = this.#commitsSettled;
      return settled === null || stopArgumentError(args[0]) !== null ? stopNow(...args) : settled.promise.then(() => stopNow(...args));
    };
    return r;
  }

  /**
   * (walnut/sql's close() only: CONSTRUCT_KEY) This store's close() is coming, once the
   * Database's transactions have finished: a replication stopped meanwhile waits, as during
   * close() itself, for close() to settle the commits (#stopAfterCommitsSettle). Without it a stop()
   * right after db.close() ended the export before the transactions then in flight committed:
   * acknowledged, never published (11 to 98 of 100 queued transactions). The caller must close
   * the store after this (walnut/sql does, in a finally), or such a stop() waits for ever.
   * The waits for another connection's WRITE end now too, as close() ends them (cutLockWaits):
   * the Database's close() waits for its commits in flight before it closes the store, and a
   * statement whose commit waited for a WRITE held elsewhere kept it waiting the rest of the
   * busy timeout (test/hostile/close-cuts-write-waits); so do a checkpoint's wait for readers
   * and a snapshot's for a read slot (#cutLockWaits).
   */
  announceClose(key: typeof CONSTRUCT_KEY): void {
    refuseOutsideCall(key, 'store.announceClose');
    this.#commitsSettled ??= settledSignal();
    this.#cutLockWaits();
  }

  /**
   * The waits for another connection's locks end (close(), announceClose()): this connection's
   * for WRITE, a checkpoint's for readers, a snapshot's for a read slot (WalIndex.cutLockWaits),
   * those of this store's commits that a lane committer holds in its wait for WRITE
   * (SharedLane.announceClose: withdrawn there), and those of its replication workers'
   * connections, opening or open (ReplicationThread.cutLockWaits).
   */
  #cutLockWaits(): void {
    this.#index.cutLockWaits();
    this.#lane?.announceClose();
    // the replication workers' own connections (base images, checkpoints) too, their opens
    // included: an open waiting for a torn header was not cut, and close() waited for it
    for (const r of this.#replications) if (r instanceof ReplicationThread) r.cutLockWaits();
  }

  #startAutoCheckpoint(): Promise<unknown> {
    this.#autoCheckpoint = this.#checkpoint('passive', true)
      .catch((e: Error) => {
        const code = (e as { code?: string }).code ?? 'ERROR';
        // (a WalnutError's message starts with its code already: it read "WALNUT_CORRUPT: WALNUT_CORRUPT: ...")
        this.#lastCheckpointError = e.message.startsWith(`${code}: `) ? e.message : `${code}: ${e.message}`;
      })
      .finally(() => {
        this.#autoCheckpoint = null;
      });
    return this.#autoCheckpoint;
  }

  async #checkpoint(mode: CheckpointMode, auto = false): Promise<CheckpointResult> {
    const t0 = performance.now();
    let r: CheckpointResult;
    let copy: CopyReport | null = null;
    try {
      const run = async (): Promise<CheckpointResult> =>
        runCheckpoint(await this.#index.checkpointTarget(), mode, {
          sync: this.#options.synchronous !== 'off',
          onCopy: (c) => (copy = c),
          readersWaitingForWrite: (slot, n) => {
            const stuck = (s: Snapshot): boolean => !s.released && s.readLock >= slot && s.readLock < slot + n;
            for (const s of this.#committer.committingSnapshots) if (stuck(s)) return true;
            for (const s of this.#committer.waitingBases.keys()) if (stuck(s)) return true;
            // a lane member's transaction waiting for this committer holds its snapshot as long
            // (a chaos run: the leader's FULL checkpoint and every commit stalled 20 s)
            return this.#committer.memberReadLockIn(slot, n);
          },
        });
      r = await run();
      // CKPT busy (walFrames -1) because of this connection's own background checkpoint (the
      // auto-checkpoint, a follow export's restart attempt): a caller's checkpoint waits for it,
      // up to the busy timeout, and runs then (a SQLite connection runs its own checkpoints one
      // at a time, so they never meet; here a truncate came back busy beside an idle WAL).
      // Another connection's checkpointer still makes it busy at once, as in SQLite: one more try
      // (ours may have ended since it made this one busy), then only while ours runs.
      const deadline = performance.now() + this.#options.busyTimeout;
      let firstRetry = true;
      while (!auto && r.walFrames === -1 && !this.#index.closed && performance.now() < deadline && (firstRetry || this.#index.checkpointing)) {
        firstRetry = false;
        while (this.#index.checkpointing && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 1));
        r = await run();
      }
    } catch (e) {
      this.#events.emit('fault', () => ({ stage: 'checkpoint', code: (e as { code?: string }).code, errno: (e as { errno?: number }).errno, path: this.#index.dbPath }));
      throw e;
    }
    this.#events.emit('checkpoint', () => ({ ...r, auto, copy, micros: Math.round((performance.now() - t0) * 1000) }));
    if (mode === 'truncate' && !r.busy && r.walFrames === 0) this.#extension?.onWalTruncated();
    if (!this.#index.closed) this.#policy.observe(r, auto);
    this.#checkpoints++;
    if (r.busy) this.#busyCheckpoints++;
    return r;
  }

  /** Metrics as an object, or as Prometheus text with { format: 'prometheus' }. */
  metrics(): StoreMetrics;
  metrics(options: { format: 'prometheus' }): string;
  metrics(options: { format?: 'object' }): StoreMetrics;
  metrics(options?: { format?: 'object' | 'prometheus' }): StoreMetrics | string {
    if (arguments.length > 1) refuseExtraArguments('store.metrics', 'only options', 1, arguments);
    // (null, as options or as format, is refused: option-names.ts)
    const format: unknown = readInput('options', () => (options === undefined ? 'object' : typeof options === 'object' && options !== null ? givenOr(options.format, 'object') : undefined));
    if ((format !== 'object' && format !== 'prometheus') || (typeof options === 'object' && options !== null && unknownOptionName(options, ['format']) !== undefined)) {
      // metrics('prometheus') or { format: 'text' } gave the object: a scrape would serve "[object Object]"
      throw walnutError('WALNUT_INVALID_ARGUMENT', `metrics options must be { format: 'object' | 'prometheus' }, not ${describeValue(options)}`, { reason: 'options' });
    }
    const m = this.#metricsObject();
    return format === 'prometheus' ? toPrometheus(m as unknown as Record<string, unknown>) : m;
  }

  /** The last events (commits' batches are not recorded, only published; see telemetry/events.ts). */
  recentEvents(): RecordedEvent[] {
    if (arguments.length > 0) refuseExtraArguments('store.recentEvents', 'no arguments', 0, arguments);
    return this.#events.recent();
  }

  #metricsObject(): StoreMetrics {
    const walFrames = this.#closed ? 0 : (this.#index.liveOrLastGoodHeader()?.mxFrame ?? 0);
    return {
      ...this.#committer.metrics(),
      walFrames,
      wal: this.#policy.metrics(walFrames, walFrames === 0 ? 0 : this.#index.checkpointInfo().nBackfill),
      checkpoints: this.#checkpoints,
      busyCheckpoints: this.#busyCheckpoints,
      checkpointWaits: this.#policy.waits,
      handedOverFrames: this.#index.handedOverFrames,
      lastCheckpointError: this.#lastCheckpointError,
      ...(this.#lane === null || this.#closed ? {} : { lane: this.#lane.metrics() }),
      ...(this.#extension === null ? {} : this.#extension.metrics()),
    };
  }

  /**
   * Refuses every later call (WALNUT_CLOSED), waits for the calls already running (queued
   * commits, transactions' commits and reads, snapshots being taken, checkpoints; those waiting
   * for a WRITE another connection holds are cut short: a holdWriteLease() WALNUT_CLOSED, a
   * commit or checkpoint WALNUT_CLOSED, reason WriteWaitCut, a lane member's commits too; a
   * checkpoint waiting for readers, a snapshot for a read slot, reason ReadLockWaitCut; any call
   * waiting for another connection to let go of or recover a torn wal-index header, reason
   * RecoveryWaitCut: #cutLockWaits), cuts exports
   * still running (exportTo), then releases every lock and file. Like SQLite's last connection: when no other
   * connection has the database open, it checkpoints and, if that was complete, removes the
   * -wal and -shm (unless keepWal). So every commit that resolved is in the database or its WAL.
   */
  close(): Promise<void> {
    if (this.#closing === null) {
      const settled = (this.#commitsSettled ??= settledSignal());
      this.#closing = (async () => {
        this.#cutLockWaits(); // commits, checkpoints, snapshots and holdWriteLease() still waiting for another connection's locks reject WALNUT_CLOSED: the gate need not wait out their busy timeout
        try {
          await this.#gate.close();
          // this store's lane commits settle (it leads meanwhile if it leads), then another member
          // takes over; what this committer took already is written and settled before it leaves
          await this.#lane?.resign();
          await this.#committer.close();
        } finally {
          settled.resolve(); // (a replication's stop() waits for it: never left waiting)
        }
        await Promise.all([...this.#replications].map((r) => r.stop()));
        this.#lane?.leave();
        const cut = walnutError('WALNUT_CLOSED', 'the store closed during the export', { path: this.#index.dbPath });
        await Promise.all([...this.#exports].map((e) => e.cut(cut)));
        await this.#autoCheckpoint;
        // snapshots (and idle transactions) still held end now, as documented, before the
        // closing checkpoint: their read marks would stop it short and keep the -wal and -shm
        this.#index.releaseSnapshots();
        let removed = false;
        if (!this.#options.keepWal && this.#committer.failed === null) removed = await closeAsLastConnection(this.#index, this.#options.synchronous !== 'off');
        else await this.#index.close();
        await this.#extension?.close(removed);
      })();
    }
    return this.#closing;
  }

  #checkOpen(): void {
    this.#gate.check();
    const failed = this.#committer.failed;
    if (failed) throw failed;
  }
}

function sequencedOption(options: SnapshotOptions | undefined): boolean {
  return readInput('options', () => sequencedOptionAsGiven(options));
}

function sequencedOptionAsGiven(options: SnapshotOptions | undefined): boolean {
  if (options === undefined) return true;
  // (null, as options or as sequenced, is refused: option-names.ts)
  const v = typeof options === 'object' && options !== null ? (options as { sequenced?: unknown }).sequenced : undefined;
  if (typeof options !== 'object' || options === null || (v !== undefined && typeof v !== 'boolean') || unknownOptionName(options, ['sequenced']) !== undefined) {
    throw walnutError('WALNUT_INVALID_ARGUMENT', `snapshot options must be { sequenced?: boolean }, not ${describeValue(options)}`, { reason: 'options' });
  }
  return v !== false;
}

/** A promise and its resolve (Store #commitsSettled). */
function settledSignal(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((res) => (resolve = res));
  return { promise, resolve };
}
