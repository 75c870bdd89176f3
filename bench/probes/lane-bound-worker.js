// bench/probes/lane-bound-worker.js — the bound of a worker lane (issue #21): N worker_threads
// each hand their committers' one-page commits to one writer thread, which writes every commit
// handed to it as one batch (64 frames of 24 + 4096 bytes, one writev) and fdatasyncs it, then
// wakes each committer thread once with its batch's completion. No validation, checksums, index,
// WAL protocol or copies beyond the page into shared memory: what any design of N event loops
// and one writer pays per batch (hand-offs, event-loop turns, promises) and nothing else.
//
// Shared memory (workerData.sab): Int32 control words (CTL_*), then per committer thread a done
// word (its commits written and synced, in all), a published word (commits handed in, not yet
// taken by the writer), then the
// frames: committer thread t's committer c writes its page at frame slot t * per + c.
// Roles: workerData.role 'writer' (runs until CTL_STOP) or 'committer' (workerData.t, per).
// The writer waits for every committer thread whose commits the last batch completed (as the
// lane's gather), at most GATHER_MS, then writes what was published.
'use strict';
const fs = require('node:fs');
const { parentPort, workerData } = require('node:worker_threads');

const CTL_READY = 0; // committer threads that published since the last batch
const CTL_BATCHES = 1;
const CTL_FSYNCS = 2;
const CTL_STOP = 3;
const CTL_WRITER_TID = 4;
const CTL_WORDS = 8;
const FRAME = 24 + 4096;
const GATHER_MS = 4;

const { role, sab, threads, per } = workerData;
const ctl = new Int32Array(sab, 0, CTL_WORDS);
const done = new Int32Array(sab, CTL_WORDS * 4, threads);
const published = new Int32Array(sab, (CTL_WORDS + threads) * 4, threads);
const framesAt = (CTL_WORDS + 2 * threads) * 4;
const frame = (slot) => new Uint8Array(sab, framesAt + slot * FRAME, FRAME);
const tid = Number(fs.readlinkSync('/proc/thread-self').split('/').pop());

if (role === 'writer') {
  Atomics.store(ctl, CTL_WRITER_TID, tid);
  const fd = fs.openSync(workerData.file, 'r+');
  const span = 8 << 20; // overwrite an 8 MiB span of a prefilled file, as raw-64 does
  let pos = 0;
  const buffers = [];
  // turnaround (a batch's fdatasync returned -> the next batch's writev, µs) and write + sync (µs),
  // for the committer threads' replies: the last 4096 batches
  const turns = new Float64Array(workerData.stats, 0, 4096);
  const syncs = new Float64Array(workerData.stats, 4096 * 8, 4096);
  let synced = 0;
  parentPort.postMessage({ ready: true, tid });
  while (Atomics.load(ctl, CTL_STOP) === 0) {
    // wait for the first hand-in, then for the rest of the threads, at most GATHER_MS
    let r = Atomics.load(ctl, CTL_READY);
    if (r === 0) {
      Atomics.wait(ctl, CTL_READY, 0, 50);
      continue;
    }
    const until = performance.now() + GATHER_MS;
    while ((r = Atomics.load(ctl, CTL_READY)) < threads) {
      const left = until - performance.now();
      if (left <= 0) break;
      Atomics.wait(ctl, CTL_READY, r, left);
    }
    Atomics.sub(ctl, CTL_READY, r);
    buffers.length = 0;
    const handed = [];
    const handedN = [];
    for (let t = 0; t < threads; t++) {
      const n = Atomics.exchange(published, t, 0);
      if (n === 0) continue;
      handed.push(t);
      handedN.push(n);
      for (let c = 0; c < n; c++) buffers.push(frame(t * per + (c % per)));
    }
    if (buffers.length === 0) continue;
    if (pos + buffers.length * FRAME > span) pos = 0;
    const t = performance.now();
    const at = Atomics.load(ctl, CTL_BATCHES) % 4096;
    turns[at] = synced > 0 && t - synced < 50 ? (t - synced) * 1000 : NaN;
    fs.writevSync(fd, buffers, pos);
    pos += buffers.length * FRAME;
    fs.fdatasyncSync(fd);
    synced = performance.now();
    syncs[at] = (synced - t) * 1000;
    Atomics.add(ctl, CTL_BATCHES, 1);
    Atomics.add(ctl, CTL_FSYNCS, 1);
    for (let i = 0; i < handed.length; i++) {
      Atomics.add(done, handed[i], handedN[i]);
      Atomics.notify(done, handed[i]);
    }
  }
  fs.closeSync(fd);
  parentPort.close();
} else {
  const t = workerData.t;
  const pending = []; // resolves of commits handed in and not yet written, in order
  let settled = 0; // commits of this thread written (done[t] as last seen)
  let turn = 0; // commits handed in this turn
  let publishing = false;
  let waiting = false;

  const publish = () => {
    publishing = false;
    Atomics.add(published, t, turn);
    turn = 0;
    Atomics.add(ctl, CTL_READY, 1);
    Atomics.notify(ctl, CTL_READY);
    if (!waiting) awaitDone();
  };
  const settle = () => {
    waiting = false;
    const now = Atomics.load(done, t);
    const resolves = pending.splice(0, now - settled);
    settled = now;
    for (const resolve of resolves) resolve();
    if (pending.length > 0 && !waiting) awaitDone();
  };
  const awaitDone = () => {
    waiting = true;
    const w = Atomics.waitAsync(done, t, settled);
    if (w.async) w.value.then(settle);
    else settle();
  };
  // one committer's commit: its page into its frame slot, handed in at the end of this turn
  const commit = (c, data) => {
    frame(t * per + c).set(data, 24);
    turn++;
    if (!publishing) {
      publishing = true;
      setImmediate(publish);
    }
    return new Promise((resolve) => pending.push(resolve));
  };

  parentPort.on('message', async (m) => {
    if (m === 'close') {
      parentPort.close();
      return;
    }
    const data = Buffer.alloc(4096, 0x5a);
    const b0 = Atomics.load(ctl, CTL_BATCHES);
    const f0 = Atomics.load(ctl, CTL_FSYNCS);
    const quantiles = (from, to, at) => {
      const xs = [];
      const a = new Float64Array(workerData.stats, at, 4096);
      for (let b = Math.max(from, to - 4096); b < to; b++) if (!Number.isNaN(a[b % 4096])) xs.push(a[b % 4096]);
      xs.sort((x, y) => x - y);
      const q = (p) => (xs.length === 0 ? 0 : xs[Math.min(xs.length - 1, Math.floor(p * xs.length))]);
      return [q(0.1), q(0.5)];
    };
    let commits = 0;
    const deadline = performance.now() + m.seconds * 1000;
    await Promise.all(Array.from({ length: per }, async (_, c) => {
      while (performance.now() < deadline) {
        await commit(c, data);
        commits++;
      }
    }));
    const b1 = Atomics.load(ctl, CTL_BATCHES);
    const [turnP10, turnP50] = quantiles(b0, b1, 0);
    const [appendP10, appendP50] = quantiles(b0, b1, 4096 * 8);
    parentPort.postMessage({
      turnP10,
      turnP50,
      appendP10,
      appendP50,
      tid,
      ioTid: Atomics.load(ctl, CTL_WRITER_TID),
      commits,
      leader: t === 0,
      batches: Atomics.load(ctl, CTL_BATCHES) - b0,
      fsyncs: Atomics.load(ctl, CTL_FSYNCS) - f0,
      laneBatches: 0,
      wakeups: 0,
      leaderWakeups: 0,
      gatherCalls: 0,
      gatherWaits: 0,
      gatherMs: 0,
      ioP50: 0,
    });
  });
  parentPort.postMessage({ ready: true, tid });
}
