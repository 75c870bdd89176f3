// bench/probes/lane-threads-worker.js — one worker of lane-threads.js: a store of workerData.dist's
// build on workerData.db, `committers` loops of one-page commits on pages of its own, driven for
// each { seconds } message. Replies with its thread id (for /proc/self/task), its commits and, when
// it leads, its committer's and the lane's counters and the time its gather() waits spent.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { parentPort, workerData } = require('node:worker_threads');

const { dist, db, w, committers } = workerData;
const { open } = require(path.join(dist, 'index.js'));
const { SharedLane } = require(path.join(dist, 'commit', 'lane.js'));

// the leader's gather waits: count and total ms of the promises gather() returned
const gatherWait = { waits: 0, ms: 0, calls: 0 };
const gather = SharedLane.prototype.gather;
SharedLane.prototype.gather = function () {
  gatherWait.calls++;
  const p = gather.call(this);
  if (p === null) return p;
  const t = performance.now();
  gatherWait.waits++;
  return p.then(() => {
    gatherWait.ms += performance.now() - t;
  });
};

// the leader's turnaround: from a batch's append completing to the next batch's append call (µs),
// and the append itself (write + sync on walnut-io, µs); every store's appends (only the leader's
// committer appends)
const turnarounds = [];
const appends = [];
let completedAt = 0;
const frames = require(path.join(dist, 'native.js')).nativeFrames;
const append = frames.append;
frames.append = function (...args) {
  const t = performance.now();
  if (completedAt > 0 && t - completedAt < 50) turnarounds.push((t - completedAt) * 1000);
  return append.apply(this, args).finally(() => {
    completedAt = performance.now();
    appends.push((completedAt - t) * 1000);
  });
};
const quantile = (xs, q) => {
  if (xs.length === 0) return 0;
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};

const tid = Number(fs.readlinkSync('/proc/thread-self').split('/').pop());

(async () => {
  const store = await open(db);
  const data = Buffer.alloc(4096, 0x5a);
  parentPort.on('message', async (m) => {
    if (m === 'close') {
      await store.close();
      parentPort.close();
      return;
    }
    const before = store.metrics();
    const g0 = { ...gatherWait };
    turnarounds.length = 0;
    appends.length = 0;
    completedAt = 0;
    let commits = 0;
    const deadline = performance.now() + m.seconds * 1000;
    await Promise.all(Array.from({ length: committers }, async (_, c) => {
      for (let i = 0; performance.now() < deadline; i++) {
        await store.commit([{ pgno: 2 + (w * 64 + c) * 8 + (i % 8), data }]);
        commits++;
      }
    }));
    const after = store.metrics();
    const lane = after.lane;
    parentPort.postMessage({
      tid,
      commits,
      leader: lane?.leader ?? false,
      batches: after.batches - before.batches,
      fsyncs: after.fsyncs - before.fsyncs,
      laneBatches: (lane?.batches ?? 0) - (before.lane?.batches ?? 0),
      wakeups: (lane?.wakeups ?? 0) - (before.lane?.wakeups ?? 0),
      leaderWakeups: (lane?.leaderWakeups ?? 0) - (before.lane?.leaderWakeups ?? 0),
      gatherCalls: gatherWait.calls - g0.calls,
      gatherWaits: gatherWait.waits - g0.waits,
      gatherMs: gatherWait.ms - g0.ms,
      ioP50: after.latency.io.p50,
      turnP10: quantile(turnarounds, 0.1),
      turnP50: quantile(turnarounds, 0.5),
      appendP10: quantile(appends, 0.1),
      appendP50: quantile(appends, 0.5),
    });
  });
  parentPort.postMessage({ ready: true, tid });
})().catch((e) => parentPort.postMessage({ error: String(e.stack) }));
