/**
 * integrity/verify.ts — `walnut verify`: integrity levels 1..5 on a database file and its WAL
 * (btree-check.ts has what each level checks), plus the WAL's own checksum chain and the -shm's
 * agreement with the WAL (level 1: its header, and every frame's page number and hash entry,
 * shm-check.ts; a WAL of another page size: it belongs to another database). Changes nothing.
 * The WAL scan, the -shm and the pages must be one moment's (a commit, checkpoint or WAL restart
 * between those reads gave false findings on a healthy live database). On a live database
 * (another connection has the -shm attached) verify is a reader like any other: a connection
 * with a WAL read mark at the newest commit M (holdReadMark), checking frames 1..M, their -shm
 * entries and the pages as of M, while writers, SQLite's and walnut's, go on committing after M
 * and checkpoints copy up to M (a RESTART or TRUNCATE checkpoint waits for it, as for any
 * reader). A database nobody has attached, or one this process cannot open as a connection (a
 * read-only file, say), is checked holding the -shm's WRITE and CKPT locks shared
 * (holdWriters): a writer or checkpointer arriving meanwhile waits as for another writer. A rollback-journal
 * database is checked the same way (its journal mode is reported as information, not as a
 * finding); a hot `-journal` beside it is a finding.
 *
 * Every finding is { level, kind, pgno?, frame?, message }: `pgno` is the page at fault, `frame`
 * the WAL frame that page was read from (absent when it came from the database file).
 */
import { readInput, refuseExtraArguments } from '../arguments';
import * as fs from 'node:fs';

import { isWalnutError, walnutError } from '../errors';
import { auditSidecar, headerDamaged, repairWal } from '../fec/repair';
import { decodeFrameHeader, FRAME_HEADER_SIZE } from '../format/frame-header';
import { SHM_LOCK, SHM_SEGMENT_BYTES, shmSegmentOf } from '../format/shm-header';
import { frameOffset } from '../format/wal-header';
import { unknownOptionName } from '../option-names';
import { hotJournalProblem, lockShared } from '../wal-index/journal-mode';
import { WalIndex } from '../wal-index/wal-index';
import { WalnutFile } from '../io/file';
import { checkDbPath } from '../io/real-path';
import { WalFile, type WalRecovery } from '../wal/wal-file';
import { checkDatabase, type Finding } from './btree-check';
import { inspectWith, refuseIrregularFiles } from './inspect';
import { checkShmIndex } from './shm-check';
import { Snapshot } from '../wal-index/snapshot';
import { FilePageSource, SnapshotPageSource } from './page-source';

export type VerifyIssue = Finding;

export interface VerifyReport {
  ok: boolean;
  level: number;
  /**
   * Information, not a finding: 'wal', or 'rollback' for a rollback-journal database (checked
   * at every level the same way; open() converts it); null when its format versions are unknown.
   */
  journalMode: 'wal' | 'rollback' | null;
  /** Database size in pages as checked. */
  pages: number;
  issues: VerifyIssue[];
}

export interface VerifyOptions {
  /** Stop after this many findings (default 1000). */
  maxFindings?: number;
  /** Check XXH3-128 page trailers; default: when the header reserves exactly 16 bytes per page. */
  pageChecksums?: boolean;
  /** How long to wait for a writer or checkpointer of a live database (ms, default 5000). */
  busyTimeout?: number;
}

/**
 * Options as VerifyOptions says, each read once (the copy returned is what verify uses):
 * anything else was taken as it came, a misspelt option dropped, pageChecksums: 'no' checking
 * trailers (false findings on a database without them), maxFindings: -1 or NaN; busyTimeout was
 * read again where the locks are taken (a throwing getter escaped as a raw Error, -5 was reason
 * 'timeout').
 */
function checkVerifyOptions(options: unknown): VerifyOptions {
  return readInput('options', () => checkVerifyOptionsAsGiven(options));
}

function checkVerifyOptionsAsGiven(options: unknown): VerifyOptions {
  const bad = (why: string): never => {
    throw walnutError('WALNUT_INVALID_ARGUMENT', `verify options must be an object { maxFindings, pageChecksums, busyTimeout }: ${why}`, { reason: 'options' });
  };
  if (options === null || typeof options !== 'object' || Array.isArray(options)) bad(`not ${options === null ? 'null' : Array.isArray(options) ? 'an array' : typeof options}`);
  const o = options as Record<string, unknown>;
  const key = unknownOptionName(o, ['maxFindings', 'pageChecksums', 'busyTimeout']);
  if (key !== undefined) bad(`${JSON.stringify(key)} is not one of them`);
  const { maxFindings, pageChecksums, busyTimeout } = o;
  if (maxFindings !== undefined && (typeof maxFindings !== 'number' || !Number.isInteger(maxFindings) || maxFindings < 1)) bad('maxFindings must be a whole number >= 1');
  if (pageChecksums !== undefined && typeof pageChecksums !== 'boolean') bad('pageChecksums must be true or false');
  if (busyTimeout !== undefined && (typeof busyTimeout !== 'number' || !Number.isSafeInteger(busyTimeout) || busyTimeout < 0)) bad('busyTimeout must be a whole number of milliseconds >= 0');
  return { maxFindings: maxFindings as number | undefined, pageChecksums: pageChecksums as boolean | undefined, busyTimeout: busyTimeout as number | undefined };
}

export function checkLevel(level: unknown): number {
  if (typeof level !== 'number' || !Number.isInteger(level) || level < 1 || level > 5) {
    throw walnutError('WALNUT_INVALID_ARGUMENT', 'level must be 1, 2, 3, 4 or 5', { reason: 'level' });
  }
  return level;
}

export async function verify(dbPath: string, level: number, options: VerifyOptions = {}): Promise<VerifyReport> {
  if (arguments.length > 3) refuseExtraArguments('verify', 'a path, a level and options', 3, arguments);
  checkDbPath(dbPath);
  checkLevel(level);
  options = checkVerifyOptions(options);
  // one WAL scan serves inspect's summary, the damage report, the -shm check and the page view
  let real = dbPath;
  try {
    real = fs.realpathSync(dbPath);
  } catch {
    // inspect reports the missing file
  }
  if (fs.existsSync(real) && !fs.statSync(real).isDirectory()) refuseIrregularFiles(real); // before any open below blocks
  const busyTimeout = options.busyTimeout ?? 5000;
  const shared = await holdDbShared(real, busyTimeout);
  let reader: Awaited<ReturnType<typeof holdReadMark>> = null;
  let held: WalnutFile | null = null;
  try {
    reader = await holdReadMark(real, busyTimeout);
    held = reader === null ? await holdWriters(real, busyTimeout) : null;
  } catch (e) {
    shared?.closeSync();
    throw e;
  }
  try {
    const walView = fs.existsSync(`${real}-wal`) && fs.existsSync(real) ? openWal(`${real}-wal`) : null;
    try {
      if (walView !== null && reader !== null) walView.recovery = recoveryAt(walView.wal, walView.recovery, reader.snap.mxFrame);
      return await verifyWith(dbPath, level, options, walView, reader?.snap.mxFrame ?? null);
    } finally {
      walView?.wal.closeSync();
    }
  } finally {
    reader?.snap.release();
    await reader?.index.close();
    held?.closeSync(); // closing the descriptor drops its locks
    shared?.closeSync();
  }
}

/**
 * SHARED on the database file, as SQLite's readers take it (PENDING read-locked while the SHARED
 * range is), on a read-only descriptor of its own, waiting up to `timeout` ms (WALNUT_BUSY
 * after). A rollback-journal database has no -shm: its writer's only lock is the database
 * file's, EXCLUSIVE while it rewrites pages, so without SHARED verify read pages mid-commit and
 * reported a healthy database corrupt; a connection in locking_mode=EXCLUSIVE (WAL in heap
 * memory, no -shm) holds it EXCLUSIVE too. Null when the file is not there or cannot be opened
 * (the findings say what is wrong).
 */
async function holdDbShared(real: string, timeout: number): Promise<WalnutFile | null> {
  let db: WalnutFile;
  try {
    db = WalnutFile.openSync(real, { readOnly: true });
  } catch {
    return null;
  }
  try {
    await lockShared(db, timeout);
    return db;
  } catch (e) {
    db.closeSync();
    throw e;
  }
}

/**
 * A read transaction on a live database (another connection has the -shm attached: it holds
 * the DMS byte), as any SQLite reader takes one: a connection of its own with a WAL read mark at
 * the newest commit, frame M. Checkpoints copy no frame past M and no writer restarts the WAL
 * while the mark is held, so frames 1..M, their -shm entries and the database file pages none
 * of them holds stay as they are, while writers append after M and checkpoint up to it. Null
 * when nobody is attached (the files are then checked as they are, holdWriters), or when this
 * process cannot be a connection (a read-only database file, not in WAL mode, a WAL of another
 * page size): holdWriters then, and the findings say what is wrong. WALNUT_BUSY after the busy
 * timeout, as for any reader.
 */
async function holdReadMark(real: string, busyTimeout: number): Promise<{ index: WalIndex; snap: Snapshot } | null> {
  if (!attachedElsewhere(real)) return null;
  let index: WalIndex;
  try {
    index = await WalIndex.open(real, { busyTimeout, settleRestores: false }); // (read only: a killed restore's files are reported, not settled)
  } catch (e) {
    if (isWalnutError(e, 'WALNUT_BUSY')) throw e;
    return null;
  }
  try {
    return { index, snap: await index.beginRead({ useWal: true }) };
  } catch (e) {
    await index.close();
    if (isWalnutError(e, 'WALNUT_BUSY')) throw e;
    return null;
  }
}

/** The database's -shm opened read-only (no lock taken); null when it is not there or cannot be opened. */
function openShm(real: string): WalnutFile | null {
  try {
    return WalnutFile.openSync(`${real}-shm`, { readOnly: true });
  } catch {
    return null;
  }
}

/** Another connection has the database's -shm attached (holds its DMS byte). */
function attachedElsewhere(real: string): boolean {
  const shm = openShm(real);
  if (shm === null) return false;
  try {
    return shm.lockHolder(SHM_LOCK.DMS, 1, 'exclusive') !== null;
  } finally {
    shm.closeSync();
  }
}

/**
 * The WAL as a read transaction at frame `m` sees it: the recovery scan cut at `m` (frames after
 * it are commits other connections made since, or are making: not a damaged tail). When the
 * scan found fewer valid frames than `m`, it is returned as it is: the -shm describes frames the
 * WAL lacks, a finding (shm-ahead-of-wal).
 */
function recoveryAt(wal: WalFile, r: WalRecovery, m: number): WalRecovery {
  if (r.headerStatus !== 'ok' || m > r.mxFrame) return r;
  if (m === 0) return { ...r, mxFrame: 0, dbSize: 0, commits: 0, running: r.running, lastValidFrame: 0, pgnos: r.pgnos.subarray(0, 0), invalidTailBytes: 0 };
  const head = new Uint8Array(FRAME_HEADER_SIZE);
  const frame = (n: number) => {
    wal.file.readSync(head, 0, FRAME_HEADER_SIZE, frameOffset(n, r.pageSize));
    return decodeFrameHeader(head);
  };
  let later = 0; // commits after m
  for (let n = m + 1; n <= r.mxFrame; n++) if (frame(n).commitSize !== 0) later++;
  const last = frame(m);
  return { ...r, mxFrame: m, dbSize: last.commitSize, commits: r.commits - later, running: last.checksum, lastValidFrame: m, pgnos: r.pgnos.subarray(0, m), invalidTailBytes: 0 };
}

/**
 * Takes the -shm's WRITE and CKPT locks shared (a read-only descriptor suffices), waiting up to
 * `timeout` ms for a writer or checkpointer to finish (WALNUT_BUSY after); asynchronously, so
 * a store in this process can finish its commit meanwhile. Null when there is no -shm to lock
 * (no connection can be using the WAL then) or it cannot be opened (level 1 reports on it).
 */
async function holdWriters(real: string, timeout: number): Promise<WalnutFile | null> {
  const shm = openShm(real);
  if (shm === null) return null;
  try {
    await shm.lock(SHM_LOCK.WRITE, SHM_LOCK.CKPT - SHM_LOCK.WRITE + 1, 'shared', timeout);
    return shm;
  } catch (e) {
    shm.closeSync();
    throw e;
  }
}

/** `snapshotFrame`: the frame a read transaction holds (holdReadMark), whose -shm header said mxFrame was it; null without one. */
async function verifyWith(dbPath: string, level: number, options: VerifyOptions, walView: { wal: WalFile; recovery: WalRecovery } | null, snapshotFrame: number | null): Promise<VerifyReport> {
  const r = inspectWith(dbPath, walView?.recovery);
  const issues: VerifyIssue[] = [];
  // maxFindings bounds them all: the WAL's (one per damaged sidecar group, however many) and the -shm's were added uncounted
  const max = options.maxFindings ?? 1000;
  const report = (pages: number): VerifyReport => ({ ok: issues.length === 0, level, journalMode, pages, issues: issues.slice(0, max) });
  const journalMode = r.journalMode;
  if (journalMode === null) issues.push({ level: 1, kind: 'file-format', pgno: 1, message: 'the database header\'s format versions (bytes 18/19) are neither 1 (rollback journal) nor 2 (WAL)' });
  if (r.hotJournal) issues.push({ level: 1, kind: 'hot-journal', message: hotJournalProblem(r.path) });
  // a killed restore's files: the state checked here is not the one the next open leaves (its
  // companions aside go back, or the replaced database's are removed); reported, not settled
  for (const p of r.restores) issues.push({ level: 1, kind: 'unsettled-restore', message: `${p.live ? 'a restore to this database is running' : 'a restore to this database was killed'} (${p.temporary}${p.asides.length > 0 ? `, asides ${p.asides.join(', ')}` : ''}): ${p.settle}${p.live ? '' : ' by the next walnut open or restore of it'}` });
  if (r.pageSize === 0) {
    // a 0-byte file: SQLite's empty database, sound (integrity_check says ok); a -wal beside it
    // is deleted unread by SQLite's first connection (pagerOpenWalIfPresent): its commits are lost
    if (r.walFrames > 0) issues.push({ level: 1, kind: 'wal-ignored', frame: 1, message: `the database file is empty (0 bytes): SQLite deletes its -wal unread, with the ${r.commits} commits (${r.walFrames} frames) it holds` });
    return report(0);
  }
  if (r.walHeaderStatus !== 'ok' && r.walHeaderStatus !== 'missing' && r.walHeaderStatus !== 'empty' && r.walBytes > 0) {
    issues.push(await walHeaderIssue(r.walHeaderStatus, walView));
  }
  if (walView !== null && walView.recovery.mxFrame > 0 && walView.recovery.pageSize !== r.pageSize) {
    issues.push({ level: 1, kind: 'wal-page-size', message: `the WAL's page size ${walView.recovery.pageSize} differs from the database's ${r.pageSize}: the -wal belongs to another database (SQLite would read its pages as this one's; walnut refuses to open it); its frames are not checked` });
  }
  // (read after the scan, a live -shm's header may describe commits made since: the read transaction's is the one to compare)
  const shmFrames = snapshotFrame ?? (r.shm && r.shm.headerValid ? r.shm.mxFrame : null);
  if (shmFrames !== null && shmFrames > r.walFrames) {
    issues.push({ level: 1, kind: 'shm-ahead-of-wal', frame: shmFrames, message: `the -shm describes ${shmFrames} frames but the WAL holds ${r.walFrames} valid ones` });
  }
  if (r.shm && r.backfilled !== null && r.shm.mxFrame !== null && r.backfilled > r.shm.mxFrame) {
    issues.push({ level: 1, kind: 'shm-backfill', message: `nBackfill ${r.backfilled} is beyond mxFrame ${r.shm.mxFrame}` });
  }
  if (walView !== null && r.walHeaderStatus === 'ok' && r.invalidTailBytes > 0) issues.push(...(await walDamage(walView.wal, walView.recovery)));
  if (walView !== null && r.shm?.headerValid && r.walFrames > 0) {
    const rec = walView.recovery;
    const indexed = (shmSegmentOf(rec.mxFrame) + 1) * SHM_SEGMENT_BYTES; // the segments of the WAL's frames, not the whole file
    issues.push(...checkShmIndex(WalnutFile.readPrefixSync(`${r.path}-shm`, indexed), rec.pgnos, rec.mxFrame, rec.salts));
  }
  if (r.dbFilePages === 0 && r.walFrames === 0) {
    // (a header was read, so the file is not empty: it is shorter than the page size it names)
    const bytes = fs.statSync(r.path).size;
    issues.push({ level: 1, kind: 'empty-database', pgno: 1, message: `the database file holds no whole page: ${bytes} bytes, its header's page size ${r.pageSize} (a file cut short?); SQLite cannot read page 1` });
    return report(0);
  }
  const source = FilePageSource.open(r.path, walView);
  try {
    if (issues.length < max) issues.push(...checkDatabase(source, { level, maxFindings: max - issues.length, pageChecksums: options.pageChecksums }));
    return report(source.dbSize);
  } finally {
    source.close();
  }
}

/**
 * The finding for an unusable WAL header. When recovery's restore would restore it (a dry run:
 * fec/repair.ts; from an FEC sidecar's copy, or from frame 1 alone) it is repairable; else why
 * not, when a sidecar is there to ask.
 */
async function walHeaderIssue(status: string, walView: { wal: WalFile; recovery: WalRecovery } | null): Promise<VerifyIssue> {
  const unusable = `the WAL header is unusable (${status}); SQLite treats the WAL as empty`;
  if (walView === null || !headerDamaged(walView.recovery.headerStatus)) return { level: 1, kind: 'wal-header', message: unusable };
  const dry = await repairWal(walView.wal, { dryRun: true, recovery: walView.recovery });
  const h = dry.restoredHeader;
  if (h !== null) {
    const source = h.from === 'sidecar' ? "the FEC sidecar's copy" : "frame 1 (its salts and checksum solve it)";
    return { level: 1, kind: 'wal-header-repairable', message: `${unusable}; repairable from ${source} (walnut recover --repair): generation ${h.salts[0]}/${h.salts[1]}, ${h.walFrames} committed frames follow it` };
  }
  const why = dry.fallback !== null && dry.fallback.reason !== 'no-sidecar' ? `; not repairable from the FEC sidecar (${dry.fallback.reason}): ${dry.fallback.message}` : '';
  return { level: 1, kind: 'wal-header', message: `${unusable}${why}` };
}

function openWal(walPath: string): { wal: WalFile; recovery: WalRecovery } {
  const wal = WalFile.openSync(walPath, { readOnly: true });
  try {
    return { wal, recovery: wal.recoverSync() };
  } catch (e) {
    wal.closeSync();
    throw e;
  }
}

/**
 * Levels 1..5 on the database as `snap` sees it (an open store's snapshot: pages from the WAL
 * where newer). The WAL and -shm checks of verify() do not apply: the store validated both.
 */
export function verifySnapshot(snap: Snapshot, level: number, options: VerifyOptions = {}): VerifyReport {
  if (arguments.length > 3) refuseExtraArguments('verifySnapshot', 'a snapshot, a level and options', 3, arguments);
  if (!Snapshot.isSnapshot(snap)) {
    throw walnutError('WALNUT_INVALID_ARGUMENT', `verifySnapshot checks a store's snapshot (store.snapshot(), trySnapshotSync(), snapshotSync()), not ${snap === null ? 'null' : typeof snap === 'object' ? 'another object' : typeof snap}`, { reason: 'snapshot' });
  }
  checkLevel(level);
  options = checkVerifyOptions(options);
  const source = new SnapshotPageSource(snap);
  const issues = checkDatabase(source, { level, maxFindings: options.maxFindings, pageChecksums: options.pageChecksums });
  return { ok: issues.length === 0, level, journalMode: 'wal', pages: source.dbSize, issues };
}

/**
 * Damage in the WAL. With an FEC sidecar, every group of the current generation is audited
 * (auditSidecar: damaged frames anywhere, repairable or not); and the frame where recovery's
 * chain breaks is looked at as recovery's repair would (a dry run), which also names damage no
 * group covers. A tail of zeros (preallocated space), frames of an older generation and a torn
 * last batch are not reported.
 */
async function walDamage(wal: WalFile, recovery: WalRecovery): Promise<VerifyIssue[]> {
  const report = await repairWal(wal, { dryRun: true, recovery });
  const stop = report.repairedFrames[0] ?? report.fallback?.frame; // where recovery stops today
  const until = (first: number, last: number) => (stop !== undefined && first <= stop && stop <= last ? `; until repaired, recovery stops before frame ${stop}` : '');
  const found: VerifyIssue[] = [];
  const groups = auditSidecar(wal, recovery) ?? [];
  for (const g of groups) {
    const frames = g.damagedFrames.join(', ');
    found.push(
      g.repairable
        ? { level: 1, kind: 'wal-damage-repairable', frame: g.damagedFrames[0], message: `WAL frames ${frames} (group ${g.firstFrame}..${g.lastFrame}) are damaged and repairable from the FEC sidecar (walnut recover --repair)${until(g.firstFrame, g.lastFrame)}` }
        : { level: 1, kind: 'wal-damage', frame: g.damagedFrames[0], message: `WAL frames ${frames} (group ${g.firstFrame}..${g.lastFrame}) are damaged, more than the group's repair symbols can rebuild (too-many-damaged)${until(g.firstFrame, g.lastFrame)}` },
    );
  }
  if (stop !== undefined && !groups.some((g) => g.firstFrame <= stop && stop <= g.lastFrame)) {
    if (report.repairedFrames.length > 0) {
      // e.g. only a checksum field damaged: the audit (which has no chain) cannot see it
      found.push({ level: 1, kind: 'wal-damage-repairable', frame: stop, message: `WAL frames ${report.repairedFrames.join(', ')} are damaged and repairable from the FEC sidecar (walnut recover --repair)${until(stop, stop)}` });
    } else if (report.fallback !== null && report.fallback.reason !== 'no-sidecar' && report.fallback.reason !== 'unprotected-tail') {
      // (without a sidecar, or after the frames it protects, a broken chain is what a crash
      // leaves too; SQLite's recovery drops it silently, and so does this report)
      found.push({ level: 1, kind: 'wal-damage', frame: stop, message: `${report.fallback.message} (${report.fallback.reason})${until(stop, stop)}` });
    }
  }
  return found.sort((x, y) => x.frame! - y.frame!);
}
