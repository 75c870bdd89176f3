/**
 * checkpoint/plan.ts — the pure part of a checkpoint (reference/sqlite-wal.md section 12).
 *
 * Input: the wal-index state (mxFrame, nBackfill, read marks 1..4) and, for each reader slot,
 * whether its lock could be taken exclusively; output: how far the checkpoint may copy
 * (mxSafeFrame: never past a live reader's mark), which read marks it rewrites, whether it
 * completes, and what happens after (restart/truncate only when everything is backfilled and
 * no reader uses the WAL). SQLite's rules, in SQLite's order: the slots are visited 1..4 and
 * each busy slot whose mark is below the current mxSafeFrame lowers it to that mark.
 */

export type CheckpointMode = 'passive' | 'full' | 'restart' | 'truncate';
/** The modes, as store.checkpoint() and `walnut checkpoint --mode` take them. */
export const CHECKPOINT_MODES: readonly CheckpointMode[] = ['passive', 'full', 'restart', 'truncate'];

export const READMARK_NOT_USED = 0xffffffff;

export interface CheckpointState {
  mxFrame: number;
  nBackfill: number;
  /** aReadMark[0..4]; index 0 is unused here. */
  readMarks: readonly number[];
  /** busy[i]: READ(i) is held by a reader (cannot be taken exclusively), i = 1..4. */
  readerBusy: readonly boolean[];
}

export interface CheckpointPlan {
  mxSafeFrame: number;
  /** Frames (from, to] to copy into the database file; null when nothing is to copy. */
  backfill: { after: number; upTo: number } | null;
  /** Read marks rewritten while their lock is held: i -> new value. */
  markUpdates: { slot: number; value: number }[];
  /** Reader slots that limited the copy. */
  blockedBy: number[];
  /** Everything in the WAL will be in the database file after the copy. */
  complete: boolean;
  postAction: 'none' | 'restart' | 'truncate';
  /** SQLite's SQLITE_BUSY result for this mode. */
  busy: boolean;
}

export function planCheckpoint(state: CheckpointState, mode: CheckpointMode): CheckpointPlan {
  let mxSafe = state.mxFrame;
  const markUpdates: { slot: number; value: number }[] = [];
  const blockedBy: number[] = [];
  for (let i = 1; i <= 4; i++) {
    const mark = state.readMarks[i] ?? READMARK_NOT_USED;
    if (mark >= mxSafe) continue; // NOT_USED (0xffffffff) is never below
    if (!state.readerBusy[i]) {
      markUpdates.push({ slot: i, value: i === 1 ? mxSafe : READMARK_NOT_USED });
    } else {
      mxSafe = mark;
      blockedBy.push(i);
    }
  }
  const backfill = state.nBackfill < mxSafe ? { after: state.nBackfill, upTo: mxSafe } : null;
  const complete = Math.max(state.nBackfill, mxSafe) >= state.mxFrame;
  const readersInWal = [1, 2, 3, 4].some((i) => state.readerBusy[i]);
  const wantsReset = mode === 'restart' || mode === 'truncate';
  const postAction = wantsReset && complete && !readersInWal ? mode : 'none';
  const busy = mode !== 'passive' && (!complete || (wantsReset && readersInWal));
  return { mxSafeFrame: mxSafe, backfill, markUpdates, blockedBy, complete, postAction, busy };
}

/**
 * SQLite's plausibility rule for a commit's database size (walCheckpoint, reference section
 * 12.2 c): `nPage` pages cannot be a database any SQLite commit made when they are more than the
 * database file (`fileBytes`) plus 64 KiB (the lock-byte page) plus every page of the WAL's
 * `mxFrame` frames. walnut's own commits can grow a database sparsely; the caller also asks
 * whether a frame holds a page that high.
 */
export function sizeBeyondFiles(nPage: number, pageSize: number, fileBytes: number, mxFrame: number): boolean {
  const need = nPage * pageSize;
  return fileBytes < need && fileBytes + 65536 + mxFrame * pageSize < need;
}

/**
 * A size past what any commit of walnut's makes (commit/pages.ts: MAX_PAGE_COUNT 0xfffffffe
 * pages, MAX_DATABASE_BYTES 16 TiB): beyond the files it is implausible even when a frame holds
 * a page that high (a damaged frame's page number).
 */
export function sizeNoCommitMakes(nPage: number, pageSize: number): boolean {
  return nPage > 0xfffffffe || nPage * pageSize > 2 ** 44;
}
