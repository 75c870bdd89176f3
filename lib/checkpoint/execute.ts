/**
 * checkpoint/execute.ts — running a checkpoint against a connection's wal-index, in SQLite's
 * order (reference/sqlite-wal.md section 12; the rules themselves are in plan.ts).
 *
 *   CKPT (no waiting; busy -> nothing done)  ->  WRITE for full/restart/truncate (busy timeout;
 *   not obtained -> degrade to passive, result busy)  ->  read marks: each slot below mxFrame is
 *   locked exclusively (waiting except in passive; not for a slot held by this connection's
 *   own transaction, or conditional commit's base, waiting to commit, which needs the WRITE held
 *   here: readersWaitingForWrite, nor, for the restart, for another connection's follow pin
 *   past FOLLOW_PIN_MOVES_MS: WalIndex.followerOfAnotherIn)
 *   and rewritten, or limits the copy  ->  the connection's follow pin off READ(0), if it rests
 *   there  ->  READ(0) exclusive  ->  nBackfillAttempted  ->  fdatasync the WAL unless its frames are known durable
 *   (backfill() states the rule)  ->  copy the newest version of every page in (nBackfill,
 *   mxSafeFrame], sorted by page number, adjacent pages in one pwritev (one native operation on
 *   the background lane)  ->  if mxSafeFrame is still the live mxFrame, cut the database file to
 *   nPage pages  ->  fdatasync the database  ->  publish nBackfill  ->  restart/truncate:
 *   this connection's snapshots of the live state moved to READ(0) (moveCaughtUpSnapshots),
 *   READ(1..4) exclusive, then for truncate a fresh wal-index generation and the WAL cut to 0
 *   bytes (not synced, as SQLite).
 *
 * The recovery fence: the database is synced before nBackfill moves and before the WAL is
 * reset or truncated, so a crash at any point leaves a WAL that still holds every commit the
 * database file lacks. A page is copied only when its newest frame is within the safe range,
 * so a page a live reader may still read from the database file is never overwritten.
 */
import { walnutError } from '../errors';
import { DB_HEADER_SIZE, decodeDbHeader } from '../format/db-header';
import { SHM_LOCK, type ShmHeader } from '../format/shm-header';
import { FRAME_HEADER_SIZE } from '../format/frame-header';
import { frameOffset } from '../format/wal-header';
import type { NativeCopyStats } from '../native';
import type { CheckpointTarget, WalIndex } from '../wal-index/wal-index';
import { planCheckpoint, sizeBeyondFiles, sizeNoCommitMakes, type CheckpointMode, type CheckpointPlan } from './plan';


/**
 * How long a restart or truncate under WRITE waits for another connection's follow pin to move
 * off its read slot (WalIndex.settleFollowPin, on the follower's pollMs timer: 20 ms by default)
 * before it is busy: a follower that has not read every frame keeps its slot, and every commit
 * of every connection waits meanwhile.
 */
const FOLLOW_PIN_MOVES_MS = 250;

export interface CheckpointResult {
  mode: CheckpointMode;
  /** SQLite's SQLITE_BUSY: the mode's goal was not reached (a reader or writer was in the way). */
  busy: boolean;
  /** Frames in the WAL (-1 when the checkpoint lock was busy); 0 after a complete truncate. */
  walFrames: number;
  /** Frames now in the database file (cumulative), -1 when the checkpoint lock was busy. */
  checkpointedFrames: number;
}

export interface CheckpointOptions {
  /** Sync the WAL before copying and the database after (false only for synchronous 'off'). */
  sync: boolean;
  /** Told what the copy did (telemetry): pages, calls, and whether the WAL was synced first. */
  onCopy?: (copy: CopyReport) => void;
  /**
   * True when one of READ(slot .. slot+n-1) is held by a snapshot of this connection that cannot
   * end before this checkpoint lets WRITE go (a transaction whose commit() waits in the group
   * committer for WRITE, or the base snapshot of a conditional commit waiting there). Waiting for it would only run out the busy timeout while the commits
   * stall and then fail: the checkpoint counts that reader as busy at once instead (SQLite breaks
   * the same cycle from the other side: a reader that wants WRITE gets SQLITE_BUSY at once).
   */
  readersWaitingForWrite?: (slot: number, n: number) => boolean;
}

export interface CopyReport extends NativeCopyStats {
  walSynced: boolean;
}

/**
 * What SQLite's last connection does as it closes (sqlite3WalClose): when no other connection
 * has the database open (WalIndex.closeAsLast), a passive checkpoint, and when that copied every
 * frame the -shm and -wal are removed. The connection is closed either way; returns whether the
 * files were removed. A failed checkpoint only keeps them.
 */
export function closeAsLastConnection(index: WalIndex, sync: boolean): Promise<boolean> {
  return index.closeAsLast(async () => {
    const r = await index.checkpointTarget().then((t) => runCheckpoint(t, 'passive', { sync })).catch(() => null);
    return r !== null && !r.busy && r.checkpointedFrames === r.walFrames;
  });
}

export async function runCheckpoint(t: CheckpointTarget, mode: CheckpointMode, o: CheckpointOptions): Promise<CheckpointResult> {
  if (!t.tryLock(SHM_LOCK.CKPT, 1, 'exclusive')) return { mode, busy: true, walFrames: -1, checkpointedFrames: -1 };
  let haveWrite = false;
  let busy = false;
  try {
    let effective: CheckpointMode = mode;
    if (mode !== 'passive') {
      haveWrite = await t.acquireWrite();
      if (!haveWrite) {
        effective = 'passive';
        busy = true;
      }
    }
    const wait = effective !== 'passive';
    // A wait under WRITE ends at once for readers that cannot leave while it lasts: this
    // connection's own that wait for WRITE themselves; and after FOLLOW_PIN_MOVES_MS for another
    // connection's follow pin (held while its export runs; only that connection's writer restarts
    // past it), which a follower that has read and seen copied every frame moves to READ(0) within
    // its pollMs once a checkpoint holds CKPT and WRITE (WalIndex.settleFollowPin): given up at
    // once, a restart or truncate beside a caught-up `walnut export --follow` was busy where
    // sqlite3's completed
    const stuck = (slot: number, n: number): (() => boolean) | undefined => {
      if (!haveWrite) return undefined;
      const since = performance.now();
      return () => o.readersWaitingForWrite?.(slot, n) === true || (t.followerOfAnotherIn(slot, n) && performance.now() - since > FOLLOW_PIN_MOVES_MS);
    };
    const state = await planInOneGeneration(t, effective, wait, stuck);
    if (state === null) return { mode, busy: true, walFrames: -1, checkpointedFrames: -1 };
    const { h, plan } = state;

    // this connection's follow pin may rest on READ(0) (WalIndex.settleFollowPin): it goes back to
    // a slot first, else this copy would wait for its own lock (and, were it let pass, copy
    // frames the pin keeps in place); it stays when no slot is free: nothing is copied then
    if (plan.backfill && t.followPinToSlot()) {
      const gotRead0 = wait ? await t.lock(SHM_LOCK.READ(0), 1, 'exclusive', stuck(0, 1)) : t.tryLock(SHM_LOCK.READ(0), 1, 'exclusive');
      if (gotRead0) {
        try {
          // Under READ(0) no writer can restart the WAL any more (SQLite's writer restarts from
          // READ(0) shared; walnut's only once every frame is copied, and only this checkpoint
          // copies now): the generation is checked once more, as SQLite's walCheckpoint does,
          // and a WAL restarted since the plan is left alone (its frames were all copied by
          // whoever let the restart happen).
          if (t.sameGeneration(h.salts) && t.info().nBackfill === plan.backfill.after) await backfill(t, h, plan.backfill.after, plan.backfill.upTo, o);
        } finally {
          t.unlock(SHM_LOCK.READ(0), 1);
        }
      }
    }
    // a passive checkpoint beside a writer that restarted the WAL reports the new generation
    if (!t.sameGeneration(h.salts)) return { mode, busy, walFrames: t.liveMxFrame(), checkpointedFrames: t.info().nBackfill };
    const nBackfill = t.info().nBackfill;
    if (effective !== 'passive' && nBackfill < h.mxFrame) busy = true;
    let walFrames = h.mxFrame;
    if ((effective === 'restart' || effective === 'truncate') && nBackfill >= h.mxFrame && !busy) {
      // this connection's own idle readers (walnut/sql's kept views and the bases of its
      // sequenced commits, which wait for the WRITE held here) need the WAL no more: they were
      // counted busy at once (readersWaitingForWrite), so such a truncate was always busy under load
      t.moveCaughtUpSnapshots();
      // no pin yet: no reader may be using the WAL, all of READ(1..4) at once. A follow export
      // of this connection starting meanwhile takes its pin during that wait (its first pass
      // read under a snapshot, then it pins a slot for as long as it follows): the wait then
      // gives up at once and goes past the pin as below (it waited the whole busy timeout for
      // the pin, holding WRITE and every commit, and came back busy)
      const ownPinTaken = (): boolean => t.followPin() !== null;
      const readersStuck = stuck(1, 4);
      let pastPin = ownPinTaken();
      if (!pastPin) {
        if (await t.lock(SHM_LOCK.READ(1), 4, 'exclusive', () => ownPinTaken() || readersStuck?.() === true)) {
          try {
            if (effective === 'truncate') {
              t.resetWalIndex(h);
              // Not synced, as SQLite does not: should the cut be lost, the WAL comes back holding
              // only frames the (synced) database file already has; the next generation's header
              // is synced before any frame follows it, and that sync makes the new size durable.
              await t.walFile.truncate(0);
              walFrames = 0;
            }
          } finally {
            t.unlock(SHM_LOCK.READ(1), 4);
          }
        } else if (ownPinTaken()) {
          pastPin = true;
        } else {
          busy = true;
        }
      }
      if (pastPin) {
        if (!(await restartPastOwnFollowers(t, effective === 'truncate', h.mxFrame, stuck))) busy = true;
        else if (effective === 'truncate') walFrames = 0;
      }
    }
    const checkpointed = walFrames === 0 ? 0 : t.info().nBackfill;
    return { mode, busy, walFrames, checkpointedFrames: checkpointed };
  } finally {
    if (haveWrite) t.releaseWrite();
    t.unlock(SHM_LOCK.CKPT, 1);
  }
}

/** Planning gives up after this many WAL restarts in a row came between its reads. */
const PLAN_ATTEMPTS = 16;

/**
 * Reads the live header and the checkpoint info, probes the reader slots and rewrites the
 * read marks of those it could lock, all of one WAL generation. A passive checkpoint holds no
 * WRITE, so a writer (this connection's next batch, another process) may restart the WAL
 * between any two of these steps once every frame is in the database file: a plan made of the
 * old generation's mxFrame and the new one's nBackfill 0 copied frames 1..mxFrame out of an
 * index being rewritten and set nBackfill past the new generation's frames, so sqlite3 readers
 * read older rows from the database file and the next restart dropped the new commits for good.
 * So the salts are checked after the info (a restart publishes the header before it resets the
 * info) and again with the probed slots held (no restart can pass a held slot) before any mark
 * is written. Null: restarts kept coming (PLAN_ATTEMPTS), nothing was done.
 */
async function planInOneGeneration(
  t: CheckpointTarget,
  mode: CheckpointMode,
  wait: boolean,
  stuck: (slot: number, n: number) => (() => boolean) | undefined,
): Promise<{ h: ShmHeader; plan: CheckpointPlan } | null> {
  for (let attempt = 0; attempt < PLAN_ATTEMPTS; attempt++) {
    const h = await t.header();
    const info = t.info();
    if (!t.sameGeneration(h.salts)) continue;
    // Probe each reader slot the way SQLite does: lock it exclusively (rewrite its mark) or
    // learn it is busy. The plan is computed from what the probes found.
    const readerBusy = [false, false, false, false, false];
    const held: number[] = [];
    try {
      let probeSafe = h.mxFrame;
      for (let i = 1; i <= 4; i++) {
        if (info.readMarks[i]! >= probeSafe) continue;
        const got = wait ? await t.lock(SHM_LOCK.READ(i), 1, 'exclusive', stuck(i, 1)) : t.tryLock(SHM_LOCK.READ(i), 1, 'exclusive');
        if (got) held.push(i);
        else {
          readerBusy[i] = true;
          probeSafe = info.readMarks[i]!;
        }
      }
      if (!t.sameGeneration(h.salts)) continue;
      const plan = planCheckpoint({ mxFrame: h.mxFrame, nBackfill: info.nBackfill, readMarks: info.readMarks, readerBusy }, mode);
      for (const u of plan.markUpdates) t.setReadMark(u.slot, u.value);
      return { h, plan };
    } finally {
      for (const i of held) t.unlock(SHM_LOCK.READ(i), 1);
    }
  }
  return null;
}

/**
 * The restart or truncate step of a checkpoint on a connection with follow exports of its own
 * (caller holds WRITE and CKPT; every frame is in the database file). Their shared read slot
 * (the follow pin) is one no lock of this connection can take: waited for as a reader, it held
 * WRITE, and this connection's commits with it, for the whole busy timeout, then failed them
 * (WALNUT_BUSY) and returned busy. The other slots' readers are waited for as SQLite waits for
 * them; then a restart is left to the next writer, which hands the followers the frames they
 * have not read (as without a checkpoint), and a truncate restarts the WAL that way now
 * (restartPastFollowers tries the slots again: a reader that came in between makes it busy)
 * and cuts it to 0 bytes. False: busy.
 */
async function restartPastOwnFollowers(t: CheckpointTarget, truncate: boolean, mxFrame: number, stuck: (slot: number, n: number) => (() => boolean) | undefined): Promise<boolean> {
  const got: number[] = [];
  try {
    for (let i = 1; i <= 4; i++) {
      // the pin as it is now: an export may stop, and another start on another slot, meanwhile
      if (i === t.followPin()) continue;
      if (!(await t.lock(SHM_LOCK.READ(i), 1, 'exclusive', stuck(i, 1)))) return false;
      got.push(i);
    }
  } finally {
    for (const i of got) t.unlock(SHM_LOCK.READ(i), 1);
  }
  if (!truncate) return true;
  // a WAL of no frames was restarted already (the export restarts one it read to the end once
  // every frame is in the database file: follow.ts): nothing to hand over, but the file still
  // holds the old generation's frames, and a truncate cuts it as SQLite's does (it returned
  // walFrames 0, not busy, and left the file as long as it was)
  if (mxFrame > 0 && !(await t.restartPastFollowers())) return false;
  await t.walFile.truncate(0); // not synced, as runCheckpoint's own truncate
  return true;
}

/**
 * Copies frames (after, upTo] into the database file (READ(0) held exclusively): one native
 * operation plans and copies (native/checkpoint_copy.h: the newest frame <= mxFrame of each
 * page, large reads, one pwritev per run of adjacent pages), a second cuts the database to
 * nPage pages when upTo is still the live mxFrame and syncs it once; then nBackfill moves.
 *
 * The WAL sync before the copy (SQLite's, reference section 12.2 b): the frames must be on
 * stable storage before any of them reaches the database file, or a power loss could leave a
 * database holding pages of commits its WAL lost. SQLite syncs the WAL every time. It is
 * skipped here only when this connection knows frames 1..upTo of this generation are durable
 * already: a sync of the WAL (a commit's in synchronous 'full', or an earlier checkpoint's)
 * completed after they were written (WalFile.durableThrough). So under 'full' a store's own
 * commits need no second sync; frames appended since by anyone ('normal', sqlite3 with
 * synchronous=NORMAL, another process) and frames recovery found are synced as SQLite does.
 */
async function backfill(t: CheckpointTarget, h: ShmHeader, after: number, upTo: number, o: CheckpointOptions): Promise<void> {
  // page numbers of every frame after nBackfill through mxFrame: a page whose newest frame lies
  // beyond upTo is not copied at all (SQLite's rule), so the frames past upTo count too
  const pgnos = new Uint32Array(h.mxFrame - after);
  t.pageNumbers(after + 1, pgnos);
  await refuseImplausibleSize(t, h, pgnos);
  await refuseForeignPage1(t, after, upTo, pgnos);
  t.setNBackfillAttempted(upTo);
  const syncWal = o.sync && t.walDurableThrough(h.salts) < upTo;
  const stats = await t.copyFrames(pgnos, { firstFrame: after + 1, upTo, nPage: h.nPage, pageSize: t.pageSize, syncWal });
  if (syncWal) t.noteWalDurable(h.mxFrame, h.salts);
  await t.syncDb(upTo === t.liveMxFrame() ? h.nPage * t.pageSize : -1, o.sync);
  t.setNBackfill(upTo);
  o.onCopy?.({ ...stats, walSynced: syncWal });
}

/**
 * Page 1 reaches the database file only as this database's header: the SQLite magic and the
 * page size the file is read at. walnut's own commits are checked for that (page1.magic,
 * page1.pageSize); a frame another writer made or damage left (its checksum chain intact) is
 * not, and a file header is taken without reading the WAL (wal/page1-through-wal.ts), so a WAL
 * whose page 1 names another page size was opened and its checkpoint wrote that header into
 * the file: the next open read a file of 4096-byte pages as 1024-byte ones. sqlite3 never
 * checkpoints such a database (it fails it "malformed database schema" first). Checked on the
 * newest frame of page 1 the copy would take (a page whose newest frame lies past `upTo` is not
 * copied at all): one read of its first 100 bytes, when page 1 is among the frames.
 */
async function refuseForeignPage1(t: CheckpointTarget, after: number, upTo: number, pgnos: Uint32Array): Promise<void> {
  const i = pgnos.lastIndexOf(1);
  if (i === -1 || after + 1 + i > upTo) return;
  const head = new Uint8Array(DB_HEADER_SIZE);
  const got = await t.walFile.read(head, 0, DB_HEADER_SIZE, frameOffset(after + 1 + i, t.pageSize) + FRAME_HEADER_SIZE);
  const header = got === DB_HEADER_SIZE ? decodeDbHeader(head) : null;
  if (header !== null && header.pageSize === t.pageSize) return;
  const says = header === null ? 'is not a SQLite database header' : `says the page size is ${header.pageSize || 'invalid'}`;
  throw walnutError('WALNUT_CORRUPT', `page 1 in frame ${after + 1 + i} of the WAL ${says}, the database's is ${t.pageSize}: not copied into ${t.dbPath} (sqlite3 reports such a database malformed)`, { path: t.dbPath, pgno: 1, reason: 'Page1Header' });
}

/**
 * SQLite's sanity check before a backfill (walCheckpoint, reference section 12.2 c): a commit's
 * database size larger than the file plus 64 KiB (the lock-byte page) plus every page the WAL
 * holds cannot be a database SQLite made; its checkpoint is SQLITE_CORRUPT and changes nothing.
 * Without it a damaged or hand-made commit frame (a chain that still checks out) grew the file
 * to that size: a sparse 16 TiB database for 0xffffffff pages. walnut's own commits may grow a
 * database sparsely (a page far past the end, the pages between never written): such a size
 * is a page the WAL holds, and is copied as before.
 */
async function refuseImplausibleSize(t: CheckpointTarget, h: ShmHeader, pgnos: Uint32Array): Promise<void> {
  if (!sizeBeyondFiles(h.nPage, t.pageSize, await t.db.size(), h.mxFrame)) return;
  if (!sizeNoCommitMakes(h.nPage, t.pageSize)) for (const pgno of pgnos) if (pgno >= h.nPage) return;
  throw walnutError('WALNUT_CORRUPT', `the WAL's last commit says the database has ${h.nPage} pages, more than the database file and the WAL hold (SQLite's checkpoint refuses it too)`, { path: t.dbPath, reason: 'DbSizeImplausible' });
}
