// bench/probes/lane-threads.js — where a worker lane's batch goes, per thread (issue #21).
//
// `node bench/probes/lane-threads.js` runs lane-4x16, lane-8x8 and lane-1x64 (bench/commit.js's
// worker cases, same commits) in interleaved rounds (order rotating), each round a fresh
// measurement of already-open workers; WALNUT_BENCH_BASELINE=<other dist/> runs every case on
// that build too, in the same rounds. Per case it reads, around each run: process CPU
// (process.cpuUsage), each thread's CPU and voluntary context switches
// (/proc/self/task/*/schedstat, status; the workers report their thread ids), the leader's
// batches, fdatasyncs and the lane's wake-ups, and the time the leader's gather() waited for
// members (a wrapper on SharedLane.prototype.gather in each worker), and the leader's turnaround
// (an append completing -> the next append call) and appends (write + sync), p10 / p50 µs (a
// wrapper on nativeFrames.append; the bound's writer times the same). Prints medians over rounds
// and the per-round ratios 4x16 / 1x64, 8x8 / 1x64 (and this build / the baseline).
// The `bound` cases (WALNUT_BENCH_BOUND=0 leaves them out) are lane-bound-worker.js: the same
// shapes of threads and committers handing bare commits to one writer thread per fdatasync.
// WALNUT_BENCH_ROUNDS (default 6), WALNUT_BENCH_SECONDS (default 1), WALNUT_BENCH_WARMUP (s per case, default 1.5: JIT).
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Worker } = require('node:worker_threads');

const ROUNDS = Number(process.env.WALNUT_BENCH_ROUNDS ?? 6);
const SECONDS = Number(process.env.WALNUT_BENCH_SECONDS ?? 1);
const builds = { new: path.resolve(__dirname, '..', '..', 'dist') };
if (process.env.WALNUT_BENCH_BASELINE) builds.base = path.resolve(process.env.WALNUT_BENCH_BASELINE);
// the bound: the same commits handed by N threads to one writer thread (lane-bound-worker.js)
if (process.env.WALNUT_BENCH_BOUND !== '0') builds.bound = null;
const shapes = { '4x16': [4, 16], '8x8': [8, 8], '1x64': [1, 64] };
const only = process.env.WALNUT_BENCH_ONLY ? new RegExp(process.env.WALNUT_BENCH_ONLY) : null;

/** Every thread of this process: { tid: { comm, ns, vcs } }. */
function threads() {
  const out = {};
  for (const t of fs.readdirSync('/proc/self/task')) {
    try {
      const comm = fs.readFileSync(`/proc/self/task/${t}/comm`, 'utf8').trim();
      const ns = Number(fs.readFileSync(`/proc/self/task/${t}/schedstat`, 'utf8').split(' ')[0]);
      const status = fs.readFileSync(`/proc/self/task/${t}/status`, 'utf8');
      const vcs = Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(status)[1]);
      out[t] = { comm, ns, vcs };
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

/**
 * The bound (lane-bound-worker.js): `workers` committer threads of `committers` each and one
 * writer thread; returned as openCase's list (the writer is not driven: it runs until stopped).
 */
async function openBound(dir, shape) {
  const [workers, committers] = shapes[shape];
  const file = path.join(dir, `bound-${shape}.bin`);
  fs.writeFileSync(file, Buffer.alloc((8 << 20) + (1 << 20)));
  fs.fdatasyncSync(fs.openSync(file, 'r'));
  const sab = new SharedArrayBuffer((8 + 2 * workers) * 4 + workers * committers * (24 + 4096));
  const stats = new SharedArrayBuffer(2 * 4096 * 8);
  const start = async (data) => {
    const worker = new Worker(path.join(__dirname, 'lane-bound-worker.js'), { workerData: { sab, stats, threads: workers, per: committers, file, ...data } });
    const m = await new Promise((resolve) => worker.once('message', resolve));
    if (m.error) throw new Error(m.error);
    return { worker, tid: m.tid };
  };
  const writer = await start({ role: 'writer' });
  const ws = [];
  for (let t = 0; t < workers; t++) ws.push(await start({ role: 'committer', t }));
  ws.stop = async () => {
    Atomics.store(new Int32Array(sab, 0, 8), 3, 1);
    await new Promise((resolve) => writer.worker.once('exit', resolve));
  };
  return ws;
}

async function openCase(dir, build, shape) {
  if (build === 'bound') return openBound(dir, shape);
  const [workers, committers] = shapes[shape];
  const db = path.join(dir, `${build}-${shape}.db`);
  const ws = [];
  for (let w = 0; w < workers; w++) {
    const worker = new Worker(path.join(__dirname, 'lane-threads-worker.js'), { workerData: { dist: builds[build], db, w, committers } });
    const m = await new Promise((resolve) => worker.once('message', resolve));
    if (m.error) throw new Error(m.error);
    ws.push({ worker, tid: m.tid });
  }
  return ws;
}

async function runCase(ws, seconds) {
  const t0 = threads();
  const c0 = process.cpuUsage();
  const start = performance.now();
  const replies = await Promise.all(ws.map(({ worker }) => new Promise((resolve) => {
    worker.once('message', resolve);
    worker.postMessage({ seconds });
  })));
  const ms = performance.now() - start;
  const c1 = process.cpuUsage(c0);
  const t1 = threads();
  const commits = replies.reduce((a, r) => a + r.commits, 0);
  const leader = replies.find((r) => r.leader) ?? replies[0];
  const workerTids = new Set(replies.map((r) => String(r.tid)));
  const split = { leader: 0, members: 0, io: 0, bg: 0, main: 0, other: 0 };
  let vcs = 0;
  let leaderVcs = 0;
  let memberVcs = 0;
  for (const [tid, b] of Object.entries(t1)) {
    const a = t0[tid] ?? { ns: 0, vcs: 0 };
    const dns = b.ns - a.ns;
    const dv = b.vcs - a.vcs;
    vcs += dv;
    let k = 'other';
    if (tid === String(leader.tid)) {
      k = 'leader';
      leaderVcs += dv;
    } else if (workerTids.has(tid)) {
      k = 'members';
      memberVcs += dv;
    } else if (b.comm === 'walnut-io' || tid === String(leader.ioTid)) k = 'io';
    else if (b.comm === 'walnut-bg') k = 'bg';
    else if (tid === String(process.pid)) k = 'main';
    split[k] += dns / 1e3 / commits;
  }
  const batches = leader.batches;
  return {
    rate: commits / (ms / 1000),
    cpu: (c1.user + c1.system) / commits,
    split,
    commitsPerBatch: commits / batches,
    batchesPerFsync: batches / leader.fsyncs,
    wakesPerBatch: leader.wakeups / Math.max(1, leader.laneBatches),
    leaderWakesPerBatch: leader.leaderWakeups / Math.max(1, leader.laneBatches),
    gatherWaitsPerBatch: leader.gatherWaits / batches,
    gatherShare: leader.gatherMs / ms,
    gatherMsPerWait: leader.gatherWaits === 0 ? 0 : leader.gatherMs / leader.gatherWaits,
    batchUs: (ms * 1000) / batches,
    vcsPerBatch: vcs / batches,
    leaderVcsPerBatch: leaderVcs / batches,
    memberVcsPerBatch: memberVcs / batches,
    ioP50: leader.ioP50,
    turnP10: leader.turnP10,
    turnP50: leader.turnP50,
    appendP10: leader.appendP10,
    appendP50: leader.appendP50,
  };
}

const median = (xs) => {
  const s = xs.slice().sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const spread = (xs) => `${Math.min(...xs).toFixed(2)}..${Math.max(...xs).toFixed(2)}`;

(async () => {
  const dir = fs.mkdtempSync(path.join(process.env.WALNUT_BENCH_DIR ?? os.tmpdir(), 'lane-threads-'));
  const keys = [];
  for (const build of Object.keys(builds)) for (const shape of Object.keys(shapes)) if (!only || only.test(shape)) keys.push([build, shape]);
  const open = {};
  for (const [build, shape] of keys) open[`${build} ${shape}`] = await openCase(dir, build, shape);
  // warm-up
  for (const k of Object.keys(open)) await runCase(open[k], Number(process.env.WALNUT_BENCH_WARMUP ?? 1.5));
  const results = {};
  const load = [];
  for (let r = 0; r < ROUNDS; r++) {
    const names = Object.keys(open);
    const order = names.slice(r % names.length).concat(names.slice(0, r % names.length));
    if (r % 2 === 1) order.reverse();
    for (const k of order) (results[k] ??= []).push(await runCase(open[k], SECONDS));
    load.push(os.loadavg()[0]);
  }
  const fields = ['rate', 'cpu', 'commitsPerBatch', 'batchesPerFsync', 'wakesPerBatch', 'leaderWakesPerBatch', 'gatherWaitsPerBatch', 'gatherShare', 'gatherMsPerWait', 'batchUs', 'vcsPerBatch', 'leaderVcsPerBatch', 'memberVcsPerBatch', 'ioP50', 'turnP10', 'turnP50', 'appendP10', 'appendP50'];
  const rows = [];
  for (const [k, runs] of Object.entries(results)) {
    const row = { case: k };
    for (const f of fields) row[f] = median(runs.map((x) => x[f]));
    for (const s of Object.keys(runs[0].split)) row[`cpu.${s}`] = median(runs.map((x) => x.split[s]));
    rows.push(row);
  }
  const cols = Object.keys(rows[0]);
  console.log(cols.join('\t'));
  for (const row of rows) console.log(cols.map((c) => (typeof row[c] === 'number' ? (Math.abs(row[c]) >= 100 ? row[c].toFixed(0) : row[c].toFixed(2)) : row[c])).join('\t'));
  const ratio = (a, b, f = 'rate') => results[a].map((x, i) => x[f] / results[b][i][f]);
  for (const build of Object.keys(builds)) {
    for (const s of ['4x16', '8x8']) {
      if (!results[`${build} ${s}`] || !results[`${build} 1x64`]) continue;
      const x = ratio(`${build} ${s}`, `${build} 1x64`);
      console.log(`${build}: ${s} / 1x64 ${median(x).toFixed(2)}x [${spread(x)}]`);
    }
  }
  for (const other of ['base', 'bound']) {
    if (!(other in builds)) continue;
    for (const s of Object.keys(shapes)) {
      if (!results[`new ${s}`]) continue;
      const x = ratio(`new ${s}`, `${other} ${s}`);
      const c = ratio(`new ${s}`, `${other} ${s}`, 'cpu');
      console.log(`${s}: new / ${other} rate ${median(x).toFixed(2)}x [${spread(x)}], CPU per commit ${median(c).toFixed(2)}x [${spread(c)}]`);
    }
  }
  console.log(`load average (1 min) over the rounds: ${spread(load)}`);
  for (const ws of Object.values(open)) {
    await Promise.all(ws.map(({ worker }) => new Promise((resolve) => {
      worker.once('exit', resolve);
      worker.postMessage('close');
    })));
    await ws.stop?.();
  }
  fs.rmSync(dir, { recursive: true, force: true });
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
