// bench/page-copy: what copying the pages at commit() costs (commit/page-arena.ts), as an
// in-process A/B against a build of walnut from before the copy.
//
//   WALNUT_BENCH_OLD_DIST=/path/to/old/dist WALNUT_NATIVE_PATH=$PWD/build/Release/walnut.node node bench/page-copy.js
//
// Both module graphs are loaded into one process (the same addon: WALNUT_NATIVE_PATH). Cases:
// {old, new} x {64 committers, 1 committer}, one-page 4 KiB commits, synchronous 'full', each
// case on its own database file, opened once and kept across rounds (the same files every
// round). Each round runs every case for WALNUT_BENCH_SECONDS (default 2), the order rotating;
// WALNUT_BENCH_ROUNDS rounds (default 8). Per case and round: CPU per commit (process.cpuUsage,
// every thread of the process: the I/O thread's checksum and syscalls too) and commits/s.
// Reported: the median over rounds, the spread [min..max], and the median of the per-round
// new/old ratios (this VM is shared: neighbouring rounds differ more than cases of one round).
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const OLD = process.env.WALNUT_BENCH_OLD_DIST;
if (!OLD) throw new Error('set WALNUT_BENCH_OLD_DIST to the dist/ of a build before the copy');
const SECONDS = Number(process.env.WALNUT_BENCH_SECONDS || 2);
const ROUNDS = Number(process.env.WALNUT_BENCH_ROUNDS || 8);
const PAGE = 4096;

const builds = { old: require(path.resolve(OLD, 'index.js')), new: require('../dist/index.js') };
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'walnut-page-copy-'));

async function run(store, committers) {
  const end = performance.now() + SECONDS * 1000;
  let commits = 0;
  const worker = async (k) => {
    const page = Buffer.alloc(PAGE, k);
    while (performance.now() < end) {
      page.writeUInt32LE(commits, 0);
      await store.commit([{ pgno: 2 + k, data: page }]);
      commits++;
    }
  };
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  await Promise.all(Array.from({ length: committers }, (_, k) => worker(k)));
  const cpu = process.cpuUsage(c0);
  const wall = (performance.now() - t0) / 1000;
  return { cpuPerCommit: (cpu.user + cpu.system) / commits, rate: commits / wall };
}

/**
 * The synchronous part of 64 commit() calls (validation, the copy, the queueing), timed as a
 * block of wall time per round (short enough that most blocks run unpreempted on a loaded VM:
 * the median and p10 of many blocks are the work itself), old and new alternating; then the
 * commits are awaited (the copies are released as they settle) before the next block.
 */
async function callBlocks(store, blocks) {
  const pages = Array.from({ length: 64 }, (_, k) => Buffer.alloc(PAGE, k));
  const out = [];
  for (let b = 0; b < blocks; b++) {
    const pending = new Array(64);
    const t0 = performance.now();
    for (let k = 0; k < 64; k++) pending[k] = store.commit([{ pgno: 2 + k, data: pages[k] }]);
    out.push(((performance.now() - t0) * 1000) / 64);
    await Promise.all(pending);
  }
  return out;
}

const median = (v) => {
  const s = v.slice().sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const spread = (v) => `[${Math.min(...v).toFixed(2)}..${Math.max(...v).toFixed(2)}]`;

(async () => {
  const cases = [];
  for (const committers of [64, 1]) {
    for (const build of ['old', 'new']) {
      const store = await builds[build].open(path.join(dir, `${build}-${committers}.db`), { pageSize: PAGE, synchronous: 'full' });
      cases.push({ name: `${build}-${committers}`, build, committers, store, cpu: [], rate: [] });
    }
  }
  for (const c of cases) await run(c.store, c.committers); // warm up: files grown, code hot
  for (let r = 0; r < ROUNDS; r++) {
    const order = cases.map((_, i) => cases[(i + r) % cases.length]);
    for (const c of order) {
      const m = await run(c.store, c.committers);
      c.cpu.push(m.cpuPerCommit);
      c.rate.push(m.rate);
    }
    process.stderr.write(`round ${r + 1}/${ROUNDS} load ${os.loadavg()[0].toFixed(1)}\n`);
  }
  console.log(`load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}, ${ROUNDS} rounds x ${SECONDS} s`);
  for (const c of cases) console.log(`${c.name.padEnd(7)} CPU/commit ${median(c.cpu).toFixed(2)} µs ${spread(c.cpu)}  commits/s ${median(c.rate).toFixed(0)} [${Math.min(...c.rate).toFixed(0)}..${Math.max(...c.rate).toFixed(0)}]`);
  for (const n of [64, 1]) {
    const o = cases.find((c) => c.name === `old-${n}`);
    const w = cases.find((c) => c.name === `new-${n}`);
    const cpuRatio = o.cpu.map((x, i) => w.cpu[i] / x);
    const diff = o.cpu.map((x, i) => w.cpu[i] - x);
    console.log(`${n} committer(s): new/old CPU per commit ${median(cpuRatio).toFixed(3)} ${spread(cpuRatio)}, difference ${median(diff).toFixed(2)} µs ${spread(diff)}`);
  }
  // the commit() calls alone, per commit: old and new alternating in blocks of 20 batches
  const calls = { old: [], new: [] };
  const byName = (n) => cases.find((c) => c.name === n).store;
  for (let r = 0; r < ROUNDS * 10; r++) {
    for (const build of r % 2 ? ['new', 'old'] : ['old', 'new']) calls[build].push(...(await callBlocks(byName(`${build}-64`), 20)));
  }
  const pct = (v, p) => v.slice().sort((a, b) => a - b)[Math.floor((p / 100) * (v.length - 1))];
  for (const build of ['old', 'new']) {
    const v = calls[build];
    console.log(`commit() call, ${build}: µs per commit (64 calls a block, ${v.length} blocks) p10 ${pct(v, 10).toFixed(3)} median ${pct(v, 50).toFixed(3)} p90 ${pct(v, 90).toFixed(3)}`);
  }
  console.log(`commit() call, new - old: p10 ${(pct(calls.new, 10) - pct(calls.old, 10)).toFixed(3)} µs, median ${(pct(calls.new, 50) - pct(calls.old, 50)).toFixed(3)} µs`);
  for (const c of cases) await c.store.close();
  fs.rmSync(dir, { recursive: true, force: true });
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
