/**
 * commit/options.ts — the options of open() (DESIGN.md section 2), their defaults, and their
 * validation: every bad option is WALNUT_INVALID_ARGUMENT naming it in `reason`.
 */
import { describeValue, readInput } from '../arguments';
import { walnutError } from '../errors';
import { isValidPageSize } from '../format/page-size';
import { givenOr, unknownOptionName } from '../option-names';
import { MAX_PAGE_COUNT } from './pages';

export type Synchronous = 'full' | 'normal' | 'off';

export interface GroupCommitOptions {
  /** Largest batch (page bytes) one write takes; default 8 MiB. A larger single commit still goes alone. */
  maxBatchBytes?: number;
  /** How long a batch waits for more commits once the writer is free; default 0 (no wait). */
  maxWaitMicros?: number;
}

export interface OpenOptions {
  /** Page size of a new database (default 4096); an existing database keeps its own. */
  pageSize?: number;
  /** 'full' (default): durable when commit() resolves. 'normal': durable at checkpoint. 'off'. */
  synchronous?: Synchronous;
  /** 'shared' (default): SQLite-compatible -shm and locks. 'exclusive': heap index, no -shm. */
  lockingMode?: 'shared' | 'exclusive';
  groupCommit?: GroupCommitOptions;
  /**
   * WAL frames after which a passive checkpoint is due (default 1000); false = never. Bounds the
   * WAL only while no reader holds it; while one does, checkpoints back off (commit/auto-checkpoint.ts).
   */
  autoCheckpoint?: number | false;
  /**
   * The `<db>-wal-fec` sidecar of repair symbols (fec/): false (default), or
   * { repairSymbols: R (default 2; 1..16 for 'rs', 1..255 for 'raptorq'), codec: 'rs' | 'raptorq' }.
   */
  fec?: false | FecOptions;
  /** Milliseconds to retry locks held elsewhere before WALNUT_BUSY (default 5000). */
  busyTimeout?: number;
  /**
   * Bytes the WAL file is cut back to by the first commit after a restart or a truncate
   * checkpoint (to max(walSizeLimit, the frames it wrote)); default 64 MiB, like SQLite's
   * journal_size_limit. Not a cap: a WAL a reader keeps from restarting grows past it.
   */
  walSizeLimit?: number;
  /**
   * 16-byte XXH3-128 trailer in every page (wal/page-trailer.ts). `true` creates a new database
   * that reserves 16 bytes per page (an existing one must already); walnut stamps each page it
   * commits and checks each page it reads. Default: on exactly when the database reserves 16 bytes.
   */
  pageChecksums?: boolean;
  /** close() leaves the -wal and -shm in place. */
  keepWal?: boolean;
  /**
   * A WAL whose frames reach past 8 MiB keeps 4-8 MiB of zeros written and synced ahead of its
   * last frame by the background lane (WalFile.zeroAhead), so commits overwrite synced space.
   * Default false: it won 1.3-1.6x on a loaded disk here but lost (0.90x) on a quiet one.
   */
  zeroAhead?: boolean;

  /**
   * A database in rollback-journal mode (what SQLite creates by default) is converted to WAL
   * mode on open, as `PRAGMA journal_mode=WAL` does: under an exclusive lock (WALNUT_BUSY after
   * busyTimeout while a SQLite connection reads or writes it), never while a hot `-journal`
   * exists (WALNUT_CANTOPEN, reason HotJournal). Default true; false refuses such a database
   * instead (WALNUT_CANTOPEN, reason NotWalMode) and leaves its file untouched.
   */
  convert?: boolean;
  /**
   * Largest page number (and database size in pages) a commit may have, like SQLite's PRAGMA
   * max_page_count: default 1073741823 (2^30 - 1, SQLite's default before 3.45), at most
   * 0xfffffffe (SQLITE_MAX_PAGE_COUNT). Pages past 16 TiB are refused whatever this says.
   */
  maxPageCount?: number;
  /**
   * Default true: stores of this process on the same database file (in any worker_thread, or
   * several in one thread) share one commit lane (commit/lane.ts): the first store's group
   * committer writes the commits of all of them. false: this store writes its own commits, as a
   * separate connection. Stores in lockingMode 'exclusive' never share.
   */
  shareLane?: boolean;
  /**
   * true: the store writes nothing to the database file or its -wal (commit/read-only.ts): its
   * commit(), sequence(), a transaction's commit with writes, checkpoint() and holdWriteLease()
   * fail WALNUT_READONLY (reason ReadOnlyDatabase), a follow export never restarts the WAL. A
   * missing database is WALNUT_CANTOPEN (reason NotFound), not created. Its defaults are then
   * keepWal true, autoCheckpoint false, convert false and shareLane false; the options that
   * would write (keepWal false, an autoCheckpoint count, fec, convert true) or lock others out
   * (lockingMode 'exclusive'), and shareLane true, are refused. Default false.
   */
  readOnly?: boolean;
}

export interface FecOptions {
  repairSymbols?: number;
  codec?: 'rs' | 'raptorq';
}

export interface ResolvedOptions {
  fec: { repairSymbols: number; codec: 'rs' | 'raptorq' } | null;
  pageSize: number;
  synchronous: Synchronous;
  lockingMode: 'shared' | 'exclusive';
  maxBatchBytes: number;
  maxWaitMicros: number;
  autoCheckpoint: number | false;
  busyTimeout: number;
  walSizeLimit: number;
  keepWal: boolean;
  zeroAhead: boolean;
  /** undefined: follow the database header. */
  pageChecksums: boolean | undefined;

  convert: boolean;
  maxPageCount: number;
  shareLane: boolean;
  readOnly: boolean;
}

const KNOWN = ['pageSize', 'synchronous', 'lockingMode', 'groupCommit', 'autoCheckpoint', 'fec', 'busyTimeout', 'walSizeLimit', 'pageChecksums', 'keepWal', 'zeroAhead', 'convert', 'maxPageCount', 'shareLane', 'readOnly'];

/** SQLite's default max_page_count before 3.45 (what the sqlite3 of many systems still has). */
const DEFAULT_MAX_PAGE_COUNT = 0x3fffffff;

function invalid(option: string, message: string): never {
  throw walnutError('WALNUT_INVALID_ARGUMENT', `option ${option}: ${message}`, { reason: option });
}

/** An option of `o` not in `known` is refused (reason: `prefix` + its name). */
function refuseUnknown(o: object, known: readonly string[], prefix: string): void {
  const key = unknownOptionName(o, known);
  if (key !== undefined) invalid(`${prefix}${key}`, 'is not a walnut option');
}

function nonNegativeInteger(v: unknown, option: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) invalid(option, 'must be a non-negative integer');
  return v;
}

export function resolveOptions(options: OpenOptions | undefined): ResolvedOptions {
  return readInput('options', () => resolveOptionsAsGiven(options));
}

function resolveOptionsAsGiven(options: OpenOptions | undefined): ResolvedOptions {
  const o = givenOr(options, {}) as Record<string, unknown>;
  if (typeof o !== 'object' || o === null || Array.isArray(o)) invalid('options', 'must be an object'); // (an array's indices were read as no options)
  refuseUnknown(o, KNOWN, '');
  const readOnly = givenOr(o['readOnly'], false);
  if (typeof readOnly !== 'boolean') invalid('readOnly', 'must be a boolean');
  const pageSize = o['pageSize'] === undefined ? 4096 : (o['pageSize'] as number);
  if (!isValidPageSize(pageSize)) invalid('pageSize', 'must be a power of two between 512 and 65536');
  const synchronous = givenOr(o['synchronous'], 'full') as Synchronous;
  if (!['full', 'normal', 'off'].includes(synchronous)) invalid('synchronous', "must be 'full', 'normal' or 'off'");
  const lockingMode = givenOr(o['lockingMode'], 'shared') as 'shared' | 'exclusive';
  if (lockingMode !== 'shared' && lockingMode !== 'exclusive') invalid('lockingMode', "must be 'shared' or 'exclusive'");
  const gc = givenOr(o['groupCommit'], {}) as Record<string, unknown>;
  if (typeof gc !== 'object' || gc === null) invalid('groupCommit', 'must be an object');
  refuseUnknown(gc, ['maxBatchBytes', 'maxWaitMicros'], 'groupCommit.');
  const maxBatchBytes = gc['maxBatchBytes'] === undefined ? 8 << 20 : nonNegativeInteger(gc['maxBatchBytes'], 'groupCommit.maxBatchBytes');
  if (maxBatchBytes < 1) invalid('groupCommit.maxBatchBytes', 'must be at least 1');
  const maxWaitMicros = gc['maxWaitMicros'] === undefined ? 0 : nonNegativeInteger(gc['maxWaitMicros'], 'groupCommit.maxWaitMicros');
  if (maxWaitMicros > 1_000_000) invalid('groupCommit.maxWaitMicros', 'must be at most 1,000,000 (one second)');
  const ac = o['autoCheckpoint'] === undefined ? (readOnly ? false : 1000) : o['autoCheckpoint'];
  if (ac !== false && (typeof ac !== 'number' || !Number.isSafeInteger(ac) || ac < 1)) invalid('autoCheckpoint', 'must be a positive number of frames or false');
  let fec: ResolvedOptions['fec'] = null;
  if (o['fec'] !== undefined && o['fec'] !== false) {
    const f = o['fec'] as Record<string, unknown>;
    if (typeof f !== 'object' || f === null) invalid('fec', "must be false or { repairSymbols, codec: 'rs' | 'raptorq' }");
    refuseUnknown(f, ['repairSymbols', 'codec'], 'fec.');
    const codec = givenOr(f['codec'], 'rs') as 'rs' | 'raptorq';
    if (codec !== 'rs' && codec !== 'raptorq') invalid('fec.codec', "must be 'rs' or 'raptorq'");
    const r = f['repairSymbols'] === undefined ? 2 : f['repairSymbols'];
    const max = codec === 'rs' ? 16 : 255;
    if (typeof r !== 'number' || !Number.isInteger(r) || r < 1 || r > max) invalid('fec.repairSymbols', `must be an integer in 1..${max} for codec '${codec}'`);
    fec = { repairSymbols: r, codec };
  }
  const pageChecksums = o['pageChecksums'] as boolean | undefined;
  if (pageChecksums !== undefined && typeof pageChecksums !== 'boolean') invalid('pageChecksums', 'must be a boolean');
  const busyTimeout = o['busyTimeout'] === undefined ? 5000 : nonNegativeInteger(o['busyTimeout'], 'busyTimeout');
  const walSizeLimit = o['walSizeLimit'] === undefined ? 64 << 20 : nonNegativeInteger(o['walSizeLimit'], 'walSizeLimit');
  const keepWal = givenOr(o['keepWal'], readOnly);
  if (typeof keepWal !== 'boolean') invalid('keepWal', 'must be a boolean');
  const zeroAhead = givenOr(o['zeroAhead'], false);
  if (typeof zeroAhead !== 'boolean') invalid('zeroAhead', 'must be a boolean');

  const convert = givenOr(o['convert'], !readOnly);
  if (typeof convert !== 'boolean') invalid('convert', 'must be a boolean');
  const maxPageCount = o['maxPageCount'] === undefined ? DEFAULT_MAX_PAGE_COUNT : nonNegativeInteger(o['maxPageCount'], 'maxPageCount');
  if (maxPageCount < 1 || maxPageCount > MAX_PAGE_COUNT) invalid('maxPageCount', `must be an integer in 1..${MAX_PAGE_COUNT}`);
  const shareLane = givenOr(o['shareLane'], !readOnly);
  if (typeof shareLane !== 'boolean') invalid('shareLane', 'must be a boolean');
  if (readOnly) refuseWritingOptions(o); // (each option's own type checked first: a bad value says so)
  return { pageSize, synchronous, lockingMode, maxBatchBytes, maxWaitMicros, autoCheckpoint: ac as number | false, busyTimeout, walSizeLimit, keepWal, zeroAhead, pageChecksums, fec, convert, maxPageCount, shareLane, readOnly };
}

/**
 * readOnly: true with options that write the database's files of their own accord (a
 * checkpoint into the database file at close or on a frame count, a -wal-fec sidecar, a
 * rollback-journal database converted), lock every other connection out (exclusive locking),
 * or hand this store's committer other stores' commits (a shared commit lane) is refused, as
 * walnut/sql refuses them with its readOnly (sql/database.ts): SQLite's read-only connections do
 * none of it.
 */
function refuseWritingOptions(o: Record<string, unknown>): void {
  const given = (name: string): boolean => o[name] !== undefined;
  const writes: [string, boolean, string][] = [
    ['keepWal', given('keepWal') && o['keepWal'] !== true, 'checkpoints the WAL into the database file at close'],
    ['autoCheckpoint', given('autoCheckpoint') && o['autoCheckpoint'] !== false, 'checkpoints the WAL into the database file'],
    ['fec', given('fec') && o['fec'] !== false, 'writes a -wal-fec sidecar'],
    ['convert', given('convert') && o['convert'] !== false, 'converts a rollback-journal database to WAL mode'],
    ['lockingMode', given('lockingMode') && o['lockingMode'] !== 'shared', 'keeps every other connection out'],
    ['shareLane', given('shareLane') && o['shareLane'] !== false, "has this store write the commits of the process's other stores of the file"],
  ];
  for (const [name, refused, what] of writes) {
    if (refused) invalid(name, `${describeValue(o[name])} ${what}, and readOnly: true writes nothing: leave it out`);
  }
}
