// bench/commit-turnaround: the JavaScript work between two batches, measured at the native
// boundary (issue #19: "<= 60 µs of JS per batch of 64").
//
// With 64 closed-loop committers every committer is in the batch being synced, so the disk
// idles from one batch's completion until the next batch is submitted. This probe wraps the
// native calls (nativeFrames.append/appendSync, the only way a commit reaches the WAL) and
// records, per batch:
//   turnaround   native completion of batch n (the first reaction to its promise) -> the call
//                that submits batch n+1 (all synchronous JS: nothing in between waits for I/O
//                unless a WRITE run ends, which the probe counts separately)
//   publish      completion -> WalIndex.appendAndPublish settled: the WalFile's adoption, the
//                -shm checks, the index append and the header publish
//   commit()     the 64 committers' store.commit() calls themselves (validation, Pending, promise)
//   marshal      the native call itself (arguments parsed, frame headers built, op queued)
// and the same turnaround for the fair fs.promises group commit (datasync done -> next writev)
// and for the raw loop. For one committer: µs per commit outside the native appendSync
// (which is pwritev + fdatasync + the window check) against a bare pwritev + fdatasync loop.
// Interleaved rounds as bench/commit.js; percentiles over all batches of a round, then the
// median round. On this shared VM the p10 is the closest to the work itself (a batch whose
// turnaround no other process preempted); the p50 and mean include the preemption. WALNUT_BENCH_SECONDS (default 1), WALNUT_BENCH_ROUNDS (default 5).
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { open, WalnutFile } = require('../dist/index.js');
const { nativeFrames } = require('../dist/native.js');
const { WalIndex } = require('../dist/wal-index/wal-index.js');
const { drive, table } = require('./harness');
const { fsGroupCommitter, prefill } = require('./commit');

const SECONDS = Number(process.env.WALNUT_BENCH_SECONDS || 1);
const ROUNDS = Number(process.env.WALNUT_BENCH_ROUNDS || 5);
const PAGE = 4096;
const now = () => performance.now() * 1000;

/** Exact samples (the telemetry histogram's buckets are too coarse for a median of ~50 µs). */
class Samples {
  #v = [];
  record(x) {
    this.#v.push(x);
  }
  get count() {
    return this.#v.length;
  }
  get mean() {
    return this.#v.reduce((a, b) => a + b, 0) / this.#v.length;
  }
  percentile(p) {
    const s = this.#v.slice().sort((a, b) => a - b);
    return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
  }
}

/** Per-batch probe state: the histograms of one round. */
function probe() {
  return { turnaround: new Samples(), publish: new Samples(), commitCalls: new Samples(), marshal: new Samples(), runEnds: 0, done: null, published: null, calls: 0 };
}
let cur = null;

function wrapNative() {
  const async = nativeFrames.append;
  nativeFrames.append = (...a) => {
    const t = now();
    if (cur !== null && cur.done !== null) {
      cur.turnaround.record(t - cur.done);
      if (cur.published !== null) cur.publish.record(cur.published - cur.done);
      cur.commitCalls.record(cur.calls);
    }
    const p = async(...a);
    if (cur !== null) {
      cur.marshal.record(now() - t);
      cur.done = null;
      cur.published = null;
      cur.calls = 0;
    }
    return p.then((v) => {
      if (cur !== null) cur.done = now();
      return v;
    });
  };
  const publish = WalIndex.prototype.appendAndPublish;
  WalIndex.prototype.appendAndPublish = function (...a) {
    return publish.apply(this, a).then((v) => {
      if (cur !== null) cur.published = now();
      return v;
    });
  };
  const endWrite = WalIndex.prototype.endWrite;
  WalIndex.prototype.endWrite = function (...a) {
    if (cur !== null) cur.runEnds++;
    return endWrite.apply(this, a);
  };
}

async function main() {
  wrapNative();
  const dir = fs.mkdtempSync(path.join(process.env.WALNUT_BENCH_DIR || os.tmpdir(), 'walnut-turnaround-'));
  const data = Buffer.alloc(PAGE, 0x5a);
  const store = await open(path.join(dir, 'w.db'), { autoCheckpoint: false });
  const lone = await open(path.join(dir, 'w1.db'), { autoCheckpoint: false });
  const timedCommit = (s) => (w, i) => {
    const t = now();
    const p = s.commit([{ pgno: 2 + ((w * 7919 + i) % 5000), data }]);
    if (cur !== null) cur.calls += now() - t;
    return p;
  };
  prefill(path.join(dir, 'fs.bin'), 16 << 20);
  const fh = await fs.promises.open(path.join(dir, 'fs.bin'), 'r+');
  // the peer's turnaround: datasync done -> next writev
  const fsProbe = { fh: { writev: (b, o) => { const t = now(); if (cur?.done != null) cur.turnaround.record(t - cur.done); return fh.writev(b, o); }, datasync: () => fh.datasync().then(() => { if (cur !== null) cur.done = now(); }) } };
  const fsgc = fsGroupCommitter(fsProbe.fh, { batches: 0 });
  prefill(path.join(dir, 'raw.wal'), 16 << 20);
  const raw = await WalnutFile.open(path.join(dir, 'raw.wal'));
  const frame = [Buffer.alloc(24, 1), data];
  const appendSync = nativeFrames.appendSync;
  let nativeUs = 0;
  nativeFrames.appendSync = (...a) => {
    const t = now();
    try {
      return appendSync(...a);
    } finally {
      nativeUs += now() - t;
    }
  };
  const cases = {
    'walnut-64-noac': () => drive(64, SECONDS, timedCommit(store)),
    'fsgc-64': () => drive(64, SECONDS, () => fsgc(data)),
    'walnut-1-noac': async () => {
      const outside = new Samples();
      const t0 = now();
      let n = 0;
      for (const end = t0 + SECONDS * 1e6; now() < end; n++) {
        nativeUs = 0;
        const t = now();
        await lone.commit([{ pgno: 2 + ((n * 7919) % 5000), data }]);
        outside.record(now() - t - nativeUs);
      }
      return { perCommit: (now() - t0) / n, outsideNative: outside.percentile(50), outsideNative10: outside.percentile(10) };
    },
    'raw-1': async () => {
      const t0 = now();
      let n = 0;
      for (const end = t0 + SECONDS * 1e6; now() < end; n++) raw.writevSync(frame, 32 + (n % 2000) * 4120, 'data');
      return { perCommit: (now() - t0) / n };
    },
  };
  for (const c of Object.values(cases)) await c(); // warm-up
  const res = Object.fromEntries(Object.keys(cases).map((n) => [n, []]));
  const names = Object.keys(cases);
  for (let r = 0; r < ROUNDS; r++) {
    for (const n of names.slice(r % names.length).concat(names.slice(0, r % names.length))) {
      cur = probe();
      const x = await cases[n]();
      const p = cur;
      cur = null;
      res[n].push({ ...x, turnaround: p.turnaround.count ? p.turnaround.percentile(50) : null, turnaround10: p.turnaround.count ? p.turnaround.percentile(10) : null, publish10: p.publish.count ? p.publish.percentile(10) : null, turnaroundMean: p.turnaround.count ? p.turnaround.mean : null, publish: p.publish.count ? p.publish.percentile(50) : null, commitCalls: p.commitCalls.count ? p.commitCalls.percentile(50) : null, marshal: p.marshal.count ? p.marshal.percentile(50) : null, batches: p.turnaround.count, runEnds: p.runEnds });
    }
  }
  await store.close();
  await lone.close();
  await fh.close();
  await raw.close();
  fs.rmSync(dir, { recursive: true, force: true });
  const med = (a) => {
    const s = a.filter((v) => v !== null && v !== undefined).sort((x, y) => x - y);
    return s.length === 0 ? '' : Math.round(s[Math.floor(s.length / 2)]);
  };
  const rows = names.map((n) => {
    const col = (k) => res[n].map((x) => x[k]);
    return { case: n, 'turnaround p10 µs': med(col('turnaround10')), 'turnaround p50 µs': med(col('turnaround')), 'turnaround mean µs': med(col('turnaroundMean')), 'publish p10 µs': med(col('publish10')), 'publish p50 µs': med(col('publish')), 'commit() calls µs': med(col('commitCalls')), 'marshal µs': med(col('marshal')), 'µs/commit': med(col('perCommit')), 'outside native p10/p50 µs/commit': n === 'walnut-1-noac' ? `${med(col('outsideNative10'))}/${med(col('outsideNative'))}` : '', 'batches/round': med(col('batches')), 'WRITE run ends/round': med(col('runEnds')) };
  });
  console.log(table(rows, Object.keys(rows[0])));
  console.log(`${ROUNDS} rounds x ${SECONDS} s, interleaved; load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(2);
});
