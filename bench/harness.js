// Shared bench plumbing: benchmark.js suites run side by side in one process, results as
// rows { suite, case, system, metric, value } plus ratios against a named peer.
'use strict';
const Benchmark = require('benchmark');

/** Runs sync cases of one size; returns { name: opsPerSecond }. */
function runSync(cases, { maxTime = 1 } = {}) {
  const suite = new Benchmark.Suite();
  for (const [name, fn] of Object.entries(cases)) suite.add(name, fn, { maxTime, minSamples: 5 });
  const hz = {};
  suite.on('cycle', (e) => (hz[e.target.name] = e.target.hz));
  suite.run({ async: false });
  return hz;
}

/** Runs async (deferred) cases; each fn returns a promise. Returns { name: { hz, mean, p50, p99 } } in ms. */
function runAsync(cases, { maxTime = 2 } = {}) {
  return new Promise((resolve) => {
    const suite = new Benchmark.Suite();
    for (const [name, fn] of Object.entries(cases)) {
      suite.add(name, {
        defer: true,
        maxTime,
        minSamples: 5,
        fn: (deferred) => fn().then(() => deferred.resolve()),
      });
    }
    const out = {};
    suite.on('cycle', (e) => {
      const s = e.target.stats.sample.slice().sort((a, b) => a - b);
      const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))] * 1e3;
      out[e.target.name] = { hz: e.target.hz, mean: e.target.stats.mean * 1e3, p50: q(0.5), p99: q(0.99) };
    });
    suite.on('complete', () => resolve(out));
    suite.run({ async: true });
  });
}

function table(rows, columns) {
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c] ?? '').length)));
  const line = (cells) => cells.map((v, i) => String(v ?? '').padEnd(widths[i])).join('  ');
  return [line(columns), line(widths.map((w) => '-'.repeat(w))), ...rows.map((r) => line(columns.map((c) => r[c])))].join('\n');
}

/**
 * Runs the async cases `rounds` times, alternating, and keeps each case's median round by
 * mean time: disk and scheduler noise moves between consecutive runs more than between cases,
 * and alternation spreads it over all of them.
 */
async function runAsyncRounds(cases, { maxTime = 1, rounds = 3 } = {}) {
  const all = {};
  for (let r = 0; r < rounds; r++) {
    const names = Object.keys(cases);
    const order = r % 2 === 0 ? names : names.slice().reverse();
    const result = await runAsync(Object.fromEntries(order.map((n) => [n, cases[n]])), { maxTime });
    for (const [n, v] of Object.entries(result)) (all[n] ??= []).push(v);
  }
  const out = {};
  for (const [n, list] of Object.entries(all)) out[n] = list.sort((a, b) => a.mean - b.mean)[Math.floor(list.length / 2)];
  return out;
}

/**
 * Runs `committers` loops of `commitOnce(w, i)` for `seconds`; returns commits/s and commit
 * latency p50/p99 (µs). Every suite's concurrent-commit load goes through this.
 */
async function drive(committers, seconds, commitOnce) {
  const { Histogram } = require('../dist/telemetry/histogram.js');
  const hist = new Histogram();
  const deadline = performance.now() + seconds * 1000;
  let count = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: committers }, async (_, w) => {
      for (let i = 0; performance.now() < deadline; i++) {
        const s = performance.now();
        await commitOnce(w, i);
        hist.record((performance.now() - s) * 1000);
        count++;
      }
    }),
  );
  return { perSecond: count / ((performance.now() - t0) / 1000), p50: hist.percentile(50), p99: hist.percentile(99) };
}

/** One-page (4 KiB) store commits, each loop on its own pages. */
function commitLoad(store, committers, seconds, fill = 3) {
  const data = Buffer.alloc(4096, fill);
  return drive(committers, seconds, (w, i) => store.commit([{ pgno: 2 + ((w * 7919 + i) % 5000), data }]));
}

module.exports = { runSync, runAsync, runAsyncRounds, table, drive, commitLoad };
