// bench/probes/export-loop-cost.js — the event loop's time per exported commit: a store's WAL
// holding COMMITS one-page commits (no checkpoint), exported once (base image + every commit)
// to /dev/null and to a file; the event loop's busy time (performance.eventLoopUtilization)
// and the process's CPU during the export, divided by the commits. Builds A/B interleaved:
//   node bench/probes/export-loop-cost.js [ROUNDS] [COMMITS] <dist> [<dist> ...]
// (each dist's index.js; the first is 'walnut', the others named by their path).
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { performance } = require('node:perf_hooks');

const args = process.argv.slice(2);
const rounds = Number(args.shift());
const commits = Number(args.shift());
const dists = args.map((d) => path.resolve(d));

async function once(walnut, dir, sinkKind) {
  const db = path.join(dir, 'loop.db');
  const store = await walnut.open(db, { autoCheckpoint: false, synchronous: 'off' });
  const data = Buffer.alloc(4096, 7);
  for (let done = 0; done < commits; done += 64) {
    await Promise.all(Array.from({ length: 64 }, (_, w) => store.commit([{ pgno: 2 + ((done + w) % 100), data }])));
  }
  const out = sinkKind === 'file' ? path.join(dir, 'loop.ark') : '/dev/null';
  const sink = await walnut.WalnutFile.open(out, sinkKind === 'file' ? { create: true, truncate: true } : {});
  const elu0 = performance.eventLoopUtilization();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const stats = await store.exportTo(sink).done;
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const elu = performance.eventLoopUtilization(elu0);
  await sink.close();
  await store.close();
  for (const s of ['', '-wal', '-shm', '.ark']) fs.rmSync(db + s, { force: true });
  return { loop: (elu.active * 1000) / stats.commits, cpu: (cpu.user + cpu.system) / stats.commits, wall: (wall * 1000) / stats.commits, commits: stats.commits };
}

(async () => {
  const libs = dists.map((d) => require(path.join(d, 'index.js')));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'walnut-loop-cost-'));
  const seen = {};
  for (let r = 0; r < rounds; r++) {
    const order = [];
    for (let b = 0; b < libs.length; b++) for (const k of ['/dev/null', 'file']) order.push([b, k]);
    if (r % 2 === 1) order.reverse();
    for (const [b, k] of order) (seen[`${b}|${k}`] ??= []).push(await once(libs[b], dir, k));
  }
  fs.rmSync(dir, { recursive: true, force: true });
  const med = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const fmt = (xs) => `${med(xs).toFixed(2)} (${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)})`;
  for (const [key, list] of Object.entries(seen)) {
    const [b, k] = key.split('|');
    console.log(`${b === '0' ? 'walnut' : dists[b]}  to ${k}: ${list[0].commits} commits; event loop µs/commit ${fmt(list.map((x) => x.loop))}; process CPU µs/commit ${fmt(list.map((x) => x.cpu))}; wall µs/commit ${fmt(list.map((x) => x.wall))}`);
  }
})();
