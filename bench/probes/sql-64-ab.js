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
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { PerformanceObserver, constants } = require('node:perf_hooks');
const A = path.resolve(process.env.A || path.join(__dirname, '../../dist'));
const B = path.resolve(process.env.B || path.join(__dirname, '../../dist'));
const BLOCKS = Number(process.env.BLOCKS || 40);
const CALLERS = Number(process.env.CALLERS || 64);
const N = Number(process.env.N || 6400);
const DIR = process.env.DIR || '/dev/shm';
const ROW = 'x'.repeat(100);
const sorted = (xs) => xs.slice().sort((a, b) => a - b);
const at = (xs, p) => sorted(xs)[Math.floor(xs.length * p)];

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

async function setup(dist, dir) {
  const { openDatabase } = require(path.join(dist, 'sql.js'));
  const db = await openDatabase(path.join(dir, 's.db'));
  await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)');
  return { db, insert: await db.prepare('INSERT INTO t(v) VALUES (?)') };
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

async function main() {
  const dir = fs.mkdtempSync(path.join(DIR, 'walnut-sql-64-ab-'));
  try {
    fs.mkdirSync(path.join(dir, 'a'));
    fs.mkdirSync(path.join(dir, 'b'));
    const a = await setup(A, path.join(dir, 'a'));
    const b = await setup(B, path.join(dir, 'b'));
    for (let i = 0; i < 4; i++) await block(a), await block(b); // warm-up: JIT, wasm tier-up
    const ra = [];
    const rb = [];
    for (let i = 0; i < BLOCKS; i++) {
      if (i % 2 === 0) ra.push(await block(a)), rb.push(await block(b));
      else rb.push(await block(b)), ra.push(await block(a));
    }
    const fmt = (xs) => `${at(xs, 0.5).toFixed(3)} [${at(xs, 0.25).toFixed(3)}-${at(xs, 0.75).toFixed(3)}]`;
    const m = (rs, k) => at(rs.map((r) => r[k]), 0.5).toFixed(2);
    const sum = (rs, k) => rs.reduce((a, r) => a + r[k], 0) / rs.length;
    const each = (rs) => `CPU ${m(rs, 'cpu')} µs/tx (main thread ${m(rs, 'main')}), wall ${m(rs, 'wall')} µs/tx (${Math.round(1e6 / m(rs, 'wall'))} tx/s); scavenges ${sum(rs, 'scavenges').toFixed(3)} per 1,000 tx, GC ${sum(rs, 'gc').toFixed(2)} µs/tx (means)`;
    console.log(`${BLOCKS} alternating blocks of ${N} transactions by ${CALLERS} callers on ${DIR}; medians`);
    console.log(`A ${A}: ${each(ra)}`);
    console.log(`B ${B}: ${each(rb)}`);
    console.log(`B / A: CPU ${fmt(ra.map((x, i) => rb[i].cpu / x.cpu))}, main thread ${fmt(ra.map((x, i) => rb[i].main / x.main))}, wall ${fmt(ra.map((x, i) => rb[i].wall / x.wall))}`);
    await a.db.close();
    await b.db.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(2);
});
