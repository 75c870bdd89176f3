// bench/commit: durable one-page (4 KiB) commits, walnut side by side with its peers and with
// the physical bound, all in one process, cases interleaved in rounds (issue #19).
//
// Method: every case runs WALNUT_BENCH_SECONDS (default 1 s) per round, all cases one after
// another in each round (the order rotates), for WALNUT_BENCH_ROUNDS rounds (default 6). This
// VM's disk and CPU drift more between sequential runs than between cases of one round, so
// each goal is the median of its per-round ratios, with their spread [min..max].
//
// Cases (64 = committers in flight; one-page commits; walnut's pages 2..5001 in the same
// pattern as every commit suite):
//   walnut-64          synchronous 'full', default autoCheckpoint (1000 frames)
//   walnut-64-noac     'full', autoCheckpoint off
//   walnut-64-noac-za  the same with zeroAhead: true (zeros written ahead by the background lane)
//   walnut-1           'full', one committer
//   walnut-1-noac      'full', one committer, autoCheckpoint off (what the checkpoint costs it)
//   walnut-64-normal   'normal', default autoCheckpoint
//   sqlite-full-1      better-sqlite3, WAL, synchronous FULL, one-row inserts of a 4 KiB blob
//   sqlite-normal-1    the same, synchronous NORMAL
//   lmdb-64            lmdb-js durable puts of 4 KiB values (when the package is installed)
//   fsgc-64            a group commit on fs.promises (writev + datasync per batch) made fair:
//                      it takes a batch only after a setImmediate, so it coalesces the 64
//                      committers into one batch, as walnut does (without that it alternates
//                      batches of 1 and 63: two fdatasyncs per 64 commits); it overwrites an
//                      8 MiB span of a prefilled file, as raw-64 does
//   fsgc-64-grow       the same peer appending to a file that grows from empty (plain appends,
//                      no preallocation): the peer in walnut-64-noac's position
//   raw-64             the physical bound: 64 frames (24 + 4096 bytes) pwritev + fdatasync in a
//                      loop, through walnut's native file on its I/O thread, over written space
//                      (a restarted WAL is reused space too), wrapping at 8 MiB
//   lane-4x16          worker_threads sharing one commit lane (issue #21): 4 workers, each with
//                      its own store on one database and 16 committers (lane-8x8: 8 x 8)
//   lane-1x64          the same harness with 1 worker x 64 committers (one store)
//   own-4x16           today's design before #21: 4 workers, each store its own connection
//                      (shareLane: false), taking turns on SQLite's WRITE lock (own-8x8: 8 x 8)
//   raw-64-grow        raw-64 on a file that grows as walnut's WAL does with auto-checkpoint
//                      off: each batch appended at the end, and where it passes the end 1 MiB
//                      of zeros after it in the same write (walnut's preallocation): what a
//                      WAL that only grows costs without the zero-ahead (walnut-64-noac keeps
//                      zeros written and synced ahead of its frames past 8 MiB, so its bound is
//                      raw-64 again, less the zeroing's own writes: bench/README.md)
//   raw-64-za          raw-64-grow with the zero-ahead of zeroAhead: true running beside it (the
//                      native zeroing on a second descriptor: 8 MiB of zeros past the last
//                      batch when less than 4 MiB is left): the bound of walnut-64-noac-za
//   raw-64-ckpt        raw-64 plus a checkpoint's disk work every 1000 frames (as walnut's
//                      default): the same page copies walnut's checkpoint makes (64 runs of 16
//                      adjacent pages of the 5002-page database, one pwritev per run, all
//                      submitted at once) and the database fsync, inline: the physical limit of
//                      a WAL that checkpoints
//   raw-64-ckpt-bg     raw-64-ckpt with the checkpoint's disk work overlapped: the page writes and
//                      the database fsync on fs.promises (libuv's pool) while the loop appends
//                      on walnut's I/O thread; the loop waits only where the previous checkpoint
//                      still runs when the next is due (walnut's rule). The bound of a WAL that
//                      checkpoints in the background, as walnut's does (the restart's wait for
//                      the last batch's frames is not modelled: optimistic)
//   raw-64-ckpt-bg-restart  raw-64-ckpt-bg with the restart's rule kept (rawRestartCase): once the
//                      background checkpoint is done, the next batch waits for the pages of the
//                      batches appended meanwhile and the database's fdatasync, then the WAL
//                      wraps to its start in the same file; a batch that would take the WAL to
//                      twice the threshold waits for the running checkpoint first. The physical
//                      bound of a WAL that checkpoints and restarts (walnut's design, no walnut code)
//   raw-64-ckpt-bg-restart-hdr  the same plus the restart's new WAL header written and
//                      fdatasynced before the batch's frames (SQLite's protocol in FULL; walnut's)
//   raw-64-restart     raw-64 plus, every 16 batches, before the batch: the least a WAL restart
//                      under SQLite's protocol must wait for under a continuous load (the last
//                      batch's frames can be copied only once its WAL sync is done, and the
//                      restart needs them in the database, synced): 64 pages written to the
//                      database in 64 places (one batch of this workload's commits) and its
//                      fdatasync, inline; nothing else of the checkpoint. Its p99 over raw-64's is
//                      the floor of the p99 goal for any design that restarts the WAL
//   raw-64-ckpt-hdr    raw-64-ckpt plus the restart's header write + fdatasync after each
//                      checkpoint (as raw-64-restart-hdr below)
//   raw-64-restart-hdr raw-64-restart plus what SQLite's protocol adds to a restart before the
//                      next frame: the new 32-byte WAL header written and fdatasynced (wal.c syncs
//                      the header after a restart in FULL, "ticket ff5be73dee"; walnut does too).
//                      Not the goal's floor: shown beside it (its p99 / raw-64-restart's)
//   walnut-1-baseline  walnut-1 on the build WALNUT_BENCH_BASELINE=<other dist/> names (only then;
//   walnut-64-baseline and walnut-64 likewise), in the same rounds: an A/B of a change
//   raw-1              the single committer's bound: 1 frame pwritev + fdatasync in a loop, on
//                      walnut's I/O thread (as walnut-1 writes)
//   raw-1-sync         the same with writevSync + fdatasyncSync on the JavaScript thread (as
//                      better-sqlite3 writes: no thread hop)
//   raw-1-sync-ckpt    raw-1-sync plus a checkpoint's disk work every 1000 commits, inline (the
//                      distinct pages written to the database, its fdatasync, the restart's new
//                      WAL header synced): the lone committer's bound on a WAL that checkpoints
//   raw-1-sqlio        exactly the I/O better-sqlite3 FULL makes per one-row commit of a 4 KiB
//                      blob (strace, bench/README "#19 session 11"): 3 frames (the blob's
//                      overflow page, the table's leaf, page 1) as 6 pwrites (24-byte header,
//                      page), then fsync, on the JavaScript thread, over written space; without
//                      SQLite's CPU (b-tree, VFS, locks) and its inline checkpoints. FULL /
//                      raw-1-sqlio is SQLite's overhead over its own I/O; raw-1-sync /
//                      raw-1-sqlio what walnut's I/O (one frame, fdatasync) saves
// Measured per case and round: commits/s, commit latency p50/p99 (a raw batch's latency for the
// raw loops), event-loop delay p99 over a 1 ms timer (monitorEventLoopDelay; the idle case is
// the same timer with nothing running: this shared VM's own floor), the main thread's garbage
// collection time per second and its pauses over 1 ms per second (V8's 'gc' entries: the loop
// waits through each), and CPU time of the
// JavaScript thread per batch (Linux schedstat of the main thread; includes the system calls
// made on it, not the I/O threads' work), and CPU time of the whole process (every thread) per
// commit. The lane cases also report batches and commits per fdatasync (every store's committer)
// and the lane's members per batch.
// WALNUT_BENCH_ONLY=<regex> runs only the cases it matches (plus the idle timer).
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { monitorEventLoopDelay, PerformanceObserver } = require('node:perf_hooks');
const Database = require('better-sqlite3');
const { open, WalnutFile } = require('../dist/index.js');
const { nativeHandleOf } = require('../dist/io/file.js');
const { nativeFrames } = require('../dist/native.js');
const { Histogram } = require('../dist/telemetry/histogram.js');
const { drive } = require('./harness');

const SECONDS = Number(process.env.WALNUT_BENCH_SECONDS || 1);
const ROUNDS = Number(process.env.WALNUT_BENCH_ROUNDS || 6);
const PAGE = 4096;
const FRAME = 24 + PAGE;
const BATCH = 64;
const AUTO_CHECKPOINT = 1000; // walnut's default, frames
const RAW_SPAN = 8 << 20; // raw loops wrap here, like a WAL that restarts
const GROWTH_CHUNK = 1 << 20; // zeros after an append that extends the WAL (lib/wal/wal-file.ts)
const ZERO_AHEAD = 8 << 20; // WalFile's zero-ahead: zeros kept past the last frame (lib/wal/wal-file.ts)
const ZERO_AHEAD_LOW = 4 << 20; // ... refilled when less than this is left

function optional(name) {
  try {
    return require(name);
  } catch {
    return null;
  }
}

/** CPU time of this process's main (JavaScript) thread in µs; null where schedstat is missing. */
function jsThreadCpuUs() {
  try {
    return Number(fs.readFileSync(`/proc/${process.pid}/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]) / 1000;
  } catch {
    return null;
  }
}

function driveSync(seconds, op) {
  const hist = new Histogram();
  const deadline = performance.now() + seconds * 1000;
  let ops = 0;
  const t0 = performance.now();
  for (let i = 0; performance.now() < deadline; i++) {
    const s = performance.now();
    op(i);
    hist.record((performance.now() - s) * 1000);
    ops++;
  }
  return { perSecond: ops / ((performance.now() - t0) / 1000), p50: hist.percentile(50), p99: hist.percentile(99) };
}

/** A file of `bytes` written zeros, synced: the raw loops overwrite written space. */
function prefill(file, bytes) {
  const fd = fs.openSync(file, 'w');
  const zeros = Buffer.alloc(1 << 20);
  for (let at = 0; at < bytes; at += zeros.length) fs.writeSync(fd, zeros, 0, zeros.length, at);
  fs.fsyncSync(fd);
  fs.closeSync(fd);
}

/**
 * A group commit on fs.promises: queue; one writev + datasync per batch, each batch taken after
 * a setImmediate, so that every committer the last batch resolved has queued again (coalescing).
 */
function fsGroupCommitter(fh, counters, wrap = RAW_SPAN) {
  let queue = [];
  let running = false;
  let offset = 0;
  async function loop() {
    running = true;
    await new Promise((resolve) => setImmediate(resolve));
    while (queue.length) {
      const batch = queue;
      queue = [];
      counters.batches++;
      const bufs = batch.map((b) => b.data);
      await fh.writev(bufs, offset);
      offset += bufs.length * PAGE;
      if (wrap !== 0) offset %= wrap;
      await fh.datasync();
      for (const b of batch) b.resolve();
      await new Promise((resolve) => setImmediate(resolve));
    }
    running = false;
  }
  return (data) =>
    new Promise((resolve) => {
      queue.push({ data, resolve });
      if (!running) loop();
    });
}

function walnutCase(dir, name, committers, options, build = null) {
  return async () => {
    const store = await (build ?? { open }).open(path.join(dir, `${name}.db`), options);
    const data = Buffer.alloc(PAGE, 0x5a);
    return {
      committers,
      commitOnce: (w, i) => store.commit([{ pgno: 2 + ((w * 7919 + i) % 5000), data }]),
      batches: () => store.metrics().batches,
      close: () => store.close(),
    };
  };
}

/**
 * `workers` worker_threads (bench/commit-worker.js), each with its own store on one database and
 * `committers` committers; shareLane as given. One round: every worker drives for `seconds`.
 */
function workersCase(dir, name, workers, committers, shareLane) {
  return async () => {
    const { Worker } = require('node:worker_threads');
    const db = path.join(dir, `${name}.db`);
    const ws = [];
    for (let w = 0; w < workers; w++) {
      const worker = new Worker(path.join(__dirname, 'commit-worker.js'), { workerData: { db, w, committers, shareLane } });
      await new Promise((resolve, reject) => worker.once('message', (m) => (m === 'ready' ? resolve() : reject(new Error(m.error)))));
      ws.push(worker);
    }
    const counters = { batches: 0, fsyncs: 0, commits: 0, lane: null };
    return {
      committers: workers * committers,
      run: async (seconds) => {
        const replies = await Promise.all(ws.map((worker) => new Promise((resolve) => {
          worker.once('message', resolve);
          worker.postMessage({ seconds });
        })));
        let commits = 0;
        for (const r of replies) {
          if (r.error) throw new Error(r.error);
          commits += r.commits;
          counters.batches += r.batches;
          counters.fsyncs += r.fsyncs;
          if (r.lane?.leader) counters.lane = r.lane;
        }
        counters.commits += commits;
        const sorted = (k) => replies.map((r) => r[k]).sort((a, b) => a - b);
        return { perSecond: commits / seconds, p50: sorted('p50')[replies.length >> 1], p99: sorted('p99')[replies.length - 1] };
      },
      batches: () => counters.batches,
      counters,
      close: () => Promise.all(ws.map((worker) => new Promise((resolve) => {
        worker.once('exit', resolve);
        worker.postMessage('close');
      }))),
    };
  };
}

function sqliteCase(dir, mode) {
  return async () => {
    const db = new Database(path.join(dir, `sqlite-${mode}.db`));
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${mode}`);
    db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)');
    const ins = db.prepare('INSERT INTO t(v) VALUES (?)');
    const data = Buffer.alloc(PAGE, 0x5a);
    let n = 0;
    return { sync: true, commitOnce: () => (ins.run(data), n++), batches: () => n, close: () => db.close() };
  };
}

/**
 * The raw loop of `batch` frames per write; with `checkpointEvery` batches, plus a checkpoint's
 * page copies and db fsync.
 */
function rawCase(dir, name, checkpointEvery, grow = false, batch = BATCH, restartOnly = false, zeroAhead = false, restartHeader = false, overlapped = false) {
  return async () => {
    const walPath = path.join(dir, `${name}.wal`);
    if (grow) fs.writeFileSync(walPath, Buffer.alloc(32));
    else prefill(walPath, 2 * RAW_SPAN);
    const wal = await WalnutFile.open(walPath);
    const zeroer = zeroAhead ? await WalnutFile.open(walPath) : null;
    const walHeader = Buffer.alloc(32, 0x37);
    let zeroing = null;
    const zeros = Buffer.alloc(GROWTH_CHUNK);
    let size = 32;
    const frames = [];
    const data = Buffer.alloc(PAGE, 0x5a);
    for (let i = 0; i < batch; i++) frames.push(Buffer.alloc(24, i), data);
    let db = null;
    let dbBeside = null; // overlapped: the database on fs.promises (libuv's pool), beside the WAL's I/O thread
    let checkpointing = null;
    const run16 = Array.from({ length: 16 }, () => data);
    const run1 = [data];
    if (checkpointEvery) {
      const dbPath = path.join(dir, `${name}.db`);
      prefill(dbPath, 5002 * PAGE);
      if (overlapped) dbBeside = await fs.promises.open(dbPath, 'r+');
      else db = await WalnutFile.open(dbPath);
    }
    let off = 32;
    let n = 0;
    return {
      committers: 1,
      scale: batch,
      commitOnce: async () => {
        const end = off + batch * FRAME;
        const growing = grow && end > size;
        await wal.writev(growing ? [...frames, zeros] : frames, off, 'data');
        if (growing) size = end + GROWTH_CHUNK;
        off = end;
        if (zeroer !== null && zeroing === null && size - end < ZERO_AHEAD_LOW) {
          // WalFile.zeroAhead's rule, on the background descriptor: 8 MiB of zeros past the end
          zeroing = nativeFrames.zeroAhead(nativeHandleOf(wal), nativeHandleOf(zeroer), end, end + ZERO_AHEAD).then((s) => {
            size = Math.max(size, s);
            zeroing = null;
          });
        }
        if (!grow && off + batch * FRAME > RAW_SPAN) off = 32;
        if (++n % checkpointEvery === 0 && dbBeside !== null) {
          // the same disk work while the loop goes on appending; the loop waits only when the
          // previous one still runs as the next is due (walnut's rule: a WAL never runs ahead of
          // two intervals); the restart's own wait for its last frames is not modelled
          await checkpointing;
          checkpointing = (async () => {
            const writes = [];
            for (let r = 0; r < BATCH; r++) writes.push(dbBeside.writev(run16, (1 + ((r * 7919 + n) % 4986)) * PAGE));
            await Promise.all(writes);
            await dbBeside.sync();
          })();
        } else if (n % checkpointEvery === 0 && db !== null) {
          const writes = [];
          for (let r = 0; r < BATCH; r++) writes.push(db.writev(restartOnly ? run1 : run16, (1 + ((r * 7919 + n) % 4986)) * PAGE));
          await Promise.all(writes);
          await db.fsync();
          if (restartHeader) await wal.writev([walHeader], 0, 'data'); // a new WAL header, synced before the next frame
        }
      },
      batches: () => n,
      close: async () => {
        await zeroing;
        await zeroer?.close();
        await wal.close();
        await db?.close();
        await checkpointing;
        await dbBeside?.close();
      },
    };
  };
}

/**
 * The database pages one committer of this workload wrote in batches [from, to): committer w's
 * i-th commit writes page 2 + ((w * 7919 + i) % 5000) (walnutCase), so each committer's pages of
 * consecutive batches are adjacent; a checkpoint of those batches writes one run per committer
 * (split where a run passes page 5001). Returned as [first page, pages] pairs.
 */
function committerRuns(from, to) {
  const runs = [];
  for (let w = 0; w < BATCH; w++) {
    let first = (w * 7919 + from) % 5000;
    let left = to - from;
    while (left > 0) {
      const count = Math.min(left, 5000 - first);
      runs.push([2 + first, count]);
      left -= count;
      first = 0;
    }
  }
  return runs;
}

/**
 * raw-64-ckpt-bg-restart: the physical bound of a WAL that checkpoints in the background and
 * restarts, at 64 committers (issue #19). raw-64-ckpt-bg's loop (64 frames pwritev + fdatasync
 * per batch on walnut's I/O thread, the checkpoint's disk work on fs.promises beside it) with
 * SQLite's restart rule kept, as walnut's auto-checkpoint keeps it (commit/auto-checkpoint.ts),
 * and nothing of walnut's code:
 *  - once a batch leaves >= AUTO_CHECKPOINT frames and none runs, a background checkpoint of
 *    every frame so far starts (one pwritev per committer's run of adjacent pages, all submitted
 *    at once, then the database's fdatasync); batches go on appending meanwhile;
 *  - once it is done, the next batch must restart the WAL, and may only when every frame is in
 *    the database, synced: it waits for the pages of the batches appended meanwhile (again one
 *    run per committer) and a second fdatasync, then writes from the start of the file again;
 *  - a batch that would take the WAL to twice the threshold waits for the running checkpoint
 *    first (then copies the rest the same way);
 *  - the WAL wraps into the same prefilled file (walnut reuses its WAL file): no growth.
 * With `header` (raw-64-ckpt-bg-restart-hdr) the restart also writes the new 32-byte WAL header
 * and fdatasyncs it before the batch's frames, as SQLite's protocol requires in FULL (bench/README
 * "#19 session 15": folding it into the frames' sync is unsafe) and walnut does. As optimistic as
 * raw-64-ckpt-bg otherwise: no WAL reads for the copy, no locks, no index.
 * Counters (bench/README "Session 28"): restarts, restarts that waited for a running checkpoint,
 * batches copied per restart, microseconds the restart batches waited.
 */
function rawRestartCase(dir, name, header) {
  return async () => {
    const walPath = path.join(dir, `${name}.wal`);
    prefill(walPath, 2 * RAW_SPAN);
    const wal = await WalnutFile.open(walPath);
    const dbPath = path.join(dir, `${name}.db`);
    prefill(dbPath, 5002 * PAGE);
    const db = await fs.promises.open(dbPath, 'r+');
    const data = Buffer.alloc(PAGE, 0x5a);
    const frames = [];
    for (let i = 0; i < BATCH; i++) frames.push(Buffer.alloc(24, i), data);
    const walHeader = Buffer.alloc(32, 0x37);
    const runBuffers = []; // runBuffers[k]: k references to the page, one pwritev of k pages
    const copy = async (from, to) => {
      const writes = [];
      for (const [pgno, count] of committerRuns(from, to)) {
        while (runBuffers.length <= count) runBuffers.push(Array.from({ length: runBuffers.length }, () => data));
        writes.push(db.writev(runBuffers[count], (pgno - 1) * PAGE));
      }
      await Promise.all(writes);
      await db.datasync();
    };
    const counters = { restarts: 0, waitedForRunning: 0, caughtUpBatches: 0, restartWaitUs: 0 };
    let n = 0; // batches so far
    let generationStart = 0; // batch at which this WAL generation began (frame 1)
    let copied = -1; // the background checkpoint copied batches [generationStart, copied); -1: none done
    let checkpointing = null;
    let off = 32;
    return {
      committers: 1,
      scale: BATCH,
      restarts: counters,
      commitOnce: async () => {
        const walFrames = (n - generationStart) * BATCH;
        const bound = walFrames + BATCH >= 2 * AUTO_CHECKPOINT;
        if (walFrames >= AUTO_CHECKPOINT && (copied >= 0 || (checkpointing !== null && bound))) {
          // this batch restarts the WAL: every frame in the database, synced, first
          const t0 = performance.now();
          if (checkpointing !== null) {
            counters.waitedForRunning++;
            await checkpointing;
          }
          if (copied < n) {
            counters.caughtUpBatches += n - copied;
            await copy(copied, n);
          }
          counters.restartWaitUs += (performance.now() - t0) * 1000;
          counters.restarts++;
          generationStart = n;
          copied = -1;
          off = 32;
          if (header) await wal.writev([walHeader], 0, 'data');
        }
        await wal.writev(frames, off, 'data');
        off += BATCH * FRAME;
        n++;
        if (checkpointing === null && copied < 0 && (n - generationStart) * BATCH >= AUTO_CHECKPOINT) {
          const from = generationStart;
          const to = n;
          checkpointing = copy(from, to).then(() => {
            copied = to;
            checkpointing = null;
          });
        }
      },
      batches: () => n,
      close: async () => {
        await checkpointing;
        await wal.close();
        await db.close();
      },
    };
  };
}

/**
 * raw-1-sync: one frame writevSync + fdatasyncSync per commit on the JavaScript thread (as
 * better-sqlite3 writes), over written space. With `checkpoint` (raw-1-sync-ckpt), every
 * AUTO_CHECKPOINT commits the checkpoint's disk work for a lone committer of this workload, on
 * the same thread (as SQLite checkpoints): the distinct pages of those commits written to the
 * database (one pwrite each: walnut-1's pages 2..5001 in its pattern are rarely adjacent), its
 * fdatasync, and the restart's new WAL header written and fdatasynced.
 */
function rawSyncCase(dir, name, checkpoint) {
  return async () => {
    const file = path.join(dir, `${name}.wal`);
    prefill(file, RAW_SPAN);
    const fd = fs.openSync(file, 'r+');
    const frame = [Buffer.alloc(24, 1), Buffer.alloc(PAGE, 0x5a)];
    let dbFd = null;
    if (checkpoint) {
      const dbFile = path.join(dir, `${name}.db`);
      prefill(dbFile, 5002 * PAGE);
      dbFd = fs.openSync(dbFile, 'r+');
    }
    const page = Buffer.alloc(PAGE, 0x5a);
    const walHeader = Buffer.alloc(32, 0x37);
    const dirty = new Set();
    let off = 32;
    let i = 0;
    return {
      sync: true,
      commitOnce: () => {
        fs.writevSync(fd, frame, off);
        fs.fdatasyncSync(fd);
        off = off + 2 * FRAME > RAW_SPAN ? 32 : off + FRAME;
        if (dbFd === null) return;
        dirty.add(2 + ((i * 7919) % 5000));
        if (++i % AUTO_CHECKPOINT !== 0) return;
        for (const pgno of dirty) fs.writeSync(dbFd, page, 0, PAGE, (pgno - 1) * PAGE);
        fs.fdatasyncSync(dbFd);
        dirty.clear();
        fs.writeSync(fd, walHeader, 0, 32, 0);
        fs.fdatasyncSync(fd);
        off = 32;
      },
      close: () => {
        fs.closeSync(fd);
        if (dbFd !== null) fs.closeSync(dbFd);
      },
    };
  };
}

async function run() {
  const dir = fs.mkdtempSync(path.join(process.env.WALNUT_BENCH_DIR || os.tmpdir(), 'walnut-bench-commit-'));
  const lmdb = optional('lmdb');
  const cases = {
    'walnut-64': walnutCase(dir, 'w64', 64, {}),
    'walnut-64-noac': walnutCase(dir, 'w64n', 64, { autoCheckpoint: false }),
    'walnut-64-noac-za': walnutCase(dir, 'w64nza', 64, { autoCheckpoint: false, zeroAhead: true }),
    'walnut-1': walnutCase(dir, 'w1', 1, {}),
    'walnut-1-noac': walnutCase(dir, 'w1n', 1, { autoCheckpoint: false }),
    ...(process.env.WALNUT_BENCH_BASELINE ? {
      'walnut-1-baseline': walnutCase(dir, 'w1base', 1, {}, require(path.resolve(process.env.WALNUT_BENCH_BASELINE, 'index.js'))),
      'walnut-64-baseline': walnutCase(dir, 'w64base', 64, {}, require(path.resolve(process.env.WALNUT_BENCH_BASELINE, 'index.js'))),
    } : {}),
    'walnut-64-normal': walnutCase(dir, 'w64normal', 64, { synchronous: 'normal' }),
    'sqlite-full-1': sqliteCase(dir, 'FULL'),
    'sqlite-normal-1': sqliteCase(dir, 'NORMAL'),
    ...(lmdb === null ? {} : {
      'lmdb-64': async () => {
        const db = lmdb.open({ path: path.join(dir, 'lmdb'), noSync: false, encoding: 'binary' });
        const data = Buffer.alloc(PAGE, 0x5a);
        return { committers: 64, commitOnce: (w, i) => db.put(`k${w}-${i % 5000}`, data), close: () => db.close() };
      },
    }),
    'fsgc-64': async () => {
      const file = path.join(dir, 'fsgc.bin');
      prefill(file, 2 * RAW_SPAN);
      const fh = await fs.promises.open(file, 'r+');
      const counters = { batches: 0 };
      const commit = fsGroupCommitter(fh, counters);
      const data = Buffer.alloc(PAGE, 0x5a);
      return { committers: 64, commitOnce: () => commit(data), batches: () => counters.batches, close: () => fh.close() };
    },
    'fsgc-64-grow': async () => {
      const file = path.join(dir, 'fsgcgrow.bin');
      const fh = await fs.promises.open(file, 'w+');
      const counters = { batches: 0 };
      const commit = fsGroupCommitter(fh, counters, 0);
      const data = Buffer.alloc(PAGE, 0x5a);
      return { committers: 64, commitOnce: () => commit(data), batches: () => counters.batches, close: () => fh.close() };
    },
    'lane-4x16': workersCase(dir, 'lane4', 4, 16, true),
    'lane-8x8': workersCase(dir, 'lane8', 8, 8, true),
    'lane-1x64': workersCase(dir, 'lane1', 1, 64, true),
    'own-4x16': workersCase(dir, 'own4', 4, 16, false),
    'own-8x8': workersCase(dir, 'own8', 8, 8, false),
    'raw-64': rawCase(dir, 'raw', 0),
    'raw-64-grow': rawCase(dir, 'rawgrow', 0, true),
    'raw-64-za': rawCase(dir, 'rawza', 0, true, BATCH, false, true),
    'raw-64-ckpt': rawCase(dir, 'rawckpt', Math.round(AUTO_CHECKPOINT / BATCH)),
    'raw-64-restart': rawCase(dir, 'rawrestart', Math.round(AUTO_CHECKPOINT / BATCH), false, BATCH, true),
    'raw-64-ckpt-bg': rawCase(dir, 'rawckptbg', Math.round(AUTO_CHECKPOINT / BATCH), false, BATCH, false, false, false, true),
    'raw-64-ckpt-bg-restart': rawRestartCase(dir, 'rawbgrestart', false),
    'raw-64-ckpt-bg-restart-hdr': rawRestartCase(dir, 'rawbgrestarthdr', true),
    'raw-64-ckpt-hdr': rawCase(dir, 'rawckpthdr', Math.round(AUTO_CHECKPOINT / BATCH), false, BATCH, false, false, true),
    'raw-64-restart-hdr': rawCase(dir, 'rawrestarthdr', Math.round(AUTO_CHECKPOINT / BATCH), false, BATCH, true, false, true),
    'raw-1': rawCase(dir, 'raw1', 0, false, 1),
    'raw-1-sync': rawSyncCase(dir, 'raw1sync', false),
    'raw-1-sync-ckpt': rawSyncCase(dir, 'raw1ckpt', true),
    'raw-1-sqlio': async () => {
      const file = path.join(dir, 'raw1sqlio.wal');
      prefill(file, RAW_SPAN);
      const fd = fs.openSync(file, 'r+');
      const header = Buffer.alloc(24, 1);
      const page = Buffer.alloc(PAGE, 0x5a);
      let off = 32;
      return {
        sync: true,
        commitOnce: () => {
          for (let f = 0; f < 3; f++) {
            fs.writeSync(fd, header, 0, 24, off);
            fs.writeSync(fd, page, 0, PAGE, off + 24);
            off += FRAME;
          }
          fs.fsyncSync(fd);
          if (off + 3 * FRAME > RAW_SPAN) off = 32;
        },
        close: () => fs.closeSync(fd),
      };
    },
    idle: async () => ({ idle: true, close: () => undefined }),
  };
  const only = process.env.WALNUT_BENCH_ONLY ? new RegExp(process.env.WALNUT_BENCH_ONLY) : null;
  const names = Object.keys(cases).filter((n) => only === null || n === 'idle' || only.test(n));
  const inst = {};
  for (const n of names) inst[n] = await cases[n]();
  // warm-up, not recorded: files grown, WALs started, code compiled
  for (const n of names) if (!inst[n].idle) await (inst[n].run ? inst[n].run(0.2) : inst[n].sync ? driveSync(0.2, inst[n].commitOnce) : drive(inst[n].committers, 0.2, inst[n].commitOnce));
  const res = Object.fromEntries(names.map((n) => [n, []]));
  // the main thread's garbage collections (V8's pauses: the event loop waits through each), to
  // tell what of the loop delay is the collector's: a case's promises and objects per commit
  const gcs = [];
  const gcObserver = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcs.push({ at: e.startTime, ms: e.duration });
  });
  gcObserver.observe({ entryTypes: ['gc'] });
  for (let r = 0; r < ROUNDS; r++) {
    const order = names.slice(r % names.length).concat(names.slice(0, r % names.length));
    for (const n of order) {
      const c = inst[n];
      const loop = monitorEventLoopDelay({ resolution: 1 });
      const b0 = c.batches ? c.batches() : 0;
      const cpu0 = jsThreadCpuUs();
      const proc0 = process.cpuUsage();
      const t0 = performance.now();
      loop.enable();
      let x;
      if (c.idle) {
        await new Promise((resolve) => setTimeout(resolve, SECONDS * 1000));
        x = { perSecond: 0, p50: 0, p99: 0 };
      } else {
        x = c.run ? await c.run(SECONDS) : c.sync ? driveSync(SECONDS, c.commitOnce) : await drive(c.committers, SECONDS, c.commitOnce);
      }
      loop.disable();
      const t1 = performance.now();
      await new Promise((resolve) => setImmediate(resolve)); // the observer hears the round's last collections
      const roundGcs = gcs.filter((g) => g.at >= t0 && g.at < t1);
      const cpu1 = jsThreadCpuUs();
      const proc = process.cpuUsage(proc0);
      const batches = c.batches ? c.batches() - b0 : 0;
      res[n].push({
        perSecond: x.perSecond * (c.scale ?? 1),
        p50: x.p50,
        p99: x.p99,
        loopP99Ms: Math.max(0, loop.percentile(99) / 1e6 - 1),
        gcMsPerS: roundGcs.reduce((sum, g) => sum + g.ms, 0) / ((t1 - t0) / 1000),
        gcOver1MsPerS: roundGcs.filter((g) => g.ms > 1).length / ((t1 - t0) / 1000),
        jsUsPerBatch: cpu0 === null || batches === 0 || c.run ? null : (cpu1 - cpu0) / batches,
        cpuUsPerCommit: x.perSecond === 0 ? null : (proc.user + proc.system) / (x.perSecond * (c.scale ?? 1) * SECONDS),
      });
    }
  }
  gcObserver.disconnect();
  for (const n of names) await inst[n].close();
  fs.rmSync(dir, { recursive: true, force: true });
  const has = (n) => names.includes(n);

  const med = (a) => {
    const s = a.filter((v) => v !== null).sort((x, y) => x - y);
    return s.length === 0 ? null : s[Math.floor(s.length / 2)];
  };
  const spread = (a) => `${Math.min(...a).toFixed(2)}..${Math.max(...a).toFixed(2)}`;
  const col = (n, k) => res[n].map((x) => x[k]);
  const rows = names.filter((n) => n !== 'idle').map((n) => {
    const ps = col(n, 'perSecond');
    const js = med(col(n, 'jsUsPerBatch'));
    return {
      case: n,
      'commits/s': Math.round(med(ps)),
      'min..max': `${Math.round(Math.min(...ps))}..${Math.round(Math.max(...ps))}`,
      'p50 µs': Math.round(med(col(n, 'p50'))),
      'p99 µs': Math.round(med(col(n, 'p99'))),
      'JS µs/batch': js === null ? '' : Math.round(js),
      'loop p99 ms': med(col(n, 'loopP99Ms')).toFixed(2),
      'GC ms/s (>1 ms)': `${med(col(n, 'gcMsPerS')).toFixed(1)} (${Math.round(med(col(n, 'gcOver1MsPerS')))})`,
      'CPU µs/commit': Math.round(med(col(n, 'cpuUsPerCommit'))),
    };
  });
  // worker cases: batches and commits per fdatasync, and how many stores' commits a lane batch carried
  for (const n of names) {
    const k = inst[n].counters;
    if (k === undefined) continue;
    const row = rows.find((r) => r.case === n);
    row['batches/fsync'] = k.fsyncs === 0 ? '' : (k.batches / k.fsyncs).toFixed(2);
    row['commits/fsync'] = k.fsyncs === 0 ? '' : (k.commits / k.fsyncs).toFixed(1);
    row['stores/batch'] = k.lane === null ? '' : k.lane.membersPerBatch.toFixed(2);
    // threads the lane woke and members' published turns, per lane batch (whole run; builds before these counters: blank)
    row['wakes/batch'] = k.lane?.wakeups === undefined || k.lane.batches === 0 ? '' : (k.lane.wakeups / k.lane.batches).toFixed(2);
    row['publishes/batch'] = k.lane?.publishes === undefined || k.lane.batches === 0 ? '' : (k.lane.publishes / k.lane.batches).toFixed(2);
  }
  /** Median and spread of the per-round ratio a/b of field k (perSecond unless named). */
  const ratio = (a, b, k = 'perSecond') => {
    if (!res[a] || !res[b]) return null;
    const rs = res[a].map((x, i) => x[k] / res[b][i][k]);
    return { median: med(rs), spread: spread(rs) };
  };
  /** The restart peers' counters over the whole run (warm-up included): restarts, batches per WAL generation, what the restart batches waited for. */
  const describeRestarts = (n) => {
    const k = inst[n].restarts;
    const b = inst[n].batches();
    return `${n}: ${k.restarts} restarts, ${(b / Math.max(1, k.restarts)).toFixed(1)} batches per generation, ${(k.caughtUpBatches / Math.max(1, k.restarts)).toFixed(2)} batches copied by the restart batch, ${k.waitedForRunning} waited for a running checkpoint, wait ${Math.round(k.restartWaitUs / Math.max(1, k.restarts))} µs per restart`;
  };
  const goal = (label, r, want, atLeast = true) => {
    if (r === null) return `${label}: not measured`;
    const ok = atLeast ? r.median >= want : r.median <= want;
    return `${label}: ${r.median.toFixed(2)}x [${r.spread}] (goal ${atLeast ? '>=' : '<='} ${want}x ${ok ? '✔' : '✘'})`;
  };
  const notes = [
    `${ROUNDS} rounds x ${SECONDS} s per case, interleaved; medians of per-round ratios [spread]`,
    ...(has('lane-4x16') ? [
      goal('lane-4x16 / lane-1x64', ratio('lane-4x16', 'lane-1x64'), 0.9),
      goal('lane-4x16 / own-4x16 (today\'s design)', ratio('lane-4x16', 'own-4x16'), 2),
      goal('lane-8x8 / lane-1x64', ratio('lane-8x8', 'lane-1x64'), 0.9),
      goal('lane-8x8 / own-8x8 (today\'s design)', ratio('lane-8x8', 'own-8x8'), 2),
    ] : []),
    ...(has('walnut-64') && has('raw-64') && has('raw-64-ckpt') ? [
      goal('walnut-64 / raw-64-ckpt', ratio('walnut-64', 'raw-64-ckpt'), 0.85),
      goal('walnut-64 / better-sqlite3 FULL', ratio('walnut-64', 'sqlite-full-1'), 25),
      goal('walnut-64 commit p99 / raw-64 batch p99', ratio('walnut-64', 'raw-64', 'p99'), 2.5, false),
      goal('walnut-64-normal / better-sqlite3 NORMAL', ratio('walnut-64-normal', 'sqlite-normal-1'), 3),
      res['lmdb-64'] ? `walnut-64 / lmdb-js durable puts: ${ratio('walnut-64', 'lmdb-64').median.toFixed(2)}x [${ratio('walnut-64', 'lmdb-64').spread}]` : 'lmdb-js: not installed',
      `raw-64-ckpt / raw-64 (what checkpointing costs the disk): ${ratio('raw-64-ckpt', 'raw-64').median.toFixed(2)}x [${ratio('raw-64-ckpt', 'raw-64').spread}]`,
      // what bounds each goal on this disk, measured in the same rounds
      ...(has('sqlite-full-1') ? [`bound of the 25x goal: raw-64-ckpt / better-sqlite3 FULL ${ratio('raw-64-ckpt', 'sqlite-full-1').median.toFixed(2)}x [${ratio('raw-64-ckpt', 'sqlite-full-1').spread}] (walnut-64 at 0.85x of its bound reaches 25x only where this is >= 29x)`] : []),
      ...(has('raw-64-ckpt-bg') ? [`the checkpoint overlapped (raw-64-ckpt-bg): / raw-64 ${ratio('raw-64-ckpt-bg', 'raw-64').median.toFixed(2)}x [${ratio('raw-64-ckpt-bg', 'raw-64').spread}], / raw-64-ckpt ${ratio('raw-64-ckpt-bg', 'raw-64-ckpt').median.toFixed(2)}x [${ratio('raw-64-ckpt-bg', 'raw-64-ckpt').spread}]${has('sqlite-full-1') ? `, / better-sqlite3 FULL ${ratio('raw-64-ckpt-bg', 'sqlite-full-1').median.toFixed(2)}x [${ratio('raw-64-ckpt-bg', 'sqlite-full-1').spread}]` : ''}; walnut-64 / raw-64-ckpt-bg ${ratio('walnut-64', 'raw-64-ckpt-bg').median.toFixed(2)}x [${ratio('walnut-64', 'raw-64-ckpt-bg').spread}]`] : []),
      ...(['raw-64-ckpt-bg-restart', 'sqlite-full-1'].every(has) ? [`the bound of a WAL that checkpoints and restarts (raw-64-ckpt-bg-restart): / better-sqlite3 FULL ${ratio('raw-64-ckpt-bg-restart', 'sqlite-full-1').median.toFixed(2)}x [${ratio('raw-64-ckpt-bg-restart', 'sqlite-full-1').spread}] (the 25x goal's bound); walnut-64 / raw-64-ckpt-bg-restart ${ratio('walnut-64', 'raw-64-ckpt-bg-restart').median.toFixed(2)}x [${ratio('walnut-64', 'raw-64-ckpt-bg-restart').spread}]${has('raw-64-ckpt-bg') ? `; raw-64-ckpt-bg-restart / raw-64-ckpt-bg ${ratio('raw-64-ckpt-bg-restart', 'raw-64-ckpt-bg').median.toFixed(2)}x [${ratio('raw-64-ckpt-bg-restart', 'raw-64-ckpt-bg').spread}]` : ''}; ${describeRestarts('raw-64-ckpt-bg-restart')}`] : []),
      ...(['raw-64-ckpt-bg-restart-hdr', 'sqlite-full-1'].every(has) ? [`with the restart's header sync (raw-64-ckpt-bg-restart-hdr): / better-sqlite3 FULL ${ratio('raw-64-ckpt-bg-restart-hdr', 'sqlite-full-1').median.toFixed(2)}x [${ratio('raw-64-ckpt-bg-restart-hdr', 'sqlite-full-1').spread}]; walnut-64 / raw-64-ckpt-bg-restart-hdr ${ratio('walnut-64', 'raw-64-ckpt-bg-restart-hdr').median.toFixed(2)}x [${ratio('walnut-64', 'raw-64-ckpt-bg-restart-hdr').spread}]; ${describeRestarts('raw-64-ckpt-bg-restart-hdr')}`] : []),
      `bound of the p99 goal: raw-64-ckpt batch p99 / raw-64 batch p99 ${ratio('raw-64-ckpt', 'raw-64', 'p99').median.toFixed(2)}x [${ratio('raw-64-ckpt', 'raw-64', 'p99').spread}] (the inline checkpoint's batch is 1 in 16)`,
      ...(has('raw-64-restart') ? [`floor of the p99 goal (a restart's least wait, 1 batch in 16): raw-64-restart p99 / raw-64 p99 ${ratio('raw-64-restart', 'raw-64', 'p99').median.toFixed(2)}x [${ratio('raw-64-restart', 'raw-64', 'p99').spread}]; walnut-64 p99 / raw-64-restart p99 ${ratio('walnut-64', 'raw-64-restart', 'p99').median.toFixed(2)}x [${ratio('walnut-64', 'raw-64-restart', 'p99').spread}]`] : []),
      ...(has('raw-64-ckpt-hdr') ? [`raw + checkpoint + the restart's header sync: raw-64-ckpt-hdr / raw-64-ckpt ${ratio('raw-64-ckpt-hdr', 'raw-64-ckpt').median.toFixed(2)}x [${ratio('raw-64-ckpt-hdr', 'raw-64-ckpt').spread}]; walnut-64 / raw-64-ckpt-hdr ${ratio('walnut-64', 'raw-64-ckpt-hdr').median.toFixed(2)}x [${ratio('walnut-64', 'raw-64-ckpt-hdr').spread}]`] : []),
      ...(has('raw-64-restart-hdr') && has('raw-64-restart') ? [`the restart's header sync (raw-64-restart-hdr): p99 / raw-64 p99 ${ratio('raw-64-restart-hdr', 'raw-64', 'p99').median.toFixed(2)}x [${ratio('raw-64-restart-hdr', 'raw-64', 'p99').spread}], / raw-64-restart p99 ${ratio('raw-64-restart-hdr', 'raw-64-restart', 'p99').median.toFixed(2)}x [${ratio('raw-64-restart-hdr', 'raw-64-restart', 'p99').spread}]; walnut-64 p99 / raw-64-restart-hdr p99 ${ratio('walnut-64', 'raw-64-restart-hdr', 'p99').median.toFixed(2)}x [${ratio('walnut-64', 'raw-64-restart-hdr', 'p99').spread}]`] : []),
      `event-loop delay p99 over a 1 ms timer, walnut-64: ${med(col('walnut-64', 'loopP99Ms')).toFixed(2)} ms${has('walnut-64-noac') ? `, walnut-64-noac: ${med(col('walnut-64-noac', 'loopP99Ms')).toFixed(2)} ms` : ''} (goal < 1 ms); the idle timer alone: ${med(col('idle', 'loopP99Ms')).toFixed(2)} ms${has('fsgc-64') ? `; the fair fs.promises group commit (a promise per commit, no walnut): ${med(col('fsgc-64', 'loopP99Ms')).toFixed(2)} ms` : ''}; raw-64 (a promise per batch): ${med(col('raw-64', 'loopP99Ms')).toFixed(2)} ms; main-thread GC, ms per s (pauses > 1 ms per s): walnut-64 ${med(col('walnut-64', 'gcMsPerS')).toFixed(1)} (${Math.round(med(col('walnut-64', 'gcOver1MsPerS')))})${has('fsgc-64') ? `, fsgc-64 ${med(col('fsgc-64', 'gcMsPerS')).toFixed(1)} (${Math.round(med(col('fsgc-64', 'gcOver1MsPerS')))})` : ''}, raw-64 ${med(col('raw-64', 'gcMsPerS')).toFixed(1)} (${Math.round(med(col('raw-64', 'gcOver1MsPerS')))})`,
    ] : []),
    ...(has('walnut-64-noac') && has('raw-64') ? [
      goal('walnut-64-noac / raw-64', ratio('walnut-64-noac', 'raw-64'), 0.95),
      goal('walnut-64-noac / fair fs.promises group commit', ratio('walnut-64-noac', 'fsgc-64'), 1.5),
      ...(has('raw-64-grow') ? [`walnut-64-noac / raw-64-grow (a WAL growing by appends, no zero-ahead): ${ratio('walnut-64-noac', 'raw-64-grow').median.toFixed(2)}x [${ratio('walnut-64-noac', 'raw-64-grow').spread}]; raw-64-grow / raw-64: ${ratio('raw-64-grow', 'raw-64').median.toFixed(2)}x [${ratio('raw-64-grow', 'raw-64').spread}]`] : []),
      ...(has('raw-64-za') ? [`raw-64-za (appends into zeros the background lane writes ahead) / raw-64: ${ratio('raw-64-za', 'raw-64').median.toFixed(2)}x [${ratio('raw-64-za', 'raw-64').spread}]${has('raw-64-grow') ? `; / raw-64-grow ${ratio('raw-64-za', 'raw-64-grow').median.toFixed(2)}x [${ratio('raw-64-za', 'raw-64-grow').spread}]` : ''}`] : []),
      ...(has('walnut-64-noac-za') ? [`walnut-64-noac-za (zeroAhead: true) / walnut-64-noac: ${ratio('walnut-64-noac-za', 'walnut-64-noac').median.toFixed(2)}x [${ratio('walnut-64-noac-za', 'walnut-64-noac').spread}]${has('raw-64-za') ? `; / raw-64-za ${ratio('walnut-64-noac-za', 'raw-64-za').median.toFixed(2)}x [${ratio('walnut-64-noac-za', 'raw-64-za').spread}]` : ''}; / raw-64 ${ratio('walnut-64-noac-za', 'raw-64').median.toFixed(2)}x [${ratio('walnut-64-noac-za', 'raw-64').spread}]`] : []),
      ...(has('fsgc-64-grow') ? [`walnut-64-noac / fsgc-64-grow (the same peer appending to a file that grows, as a WAL without checkpoints does): ${ratio('walnut-64-noac', 'fsgc-64-grow').median.toFixed(2)}x [${ratio('walnut-64-noac', 'fsgc-64-grow').spread}]${has('walnut-64-noac-za') ? `, zeroAhead ${ratio('walnut-64-noac-za', 'fsgc-64-grow').median.toFixed(2)}x [${ratio('walnut-64-noac-za', 'fsgc-64-grow').spread}]` : ''}`] : []),
      ...(has('fsgc-64') ? [`fsgc-64 / raw-64 (the peer overwrites an 8 MiB span of a prefilled file, as raw-64 does): ${ratio('fsgc-64', 'raw-64').median.toFixed(2)}x [${ratio('fsgc-64', 'raw-64').spread}]`] : []),
    ] : []),
    // the 1-committer goal and its bounds (runs alone too: WALNUT_BENCH_ONLY='^(walnut-1|raw-1.*|sqlite-full-1)$')
    ...(has('walnut-1') && has('sqlite-full-1') ? [goal('walnut-1 / better-sqlite3 FULL', ratio('walnut-1', 'sqlite-full-1'), 1.2)] : []),
    ...(['raw-1', 'raw-1-sync', 'walnut-1', 'sqlite-full-1'].every(has) ? [`bound of the 1-committer goal: raw-1 (I/O thread) / better-sqlite3 FULL ${ratio('raw-1', 'sqlite-full-1').median.toFixed(2)}x [${ratio('raw-1', 'sqlite-full-1').spread}], raw-1-sync (JS thread) ${ratio('raw-1-sync', 'sqlite-full-1').median.toFixed(2)}x [${ratio('raw-1-sync', 'sqlite-full-1').spread}]; walnut-1 / raw-1 ${ratio('walnut-1', 'raw-1').median.toFixed(2)}x, / raw-1-sync ${ratio('walnut-1', 'raw-1-sync').median.toFixed(2)}x`] : []),
    ...(['raw-1-sync-ckpt', 'raw-1-sync', 'walnut-1', 'sqlite-full-1'].every(has) ? [`bound with the checkpoint's disk work: raw-1-sync-ckpt / better-sqlite3 FULL ${ratio('raw-1-sync-ckpt', 'sqlite-full-1').median.toFixed(2)}x [${ratio('raw-1-sync-ckpt', 'sqlite-full-1').spread}], / raw-1-sync ${ratio('raw-1-sync-ckpt', 'raw-1-sync').median.toFixed(2)}x; walnut-1 / raw-1-sync-ckpt ${ratio('walnut-1', 'raw-1-sync-ckpt').median.toFixed(2)}x [${ratio('walnut-1', 'raw-1-sync-ckpt').spread}]`] : []),
    ...(has('walnut-1-noac') && has('walnut-1') ? [`walnut-1 / walnut-1-noac (what the auto-checkpoint costs a lone committer): ${ratio('walnut-1', 'walnut-1-noac').median.toFixed(2)}x [${ratio('walnut-1', 'walnut-1-noac').spread}]`] : []),
    ...(has('walnut-1-baseline') ? [`walnut-1 / walnut-1-baseline (WALNUT_BENCH_BASELINE's build): ${ratio('walnut-1', 'walnut-1-baseline').median.toFixed(2)}x [${ratio('walnut-1', 'walnut-1-baseline').spread}]; walnut-1-baseline / raw-1-sync ${ratio('walnut-1-baseline', 'raw-1-sync').median.toFixed(2)}x`] : []),
    ...(has('walnut-64-baseline') && has('walnut-64') ? [`walnut-64 / walnut-64-baseline: ${ratio('walnut-64', 'walnut-64-baseline').median.toFixed(2)}x [${ratio('walnut-64', 'walnut-64-baseline').spread}]`] : []),
    ...(['raw-1-sqlio', 'raw-1-sync', 'sqlite-full-1'].every(has) ? [`SQLite FULL's own I/O (3 frames, 6 pwrites, fsync): better-sqlite3 FULL / raw-1-sqlio ${ratio('sqlite-full-1', 'raw-1-sqlio').median.toFixed(2)}x [${ratio('sqlite-full-1', 'raw-1-sqlio').spread}]; raw-1-sync (walnut's I/O: 1 frame, fdatasync) / raw-1-sqlio ${ratio('raw-1-sync', 'raw-1-sqlio').median.toFixed(2)}x [${ratio('raw-1-sync', 'raw-1-sqlio').spread}]`] : []),
  ];
  return { rows, columns: ['case', 'commits/s', 'min..max', 'p50 µs', 'p99 µs', 'JS µs/batch', 'loop p99 ms', 'GC ms/s (>1 ms)', 'CPU µs/commit', 'batches/fsync', 'commits/fsync', 'stores/batch', 'wakes/batch', 'publishes/batch'], notes, rounds: res };
}

module.exports = { run, fsGroupCommitter, prefill };

if (require.main === module) {
  run().then((r) => {
    const { table } = require('./harness');
    console.log(table(r.rows, r.columns));
    for (const n of r.notes) console.log(n);
    if (process.env.WALNUT_BENCH_JSON) fs.writeFileSync(process.env.WALNUT_BENCH_JSON, JSON.stringify(r, null, 2));
  }, (e) => {
    console.error(e);
    process.exit(2);
  });
}
