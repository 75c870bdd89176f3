// bench/probes/sql-64-ab: two builds' walnut/sql in one process, 64 concurrent callers (one-row
// INSERT, prepared statement, autocommit) in alternating blocks: CPU µs per transaction of the
// process and of its main (JS) thread, wall µs, and the median of the per-block ratios B / A
// with its quartiles. In one process both builds see the same load and the same disk, so a CPU
// change of a few percent resolves where bench/sql.js's fsync-bound rates cannot. The main
// thread is what bounds 64 callers: it runs SQLite, the VFS and the commit path; the I/O thread
// writes and syncs each batch beside it.
// Also the scavenges per 1,000 transactions (young-generation garbage: load-independent) and the
// GC pauses per transaction, as a PerformanceObserver hears them.
//   A=<base dist/> B=<dist/> node bench/probes/sql-64-ab.js   (BLOCKS, N per block, CALLERS, DIR: default /dev/shm)
// (the A/B harness: sql-ab.js)
'use strict';
const fs = require('node:fs');
const { at, ROW, runAB } = require('./sql-ab');
const { PerformanceObserver, constants } = require('node:perf_hooks');
const CALLERS = Number(process.env.CALLERS || 64);
const N = Number(process.env.N || 6400);

/** This thread's CPU time in µs (the main thread's: /proc/thread-self is the caller's; schedstat counts ns). */
function mainThreadCpu() {
  return Number(fs.readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]) / 1e3;
}

/** Garbage collections as the observer hears them (startTime, duration ms, kind). */
const gcs = [];
new PerformanceObserver((list) => gcs.push(...list.getEntries())).observe({ entryTypes: ['gc'] });

/** The collections that began in [from, to] (performance.now() ms): scavenges, and ms of all. */
async function collectionsIn(from, to) {
  await new Promise((resolve) => setTimeout(resolve, 5)); // (entries are delivered asynchronously)
  let minor = 0;
  let ms = 0;
  for (const e of gcs) {
    if (e.startTime < from || e.startTime > to) continue;
    if (e.detail.kind === constants.NODE_PERFORMANCE_GC_MINOR) minor++;
    ms += e.duration;
  }
  return { minor, ms };
}

async function block(x) {
  const per = Math.ceil(N / CALLERS);
  const c0 = process.cpuUsage();
  const m0 = mainThreadCpu();
  const p0 = performance.now();
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: CALLERS }, async () => {
    for (let i = 0; i < per; i++) await x.insert.run([ROW]);
  }));
  const n = per * CALLERS;
  const c = process.cpuUsage(c0);
  const r = { cpu: (c.user + c.system) / n, main: (mainThreadCpu() - m0) / n, wall: Number(process.hrtime.bigint() - t0) / 1e3 / n };
  const gc = await collectionsIn(p0, performance.now());
  return { ...r, scavenges: (gc.minor * 1000) / n, gc: (gc.ms * 1000) / n };
}

const m = (rs, k) => at(rs.map((r) => r[k]), 0.5).toFixed(2);
const mean = (rs, k) => rs.reduce((a, r) => a + r[k], 0) / rs.length;
runAB({
  name: 'sql-64-ab',
  title: `of ${N} transactions by ${CALLERS} callers; medians`,
  warmups: 4,
  block,
  describe: (rs) => `CPU ${m(rs, 'cpu')} µs/tx (main thread ${m(rs, 'main')}), wall ${m(rs, 'wall')} µs/tx (${Math.round(1e6 / m(rs, 'wall'))} tx/s); scavenges ${mean(rs, 'scavenges').toFixed(3)} per 1,000 tx, GC ${mean(rs, 'gc').toFixed(2)} µs/tx (means)`,
  ratios: [['cpu', 'CPU'], ['main', 'main thread'], ['wall', 'wall']],
});
