// bench/fec: the -wal-fec sidecar. (1) Encode throughput of the repair symbols, rs (native) vs
// raptorq (wasm), on the same 64 frames of 4 KiB, R = 2 and 4 (GB/s of source pages).
// (2) Durable one-page commits/s with 64 committers, with fec { repairSymbols: 2 } vs without,
// same run, alternating rounds. (3) Repair time of a 64-frame group with 2 damaged frames
// (the repair pass of recovery: scan the sidecar, hash, decode, rewrite, fsync).
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { open } = require('../dist/index.js');
const { loadCodec } = require('../dist/fec/codec.js');
const { repairWal } = require('../dist/fec/repair.js');
const { WalFile } = require('../dist/wal/wal-file.js');
const { commitLoad } = require('./harness');
const { baseDatabase } = require('./fixtures');

const SECONDS = Number(process.env.WALNUT_BENCH_SECONDS || 2);
const ROUNDS = 3;

function median(xs) {
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function encodeRate(codec, data, k, r) {
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < 500) {
    codec.encode(data, k, 4096, r);
    n++;
  }
  return (n * data.length) / ((performance.now() - t0) / 1000) / 1e9;
}

async function run() {
  const rows = [];
  const notes = [];
  const k = 64;
  const data = new Uint8Array(k * 4096);
  for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24;
  const rs = await loadCodec('rs');
  const rq = await loadCodec('raptorq').catch(() => null);
  for (const r of [2, 4]) {
    const a = encodeRate(rs, data, k, r);
    rows.push({ case: `encode 64 x 4 KiB, R = ${r}`, system: 'walnut rs (native)', result: `${a.toFixed(2)} GB/s`, ratio: '1.00' });
    if (rq) {
      const b = encodeRate(rq, data, k, r);
      rows.push({ case: `encode 64 x 4 KiB, R = ${r}`, system: 'raptorq (wasm)', result: `${(b * 1000).toFixed(0)} MB/s`, ratio: (b / a).toFixed(3) });
    }
  }

  const dir = fs.mkdtempSync(path.join(process.env.WALNUT_BENCH_DIR || os.tmpdir(), 'walnut-bench-fec-'));
  const rates = { off: [], on: [] };
  for (let round = 0; round < ROUNDS; round++) {
    for (const mode of ['off', 'on']) {
      const file = path.join(dir, `c-${mode}-${round}.db`);
      const store = await open(file, mode === 'on' ? { fec: { repairSymbols: 2 } } : {});
      await store.commit([{ pgno: 5001, data: Buffer.alloc(4096) }]);
      const r = await commitLoad(store, 64, SECONDS);
      rates[mode].push(r.perSecond);
      if (mode === 'on') {
        const m = store.metrics().fec;
        if (round === ROUNDS - 1) notes.push(`fec run: ${m.groups} groups, ${(m.bytes / 1e6).toFixed(1)} MB of sidecar, ${m.backpressureWaits} back-pressure waits, ${m.writeErrors} write errors`);
      }
      await store.close();
    }
  }
  const off = median(rates.off);
  const on = median(rates.on);
  rows.push({ case: 'durable 4 KiB commits, 64 committers', system: 'walnut', result: `${off.toFixed(0)} commits/s`, ratio: '1.00' });
  rows.push({ case: 'durable 4 KiB commits, 64 committers', system: 'walnut + fec rs R=2', result: `${on.toFixed(0)} commits/s`, ratio: (on / off).toFixed(2) });

  // repair of one damaged 64-frame group (2 frames damaged), sidecar and WAL in the page cache
  const times = [];
  const { image } = baseDatabase(path.join(dir, 'base.db'), 400);
  for (let t = 0; t < 5; t++) {
    const file = path.join(dir, `rep-${t}.db`);
    fs.writeFileSync(file, image);
    const store = await open(file, { fec: { repairSymbols: 2 }, autoCheckpoint: false, keepWal: true });
    const pages = [];
    for (let p = 1; p <= 64; p++) pages.push({ pgno: p, data: image.subarray((p - 1) * 4096, p * 4096) });
    await store.commit(pages);
    await store.close();
    const fd = fs.openSync(`${file}-wal`, 'r+');
    fs.writeSync(fd, Buffer.alloc(4120), 0, 4120, 32 + 10 * 4120);
    fs.writeSync(fd, Buffer.alloc(100, 7), 0, 100, 32 + 40 * 4120 + 500);
    fs.closeSync(fd);
    const wal = WalFile.openSync(`${file}-wal`);
    const t0 = performance.now();
    const rep = await repairWal(wal);
    times.push(performance.now() - t0);
    wal.closeSync();
    if (rep.repairedFrames.length !== 2) throw new Error(`repair: ${JSON.stringify(rep)}`);
  }
  rows.push({ case: 'repair a 64-frame group, 2 frames damaged', system: 'walnut recovery repair pass', result: `${median(times).toFixed(2)} ms`, ratio: '' });
  fs.rmSync(dir, { recursive: true, force: true });
  notes.push('goals: rs encode >= 2 GB/s at R = 2; commits with fec >= 85% of without; repair of a 64-frame group < 5 ms');
  return { rows, columns: ['case', 'system', 'result', 'ratio'], notes };
}

module.exports = { run };
