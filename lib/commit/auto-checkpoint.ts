/**
 * commit/auto-checkpoint.ts — AutoCheckpointPolicy: when a store checkpoints by itself (option
 * autoCheckpoint), and what it reports about a WAL that readers keep from restarting.
 *
 * The WAL restarts (frames are written from frame 1 again, and the file is cut back to
 * walSizeLimit) when a batch finds every frame copied into the database file and no reader in
 * the WAL (WalIndex.appendAndPublish, SQLite's walRestartLog). So, as SQLite runs a passive
 * checkpoint after every commit past wal_autocheckpoint, walnut starts one once a commit leaves
 * autoCheckpoint frames, in the background (its own I/O lane). Batches do not wait for it: they
 * go on appending while it copies, and the WAL grows past the threshold meanwhile. A batch
 * waits only where the protocol requires it, to restart the WAL: once that checkpoint is done,
 * the next batch finds nBackfill below mxFrame (the frames appended while it copied) and runs
 * one more checkpoint, of those frames only, under its WRITE lock (nothing can be appended
 * meanwhile), then restarts the WAL. So the wait is the copy of a few batches' frames and the
 * database sync that must precede nBackfill, not a whole checkpoint. A batch that would take
 * the WAL to twice the threshold waits for the running checkpoint too (and then copies the
 * rest): that bounds the WAL below twice the threshold (one batch of more frames than that
 * aside) when checkpoints cannot keep up, while no reader is in the way.
 *
 * A reader holds the WAL: a snapshot, transaction or export of this store, or another
 * connection's read lock (a sqlite3 read transaction, another walnut process). Not counted: the
 * snapshots of transactions being committed (group-committer.ts releases them under WRITE before
 * the append) and, as WAL readers, snapshots the writer moves to the database file because they
 * see the whole WAL, all of it copied (WalIndex.walReaders). The batch's wait for the checkpoint
 * happens under WRITE, after those transactions released their marks (Store's beforeAppend); a
 * checkpoint that ran while they were held and stopped at their marks is followed by one more,
 * which copies the rest. While a reader does hold it,
 * no checkpoint can restart the WAL: it stops at the reader's read mark, or copies everything
 * and still finds the reader in the WAL. After such an auto-checkpoint the policy is pinned:
 *  - no batch waits for a checkpoint (waiting cannot restart anything);
 *  - the next checkpoint runs once the WAL has grown by another autoCheckpoint frames (it copies
 *    what the readers allow, as SQLite would), or as soon as a batch finds no reader left
 *    (WalIndex.walReaders() under the batch's WRITE, before its append: no lock taken, a few
 *    fcntl(F_OFD_GETLK) per batch while pinned); that batch waits for it and restarts the WAL;
 *  - a `walnut:wal` event names the holders and the WAL's size: when the pin starts, each time
 *    the WAL has doubled since the last such event, and once when a checkpoint finds it free.
 * Invariant: the store runs at most one auto-checkpoint at a time (and says so in `running`).
 */
import type { CheckpointResult } from '../checkpoint/execute';
import type { EventRing } from '../telemetry/events';

/** What keeps the WAL from restarting (store.metrics().wal.pinnedBy, the `walnut:wal` event). */
export interface WalHolders {
  /** This store's read views: snapshots, open transactions (not those committing) and exports sending their base image (each holds one). */
  snapshots: number;
  /** Exports running (store.exportTo); once past the base image, one holds no read view and never pins the WAL. */
  exports: number;
  /** The oldest WAL frame one of them still sees (0: it reads the database file only, READ(0)). */
  oldestSnapshotFrame: number | null;
  /**
   * Read locks other connections hold (another process, sqlite3, another store in this
   * process): the slot (0..4), its read mark (frames that reader sees; 0 for slot 0, which
   * reads the database file only but keeps checkpoints from copying), and the holder's pid
   * when the kernel names it (SQLite's POSIX locks; null for OFD locks such as walnut's).
   */
  connections: { slot: number; mark: number; pid: number | null }[];
}

export interface WalMetrics {
  /** Frames in the WAL (mxFrame), and how many of them are in the database file (nBackfill). */
  frames: number;
  backfilledFrames: number;
  /** Size of the -wal file in bytes. */
  bytes: number;
  /**
   * While pinned: who holds the WAL now (empty once the readers have left; the next batch then
   * restarts the WAL); null when no auto-checkpoint found it held.
   */
  pinnedBy: WalHolders | null;
  /** Milliseconds since an auto-checkpoint first found the WAL held by a reader; null when not pinned. */
  pinnedSinceMs: number | null;
  /** While pinned, the WAL size (frames) at which the next auto-checkpoint runs unless the readers leave first. */
  checkpointBackoff: { nextAtFrames: number } | null;
  /** Auto-checkpoints that could not restart the WAL because a reader was in it. */
  pinnedCheckpoints: number;
}

/** What the policy needs to see of the store; called only while pinned, after checkpoints, and for metrics. */
export interface WalProbe {
  holders(): WalHolders & { walSnapshots: number };
  walBytes(): number;
  /** The live mxFrame. */
  mxFrame(): number;
}

interface Pin {
  since: number;
  /** WAL frames at the last checkpoint that found the WAL held, and when the next one is due. */
  frames: number;
  nextAt: number;
  /** WAL frames when the last 'pinned' event went out. */
  reportedFrames: number;
  /** The largest WAL seen while pinned (by its checkpoints and its commits): the 'released' event's maxFrames. */
  maxFrames: number;
}

export class AutoCheckpointPolicy {
  readonly #every: number | false;
  readonly #probe: WalProbe;
  readonly #events: EventRing;
  #pin: Pin | null = null;
  /** The running auto-checkpoint was started with no pin: it can restart the WAL, batches may wait for it. */
  #runningMayRestart = false;
  #pinnedCheckpoints = 0;
  #waits = 0;
  /**
   * An auto-checkpoint with no reader in the way copied the WAL up to this frame and it has not
   * restarted since (0: none): the next batch copies the rest and restarts it (beforeBatch), so
   * no commit starts another background checkpoint meanwhile (dueAfterCommit).
   */
  #restartDue = 0;

  constructor(every: number | false, probe: WalProbe, events: EventRing) {
    this.#every = every;
    this.#probe = probe;
    this.#events = events;
  }

  /** An auto-checkpoint found a reader keeping the WAL from restarting, and it has not restarted since. */
  get pinned(): boolean {
    return this.#pin !== null;
  }

  /** Batches that waited for a checkpoint so that the WAL could restart. */
  get waits(): number {
    return this.#waits;
  }

  /** After a commit left `mxFrame` frames (no auto-checkpoint running): start one now? */
  dueAfterCommit(mxFrame: number): boolean {
    this.#noticeRestart(mxFrame);
    if (this.#every === false || mxFrame < (this.#pin?.nextAt ?? this.#every) || this.#restartDue > 0) return false;
    // while pinned this one copies what the readers allow, and no batch waits for it
    this.#runningMayRestart = this.#pin === null;
    return true;
  }

  /**
   * Before a batch of `frames` frames appends (under WRITE, its transactions' marks released): 'wait' for the running auto-checkpoint,
   * 'start' one and wait for it, 'wait-then-start' (the running one began while a reader was in
   * the way, and that reader has left), or null. `backfilled()` is nBackfill now. A batch waits
   * only for a checkpoint that can restart the WAL; while pinned, that is when no reader is left.
   */
  beforeBatch(mxFrame: number, frames: number, running: boolean, backfilled: () => number): 'wait' | 'start' | 'wait-then-start' | null {
    this.#noticeRestart(mxFrame);
    if (this.#every === false || mxFrame < this.#every) return null;
    const readersLeft = this.#pin !== null && (!running || !this.#runningMayRestart) && !hasReaders(this.#probe.holders());
    const bound = mxFrame + frames >= 2 * this.#every; // this batch would take the WAL to twice the threshold
    let action: 'wait' | 'start' | 'wait-then-start' | null = null;
    // a running checkpoint that can restart the WAL is waited for only past the bound: batches append while it copies
    if (running) action = this.#runningMayRestart ? (bound ? 'wait' : null) : readersLeft ? 'wait-then-start' : null;
    else if (this.#pin !== null) action = readersLeft ? 'start' : null;
    else {
      // a checkpoint copied the WAL up to where it began (nBackfill > 0): copy the rest and
      // restart; nothing copied yet, past the bound: the whole checkpoint (everything copied:
      // this batch restarts the WAL by itself)
      const copied = backfilled();
      if (copied < mxFrame && (copied > 0 || bound)) action = 'start';
    }
    if (action === 'start' || action === 'wait-then-start') this.#runningMayRestart = true;
    if (action !== null) this.#waits++;
    return action;
  }

  /** After every checkpoint; `auto` for the store's own. A failed one changes nothing. */
  observe(r: CheckpointResult, auto: boolean): void {
    if (this.#every === false || r.walFrames < 0) return; // checkpoint lock busy: someone else is copying
    const complete = r.checkpointedFrames >= r.walFrames;
    if (auto && complete && this.#pin === null && r.walFrames > 0 && this.#probe.mxFrame() > r.walFrames) {
      // batches appended while it copied: whether a reader holds the WAL is for the next batch's
      // checkpoint to find (under WRITE, the committing transactions' marks released)
      this.#restartDue = r.walFrames;
      return;
    }
    const holders = this.#probe.holders();
    // A restart needs every frame copied and no WAL read mark held (READ(0) readers do not stop
    // it, and following exports hold none: WalIndex.followWal); copying needs no reader at all
    // below the end.
    const held = r.walFrames > 0 && (complete ? holders.walSnapshots > 0 || holders.connections.some((c) => c.slot > 0) : hasReaders(holders));
    if (!held) {
      if (this.#pin !== null) this.#release(r.walFrames);
      if (auto && complete && r.walFrames > 0) this.#restartDue = r.walFrames;
      return;
    }
    if (!auto) return;
    this.#restartDue = 0; // a reader is in the way: the pin's back-off decides from here
    this.#pinnedCheckpoints++;
    const pin = (this.#pin ??= { since: Date.now(), frames: 0, nextAt: 0, reportedFrames: 0, maxFrames: 0 });
    pin.frames = r.walFrames;
    pin.nextAt = r.walFrames + this.#every;
    pin.maxFrames = Math.max(pin.maxFrames, r.walFrames);
    if (pin.reportedFrames === 0 || r.walFrames >= 2 * pin.reportedFrames) {
      pin.reportedFrames = r.walFrames;
      this.#events.emit('wal', () => ({ state: 'pinned', frames: r.walFrames, bytes: this.#probe.walBytes(), pinnedBy: publicHolders(holders), pinnedMs: Date.now() - pin.since }));
    }
  }

  /** Someone restarted the WAL since the pin (another connection, an export, a truncate): it is over. */
  #noticeRestart(mxFrame: number): void {
    if (mxFrame < this.#restartDue) this.#restartDue = 0;
    if (this.#pin === null) return;
    if (mxFrame < this.#pin.frames) this.#release(mxFrame);
    else if (mxFrame > this.#pin.maxFrames) this.#pin.maxFrames = mxFrame; // every commit's WAL counts, not only the back-off checkpoints'
  }

  #release(frames: number): void {
    const pin = this.#pin!;
    this.#pin = null;
    this.#events.emit('wal', () => ({ state: 'released', frames, bytes: this.#probe.walBytes(), maxFrames: Math.max(pin.maxFrames, frames), pinnedMs: Date.now() - pin.since }));
  }

  metrics(frames: number, backfilledFrames: number): WalMetrics {
    const pin = this.#pin;
    return {
      frames,
      backfilledFrames,
      bytes: this.#probe.walBytes(),
      pinnedBy: pin === null ? null : publicHolders(this.#probe.holders()),
      pinnedSinceMs: pin === null ? null : Date.now() - pin.since,
      checkpointBackoff: pin === null ? null : { nextAtFrames: pin.nextAt },
      pinnedCheckpoints: this.#pinnedCheckpoints,
    };
  }
}

function hasReaders(h: WalHolders): boolean {
  return h.snapshots > 0 || h.connections.length > 0;
}

function publicHolders(h: WalHolders): WalHolders {
  return { snapshots: h.snapshots, exports: h.exports, oldestSnapshotFrame: h.oldestSnapshotFrame, connections: h.connections };
}
