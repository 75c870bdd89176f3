/**
 * export/restore.ts — builds a database from an ARKHEXP1 export stream.
 *
 * Order of work: BASE_META (the base's commit sequence N and time), the base image
 * (BASE_PAGES in page order, then BASE_END whose xxh3-128 must match); then, per generation
 * (WAL_HEADER; the first may continue the base's generation from its anchor frame and chain
 * value), transactions: FRAMES (or PAGE_DELTA, rebuilt against the page's previous version:
 * the transaction's own last frame of it, else the file as built so far; a delta that does not
 * yield its page's hash stops the restore like a broken chain, reason DeltaMismatch) whose
 * salts match the header and whose checksum chain verifies
 * from the header (or anchor), ending at a commit frame, then COMMIT_META whose xxh3-128
 * matches the transaction's frames and whose sequence is the previous one + 1. A transaction's
 * pages reach the file only once its COMMIT_META has verified (until then they are held in
 * memory), so the file is always at a commit boundary: the first transaction that fails a
 * check, a torn tail (Truncated) or a broken record ends the restore at the last good commit,
 * like WAL recovery; a stream that breaks before its base image is complete is an error.
 * `until` (a commit sequence, or a time as the exporter saw the commits) ends the restore at
 * the last commit at or before it (a sequence: once that commit is applied, nothing after it is
 * read, and a tail after it is reported as 'until' whatever is wrong with it; a time: the next
 * commit's COMMIT_META tells, so a broken record before it is reported as itself); one before the base (the stream's earliest point) is
 * refused at BASE_META, before anything is written (WALNUT_INVALID_ARGUMENT, reason
 * BeforeEarliest, naming that point). A stream of the first layout (no BASE_META; records.ts)
 * replays older commits over a newer base, so only its complete end is a real state: it is
 * restored whole, and refused with `until` (reason FirstLayoutStream) or when it does not end
 * at a commit (WALNUT_INVALID_FRAMING with the reason it stopped).
 * An untouched fs.ReadStream of a regular file is not read through the stream: the file is
 * read with large positioned reads into a few reused buffers (framing.ts fromFile), whose
 * payloads are views; before one of those buffers is reused the held transaction's frames are
 * copied and every page write handed to the PageWriter before has completed. While the base
 * image is being read, its BASE_PAGES records are applied by the addon straight from that file
 * (native/base_restore.h: per record one read, its hash, one write; no JavaScript per page),
 * in runs of BASE_RUN_BYTES between progress reports; a record the native run does not apply
 * exactly as this file would is left to the code below, which reports what is wrong with it.
 * Both paths advance one hash (BaseImageWriter), so a stream file restores exactly as the same
 * bytes from memory do.
 * The database is built in a temporary file beside the target, synced,
 * then renamed over it; an existing database is never overwritten without `force`, nor is a
 * missing one whose -wal is still there with frames, or whose hot rollback -journal is (reason
 * StaleCompanion): SQLite ties neither to its database, so the next connection would replay that
 * -wal, or play that journal back, over the restored file.
 * Arguments restore cannot use are refused before anything is opened (WALNUT_INVALID_ARGUMENT;
 * an unreadable stream file WALNUT_CANTOPEN), and a source that fails while it is read rejects
 * with WALNUT_IO (reason 'source'), the target untouched.
 *
 * Files: a target path that is a symbolic link is resolved first (SQLite's rule: the database
 * is the link's target, and its -wal/-shm sit beside the target), so the link stays and the
 * file it names is replaced, or created when it does not exist yet (io/real-path.ts). A replaced database keeps its permission bits; a new one gets
 * 0644 less the umask, as SQLite creates databases. The temporary file is created with
 * O_EXCL under a random name (never an existing file or a planted link), synchronously, in the
 * turn of the event loop that registers it (abandonRestores, run by a signal handler between
 * turns, finds the file whenever it finds its name), and holds an exclusive
 * OFD lock on its byte 0 from before its first byte is written until after the rename (what
 * walnut before the marker below reads as a live restore). Each restore first registers its
 * temporary file's name in the target's marker (`.<name>.restore-asides`, durably, before the file
 * exists: io/restore-asides.ts), so that the next open or restore settles what a killed one left
 * (which would otherwise stay beside the target, hidden, as large as the database) by that name
 * alone, touching no file the marker does not list. The replaced database's -wal, -shm, -journal and FEC sidecar (they
 * describe the old file) are moved aside (its -wal's commits first checkpointed into it, so that
 * the file alone holds them: checkpointOldDatabase) under names tied to the temporary file's, durably,
 * before the rename, and removed after it: a crash before the rename leaves the old database,
 * whose companions the next restore or open of it puts back (the temporary file still there
 * says the rename did not happen), one after it the new database, no companion of the old one
 * beside it (removing them first, as before, left the old database without its -wal, and every
 * commit not checkpointed lost, to a crash before the rename). A target that
 * is the stream's own file (by device and inode) is refused, even with `force`; so is a database
 * a connection has open (it holds a lock on the database or the -shm's DMS byte: checked before
 * the work and again just before the rename), which would stay on the unlinked old file, and
 * so is a target named as another database's -wal, -shm, -journal or sidecar (reason
 * TargetIsCompanion): SQLite would take it for that database's file.
 */
import { readInput, refuseExtraArguments, describeValue } from '../arguments';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { constants as osConstants } from 'node:os';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { getSystemErrorName } from 'node:util';

import { sqliteWalChecksum, Xxh3Stream } from '../checksum';
import { diskFull, walnutError, WalnutError } from '../errors';
import { DB_HEADER_SIZE, DB_LOCK, hasDbMagic } from '../format/db-header';
import { FRAME_HEADER_SIZE } from '../format/frame-header';
import { SHM_LOCK } from '../format/shm-header';
import { bigEndianChecksum, decodeWalHeader, WAL_HEADER_SIZE } from '../format/wal-header';
import { nativeHandleOf, WalnutFile } from '../io/file';
import { checkDbPath, refuseCompanionName, requireRegularFiles, resolvedPath } from '../io/real-path';
import { COMPANION_SUFFIXES, markerPathOf, moveAside, moveBack, registerRestore, removeAsides, settleRestores } from '../io/restore-asides';
import { ReplicaPosition } from '../replicate/position';
import { nativeExportIo, type NativeLockHolder } from '../native';
import { closeAsLastConnection } from '../checkpoint/execute';
import { dbHeaderThroughWal } from '../wal/page1-through-wal';
import { WalIndex } from '../wal-index/wal-index';
import { unknownOptionName } from '../option-names';
import { hashBytes } from './exporter';
import { WalStreamReader } from './framing';
import { PageWriter } from './page-writer';
import { applyPageDelta, deltaPgno } from './page-delta';
import { decodeRecord, KIND, MAX_COMMIT_SEQUENCE } from './records';

export interface RestoreOptions {
  /**
   * The state to restore: after this commit sequence (a whole number >= 0), or after the last
   * commit the exporter had seen by this time (Date). Default: the stream's last commit.
   */
  until?: number | bigint | Date;
  /** Replace an existing database file. */
  force?: boolean;
  /** Told how many bytes of the stream have been read so far, as the restore goes. */
  onProgress?: (bytes: number) => void;
}

export interface RestoreResult {
  /** Commits applied after the base image. */
  commits: number;
  dbPages: number;
  /** The commit sequence of the state restored (the base image's when no commit was applied). */
  lastCommitSeq: number;
  /** When the exporter saw that state (ISO 8601); null for a base image of the first layout. */
  lastCommitTime: string | null;
  /** Why the stream's tail was not applied, when it was not: a WalnutError reason or 'until'. */
  stoppedBy: string | null;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

class StopRestore extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

export async function restore(source: Readable | AsyncIterable<Uint8Array> | Uint8Array, dbPath: string, options: RestoreOptions = {}): Promise<RestoreResult> {
  if (arguments.length > 3) refuseExtraArguments('restore', 'a source, a path and options', 3, arguments);
  const { until, onProgress } = readInput('options', () => {
    checkArguments(source, dbPath, options);
    return { until: checkUntil(options.until), onProgress: checkProgress(options.onProgress) };
  });
  // A stream may fail (a missing file, say) before it is read: keep that from becoming an
  // uncaught 'error' event; the failure surfaces when the records are read below.
  if (typeof (source as Readable).on === 'function') (source as Readable).on('error', () => undefined);
  refuseUnreadableFile(source);
  refuseCompanionName(resolvedPath(dbPath), `restore to ${dbPath}`);
  settleRestores(resolvedPath(dbPath), { legacy: true }); // a restore that died there: the database it left, with its companions, before anything is looked at
  const replaced = existingTarget(dbPath);
  if (replaced !== null && !options.force) {
    throw walnutError('WALNUT_INVALID_ARGUMENT', `${dbPath} exists; pass force (--force) to replace it`, { path: dbPath, reason: 'exists' });
  }
  if (replaced !== null) refuseSourceAsTarget(source, replaced, dbPath);
  const target = replaced?.path ?? resolvedPath(dbPath); // a dangling link: its target is created, the link kept (as sqlite3 does)
  const stale = staleCompanions(target);
  if (replaced === null && stale.stale !== null && !options.force) {
    const wal = stale.stale.endsWith('-wal');
    const what = stale.staleIsLink ? `its ${wal ? '-wal' : 'rollback -journal'} does, as a symbolic link` : wal ? 'its -wal does, with frames' : 'its hot rollback -journal does';
    throw walnutError('WALNUT_INVALID_ARGUMENT', `${dbPath} does not exist but ${what} (left by a database that was there): the next connection would replay it over the restored database; remove ${stale.stale} or pass force (--force)`, { path: stale.stale, reason: 'StaleCompanion' });
  }
  if (replaced !== null || stale.files.length > 0) refuseDatabaseInUse(target);
  if (replaced !== null) refuseHotJournal(target, dbPath); // (after: a live writer's journal is not hot, its RESERVED lock says InUse)
  // registered in the target's marker, durably, before its temporary file exists: what a crash
  // leaves is found by the marker's name alone (io/restore-asides.ts)
  const registration = register(target, dbPath);
  const tmp = registration.temporary;
  // Created synchronously, in the same turn of the event loop as its registration and its entry
  // in liveTemporaries: a SIGINT/SIGTERM handler (abandonRestores) runs between turns, so it finds
  // the file there whenever it finds its name. Created by an open on the I/O thread (awaited), a
  // handler that ran while that open was queued removed nothing, settled the marker away, and the
  // open then created the file, which the dying process left behind, listed nowhere
  // (cli-restore-interrupted; restore-abandoned-before-created).
  let out: WalnutFile;
  try {
    out = WalnutFile.openSync(tmp, { exclusive: true, mode: 0o644 });
  } catch (err) {
    const e = err as WalnutError;
    registration.release();
    settleRestores(target); // (the entry, with nothing of it left)
    if (!(e instanceof WalnutError) || (e.code !== 'WALNUT_CANTOPEN' && e.code !== 'WALNUT_IO') || e.errno === undefined) throw e;
    throw cannotCreateBeside(dbPath, target, tmp, e);
  }
  const live: LiveRestore = { target, registration, phase: 'writing' };
  liveTemporaries.set(tmp, live); // (a SIGINT from here on: abandonRestores, by its phase)
  let keep = false;
  /** Companion suffixes moved aside (io/restore-asides.ts), and whether the new file took the target's name. */
  const moved: string[] = [];
  let renamed = false;
  try {
    // this restore is alive (the header; its marker entry's lock says so to walnut since the
    // marker, this one to walnut before it); the lock goes with the descriptor. Waited for: a
    // walnut before the marker settling restores may hold it for a moment, having found this
    // file just created (empty, young: it leaves it), which failed this restore WALNUT_BUSY
    out.lockSync(0, 1, 'exclusive', OWN_LOCK_WAIT_MS);
    settleRestores(target); // restores to this target that died: their files settled (again, now that ours is locked)
    if (replaced !== null) fs.fchmodSync(out.fd, replaced.mode); // exactly, past the umask
    const file = await streamFileOf(source);
    const r = await apply(file ?? source, out, until, onProgress).finally(() => file?.close()).catch((e: unknown) => {
      throw sourceFailure(e);
    });
    await out.fsync();
    if (replaced !== null || stale.files.length > 0) refuseDatabaseInUse(target); // again: a connection may have opened it meanwhile
    // the old file's companions go aside (not away), durably, under names tied to this file's:
    // a crash before the rename leaves the old database, its companions found again by its
    // temporary file's name; one after it the new database, no -wal of the old one beside it
    if (replaced !== null) await checkpointOldDatabase(target);
    // the check for connections, again, now held to the rename: a sqlite3 that opened the
    // database during the checkpoint (after the check above) would have its live -wal moved
    // aside and removed, its commits lost, and stay on the replaced file
    const held = replaced !== null || stale.files.length > 0 ? holdOffConnections(target) : null;
    try {
      // (again, now that no writer can start: a hot journal seen before the work may have been
      // rolled back meanwhile, but none may go aside, where sqlite3 would not find it)
      if (replaced !== null) refuseHotJournal(target, dbPath);
      // (the phase moves in the turn of each step: a signal handled between turns puts the
      // asides back, or removes them once the new file is in: abandonRestores)
      live.phase = 'aside';
      // a live replica's own position stays: the replica is restoring its base image here (anyone
      // else's restore onto a live replica's database was refused InUse above)
      moveAside(target, tmp, moved, ReplicaPosition.heldByAReplica(target) ? KEEP_REPLICA_POSITION : undefined);
      if (moved.length > 0) await WalnutFile.syncDirectory(path.dirname(target));
      if (replaced === null) placeWhereNothingIs(tmp, target, dbPath);
      else fs.renameSync(tmp, target);
      renamed = true;
      live.phase = 'renamed';
    } finally {
      held?.forEach((f) => f.closeSync()); // a connection waiting for them now opens the new file (or sees the old one moved: SQLITE_READONLY_DBMOVED)
    }
    await out.close(); // only now: its lock kept other restores from taking it for abandoned
    await WalnutFile.syncDirectory(path.dirname(target));
    removeAsides(tmp); // the replaced database's: a crash before this leaves them to settleRestores
    keep = true;
    return r;
  } catch (e) {
    throw replacementFailure(e, dbPath, target, renamed);
  } finally {
    if (!keep && renamed) {
      try {
        removeAsides(tmp); // (the new database is in place: they are the old one's)
      } catch {
        // left to settleRestores: its temporary file is gone, so they go
      }
    }
    if (!keep && !renamed) {
      // the old database keeps its companions: back under their names, durably, before the
      // temporary file (whose name says they are aside) goes; what cannot go back keeps it
      let back = true;
      if (moved.length > 0) {
        try {
          back = moveBack(target, tmp);
          await WalnutFile.syncDirectory(path.dirname(target));
        } catch {
          back = false;
        }
      }
      await out.close().catch(() => undefined);
      if (back) fs.rmSync(tmp, { force: true });
    }
    // this restore's entry given up, then the marker settled: removed once nothing is left (what
    // could not go back stays listed, for the next open or restore). Only now out of
    // liveTemporaries: a signal during the awaits above finishes that cleanup (abandonRestores)
    liveTemporaries.delete(tmp);
    registration.release();
    settleRestores(target);
  }
}

/**
 * WALNUT_CANTOPEN naming the target when a file a restore makes beside it (`file`: its marker,
 * its temporary file) cannot be created: a missing or unwritable directory, or (reason
 * NameTooLong) a database name so long that the restore's own names do not fit the file system.
 */
function cannotCreateBeside(dbPath: string, target: string, file: string, e: WalnutError): WalnutError {
  const errno = Math.abs(e.errno!);
  if (errno === osConstants.errno.ENAMETOOLONG) {
    const name = path.basename(file);
    return walnutError('WALNUT_CANTOPEN', `cannot restore to ${dbPath}: its name is too long for the file a restore makes beside it (${name}, ${Buffer.byteLength(name)} bytes)`, { path: target, errno: e.errno, reason: 'NameTooLong', cause: e });
  }
  return walnutError('WALNUT_CANTOPEN', `cannot restore to ${dbPath}: cannot create a file in ${path.dirname(target)} (${getSystemErrorName(-errno)})`, { path: target, errno: e.errno, cause: e });
}

/** registerRestore for a restore to `target` (named `dbPath` by the caller): a new random temporary name. */
function register(target: string, dbPath: string): ReturnType<typeof registerRestore> {
  try {
    return registerRestore(target, randomBytes(6).toString('hex'));
  } catch (e) {
    if (e instanceof WalnutError && e.reason === 'RestoreMarker' && e.errno !== undefined && e.code === 'WALNUT_CANTOPEN') {
      // a marker that is there but cannot be written (another user's, say) is named as such: the
      // directory takes new files (it said "cannot create a file in <dir> (EACCES)")
      const marker = markerPathOf(target);
      let there = false;
      try {
        there = fs.lstatSync(marker, { throwIfNoEntry: false }) !== undefined;
      } catch {
        // (a name too long, a directory that cannot be looked into: not there to this restore)
      }
      if (there) {
        throw walnutError('WALNUT_CANTOPEN', `cannot restore to ${dbPath}: ${marker}, where a restore records its temporary files, cannot be opened for writing (${getSystemErrorName(-Math.abs(e.errno))}); restore as its owner, or move it away`, { path: marker, errno: e.errno, reason: 'RestoreMarker', cause: e });
      }
      throw cannotCreateBeside(dbPath, target, marker, e);
    }
    if (e instanceof WalnutError) throw e;
    throw walnutError('WALNUT_IO', `cannot restore to ${dbPath}: ${(e as Error).message}`, { path: target, reason: 'RestoreMarker', cause: e });
  }
}

/**
 * WALNUT_INVALID_ARGUMENT (reason 'HotJournal') when the database to replace has a hot rollback
 * -journal (a writer killed mid-transaction: its changed pages are in the file, the journal is
 * what undoes them). Moved aside, that journal was out of sight of a sqlite3 that opened the
 * database before walnut put it back (a restore killed before its rename): sqlite3 read the
 * uncommitted transaction as the database. walnut has no journal playback; sqlite3 has: opening
 * the database with it once rolls the transaction back, after which the restore goes ahead.
 */
function refuseHotJournal(target: string, dbPath: string): void {
  const journal = `${target}-journal`;
  const st = fs.lstatSync(journal, { throwIfNoEntry: false });
  if (st === undefined || !(st.isSymbolicLink() || hotJournal(journal))) return;
  throw walnutError(
    'WALNUT_INVALID_ARGUMENT',
    `refusing to replace ${dbPath}: it has a hot rollback journal (${journal}: a writer died mid-transaction); open it with sqlite3 first (sqlite3 ${dbPath} 'PRAGMA integrity_check'), which rolls that transaction back, then restore again`,
    { path: journal, reason: 'HotJournal' },
  );
}

/**
 * The new file put at `target`, where nothing was when the restore began (no force asked for),
 * without replacing what may have appeared there since: a hard link, which fails EEXIST, then
 * the temporary name removed (in one turn: a signal handler sees both or neither done). A
 * rename here replaced a database created meanwhile (an application starting, sqlite3, a
 * second restore to the same path finishing first) without a word, and a connection open on it
 * went on writing into the unlinked file. On a file system without hard links, the check and the
 * rename (the window between them is the only one left). A crash between the link and the
 * removal leaves the temporary name beside the placed database: settleRestores removes that name
 * (putting back any aside), the database stays.
 */
function placeWhereNothingIs(tmp: string, target: string, dbPath: string): void {
  const appeared = (): WalnutError => walnutError('WALNUT_INVALID_ARGUMENT', `${dbPath} exists (it was created while the restore ran; left as it is); pass force (--force) to replace it`, { path: dbPath, reason: 'exists' });
  try {
    fs.linkSync(tmp, target);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw appeared();
    if (!['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS'].includes((e as NodeJS.ErrnoException).code ?? '')) throw e;
    if (fs.lstatSync(target, { throwIfNoEntry: false }) !== undefined) throw appeared();
    fs.renameSync(tmp, target);
    return;
  }
  fs.unlinkSync(tmp);
}

/**
 * A failure of a step of the replacement itself (a rename, a removal, a directory sync: the
 * OS's raw error) as a WalnutError: WALNUT_FULL for a full disk or quota, else WALNUT_IO, the
 * errno and the original as its cause, the message saying which database is there now (before
 * the rename the old one, its companions put back by the caller; after it the new one). A
 * rename over a mount point (a bind-mounted database: EBUSY) is one. WalnutErrors pass as they are.
 */
function replacementFailure(e: unknown, dbPath: string, target: string, renamed: boolean): unknown {
  if (e instanceof WalnutError || !(e instanceof Error)) return e;
  const os = e as NodeJS.ErrnoException;
  const errno = typeof os.errno === 'number' ? Math.abs(os.errno) : undefined;
  const state = renamed ? 'the restored database is in place' : `the old ${dbPath} is as it was`;
  return walnutError(diskFull(os) ? 'WALNUT_FULL' : 'WALNUT_IO', `cannot replace ${dbPath} by the restored database: ${e.message}; ${state}`, { path: target, errno, syscall: os.syscall, reason: 'replace', cause: e });
}

/**
 * Before the old database's companions go aside: its -wal's commits copied into it (a passive
 * checkpoint as SQLite's last connection does on close, the database synced, then its -wal and
 * -shm removed), so that the database file alone holds every commit and a crash before the
 * rename leaves it whole even to a sqlite3 that opens it before walnut has put the asides back.
 * Best effort: a database walnut cannot open (not in WAL mode, a hot journal, not a database) or
 * checkpoint keeps its -wal, which goes aside like any companion (io/restore-asides.ts).
 */
async function checkpointOldDatabase(target: string): Promise<void> {
  if ((fs.lstatSync(`${target}-wal`, { throwIfNoEntry: false })?.size ?? 0) <= WAL_HEADER_SIZE) return;
  let index: WalIndex;
  try {
    index = await WalIndex.open(target, { busyTimeout: 0 });
  } catch {
    return;
  }
  await closeAsLastConnection(index, true).catch(() => undefined);
}

/** The companion a restore leaves in place while a live replica holds it (its own base image). */
const KEEP_REPLICA_POSITION: ReadonlySet<string> = new Set(['-replica']);

/** How long a restore waits for its new temporary file's lock (held only by a settle looking at it). */
const OWN_LOCK_WAIT_MS = 2000;

/**
 * A restore of this process that has not finished, by how far it has got: 'writing' its
 * temporary file (and checkpointing the old database: checkpointOldDatabase), its target's
 * companions 'aside' (moveAside, not renamed yet), or 'renamed' in (the old companions' asides
 * still to remove).
 */
interface LiveRestore {
  readonly target: string;
  readonly registration: ReturnType<typeof registerRestore>;
  phase: 'writing' | 'aside' | 'renamed';
}

/** This process's unfinished restores, by temporary file (created until it has settled: restore()'s finally). */
const liveTemporaries = new Map<string, LiveRestore>();

/**
 * Ends this process's unfinished restores, synchronously: for a process about to end by SIGINT
 * or SIGTERM (`walnut restore`), whose restore would otherwise leave its hidden
 * `.<name>.restore-<hex>` behind, as large as what it had written, and its marker (both until
 * some later walnut open or restore of the target settled them; a sqlite3 user never does).
 * Before the rename the target is as it was: the temporary file goes, and the companions moved
 * aside come back first (what cannot come back keeps it, listed); after it, the old database's
 * asides go. (It once skipped a restore from its checkpoint of the old database on, which left
 * the temporary file whenever a signal came during that checkpoint.)
 */
export function abandonRestores(): void {
  for (const [tmp, { target, registration, phase }] of liveTemporaries) {
    try {
      if (phase === 'renamed') {
        WalnutFile.syncDirectorySync(path.dirname(target)); // (the rename durable before the old companions go)
        removeAsides(tmp);
      } else {
        const back = phase === 'writing' || moveBack(target, tmp);
        if (phase === 'aside') WalnutFile.syncDirectorySync(path.dirname(target));
        if (back) fs.rmSync(tmp, { force: true });
      }
    } catch {
      // left listed in the marker, for the next open or restore to settle
    }
    registration.release();
    settleRestores(target); // its entry, nothing of it left: the marker goes with it
  }
  liveTemporaries.clear();
}

/**
 * WALNUT_INVALID_ARGUMENT for arguments restore cannot use, before anything is opened: a source
 * that is not bytes, a stream or an iterable of chunks (a path string, in particular: it would
 * be read as the stream's bytes), a database path that is not a non-empty string, options that
 * are not an object or name anything but until, force and onProgress, a `force` that is not a
 * boolean (a string 'no' would replace a database).
 */
function checkArguments(source: unknown, dbPath: unknown, options: unknown): void {
  const iterable = source !== null && typeof source === 'object' && (Symbol.asyncIterator in source || Symbol.iterator in source);
  if (!(source instanceof Uint8Array) && !iterable) {
    const what = typeof source === 'string' ? `a string (${JSON.stringify(source.slice(0, 80))}); to restore a file, pass fs.createReadStream(path)` : source === null ? 'null' : typeof source;
    throw walnutError('WALNUT_INVALID_ARGUMENT', `the export stream must be a Readable, an (async) iterable of Uint8Array chunks or a Uint8Array, not ${what}`, { reason: 'source' });
  }
  checkDbPath(dbPath);
  if (options === null || typeof options !== 'object' || Array.isArray(options)) throw walnutError('WALNUT_INVALID_ARGUMENT', `restore options must be an object: { until, force }, not ${options === null ? 'null' : Array.isArray(options) ? 'an array' : typeof options}`, { reason: 'options' });
  const key = unknownOptionName(options, ['until', 'force', 'onProgress']);
  // a misspelt `until` would restore the stream's last state instead of the point asked for
  if (key !== undefined) throw walnutError('WALNUT_INVALID_ARGUMENT', `restore takes the options until, force and onProgress, not ${JSON.stringify(key)}`, { reason: 'options' });
  const { force } = options as { force?: unknown };
  if (force !== undefined && typeof force !== 'boolean') throw walnutError('WALNUT_INVALID_ARGUMENT', `force must be true or false, not ${typeof force}`, { reason: 'force' });
}

/**
 * An fs.ReadStream of a file that cannot be read (missing, a directory, no permission) is refused
 * with WALNUT_CANTOPEN naming it, before the target is touched; the stream would report it only
 * once read. (A stream given an fd, or one already open, has its file.) Asked of the path
 * (stat, access), never by opening it: an open and close of a FIFO whose writer was waiting
 * let the writer in and then left the pipe with no reader, its data dropped (or its write
 * failed EPIPE); the stream's own open then waited for a writer for ever (`walnut restore p`
 * after `cat app.ark > p &` hung, every time).
 */
function refuseUnreadableFile(source: unknown): void {
  if (!(source instanceof fs.ReadStream) || typeof source.path !== 'string' || typeof (source as { fd?: unknown }).fd === 'number') return;
  const file = source.path;
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
    fs.accessSync(file, fs.constants.R_OK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (e as Error).message;
    throw walnutError('WALNUT_CANTOPEN', `cannot read the export stream ${file}: ${why}`, { path: file, errno: Math.abs((e as NodeJS.ErrnoException).errno ?? 0) || undefined, reason: 'source', cause: e });
  }
  if (st.isDirectory()) throw walnutError('WALNUT_CANTOPEN', `cannot read the export stream ${file}: it is a directory`, { path: file, reason: 'source' });
  // a Unix socket's file cannot be opened (ENXIO), which came as a failed read, WALNUT_IO
  if (st.isSocket()) throw walnutError('WALNUT_CANTOPEN', `cannot read the export stream ${file}: it is a Unix socket (read a file, a FIFO or stdin)`, { path: file, reason: 'source' });
}

/**
 * A failure of the caller's source while it is read (a stream that errors mid-way, an iterator
 * that throws) as a WalnutError: WALNUT_IO (reason 'source', with the
 * errno of an OS error), the original as its cause. Nothing was renamed: the target is as it was.
 */
function sourceFailure(e: unknown): WalnutError {
  if (e instanceof WalnutError) return e;
  const os = e as NodeJS.ErrnoException;
  const errno = typeof os?.errno === 'number' ? Math.abs(os.errno) : undefined;
  const detail = e instanceof Error ? e.message : String(e);
  return walnutError('WALNUT_IO', `reading the export stream failed: ${detail}; nothing was restored`, { errno, syscall: os?.syscall, path: typeof os?.path === 'string' ? os.path : undefined, reason: 'source', cause: e });
}

/**
 * `<target>-wal`, `-shm`, `-journal`, the FEC sidecar and a replica's position file where they exist: left by the database
 * that was there (or is, when the target exists). SQLite identifies none of them with its
 * database, so a -wal with frames beside the restored file would be replayed over it by the next
 * connection, and a hot rollback journal (a writer killed mid-transaction) played back over it
 * (`stale`: that -wal or -journal, else null); without those, the -shm, the sidecar, a
 * journal that is not hot (empty, or PERSIST mode's zeroed header) and a replica's position
 * (the old database's, not the restored one's) describe nothing of the new file: they go.
 */
function staleCompanions(target: string): { files: string[]; stale: string | null; staleIsLink: boolean } {
  const files: string[] = [];
  let stale: string | null = null;
  let staleIsLink = false;
  const companions = COMPANION_SUFFIXES.map((suffix) => `${target}${suffix}`); // (the ones a replacement moves aside: io/restore-asides.ts)
  requireRegularFiles(null, companions); // (rmSync would fail on a directory, after the work)
  for (const file of companions) {
    const st = fs.lstatSync(file, { throwIfNoEntry: false });
    if (st === undefined) continue;
    const staleHere = stale === null && ((file === `${target}-wal` && (st.isSymbolicLink() || st.size > WAL_HEADER_SIZE)) || (file === `${target}-journal` && (st.isSymbolicLink() || hotJournal(file))));
    if (staleHere) [stale, staleIsLink] = [file, st.isSymbolicLink()]; // a link is not looked through: what it names is not known to be empty
    files.push(file);
  }
  return { files, stale, staleIsLink };
}

/**
 * Is `journal` hot to SQLite, with no database to hold a lock (pager.c hasHotJournal, as
 * wal-index/journal-mode.ts reads it): not empty and its first byte not zero (PERSIST mode
 * zeroes the header of a finished transaction's journal). One that cannot be read is taken as
 * hot, as SQLite does.
 */
function hotJournal(journal: string): boolean {
  let fd: number;
  try {
    fd = fs.openSync(journal, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  } catch {
    return true;
  }
  try {
    const first = new Uint8Array(1);
    return fs.readSync(fd, first, 0, 1, 0) === 1 && first[0] !== 0;
  } catch {
    return true;
  } finally {
    fs.closeSync(fd);
  }
}

/** The database a restore would replace: its real path and permission bits; null when none. */
function existingTarget(dbPath: string): { path: string; mode: number; dev: number; ino: number } | null {
  // what the name leads to first (stat follows links), its real path only for a regular file: the
  // real path of /dev/stdout on a pipe is no path (/proc/PID/fd/pipe:[N]), and its stat failed
  // WALNUT_IO ENOENT with fs's raw message where a named FIFO is NotRegularFile
  let real: string;
  let st: fs.Stats;
  try {
    st = fs.statSync(dbPath);
    if (!st.isFile()) throw walnutError('WALNUT_CANTOPEN', `cannot restore to ${dbPath}: not a regular file`, { path: dbPath, reason: 'NotRegularFile' }); // (the reason its -wal or -shm gets: requireRegularFiles)
    real = fs.realpathSync(dbPath);
  } catch (e) {
    if (e instanceof WalnutError) throw e;
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null; // nothing there (or a dangling link: its target is created)
    throw walnutError('WALNUT_CANTOPEN', `cannot restore to ${dbPath}: ${(e as Error).message}`, { path: dbPath, cause: e });
  }
  return { path: real, mode: st.mode & 0o777, dev: st.dev, ino: st.ino };
}

/**
 * WALNUT_INVALID_ARGUMENT (reason 'TargetIsSource') when the stream is read from the file the
 * restore would replace (`walnut restore app.ark app.ark --force`, or stdin redirected from it):
 * the rename would put the database where the only copy of the stream was.
 */
function refuseSourceAsTarget(source: unknown, target: { path: string; dev: number; ino: number }, dbPath: string): void {
  const { fd, path: file } = source as { fd?: unknown; path?: unknown };
  let st: fs.Stats | null = null;
  try {
    if (typeof fd === 'number' && fd >= 0) st = fs.fstatSync(fd);
    else if (typeof file === 'string') st = fs.statSync(file);
  } catch {
    return; // not a file we can look at: not the target either
  }
  if (st !== null && st.dev === target.dev && st.ino === target.ino) {
    throw walnutError('WALNUT_INVALID_ARGUMENT', `refusing to restore to ${dbPath}: it is the export stream being restored (${target.path})`, { path: target.path, reason: 'TargetIsSource' });
  }
}

/**
 * WALNUT_BUSY (reason 'InUse') when a connection (SQLite's or walnut's) has the database open: it
 * holds a lock on the database file or the -shm's DMS byte. The rename would leave it on the
 * old, unlinked file, its -wal and -shm removed: its reads would be stale and its commits,
 * acknowledged, would be lost. (A rollback-journal connection between transactions holds no
 * lock and is not seen.)
 */
function refuseDatabaseInUse(real: string): void {
  const exporter = lockHolderOf(real, [EXPORT_LOCK]);
  if (exporter !== null) {
    const pid = exporter.pid > 0 ? ` (pid ${exporter.pid})` : '';
    // the same lock is a restore's whose file was just renamed in (held until it closes it): a
    // database, where an export's output is a stream (told "stop that export", its user looked
    // for an export that did not exist)
    if (startsAsDatabase(real)) throw walnutError('WALNUT_BUSY', `refusing to replace ${real}: another restore is putting it in place${pid}; let it finish first`, { path: real, reason: 'InUse' });
    throw walnutError('WALNUT_BUSY', `refusing to replace ${real}: an export is writing it${pid}; stop that export first`, { path: real, reason: 'InUse' });
  }
  const holder =
    lockHolderOf(real, [[DB_LOCK.PENDING, 2], [DB_LOCK.SHARED_FIRST, DB_LOCK.SHARED_SIZE]]) ?? lockHolderOf(`${real}-shm`, [[SHM_LOCK.DMS, 1]]);
  if (holder === null) return;
  const who = holder.pid > 0 ? ` by pid ${holder.pid}` : '';
  throw walnutError('WALNUT_BUSY', `refusing to replace ${real}: it is open${who}; close its connections first (a connection left on the replaced file would lose its commits)`, { path: real, reason: 'InUse' });
}

/**
 * `file` begins with SQLite's database header magic, or its WAL's committed page 1 stands in for a
 * torn header (wal/page1-through-wal.ts); false when it cannot be read.
 */
function startsAsDatabase(file: string): boolean {
  try {
    const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    try {
      const head = new Uint8Array(DB_HEADER_SIZE);
      const got = fs.readSync(fd, head, 0, head.length, 0);
      return (got >= 16 && hasDbMagic(head)) || dbHeaderThroughWal(file, () => head.subarray(0, fs.readSync(fd, head, 0, head.length, 0))).header !== null;
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return false;
  }
}

/**
 * The lock a live export holds on its output file (export/stream.ts: byte 0, for as long as it
 * writes it): a target so locked is a backup being written (`walnut export --follow -o FILE`),
 * which a restore over it would leave writing into the unlinked file.
 */
const EXPORT_LOCK: [number, number] = [0, 1];

/** Who holds a lock on one of `ranges` of `file` (that an exclusive lock would wait for); null when none, or no file. */
function lockHolderOf(file: string, ranges: [number, number][]): NativeLockHolder | null {
  let f: WalnutFile;
  try {
    f = WalnutFile.openSync(file, { readOnly: true });
  } catch {
    return null; // not there: nobody holds it
  }
  try {
    for (const [start, length] of ranges) {
      const holder = f.lockHolder(start, length, 'exclusive');
      if (holder !== null) return holder;
    }
    return null;
  } finally {
    f.closeSync();
  }
}

/**
 * refuseDatabaseInUse's check made and kept: the locks SQLite's connections hold while they
 * have the database open (its PENDING, RESERVED and SHARED bytes, the -shm's DMS byte) taken
 * exclusively, so that no connection opens the old database from here until they are released
 * (after the rename: sqlite3 waits for them as busy, then opens the new file). Their files are
 * returned, to close; WALNUT_BUSY (reason 'InUse') when a connection holds one, nothing held.
 * A file this process cannot open for writing (its permission bits) is only checked.
 */
function holdOffConnections(real: string): WalnutFile[] {
  const held: WalnutFile[] = [];
  let free = true;
  for (const [file, ranges] of [
    [real, [EXPORT_LOCK, [DB_LOCK.PENDING, 2], [DB_LOCK.SHARED_FIRST, DB_LOCK.SHARED_SIZE]]],
    [`${real}-shm`, [[SHM_LOCK.DMS, 1]]],
  ] as [string, [number, number][]][]) {
    let f: WalnutFile;
    try {
      f = WalnutFile.openSync(file);
    } catch {
      // not there, or not writable here: only checked (a read-only descriptor takes no write lock)
      const holder = lockHolderOf(file, ranges);
      if (holder !== null) free = false;
      continue;
    }
    held.push(f);
    if (!ranges.every(([start, length]) => f.tryLock(start, length, 'exclusive'))) free = false;
  }
  if (free) return held;
  held.forEach((f) => f.closeSync());
  refuseDatabaseInUse(real); // names the holder
  throw walnutError('WALNUT_BUSY', `refusing to replace ${real}: it is open; close its connections first (a connection left on the replaced file would lose its commits)`, { path: real, reason: 'InUse' });
}

/**
 * `until` as a sequence (bigint) or a Date; WALNUT_INVALID_ARGUMENT (reason 'until') otherwise: a
 * number that is no safe integer (past 2^53 it is rounded: not the commit the caller named), a
 * bigint past the u64 a stream numbers its commits with (COMMIT_META: no commit has it).
 */
export function checkUntil(until: unknown): bigint | Date | undefined {
  if (until === undefined) return undefined;
  if (until instanceof Date && !Number.isNaN(until.getTime())) return until;
  if (typeof until === 'number' && Number.isSafeInteger(until) && until >= 0) return BigInt(until);
  if (typeof until === 'bigint' && until >= 0n && until <= MAX_COMMIT_SEQUENCE) return until;
  throw walnutError('WALNUT_INVALID_ARGUMENT', `until must be a commit sequence (a whole number in 0..2^53-1, or a bigint in 0..2^64-1) or a valid Date, not ${describeValue(until)}`, { reason: 'until' });
}

/**
 * `onProgress` as a callback whose failure ends the restore with a WalnutError (reason
 * 'onProgress'); WALNUT_INVALID_ARGUMENT for anything but a function.
 */
function checkProgress(onProgress: unknown): ((bytes: number) => void) | undefined {
  if (onProgress === undefined) return undefined;
  if (typeof onProgress !== 'function') throw walnutError('WALNUT_INVALID_ARGUMENT', 'onProgress must be a function', { reason: 'onProgress' });
  return (bytes) => {
    try {
      onProgress(bytes);
    } catch (e) {
      throw walnutError('WALNUT_INVALID_ARGUMENT', `onProgress failed: ${(e as Error)?.message ?? String(e)}`, { reason: 'onProgress', cause: e });
    }
  };
}

/** Is a commit (sequence, time) past `until`? */
function beyond(until: bigint | Date | undefined, seq: bigint, timeMs: bigint): boolean {
  if (until === undefined) return false;
  return until instanceof Date ? timeMs > BigInt(until.getTime()) : seq > until;
}

function isoTime(ms: bigint | null): string | null {
  return ms === null ? null : new Date(Number(ms)).toISOString();
}

/**
 * The regular file an untouched fs.ReadStream would read whole (opened anew, the stream
 * destroyed), so that apply() reads it with large positioned reads into reused buffers
 * (framing.ts fromFile); null for any other source, or a stream already read or watched (a
 * 'data' listener, a start or end), or a file that cannot be opened (the stream reports that).
 */
async function streamFileOf(source: unknown): Promise<WalnutFile | null> {
  if (!(source instanceof fs.ReadStream)) return null;
  const s = source as fs.ReadStream & { start?: number; end?: number; fd?: number | null };
  if (typeof s.path !== 'string' || s.bytesRead !== 0 || s.readableLength !== 0 || s.destroyed || s.listenerCount('data') > 0) return null;
  if ((s.start ?? 0) !== 0 || (s.end ?? Infinity) !== Infinity) return null;
  let file: WalnutFile;
  try {
    if (!fs.statSync(s.path).isFile()) return null; // a FIFO or device is not opened twice
    file = await WalnutFile.open(s.path, { readOnly: true });
  } catch {
    return null;
  }
  // the stream's own descriptor (opened by now, or given as its fd option) must be this file
  const ours = fs.fstatSync(file.fd);
  let theirs: fs.Stats | null = ours;
  try {
    if (typeof s.fd === 'number') theirs = fs.fstatSync(s.fd);
  } catch {
    theirs = null;
  }
  if (!ours.isFile() || theirs === null || theirs.dev !== ours.dev || theirs.ino !== ours.ino) {
    await file.close();
    return null;
  }
  s.destroy();
  return file;
}

/** Counts the bytes of a stream's chunks as they are read. */
async function* counted(source: AsyncIterable<Uint8Array | string>, onProgress: (bytes: number) => void): AsyncGenerator<Uint8Array | string> {
  let bytes = 0;
  for await (const chunk of source) {
    onProgress((bytes += chunk.length));
    yield chunk;
  }
}

/** Stream bytes a native base image run takes before the restore reports progress. */
const BASE_RUN_BYTES = 64 << 20;

async function apply(source: Readable | AsyncIterable<Uint8Array> | Uint8Array | WalnutFile, out: WalnutFile, until: bigint | Date | undefined, onProgress?: (bytes: number) => void): Promise<RestoreResult> {
  // the file reader reuses a buffer once nothing refers to it: the held transaction's frames
  // are copied (each once), and every page write handed to the writer so far has completed
  const release = (): Promise<void> => {
    for (; pending.owned < pending.frames.length; pending.owned++) pending.frames[pending.owned] = new Uint8Array(pending.frames[pending.owned]!);
    return writer?.release() ?? Promise.resolve();
  };
  // A stream file's base image is applied natively, run by run (base_restore.h), while it is
  // the base image's turn; a record the native run does not apply comes here as usual.
  const baseRuns = async (offset: number): Promise<number> => {
    if (layout === null || baseDone) return offset; // the first record decides the layout here
    for (;;) {
      const r = await base.applyRun(nativeHandleOf(source as WalnutFile), nativeHandleOf(out), offset, nextBasePage, pageSize, BASE_RUN_BYTES);
      nextBasePage += r.pages;
      if (pageSize === 0) pageSize = r.pageSize;
      offset = r.end;
      if (!r.more) return offset;
      onProgress?.(offset);
    }
  };
  const records =
    source instanceof Uint8Array ? WalStreamReader.fromBuffer(source)
    : source instanceof WalnutFile ? WalStreamReader.fromFile(source, release, { divert: { kind: KIND.BASE_PAGES, take: baseRuns }, onProgress })
    : WalStreamReader.from(onProgress === undefined ? (source as AsyncIterable<Uint8Array>) : counted(source as AsyncIterable<Uint8Array>, onProgress));
  /** 'current': starts with BASE_META, every commit boundary a real state; 'first': the first layout (records.ts). */
  let layout: 'current' | 'first' | null = null;
  let pageSize = 0;
  let nextBasePage = 1;
  /** The base image's pages: hashed here (the JavaScript path) or by its native runs, in order. */
  const base = new nativeExportIo.BaseImageWriter();
  let baseDone = false;
  let dbPages = 0;
  let commits = 0;
  let lastSeq = 0n;
  let lastTimeMs: bigint | null = null;
  let stoppedBy: string | null = null;
  // the generation being replayed; the first after the base may continue the base's (an anchor)
  let gen: { salt1: number; salt2: number; bigEndian: boolean; running: [number, number] } | null = null;
  let firstGeneration = true;
  /** `owned`: frames before it are copies of their own (not views of the reader's buffers). */
  let pending: { frames: Uint8Array[]; owned: number; hash: Xxh3Stream; commit: { dbSize: number } | null } = { frames: [], owned: 0, hash: new Xxh3Stream(), commit: null };
  let writer: PageWriter | null = null;
  /** One frame of the transaction being read: its salts and checksum chain verified, then held. */
  const takeFrame = (g: NonNullable<typeof gen>, frame: Uint8Array): void => {
    const dv = new DataView(frame.buffer, frame.byteOffset, FRAME_HEADER_SIZE);
    if (pending.commit !== null || dv.getUint32(8) !== g.salt1 || dv.getUint32(12) !== g.salt2 || dv.getUint32(0) === 0) throw new StopRestore('ChecksumChainBroken');
    let c = sqliteWalChecksum(frame, g.running[0], g.running[1], { length: 8, bigEndianWords: g.bigEndian });
    c = sqliteWalChecksum(frame, c[0], c[1], { offset: FRAME_HEADER_SIZE, bigEndianWords: g.bigEndian });
    if (c[0] !== dv.getUint32(16) || c[1] !== dv.getUint32(20)) throw new StopRestore('ChecksumChainBroken');
    g.running = c;
    pending.frames.push(frame);
    pending.hash.update(frame);
    if (dv.getUint32(4) !== 0) pending.commit = { dbSize: dv.getUint32(4) };
  };

  // A payload of the caller's memory (its buffer, its iterable's chunks) is a view of it
  // (framing.ts RecordParser): copied as it arrives, so that a producer refilling one buffer for
  // each chunk (a loop of fh.read into one buffer) changes nothing this restore has verified and
  // still holds (a transaction's frames until its COMMIT_META, pages queued for the PageWriter,
  // which writes them later without a copy): before, such a restore reported every commit and
  // built a database with other bytes. A stream file's payloads are the reader's own (release()).
  const callerMemory = !(source instanceof WalnutFile);
  const reachedUntil = (): boolean => baseDone && typeof until === 'bigint' && lastSeq >= until;
  try {
    for await (const view of records as AsyncIterable<Uint8Array>) {
      // at commit `until` (a sequence) the restore is done: what follows is not decoded, so a
      // broken record after it (a torn tail, a delta that does not yield its page) is no reason
      // to report; the file holds that commit either way
      if (reachedUntil()) throw new StopRestore('until');
      const payload = callerMemory ? new Uint8Array(view) : view;
      const rec = decodeRecord(payload);
      if (!baseDone) {
        if (layout === null) {
          layout = rec.kind === 'baseMeta' ? 'current' : 'first';
          if (rec.kind === 'baseMeta') {
            lastSeq = rec.seq;
            lastTimeMs = rec.timeMs;
            if (beyond(until, rec.seq, rec.timeMs)) {
              const e = walnutError(
                'WALNUT_INVALID_ARGUMENT',
                `the point to restore (${until instanceof Date ? until.toISOString() : `commit ${until}`}) is before the stream's earliest point: commit ${rec.seq}, which the exporter saw at ${isoTime(rec.timeMs)}`,
                { reason: 'BeforeEarliest' },
              );
              throw Object.assign(e, { earliestSeq: Number(rec.seq), earliestTime: isoTime(rec.timeMs) });
            }
            continue;
          }
          if (until !== undefined) {
            throw walnutError('WALNUT_INVALID_ARGUMENT', 'this stream has the first layout (no BASE_META: written by an earlier walnut), whose commits replay over a base image of a later state, so no point inside it is a real state; restore it whole, without until', { reason: 'FirstLayoutStream' });
          }
        }
        if (rec.kind === 'basePages') {
          const size = rec.pages.length / rec.count;
          if (pageSize === 0) pageSize = size;
          if (size !== pageSize || rec.firstPgno !== nextBasePage) throw walnutError('WALNUT_CORRUPT', 'base image pages out of order or of mixed sizes');
          base.update(rec.pages);
          writer ??= new PageWriter(out, pageSize);
          await writer.write(rec.firstPgno, rec.pages);
          nextBasePage += rec.count;
        } else if (rec.kind === 'baseEnd') {
          if (rec.dbSize !== nextBasePage - 1 || !equalBytes(base.digest(), rec.hash)) {
            throw walnutError('WALNUT_CORRUPT', 'the base image does not match its BASE_END hash');
          }
          writer ??= new PageWriter(out, pageSize);
          writer.truncate(rec.dbSize);
          dbPages = rec.dbSize;
          baseDone = true;
        } else {
          throw walnutError('WALNUT_CORRUPT', `a ${rec.kind} record before the base image was complete`);
        }
        continue;
      }
      if (rec.kind === 'walHeader') {
        const h = decodeWalHeader(rec.header);
        if (h.status !== 'ok' || h.header!.pageSize !== pageSize) throw new StopRestore('ChecksumChainBroken');
        if (pending.frames.length) throw new StopRestore('Truncated'); // a transaction cut off by a new generation
        // an anchor skips frames the base image holds: only the base's own generation may have one
        const anchored = rec.anchor !== null && rec.anchor.frame > 0;
        if (anchored && (!firstGeneration || layout !== 'current')) throw new StopRestore('ChecksumChainBroken');
        firstGeneration = false;
        gen = { salt1: h.header!.salt1, salt2: h.header!.salt2, bigEndian: bigEndianChecksum(h.header!.magic), running: anchored ? rec.anchor!.checksum : h.header!.checksum };
      } else if (rec.kind === 'frames' || rec.kind === 'pageDelta') {
        const frameSize = FRAME_HEADER_SIZE + pageSize;
        if (gen === null || pending.commit !== null) throw new StopRestore('ChecksumChainBroken');
        if (rec.kind === 'frames') {
          if (rec.frames.length % frameSize !== 0) throw new StopRestore('ChecksumChainBroken');
          for (let at = 0; at < rec.frames.length; at += frameSize) takeFrame(gen, rec.frames.subarray(at, at + frameSize));
        } else {
          // the page's previous version: this transaction's last frame of it, else the file as built so far
          const pgno = deltaPgno(rec.frameHeader);
          let previous: Uint8Array | undefined;
          for (let i = pending.frames.length - 1; i >= 0 && previous === undefined; i--) {
            const f = pending.frames[i]!;
            if (new DataView(f.buffer, f.byteOffset, 4).getUint32(0) === pgno) previous = f.subarray(FRAME_HEADER_SIZE);
          }
          previous ??= pgno <= dbPages ? await writer!.readPage(pgno) : new Uint8Array(pageSize);
          let frame: Uint8Array;
          try {
            frame = applyPageDelta(rec, previous);
          } catch (e) {
            if (e instanceof WalnutError && e.reason === 'DeltaMismatch') throw new StopRestore('DeltaMismatch');
            throw e;
          }
          takeFrame(gen, frame);
        }
      } else if (rec.kind === 'commitMeta') {
        if (pending.commit === null || !equalBytes(hashBytes(pending.hash), rec.hash)) throw new StopRestore('ChecksumChainBroken');
        if (layout === 'current' && rec.seq !== lastSeq + 1n) throw new StopRestore('ChecksumChainBroken'); // a commit missing or repeated
        if (beyond(until, rec.seq, rec.timeMs)) throw new StopRestore('until');
        // the transaction is complete and verified: only now do its pages reach the file
        await writer!.writeFrames(pending.frames);
        writer!.truncate(pending.commit.dbSize);
        dbPages = pending.commit.dbSize;
        commits++;
        lastSeq = rec.seq;
        lastTimeMs = rec.timeMs;
        pending = { frames: [], owned: 0, hash: new Xxh3Stream(), commit: null };
      } else {
        throw new StopRestore('UnknownRecordKind');
      }
    }
  } catch (e) {
    if (e instanceof StopRestore) stoppedBy = e.reason;
    else if (baseDone && e instanceof WalnutError && e.code === 'WALNUT_INVALID_FRAMING') stoppedBy = reachedUntil() ? 'until' : (e.reason ?? 'Truncated'); // a torn record after it
    else throw e;
  }
  await writer?.finish();
  if (!baseDone) throw walnutError('WALNUT_INVALID_FRAMING', 'Truncated: the stream ends before its base image is complete', { reason: 'Truncated' });
  if (stoppedBy === null && pending.frames.length > 0) stoppedBy = 'Truncated';
  if (layout === 'first' && stoppedBy !== null) {
    throw walnutError('WALNUT_INVALID_FRAMING', `${stoppedBy}: this stream has the first layout (no BASE_META: written by an earlier walnut) and does not end at a complete commit; only its complete end is a real state, so it cannot be restored`, { reason: stoppedBy });
  }
  return { commits, dbPages, lastCommitSeq: Number(lastSeq), lastCommitTime: isoTime(lastTimeMs), stoppedBy };
}
