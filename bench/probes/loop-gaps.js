// bench/probes/loop-gaps: what holds the event loop for more than 2 ms under 64 committers
// (issue #19: event-loop delay p99 < 1 ms). A 1 ms setInterval records every gap between its
// ticks over WALNUT_PROBE_GAP_MS (default 2), V8's 'gc' entries are recorded beside it, and the
// in-process CPU profiler (inspector Profiler, 100 µs samples) runs meanwhile. Afterwards each
// gap that no GC entry overlaps is attributed from the profile's samples inside it: idle samples
// (the thread was in epoll: the loop was free, the timer late for another reason), and for the
// rest the innermost walnut frame of each sample (or the leaf when none). The clocks agree: the
// profile's timestamps and process.hrtime are both CLOCK_MONOTONIC in µs.
// Usage: node bench/probes/loop-gaps.js [dist] ; WALNUT_BENCH_DIR (default os.tmpdir()),
// WALNUT_PROBE_SECONDS (5), WALNUT_PROBE_AC (autoCheckpoint; default walnut's).
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const inspector = require('node:inspector');
const { PerformanceObserver } = require('node:perf_hooks');

const dist = path.resolve(process.argv[2] || 'dist');
const { open } = require(path.join(dist, 'index.js'));
const SECONDS = Number(process.env.WALNUT_PROBE_SECONDS || 5);
const GAP_MS = Number(process.env.WALNUT_PROBE_GAP_MS || 2);
const AC = process.env.WALNUT_PROBE_AC;
const dir = fs.mkdtempSync(path.join(process.env.WALNUT_BENCH_DIR || os.tmpdir(), 'walnut-gaps-'));
const hrUs = () => Number(process.hrtime.bigint() / 1000n);
// performance.now() (ms since timeOrigin) -> the monotonic clock in µs
const perfToHr = hrUs() - performance.now() * 1000;

/** The main thread's [on-CPU, waiting-to-run] µs (Linux schedstat). */
function schedstat() {
  const [run, wait] = fs.readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ');
  return [Number(run) / 1000, Number(wait) / 1000];
}

function post(session, method, params) {
  return new Promise((resolve, reject) => session.post(method, params, (e, r) => (e ? reject(e) : resolve(r))));
}

(async () => {
  const idleOnly = process.env.WALNUT_PROBE_IDLE === '1'; // the control: the timer alone, nothing committing
  const store = await open(path.join(dir, 'gaps.db'), AC === undefined ? {} : { autoCheckpoint: AC === '0' ? false : Number(AC) });
  const data = Buffer.alloc(4096, 0x5a);
  const gcs = [];
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcs.push([e.startTime * 1000 + perfToHr, (e.startTime + e.duration) * 1000 + perfToHr, e.detail?.kind]);
  });
  obs.observe({ entryTypes: ['gc'] });
  const session = new inspector.Session();
  session.connect();
  await post(session, 'Profiler.enable');
  await post(session, 'Profiler.setSamplingInterval', { interval: 100 });
  await post(session, 'Profiler.start');
  const gaps = [];
  let last = hrUs();
  let lastSched = schedstat();
  let ticks = 0;
  const timer = setInterval(() => {
    const t = hrUs();
    const sched = schedstat();
    ticks++;
    // [start, end, on-CPU µs, runqueue-wait µs] of the main thread within the gap
    if (t - last > GAP_MS * 1000) gaps.push([last, t, sched[0] - lastSched[0], sched[1] - lastSched[1]]);
    last = t;
    lastSched = sched;
  }, 1);
  const deadline = performance.now() + SECONDS * 1000;
  let commits = 0;
  if (idleOnly) await new Promise((resolve) => setTimeout(resolve, SECONDS * 1000));
  else await Promise.all(Array.from({ length: 64 }, async (_, w) => {
    for (let i = 0; performance.now() < deadline; i++) {
      await store.commit([{ pgno: 2 + ((w * 7919 + i) % 5000), data }]);
      commits++;
    }
  }));
  clearInterval(timer);
  const { profile } = await post(session, 'Profiler.stop');
  session.disconnect();
  obs.disconnect();
  const metrics = store.metrics();
  await store.close();
  fs.rmSync(dir, { recursive: true, force: true });

  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const label = (n) => `${n.callFrame.functionName || '(anon)'} ${path.basename(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;
  /** The innermost walnut frame of a sample, else its leaf. */
  const attribute = (id) => {
    let leaf = byId.get(id);
    // a native frame (no script): named by the first caller that has one
    for (let c = id; leaf.callFrame.url === '' && !leaf.callFrame.functionName.startsWith('(') && parent.get(c) !== undefined; ) {
      c = parent.get(c);
      leaf = byId.get(c);
    }
    if (leaf.callFrame.functionName === '(idle)' || leaf.callFrame.functionName === '(garbage collector)' || leaf.callFrame.functionName === '(program)') return leaf.callFrame.functionName;
    for (let c = id; c !== undefined; c = parent.get(c)) {
      const n = byId.get(c);
      if (n.callFrame.url.startsWith(dist)) return `${label(n)} < ${label(leaf)}`;
    }
    return label(leaf);
  };
  const times = [];
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i];
    times.push(t);
  }
  const overlapsGc = ([a, b]) => gcs.some(([s, e]) => s < b && e > a);
  const nonGc = gaps.filter((g) => !overlapsGc(g));
  const where = new Map();
  let gapUs = 0;
  let idleUs = 0;
  let mostlyIdle = 0;
  for (const [a, b] of nonGc) {
    gapUs += b - a;
    let idleHere = 0;
    let all = 0;
    for (let i = 0; i < times.length; i++) {
      if (times[i] < a || times[i] > b) continue;
      const k = attribute(profile.samples[i]);
      const dt = profile.timeDeltas[i + 1] ?? 100;
      all += dt;
      if (k === '(idle)') idleHere += dt;
      where.set(k, (where.get(k) ?? 0) + dt);
    }
    idleUs += idleHere;
    if (idleHere * 2 > all) mostlyIdle++;
  }
  const sumGap = (list) => list.reduce((s, [a, b]) => s + b - a, 0);
  console.log(`${commits} commits in ${SECONDS} s (${(commits / SECONDS).toFixed(0)}/s), ${metrics.batches} batches, ${ticks} timer ticks, load ${os.loadavg()[0].toFixed(2)}, dir ${dir}`);
  console.log(`gaps > ${GAP_MS} ms: ${gaps.length} (${(sumGap(gaps) / 1000).toFixed(1)} ms); overlapping GC: ${gaps.length - nonGc.length}; not GC: ${nonGc.length} (${(gapUs / 1000).toFixed(1)} ms, of which idle samples ${(idleUs / 1000).toFixed(1)} ms; gaps mostly idle: ${mostlyIdle}); gc entries ${gcs.length}`);
  const cpuIn = nonGc.reduce((x, g) => x + g[2], 0);
  const waitIn = nonGc.reduce((x, g) => x + g[3], 0);
  const preempted = nonGc.filter((g) => g[3] * 2 > g[1] - g[0]).length;
  const onCpu = nonGc.filter((g) => g[2] * 2 > g[1] - g[0]).length;
  console.log(`non-GC gaps, the main thread (schedstat): on CPU ${(cpuIn / 1000).toFixed(1)} ms, waiting for a CPU (runnable, not running) ${(waitIn / 1000).toFixed(1)} ms, asleep ${((gapUs - cpuIn - waitIn) / 1000).toFixed(1)} ms; gaps mostly waiting for a CPU: ${preempted}, mostly on CPU: ${onCpu}`);
  console.log(`longest non-GC gaps (ms): ${nonGc.sort((x, y) => (y[1] - y[0]) - (x[1] - x[0])).slice(0, 10).map(([a, b, c, w]) => `${((b - a) / 1000).toFixed(1)} (cpu ${(c / 1000).toFixed(1)}, wait ${(w / 1000).toFixed(1)})`).join(' ')}`);
  console.log('where the non-GC gaps went (ms, sample time inside them):');
  for (const [k, us] of [...where].sort((x, y) => y[1] - x[1]).slice(0, 25)) console.log(`  ${(us / 1000).toFixed(2).padStart(7)} ${k}`);
})();
