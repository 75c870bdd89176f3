/**
 * checkpoint/execute.ts — running a checkpoint against a connection's wal-index, in SQLite's
 * order (reference/sqlite-wal.md section 12; the rules themselves are in plan.ts).
 *
 *   CKPT (no waiting; busy -> nothing done)  ->  WRITE for full/restart/truncate (busy timeout;
 *   not obtained -> degrade to passive, result busy)  ->  read marks: each slot below mxFrame is
 *   locked exclusively (waiting except in passive) and rewritten, or limits the copy  ->  READ(0)
 *   exclusive  ->  nBackfillAttempted  ->  fsync the WAL  ->  copy the newest version of every
 *   page in (nBackfill, mxSafeFrame], sorted by page number, adjacent pages in one pwritev  ->
 *   if mxSafeFrame is still the live mxFrame, cut the database file to nPage pages  ->  fsync the
 *   database  ->  publish nBackfill  ->  restart/truncate: READ(1..4) exclusive, then for
 *   truncate a fresh wal-index generation and the WAL cut to 0 bytes and synced.
 *
 * The recovery fence: the database is synced before nBackfill moves and before the WAL is
 * reset or truncated, so a crash at any point leaves a WAL that still holds every commit the
 * database file lacks. A page is copied only when its newest frame is within the safe range,
 * so a page a live reader may still read from the database file is never overwritten.
 */
import { walnutError } from '../errors';
import { FRAME_HEADER_SIZE } from '../format/frame-header';
import { SHM_LOCK } from '../format/shm-header';
import { frameOffset } from '../format/wal-header';
import type { CheckpointTarget } from '../wal-index/wal-index';
import { planCheckpoint, type CheckpointMode } from './plan';

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
}

const COPY_CHUNK = 256; // pages read before each write-out

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
    const h = await t.header();
    const wait = effective !== 'passive';
    const info = t.info();
    // Probe each reader slot the way SQLite does: lock it exclusively (rewrite its mark) or
    // learn it is busy. The plan is computed from what the probes found.
    const readerBusy = [false, false, false, false, false];
    const held: number[] = [];
    let probeSafe = h.mxFrame;
    for (let i = 1; i <= 4; i++) {
      if (info.readMarks[i]! >= probeSafe) continue;
      const got = wait ? await t.lock(SHM_LOCK.READ(i), 1, 'exclusive') : t.tryLock(SHM_LOCK.READ(i), 1, 'exclusive');
      if (got) held.push(i);
      else {
        readerBusy[i] = true;
        probeSafe = info.readMarks[i]!;
      }
    }
    const plan = planCheckpoint({ mxFrame: h.mxFrame, nBackfill: info.nBackfill, readMarks: info.readMarks, readerBusy }, effective);
    for (const u of plan.markUpdates) t.setReadMark(u.slot, u.value);
    for (const i of held) t.unlock(SHM_LOCK.READ(i), 1);

    if (plan.backfill) {
      const gotRead0 = wait ? await t.lock(SHM_LOCK.READ(0), 1, 'exclusive') : t.tryLock(SHM_LOCK.READ(0), 1, 'exclusive');
      if (gotRead0) {
        try {
          await backfill(t, h.mxFrame, h.nPage, plan.backfill.after, plan.backfill.upTo, o);
        } finally {
          t.unlock(SHM_LOCK.READ(0), 1);
        }
      }
    }
    const nBackfill = t.info().nBackfill;
    if (effective !== 'passive' && nBackfill < h.mxFrame) busy = true;
    let walFrames = h.mxFrame;
    if ((effective === 'restart' || effective === 'truncate') && nBackfill >= h.mxFrame && !busy) {
      // no reader may be using the WAL: all of READ(1..4) at once
      if (await t.lock(SHM_LOCK.READ(1), 4, 'exclusive')) {
        try {
          if (effective === 'truncate') {
            t.resetWalIndex(h);
            await t.walFile.truncate(0);
            if (o.sync) await t.walFile.fsync();
            walFrames = 0;
          }
        } finally {
          t.unlock(SHM_LOCK.READ(1), 4);
        }
      } else {
        busy = true;
      }
    }
    const checkpointed = walFrames === 0 ? 0 : t.info().nBackfill;
    return { mode, busy, walFrames, checkpointedFrames: checkpointed };
  } finally {
    if (haveWrite) t.releaseWrite();
    t.unlock(SHM_LOCK.CKPT, 1);
  }
}

/** Copies frames (after, upTo] into the database file (READ(0) held exclusively). */
async function backfill(t: CheckpointTarget, mxFrame: number, nPage: number, after: number, upTo: number, o: CheckpointOptions): Promise<void> {
  t.setNBackfillAttempted(upTo);
  if (o.sync) await t.walFile.fdatasync();
  // the newest frame <= mxFrame of every page that appears in the range
  const pgnos = new Uint32Array(upTo - after);
  t.pageNumbers(after + 1, pgnos);
  const copies: { pgno: number; frame: number }[] = [];
  const seen = new Set<number>();
  for (const pgno of pgnos) {
    if (seen.has(pgno)) continue;
    seen.add(pgno);
    if (pgno > nPage) continue; // beyond the database size: dropped by the truncate below
    const frame = t.lookup(pgno, mxFrame, 1);
    if (frame > after && frame <= upTo) copies.push({ pgno, frame }); // else a newer frame is not yet safe
  }
  copies.sort((a, b) => a.pgno - b.pgno);
  const pageSize = t.pageSize;
  for (let i = 0; i < copies.length; i += COPY_CHUNK) {
    const chunk = copies.slice(i, i + COPY_CHUNK);
    const pages = chunk.map(() => Buffer.allocUnsafe(pageSize));
    await Promise.all(
      chunk.map(async (c, k) => {
        const got = await t.walFile.read(pages[k]!, 0, pageSize, frameOffset(c.frame, pageSize) + FRAME_HEADER_SIZE);
        if (got !== pageSize) throw walnutError('WALNUT_CORRUPT', `frame ${c.frame} is beyond the end of the WAL`, { path: t.walFile.path });
      }),
    );
    // runs of adjacent page numbers go out in one pwritev each
    for (let start = 0; start < chunk.length; ) {
      let end = start + 1;
      while (end < chunk.length && chunk[end]!.pgno === chunk[end - 1]!.pgno + 1) end++;
      await t.db.writev(pages.slice(start, end), (chunk[start]!.pgno - 1) * pageSize);
      start = end;
    }
  }
  if (upTo === t.liveMxFrame()) await t.db.truncate(nPage * pageSize);
  if (o.sync) await t.db.fsync();
  t.setNBackfill(upTo);
}
