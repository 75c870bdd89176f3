// bench/io: walnut's promise I/O vs fs.promises vs fs.*Sync on the same file system, one run.
//  - 4 KiB append + fdatasync latency (sequential commits, the WAL commit shape)
//  - 1 MiB pwritev throughput (4 x 256 KiB buffers per call, page cache)
//  - event-loop delay (monitorEventLoopDelay) while 10,000 append+fdatasync run, 4 in flight
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { monitorEventLoopDelay } = require('node:perf_hooks');
const { runAsyncRounds, runSync } = require('./harness');
const { WalnutFile } = require('../dist/index.js');

const dir = fs.mkdtempSync(path.join(process.env.WALNUT_BENCH_DIR || os.tmpdir(), 'walnut-bench-io-'));
const page = Buffer.alloc(4096, 0x5a);
const mib = [0, 1, 2, 3].map((i) => Buffer.alloc(256 * 1024, i));
const WRAP = 64 << 20; // appends wrap around within 64 MiB so the file stays small

async function eventLoopDelay(label, syncOnce) {
  const h = monitorEventLoopDelay({ resolution: 1 });
  // a timer that must keep firing while syncs run: this is what a server's other work feels
  h.enable();
  let done = 0;
  const total = 10_000;
  const worker = async () => {
    while (done < total) {
      done++;
      await syncOnce(done);
    }
  };
  const t0 = process.hrtime.bigint();
  await Promise.all([worker(), worker(), worker(), worker()]);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  h.disable();
  return { label, p99: h.percentile(99) / 1e6, max: h.max / 1e6, mean: h.mean / 1e6, ms };
}

async function run() {
  const wf = await WalnutFile.open(path.join(dir, 'walnut.bin'), { create: true, truncate: true });
  const ph = await fs.promises.open(path.join(dir, 'promises.bin'), 'w+');
  const sfd = fs.openSync(path.join(dir, 'sync.bin'), 'w+');
  let a = 0;
  let b = 0;
  let c = 0;
  const lat = await runAsyncRounds({
    'append+fdatasync walnut (promise)': async () => {
      await wf.write(page, 0, 4096, a);
      await wf.fdatasync();
      a = (a + 4096) % WRAP;
    },
    'append+fdatasync walnut (one writev op)': async () => {
      await wf.writev([page], a, 'data');
      a = (a + 4096) % WRAP;
    },
    'append+fdatasync fs.promises': async () => {
      await ph.write(page, 0, 4096, b);
      await ph.datasync();
      b = (b + 4096) % WRAP;
    },
    'append+fdatasync fs.writeSync+fdatasyncSync': async () => {
      fs.writeSync(sfd, page, 0, 4096, c);
      fs.fdatasyncSync(sfd);
      c = (c + 4096) % WRAP;
    },
  }, { maxTime: 1.5, rounds: 3 });

  let pa = 0;
  let pb = 0;
  let pc = 0;
  const thr = await runAsyncRounds({
    'pwritev 1 MiB walnut (promise)': async () => {
      await wf.writev(mib, pa);
      pa = (pa + (1 << 20)) % WRAP;
    },
    'pwritev 1 MiB fs.promises': async () => {
      await ph.writev(mib, pb);
      pb = (pb + (1 << 20)) % WRAP;
    },
  }, { maxTime: 1, rounds: 3 });
  const syncThr = runSync({
    'pwritev 1 MiB fs.writevSync': () => {
      fs.writevSync(sfd, mib, pc);
      pc = (pc + (1 << 20)) % WRAP;
    },
  }, { maxTime: 2 });

  const eld = [];
  eld.push(await eventLoopDelay('walnut (promise)', async (i) => {
    const pos = (i * 4096) % WRAP;
    await wf.write(page, 0, 4096, pos);
    await wf.fdatasync();
  }));
  eld.push(await eventLoopDelay('fs.promises', async (i) => {
    const pos = (i * 4096) % WRAP;
    await ph.write(page, 0, 4096, pos);
    await ph.datasync();
  }));

  await wf.close();
  await ph.close();
  fs.closeSync(sfd);
  fs.rmSync(dir, { recursive: true, force: true });

  const rows = [];
  const peerLat = lat['append+fdatasync fs.promises'].mean;
  for (const [name, r] of Object.entries(lat)) {
    rows.push({ case: name, 'mean ms': r.mean.toFixed(3), 'p50 ms': r.p50.toFixed(3), 'p99 ms': r.p99.toFixed(3), 'ops/s': Math.round(r.hz), 'x fs.promises': (peerLat / r.mean).toFixed(2) });
  }
  const peerThr = thr['pwritev 1 MiB fs.promises'].hz;
  for (const [name, r] of Object.entries(thr)) {
    rows.push({ case: name, 'mean ms': r.mean.toFixed(3), 'GB/s': (r.hz / 1024).toFixed(2), 'x fs.promises': (r.hz / peerThr).toFixed(2) });
  }
  const sHz = syncThr['pwritev 1 MiB fs.writevSync'];
  rows.push({ case: 'pwritev 1 MiB fs.writevSync', 'mean ms': (1e3 / sHz).toFixed(3), 'GB/s': (sHz / 1024).toFixed(2), 'x fs.promises': (sHz / peerThr).toFixed(2) });
  for (const e of eld) {
    // the histogram holds intervals of a 1 ms timer: the delay is what exceeds 1 ms
    rows.push({ case: `event-loop delay p99 over a 1 ms timer, 10k syncs: ${e.label}`, 'p99 ms': Math.max(0, e.p99 - 1).toFixed(3), 'ops/s': Math.round(10_000 / (e.ms / 1e3)) });
  }
  return { rows, columns: ['case', 'mean ms', 'p50 ms', 'p99 ms', 'ops/s', 'GB/s', 'x fs.promises'] };
}

module.exports = { run };
