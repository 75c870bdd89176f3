/**
 * commit/store.ts — open() and Store, the public face of a walnut database (DESIGN.md
 * section 2): one-shot commits through the group committer, transactions, snapshots, metrics.
 *
 * A new database is created as SQLite creates one in WAL mode (a 1-page file whose page 1 is
 * an empty schema b-tree), made durable (file and directory fsync) before any WAL exists; an
 * empty file gets the same page 1 (index/journal-mode.ts, as PRAGMA journal_mode=WAL does).
 * Beyond that walnut never writes page contents of its own. An existing rollback-journal
 * database is put into WAL mode first (header bytes only; index/journal-mode.ts, option convert).
 */
import * as path from 'node:path';

import { walnutError } from '../errors';
import { newDatabasePage1 } from '../format/db-header';
import { PAGE_TRAILER_RESERVED, stampPageTrailer } from '../wal/page-trailer';
import type { Snapshot } from '../index/snapshot';
import type { WalFile, WalRecovery, WalTransaction } from '../wal/wal-file';
import { WalIndex } from '../index/wal-index';
import { WalnutFile } from '../io/file';
import { runCheckpoint, type CheckpointResult } from '../checkpoint/execute';
import type { CheckpointMode } from '../checkpoint/plan';
import type { Writable } from 'node:stream';

import type { ExportOptions } from '../export/exporter';
import type { WalRecordSink } from '../export/framing';
import { startExport, type ExportHandle } from '../export/stream';
import type { WalnutFile as ExportFile } from '../io/file';
import { EventRing, type RecordedEvent } from '../telemetry/events';
import { toPrometheus } from '../telemetry/prometheus';
import { GroupCommitter, type CommitMetrics, type CommitResult } from './group-committer';
import { resolveOptions, type OpenOptions, type ResolvedOptions } from './options';
import { checkDbSize, normalizePages, type PageWrite } from './pages';
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
  /** What recovery did with the sidecar when this store opened the database. */
  recovery: { repairedFrames: number; repairedGroups: number; fallbacks: Partial<Record<string, number>> };
}

export interface StoreMetrics extends CommitMetrics {
  /** The FEC sidecar (when option fec is on): groups written, repairs and fallbacks in recovery. */
  fec?: FecMetrics;
  /** WAL frames in the live index. */
  walFrames: number;
  /** Checkpoints run (auto and explicit) and how many were busy. */
  checkpoints: number;
  busyCheckpoints: number;
  /** Batches that waited for a checkpoint because the WAL passed twice autoCheckpoint frames. */
  checkpointWaits: number;
  /** The last background (auto) checkpoint failure, if any. */
  lastCheckpointError: string | null;
}

const MODES: readonly CheckpointMode[] = ['passive', 'full', 'restart', 'truncate'];

/**
 * What a higher layer adds to a store (the FEC sidecar, lib/fec/extension.ts): a recovery
 * repair hook, and, once the store is open, a batch observer with back-pressure.
 */
export interface StoreExtension {
  /** Recovery's repair hook (WalIndexOptions.repairWal); `events` is the store's event ring. */
  repairWal?: (wal: WalFile, recovery: WalRecovery, events: EventRing) => Promise<boolean>;
  attach(ctx: { walPath: string; pageSize: number; events: EventRing; synchronous: ResolvedOptions['synchronous'] }): Promise<AttachedExtension>;
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

export async function open(file: string, options?: OpenOptions, extension?: StoreExtension): Promise<Store> {
  const o = resolveOptions(options);
  if (typeof file !== 'string' || file.length === 0) {
    throw walnutError('WALNUT_INVALID_ARGUMENT', 'path must be a non-empty string', { reason: 'path' });
  }
  await createIfMissing(file, o.pageSize, o.pageChecksums === true);
  const events = new EventRing();
  const repair = extension?.repairWal;
  const index = await WalIndex.open(file, { lockingMode: o.lockingMode, busyTimeout: o.busyTimeout, walSizeLimit: o.walSizeLimit, convert: o.convert, newPage1: () => newPage1(o.pageSize, o.pageChecksums === true), repairWal: repair && ((wal, recovery) => repair(wal, recovery, events)) });
  let attached: AttachedExtension | null = null;
  try {
    index.pageTrailers = await pageTrailersWanted(index, o.pageChecksums);
    if (extension) attached = await extension.attach({ walPath: index.walPath, pageSize: index.pageSize, events, synchronous: o.synchronous });
  } catch (e) {
    await index.close();
    throw e;
  }
  return new Store(index, o, events, attached);
}

/** Trailers follow the database: its header reserves 16 bytes per page or it does not. */
async function pageTrailersWanted(index: WalIndex, option: boolean | undefined): Promise<boolean> {
  const snap = await index.beginRead();
  let reserved: number;
  try {
    reserved = (await snap.readRaw(1))[20]!;
  } finally {
    snap.release();
  }
  if (option === true && reserved !== PAGE_TRAILER_RESERVED) {
    throw walnutError('WALNUT_INVALID_ARGUMENT', `option pageChecksums: ${index.dbPath} reserves ${reserved} bytes per page, not ${PAGE_TRAILER_RESERVED}; page checksums need a database created with them`, { reason: 'pageChecksums' });
  }
  return option ?? reserved === PAGE_TRAILER_RESERVED;
}

/** Page 1 of a new database (an empty schema), with its checksum trailer when asked. */
function newPage1(pageSize: number, pageChecksums: boolean): Uint8Array {
  const page1 = newDatabasePage1(pageSize, undefined, pageChecksums ? PAGE_TRAILER_RESERVED : 0);
  if (pageChecksums) stampPageTrailer(page1);
  return page1;
}

async function createIfMissing(file: string, pageSize: number, pageChecksums: boolean): Promise<void> {
  let f: WalnutFile;
  try {
    f = await WalnutFile.open(file, { exclusive: true, mode: 0o644 });
  } catch (e) {
    if ((e as { errno?: number }).errno === 17) return; // exists
    throw e;
  }
  try {
    await f.writev([newPage1(pageSize, pageChecksums)], 0, 'full');
  } finally {
    await f.close();
  }
  await WalnutFile.syncDirectory(path.dirname(path.resolve(file)));
}

export class Store {
  readonly #index: WalIndex;
  readonly #options: ResolvedOptions;
  readonly #committer: GroupCommitter;
  #checkpoints = 0;
  #busyCheckpoints = 0;
  #lastCheckpointError: string | null = null;
  #autoCheckpoint: Promise<unknown> | null = null;
  #checkpointWaits = 0;
  #lastCheckpointLimited = false;
  #nextCheckpointAt = 0;
  readonly #exports = new Set<ExportHandle>();
  readonly #events: EventRing;
  readonly #extension: AttachedExtension | null;
  #closed = false;
  #closing: Promise<void> | null = null;

  constructor(index: WalIndex, options: ResolvedOptions, events = new EventRing(), extension: AttachedExtension | null = null) {
    this.#index = index;
    this.#options = options;
    this.#events = events;
    this.#extension = extension;
    this.#committer = new GroupCommitter(index, {
      synchronous: options.synchronous,
      maxBatchBytes: options.maxBatchBytes,
      maxWaitMicros: options.maxWaitMicros,
      stampTrailers: index.pageTrailers,
      events: this.#events,
      onWritten: extension === null ? undefined : (txns, firstFrame, salts) => extension.onWritten(txns, firstFrame, salts),
      onCommitted: (mxFrame) => {
        for (const e of this.#exports) e.poke();

        // off the commit's latency path: a passive checkpoint in the background, one at a time
        // After a checkpoint that a reader held back, the next one waits for another
        // autoCheckpoint frames: back-to-back checkpoints that cannot finish would only queue
        // their syncs in front of the commits'.
        if (options.autoCheckpoint !== false && mxFrame >= Math.max(options.autoCheckpoint, this.#nextCheckpointAt) && this.#autoCheckpoint === null && !this.#closed) {
          this.#startAutoCheckpoint();
        }
      },
      beforeBatch: async () => {
        const room = extension?.room();
        if (room) await room;
        // The WAL restarts (and its space is reused) only when a batch finds everything copied.
        // A background checkpoint started by the last commit is usually still running when the
        // next batch comes, so that batch waits for it, once per autoCheckpoint frames (SQLite's
        // committing connection runs the whole checkpoint itself). Past twice the threshold a
        // batch starts one and waits, which bounds the WAL under any load.
        if (options.autoCheckpoint === false || this.#closed) return;
        const mx = this.#index.liveHeader()?.mxFrame ?? 0;
        if (mx < options.autoCheckpoint) return;
        // Waiting helps only if a checkpoint can copy everything; when the last one was held
        // back by a reader (a snapshot, a follower, a sqlite3 read transaction) the WAL grows
        // until that reader moves on, as it does in SQLite.
        if (this.#autoCheckpoint === null && (this.#lastCheckpointLimited || this.#index.checkpointInfo().nBackfill >= mx)) return;
        if (this.#autoCheckpoint === null && mx < 2 * options.autoCheckpoint) return;
        this.#checkpointWaits++;
        await (this.#autoCheckpoint ?? this.#startAutoCheckpoint());
      },
    });
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
   * `dbSize` defaults to max(previous size, highest page number).
   */
  commit(pages: readonly PageWrite[], options: { dbSize?: number } = {}): Promise<CommitResult> {
    try {
      this.#checkOpen();
      const normalized = normalizePages(pages, this.#index.pageSize);
      return this.#committer.submit(normalized, checkDbSize(options?.dbSize));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** A read-write transaction whose snapshot is taken now. */
  begin(): Transaction {
    this.#checkOpen();
    return new Transaction(this.#index.beginRead(), this.#committer, this.#index.pageSize);
  }

  /** A consistent read view; holds a read mark until release(). */
  snapshot(): Promise<Snapshot> {
    try {
      this.#checkOpen();
      return this.#index.beginRead();
    } catch (e) {
      return Promise.reject(e);
    }
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
      this.#checkOpen();
      if (!MODES.includes(mode)) {
        throw walnutError('WALNUT_INVALID_ARGUMENT', "mode must be 'passive', 'full', 'restart' or 'truncate'", { reason: 'mode' });
      }
      return this.#checkpoint(mode);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Exports the database as an ARKHEXP1 stream: a consistent base image, then every committed
   * transaction (with follow, until stop(); commits by other processes are picked up too).
   */
  exportTo(target: WalRecordSink | Writable | ExportFile, options: ExportOptions = {}): ExportHandle {
    this.#checkOpen();
    const handle = startExport(this.#index, target, options);
    this.#exports.add(handle);
    void handle.done.finally(() => this.#exports.delete(handle)).catch(() => undefined);
    return handle;
  }

  #startAutoCheckpoint(): Promise<unknown> {
    this.#autoCheckpoint = this.#checkpoint('passive')
      .catch((e: Error) => {
        this.#lastCheckpointError = `${(e as { code?: string }).code ?? 'ERROR'}: ${e.message}`;
      })
      .finally(() => {
        this.#autoCheckpoint = null;
      });
    return this.#autoCheckpoint;
  }

  async #checkpoint(mode: CheckpointMode): Promise<CheckpointResult> {
    const t0 = performance.now();
    let r: CheckpointResult;
    try {
      r = await runCheckpoint(await this.#index.checkpointTarget(), mode, { sync: this.#options.synchronous !== 'off' });
    } catch (e) {
      this.#events.emit('fault', () => ({ stage: 'checkpoint', code: (e as { code?: string }).code, errno: (e as { errno?: number }).errno, path: this.#index.dbPath }));
      throw e;
    }
    this.#events.emit('checkpoint', () => ({ ...r, micros: Math.round((performance.now() - t0) * 1000) }));
    if (mode === 'truncate' && !r.busy && r.walFrames === 0) this.#extension?.onWalTruncated();
    this.#lastCheckpointLimited = r.checkpointedFrames >= 0 && r.checkpointedFrames < r.walFrames;
    const every = this.#options.autoCheckpoint === false ? 0 : this.#options.autoCheckpoint;
    this.#nextCheckpointAt = this.#lastCheckpointLimited ? r.walFrames + every : 0;
    this.#checkpoints++;
    if (r.busy) this.#busyCheckpoints++;
    return r;
  }

  /** Metrics as an object, or as Prometheus text with { format: 'prometheus' }. */
  metrics(): StoreMetrics;
  metrics(options: { format: 'prometheus' }): string;
  metrics(options?: { format?: 'object' | 'prometheus' }): StoreMetrics | string {
    const m = this.#metricsObject();
    return options?.format === 'prometheus' ? toPrometheus(m as unknown as Record<string, unknown>) : m;
  }

  /** The last events (commits' batches are not recorded, only published; see telemetry/events.ts). */
  recentEvents(): RecordedEvent[] {
    return this.#events.recent();
  }

  #metricsObject(): StoreMetrics {
    return {
      ...this.#committer.metrics(),
      walFrames: this.#closed ? 0 : (this.#index.liveHeader()?.mxFrame ?? 0),
      checkpoints: this.#checkpoints,
      busyCheckpoints: this.#busyCheckpoints,
      checkpointWaits: this.#checkpointWaits,
      lastCheckpointError: this.#lastCheckpointError,
      ...(this.#extension === null ? {} : this.#extension.metrics()),
    };
  }

  /**
   * Waits for queued commits and a running checkpoint, then releases every lock and file. Like
   * SQLite's last connection: when no other connection has the database open, it checkpoints
   * and, if that was complete, removes the -wal and -shm (unless keepWal).
   */
  close(): Promise<void> {
    if (this.#closing === null) {
      this.#closing = (async () => {
        this.#closed = true;
        await this.#committer.idle();
        await Promise.allSettled([...this.#exports].map((e) => e.stop()));
        await this.#autoCheckpoint;
        if (!this.#options.keepWal && this.#committer.failed === null && this.#index.tryExclusive()) {
          const r = await this.#index.checkpointTarget().then((t) => runCheckpoint(t, 'passive', { sync: this.#options.synchronous !== 'off' })).catch(() => null);
          if (r !== null && !r.busy && r.checkpointedFrames === r.walFrames) {
            await this.#index.closeRemovingWal();
            await this.#extension?.close(true);
            return;
          }
        }
        await this.#index.close();
        await this.#extension?.close(false);
      })();
    }
    return this.#closing;
  }

  #checkOpen(): void {
    if (this.#closed) throw walnutError('WALNUT_CLOSED', 'the store is closed', { path: this.#index.dbPath });
    const failed = this.#committer.failed;
    if (failed) throw failed;
  }
}
