// bench/probes/commit-js-cost: walnut's own JavaScript per commit at 64 committers, measured
// deterministically enough to compare two builds (issue #19: "<= 60 µs of JS per batch of 64").
//
// On /dev/shm (WALNUT_BENCH_DIR; default /dev/shm) an fdatasync costs next to nothing, so the
// JS thread's CPU per commit is walnut's code, the committers' loop and the GC. Each round runs
// a FIXED number of commits (64 committers x WALNUT_PROBE_COMMITS each, one 4 KiB page, the
// pattern of bench/commit.js) per build, the builds interleaved in rotating order, and reports:
//   cpu     the main thread's CPU µs per commit (/proc/self/task/<pid>/schedstat)
//   batch   that CPU per batch (commits per batch from store.metrics())
//   gc      main-thread GC ms per 1,000 commits (PerformanceObserver 'gc')
// Then one pass per build with V8's sampling heap profiler keeping collected objects
// (HeapProfiler.startSampling, includeObjectsCollectedByMajorGC/MinorGC): bytes allocated per
// commit, and the top allocation sites of walnut's own code.
// Usage: node bench/probes/commit-js-cost.js [distA=dist] [distB]; WALNUT_PROBE_ROUNDS (7),
// WALNUT_PROBE_COMMITS (400 per committer), WALNUT_PROBE_AC (autoCheckpoint: default; 0 = off),
// WALNUT_PROBE_ALLOC=0 skips the heap pass. Medians of per-round B/A ratios [min..max].
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const inspector = require('node:inspector');
const { PerformanceObserver } = require('node:perf_hooks');

const dists = (process.argv.length > 2 ? process.argv.slice(2) : ['dist']).map((d) => path.resolve(d));
const ROUNDS = Number(process.env.WALNUT_PROBE_ROUNDS || 7);
const PER = Number(process.env.WALNUT_PROBE_COMMITS || 400);
const COMMITTERS = Number(process.env.WALNUT_PROBE_COMMITTERS || 64);
const AC = process.env.WALNUT_PROBE_AC;
const dir = fs.mkdtempSync(path.join(process.env.WALNUT_BENCH_DIR || '/dev/shm', 'walnut-jscost-'));
const PAGE = 4096;

function threadCpuUs() {
  const [run] = fs.readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ');
  return Number(run) / 1000;
}

let gcMs = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcMs += e.duration;
}).observe({ entryTypes: ['gc'] });

async function run(store) {
  const data = Buffer.alloc(PAGE, 0x5a);
  await Promise.all(
    Array.from({ length: COMMITTERS }, async (_, w) => {
      for (let i = 0; i < PER; i++) await store.commit([{ pgno: 2 + ((w * 7919 + i) % 5000), data }]);
    }),
  );
}

async function openStore(k) {
  const { open } = require(path.join(dists[k], 'index.js'));
  const options = AC === undefined ? {} : { autoCheckpoint: AC === '0' ? false : Number(AC) };
  return open(path.join(dir, `b${k}.db`), options);
}

async function measure(k) {
  const store = await openStore(k);
  await run(store); // warm
  const b0 = store.metrics().batches;
  const g0 = gcMs;
  const c0 = threadCpuUs();
  const t0 = performance.now();
  await run(store);
  const cpu = threadCpuUs() - c0;
  const wall = performance.now() - t0;
  const batches = store.metrics().batches - b0;
  const gc = gcMs - g0;
  await store.close();
  const n = COMMITTERS * PER;
  return { cpu: cpu / n, batch: cpu / batches, perBatch: n / batches, gc: (gc / n) * 1000, wall: (wall * 1000) / n };
}

function post(session, method, params) {
  return new Promise((resolve, reject) => session.post(method, params, (e, r) => (e ? reject(e) : resolve(r))));
}

async function allocation(k) {
  const store = await openStore(k);
  await run(store);
  const session = new inspector.Session();
  session.connect();
  await post(session, 'HeapProfiler.startSampling', { samplingInterval: 64, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  await run(store);
  const { profile } = await post(session, 'HeapProfiler.stopSampling');
  session.disconnect();
  await store.close();
  const sites = new Map();
  let total = 0;
  const walk = (node, stack) => {
    const f = node.callFrame;
    const here = `${f.functionName || '(anon)'} ${path.basename(f.url)}:${f.lineNumber + 1}`;
    const own = f.url.includes(dists[k]) ? here : stack;
    if (node.selfSize > 0) {
      total += node.selfSize;
      const key = own ?? here;
      sites.set(key, (sites.get(key) ?? 0) + node.selfSize);
    }
    for (const c of node.children) walk(c, own);
  };
  walk(profile.head, null);
  const n = COMMITTERS * PER;
  return { perCommit: total / n, top: [...sites].sort((a, b) => b[1] - a[1]).slice(0, 14).map(([s, b]) => [s, +(b / n).toFixed(1)]) };
}

const median = (v) => v.slice().sort((a, b) => a - b)[v.length >> 1];

(async () => {
  const per = dists.map(() => []);
  for (let r = 0; r < ROUNDS; r++) {
    const order = dists.map((_, k) => k);
    if (r % 2 === 1) order.reverse();
    for (const k of order) per[k].push(await measure(k));
  }
  const load = os.loadavg().map((x) => x.toFixed(2)).join(' ');
  console.log(`${COMMITTERS} committers x ${PER} commits, ${ROUNDS} rounds, ${AC === undefined ? 'default autoCheckpoint' : `autoCheckpoint ${AC}`}, dir ${dir}, load ${load}`);
  for (let k = 0; k < dists.length; k++) {
    const rows = per[k];
    const m = (f) => median(rows.map(f)).toFixed(2);
    console.log(`${dists[k]}: cpu ${m((x) => x.cpu)} µs/commit, ${m((x) => x.batch)} µs/batch of ${m((x) => x.perBatch)}, gc ${m((x) => x.gc)} ms/1k commits, wall ${m((x) => x.wall)} µs/commit`);
    console.log(`  cpu per round: ${rows.map((x) => x.cpu.toFixed(2)).join(' ')}`);
  }
  if (dists.length === 2) {
    for (const f of ['cpu', 'batch', 'gc', 'wall']) {
      const ratios = per[1].map((x, i) => x[f] / per[0][i][f]);
      console.log(`B/A ${f}: ${median(ratios).toFixed(3)} [${Math.min(...ratios).toFixed(3)}..${Math.max(...ratios).toFixed(3)}]`);
    }
  }
  if (process.env.WALNUT_PROBE_ALLOC !== '0') {
    for (let k = 0; k < dists.length; k++) {
      const a = await allocation(k);
      console.log(`${dists[k]}: ${a.perCommit.toFixed(0)} B allocated per commit (sampled)`);
      for (const [s, b] of a.top) console.log(`  ${b.toString().padStart(7)} ${s}`);
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });
})();
