// bench/replicate: replication to NATS JetStream (issue #22), against a nats-server started here
// (Debian's 2.9, scripts/install-nats.sh) on loopback, storage in a temporary directory.
//   throughput  64 walnut committers (one-page commits, synchronous full) with replication off,
//               on (store.replicateTo: the publisher on a worker thread, the default) and on with
//               thread: false (the publisher on the store's event loop); no replica; interleaved
//               rounds, the order rotated every round: commits/s, ratio on/off (median of
//               per-round ratios, spread), p99, CPU µs per commit on the main thread (the
//               store's event loop: /proc/self/task/<pid>/stat), in the whole process and in the
//               nats-server (/proc/<pid>/stat), the
//               JetStream publish rate (messages/s, commits/s acknowledged), the most messages
//               in flight, and the commits the export had seen by the end of the round
//   steady      the same three cases with one store per case replicating for the whole run and a
//               warm-up round discarded (a long-running primary: no new worker, base image or first
//               full page sends inside a round); CPU counted until the stream acknowledged the round
//   lag         the primary paced at TARGET commits/s (default 5,000) with an in-process replica:
//               per batch applied, the replica's apply time less the time the primary's export
//               stamped the batch's last commit (ms; the stamp is taken when the export sees the
//               commit, <= 4 ms after it): p50/p99, and the replica's apply rate (commits/s);
//               split into stages: the commit resolved -> the export queued it (export), the
//               export queued it -> the stream acknowledged it (event 'published'; itself split
//               into queued -> the message sent, and sent -> acknowledged), and the rest
//               (consumer delivery, batching, apply); CPU µs per commit of the process (primary,
//               publisher and replica) and of the nats-server; with the publisher on a worker thread
//               (THREAD=0: on the store's loop). The paced load runs WARMUP seconds (default 1)
//               before SECONDS are measured: the first second of a new database, its first
//               base image and a replica just opened (JIT, first page versions) showed lags of
//               250-480 ms that steady state never reaches; the whole run's p99 is printed too.
//   failover    (FAILOVER runs, default 3; 0 skips) a 3-node cluster, R=3, 8 paced committers and
//               a replica; the stream's leader is SIGKILLed: seconds from the kill until commits
//               made after it are acknowledged (publishing again) and applied by the replica
//   bytes       one-row-sized updates (a 60-byte change, plus 4 bytes of page header) of 4 KiB
//               pages, delta encoding on vs off: bytes published per commit
// WALNUT_BENCH_BASELINE=<other dist/> adds that build's store replicating on a worker thread to
// the steady part (case 'baseline', interleaved in the same rounds; its x off against this
// build's off, and this build's worker / baseline per round).
// The bound for throughput is replication off (1.00x): replication adds the export's page-cache
// reads, the framing and the publishes on the same two cores. The VM is shared: expect noise.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const net = require('node:net');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');
const { drive, table } = require('./harness');

const SECONDS = Number(process.env.WALNUT_BENCH_SECONDS || 2);
const WARMUP = Number(process.env.WALNUT_BENCH_WARMUP ?? 1);
const ROUNDS = Number(process.env.WALNUT_BENCH_ROUNDS || 4);
const TARGET = Number(process.env.WALNUT_BENCH_RATE || 5000);
const FAILOVER = Number(process.env.WALNUT_BENCH_FAILOVER ?? 3);
// WALNUT_BENCH_STEADY=N: rounds of the steady-state throughput part (default ROUNDS; 0 skips)
const STEADY = Number(process.env.WALNUT_BENCH_STEADY ?? ROUNDS);
const THREAD = process.env.WALNUT_BENCH_THREAD !== '0';
// WALNUT_BENCH_BACKGROUND=1: the lag part's worker thread in the background class (background: true)
const BACKGROUND = process.env.WALNUT_BENCH_BACKGROUND === '1';
// WALNUT_BENCH_COMMITS=N: each throughput round makes N commits (64 committers, N/64 each) and
// waits until the stream acknowledged them, instead of running SECONDS: the same work in every
// case and round (a base image and the first sends of each page amortized alike), so CPU µs
// per commit compares across cases and builds on a loaded machine
const COMMITS = Number(process.env.WALNUT_BENCH_COMMITS || 0);
// WALNUT_BENCH_NATS_DIR=<dir>: the nats-server's store there (e.g. /dev/shm: a stand-in for a
// log on other machines, whose disk the primary's fdatasync does not share); default beside the
// database, on the same disk
const NATS_DIR = process.env.WALNUT_BENCH_NATS_DIR || '';
const CLK_TCK = 100; // getconf CLK_TCK on Linux

/** CPU µs this process's main thread has used (Linux; 10 ms ticks). */
function mainThreadMicros() {
  try {
    const f = fs.readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1e6) / CLK_TCK; // utime, stime (fields 14, 15)
  } catch {
    return NaN;
  }
}
/** CPU µs a child process (the nats-server) has used. */
function childMicros(pid) {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1e6) / CLK_TCK;
  } catch {
    return NaN;
  }
}
const processMicros = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const spread = (xs) => `${median(xs).toFixed(2)} (${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)})`;
const pct = (xs, p) => xs.slice().sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))];

function natsBinary() {
  for (const dir of [...(process.env.PATH || '').split(':'), '/usr/sbin']) {
    const f = path.join(dir, 'nats-server');
    if (dir && fs.existsSync(f)) return f;
  }
  return null;
}

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = s.address().port;
      s.close(() => resolve(port));
    });
  });
}

async function startServer(dir, extra = []) {
  const port = await freePort();
  const child = spawn(natsBinary(), ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', dir, ...extra], { stdio: 'ignore' });
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise((r) => net.connect(port, '127.0.0.1').once('connect', function () { this.destroy(); r(true); }).once('error', () => r(false)));
    if (ok) return { url: `nats://127.0.0.1:${port}`, child };
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('nats-server did not start');
}

/** WALNUT_BENCH_COMMITS commits by 64 committers, then (replicating) until the stream has them all: commits/s and p99 as drive() reports them. */
async function fixedWork(commit, r) {
  const t0 = performance.now();
  const times = [];
  await Promise.all(Array.from({ length: 64 }, async (_, w) => {
    for (let i = 0; i < COMMITS / 64; i++) {
      const t = performance.now();
      await commit(w, i);
      times.push(performance.now() - t);
    }
  }));
  const perSecond = COMMITS / ((performance.now() - t0) / 1000);
  while (r !== null && r.metrics().publishedSeq < COMMITS) await new Promise((res) => setTimeout(res, 5));
  return { perSecond, p99: pct(times, 99) * 1000 };
}

let n = 0;
/** kase: 'off', 'thread' (the publisher on a worker thread), 'loop' (on the store's event loop). */
async function throughput(walnut, dir, server, kase) {
  const url = server.url;
  const db = path.join(dir, `t${n++}.db`);
  const store = await walnut.open(db);
  const r = kase === 'off' ? null : store.replicateTo({ servers: url, stream: `t${n}`, thread: kase === 'thread' });
  await r?.ready;
  const data = Buffer.alloc(4096, 3);
  const t0 = performance.now();
  const cpu0 = [mainThreadMicros(), processMicros(), childMicros(server.child.pid)];
  const commit = (w, i) => store.commit([{ pgno: 2 + ((w * 7919 + i) % 5000), data }]);
  const res = COMMITS > 0 ? await fixedWork(commit, r) : await drive(64, SECONDS, commit);
  const elapsed = (performance.now() - t0) / 1000;
  const commits = COMMITS > 0 ? COMMITS : res.perSecond * elapsed;
  const mainCpu = (mainThreadMicros() - cpu0[0]) / commits;
  const processCpu = (processMicros() - cpu0[1]) / commits;
  const serverCpu = (childMicros(server.child.pid) - cpu0[2]) / commits;
  const m0 = r?.metrics();
  await r?.stop();
  await store.close();
  for (const s of ['', '-wal', '-shm']) fs.rmSync(db + s, { force: true });
  return { rate: res.perSecond, p99: res.p99, mainCpu, processCpu, serverCpu, messagesPerSecond: m0 ? m0.messages / elapsed : 0, publishedPerSecond: m0 ? m0.publishedSeq / elapsed : 0, peak: m0?.peakInFlight ?? 0, exportedShare: m0 ? m0.exportedSeq / (res.perSecond * elapsed) : 0 };
}

/**
 * Steady state: one store per case, opened and replicating once for the whole run, with a
 * discarded warm-up round: what a long-running primary pays per commit. The fresh rounds above
 * open a new database and start a new replication (a new worker: its JIT, the first base image,
 * every page's first full send) inside every 2 s round, which a primary pays once. A round's
 * CPU runs until the stream has acknowledged the round's commits, so a backlog is charged to the
 * case that made it, not to the next round's.
 */
const BASELINE = process.env.WALNUT_BENCH_BASELINE ? require(path.resolve(process.env.WALNUT_BENCH_BASELINE, 'index.js')) : null;

async function steady(walnut, dir, server, rounds) {
  const kases = ['off', 'thread', 'idle', 'loop', ...(BASELINE ? ['baseline'] : [])];
  const cases = {};
  for (const kase of kases) {
    const db = path.join(dir, `steady-${kase}.db`);
    const store = await (kase === 'baseline' ? BASELINE : walnut).open(db);
    const r = kase === 'off' ? null : store.replicateTo({ servers: server.url, stream: `steady-${kase}`, thread: kase !== 'loop', ...(kase === 'idle' ? { background: true } : {}) });
    await r?.ready;
    cases[kase] = { db, store, r, made: 0 };
  }
  const data = Buffer.alloc(4096, 3);
  const round = async (c) => {
    const cpu0 = [mainThreadMicros(), processMicros(), childMicros(server.child.pid)];
    let commits = 0;
    const res = await drive(64, SECONDS, async (w, i) => {
      await c.store.commit([{ pgno: 2 + ((w * 7919 + i + c.made) % 5000), data }]);
      commits++;
    });
    c.made += commits;
    // the stream's sequence numbers count this store's commits: wait until it acknowledged every
    // one made so far (at most 30 s; a slower stream shows as the next round's CPU)
    const until = performance.now() + 30_000;
    while (c.r !== null && c.r.metrics().publishedSeq < c.made && performance.now() < until) await new Promise((s) => setTimeout(s, 2));
    return { rate: res.perSecond, p99: res.p99, mainCpu: (mainThreadMicros() - cpu0[0]) / commits, processCpu: (processMicros() - cpu0[1]) / commits, serverCpu: (childMicros(server.child.pid) - cpu0[2]) / commits };
  };
  try {
    for (const kase of kases) await round(cases[kase]); // warm-up, discarded
    const runs = Object.fromEntries(kases.map((k) => [k, []]));
    const ratios = Object.fromEntries(kases.slice(1).map((k) => [k, []]));
    ratios.threadOverBaseline = [];
    ratios.idleOverThread = [];
    for (let i = 0; i < rounds; i++) {
      const order = kases.map((_, j) => kases[(j + i) % kases.length]);
      const res = {};
      for (const kase of order) res[kase] = await round(cases[kase]);
      for (const kase of kases) runs[kase].push(res[kase]);
      for (const kase of kases.slice(1)) ratios[kase].push(res[kase].rate / res.off.rate);
      if (BASELINE) ratios.threadOverBaseline.push(res.thread.rate / res.baseline.rate);
      ratios.idleOverThread.push(res.idle.rate / res.thread.rate);
    }
    return { runs, ratios };
  } finally {
    for (const kase of kases) {
      await cases[kase].r?.stop();
      await cases[kase].store.close();
    }
  }
}

async function lag(walnut, dir, server) {
  const url = server.url;
  const db = path.join(dir, 'lag.db');
  const store = await walnut.open(db);
  const r = store.replicateTo({ servers: url, stream: 'lag', thread: THREAD, background: BACKGROUND });
  await r.ready;
  const replica = await walnut.openReplica(path.join(dir, 'lag-replica.db'), { servers: url, stream: 'lag' });
  const lags = [];
  const publishAges = [];
  const queuedStage = [];
  const ackStage = [];
  // commits resolve in the order of the WAL, the session numbers them from 1 (a new database):
  // commit seq resolved at resolvedAt[seq - 1]
  const resolvedAt = [];
  const acked = [];
  const endToEnd = [];
  const wholeLags = [];
  let measuring = false; // after the warm-up
  r.on('published', (e) => {
    if (!measuring) return;
    publishAges.push(e.ageMs);
    queuedStage.push(e.queuedMs);
    ackStage.push(e.ackMs);
    if (resolvedAt[e.seq - 1] !== undefined) acked.push(performance.now() - resolvedAt[e.seq - 1]);
  });
  let applied = 0;
  replica.on('applied', (e) => {
    wholeLags.push(e.lagMs);
    if (!measuring) return;
    lags.push(e.lagMs);
    if (resolvedAt[e.seq - 1] !== undefined) endToEnd.push(performance.now() - resolvedAt[e.seq - 1]);
    applied += e.commits;
  });
  const data = Buffer.alloc(4096, 5);
  const inFlight = new Set();
  const start = performance.now();
  let t0 = start;
  let issued = 0;
  let measuredFrom = 0; // commits issued before the measured window
  let cpu0 = [0, 0];
  while (performance.now() - t0 < SECONDS * 1000 || !measuring) {
    if (!measuring && performance.now() - start >= WARMUP * 1000) {
      measuring = true;
      t0 = performance.now();
      measuredFrom = issued;
      applied = 0;
      cpu0 = [processMicros(), childMicros(server.child.pid)];
    }
    const due = Math.floor(((performance.now() - start) / 1000) * TARGET) - issued;
    for (let k = 0; k < due; k++, issued++) {
      const p = store.commit([{ pgno: 2 + (issued % 3000), data }]).then(() => resolvedAt.push(performance.now())).finally(() => inFlight.delete(p));
      inFlight.add(p);
    }
    await new Promise((res) => setTimeout(res, 1));
  }
  await Promise.all(inFlight);
  // the process (primary, its publisher and the replica) and the nats-server, per commit of the measured window
  const processCpu = (processMicros() - cpu0[0]) / (issued - measuredFrom);
  const serverCpu = (childMicros(server.child.pid) - cpu0[1]) / (issued - measuredFrom);
  const achieved = (issued - measuredFrom) / ((performance.now() - t0) / 1000);
  const applyStart = performance.now();
  await r.stop();
  const m = r.metrics();
  await replica.waitFor(m.publishedSeq, m.session);
  const drain = performance.now() - applyStart;
  const rate = applied / ((performance.now() - t0) / 1000);
  await replica.close();
  await store.close();
  return { achieved, wholeP99: pct(wholeLags, 99), p50: pct(lags, 50), p99: pct(lags, 99), batches: lags.length, applyRate: rate, drainMs: drain, publishP50: pct(publishAges, 50), publishP99: pct(publishAges, 99), queuedP50: pct(queuedStage, 50), queuedP99: pct(queuedStage, 99), ackP50: pct(ackStage, 50), ackP99: pct(ackStage, 99), processCpu, serverCpu, acks: publishAges.length, peak: m.peakInFlight, ackedP50: pct(acked, 50), ackedP99: pct(acked, 99), e2eP50: pct(endToEnd, 50), e2eP99: pct(endToEnd, 99), e2e: endToEnd.length };
}

async function bytesPerCommit(walnut, dir, url, delta) {
  const db = path.join(dir, `b${n++}.db`);
  const store = await walnut.open(db);
  const pages = Array.from({ length: 64 }, (_, p) => Buffer.alloc(4096, p));
  for (let p = 0; p < 64; p++) await store.commit([{ pgno: 2 + p, data: pages[p] }]); // before replication: in its base image
  await store.checkpoint('passive');
  const r = store.replicateTo({ servers: url, stream: `b${n}`, delta });
  await r.ready;
  const before = r.metrics();
  const COMMITS = 2000;
  for (let i = 0; i < COMMITS; i++) {
    const p = i % 64;
    const page = pages[p];
    page.writeUInt32BE(i, 1); // the page header's cell count / content offset
    page.fill(i & 0xff, 1000 + ((i * 61) % 3000), 1060 + ((i * 61) % 3000)); // a 60-byte row
    await store.commit([{ pgno: 2 + p, data: page }]);
  }
  await r.stop();
  const m = r.metrics();
  await store.close();
  return (m.bytesPublished - before.bytesPublished) / COMMITS;
}

/** A 3-node JetStream cluster on loopback (routes between them). */
async function startCluster(dir) {
  const ports = [];
  for (let i = 0; i < 3; i++) ports.push({ client: await freePort(), route: await freePort() });
  const routes = ports.map((p) => `nats-route://127.0.0.1:${p.route}`).join(',');
  const nodes = [];
  for (let i = 0; i < 3; i++) {
    const extra = ['-n', `n${i}`, '--cluster_name', 'bench', '--cluster', `nats://127.0.0.1:${ports[i].route}`, '--routes', routes];
    nodes.push(startServer(path.join(dir, `n${i}`), extra).then((s) => ({ ...s, name: `n${i}` })));
  }
  return Promise.all(nodes);
}

/** Seconds from SIGKILLing the stream's leader until publishing and the replica's applying go on. */
async function failover(walnut, dir, run) {
  const nodes = await startCluster(path.join(dir, `cluster${run}`));
  const servers = nodes.map((x) => x.url);
  try {
    const store = await walnut.open(path.join(dir, `fo${run}.db`));
    const r = store.replicateTo({ servers, stream: 'fo', replicas: 3 });
    await r.ready;
    const replica = await walnut.openReplica(path.join(dir, `fo${run}-replica.db`), { servers: [...servers].reverse(), stream: 'fo' });
    let killedAt = 0;
    let mark = Infinity;
    let published = 0;
    let applied = 0;
    r.on('published', (e) => {
      if (killedAt > 0 && published === 0 && e.seq > mark) published = (performance.now() - killedAt) / 1000;
    });
    replica.on('applied', (e) => {
      if (killedAt > 0 && applied === 0 && e.seq > mark) applied = (performance.now() - killedAt) / 1000;
    });
    let stop = false;
    const data = Buffer.alloc(4096, 1);
    const writers = Promise.all(Array.from({ length: 8 }, async (_, w) => {
      while (!stop) {
        await store.commit([{ pgno: 3 + w, data }]);
        await new Promise((res) => setTimeout(res, 2));
      }
    }));
    while (replica.lag().appliedCommits < 200) await new Promise((res) => setTimeout(res, 20));
    const { connect } = require('@nats-io/transport-node');
    const { jetstreamManager } = require('@nats-io/jetstream');
    const nc = await connect({ servers });
    const leader = (await (await jetstreamManager(nc)).streams.info('fo')).cluster?.leader;
    await nc.close();
    mark = r.metrics().exportedSeq;
    killedAt = performance.now();
    nodes.find((x) => x.name === leader).child.kill('SIGKILL');
    const deadline = performance.now() + 60_000;
    while ((published === 0 || applied === 0) && performance.now() < deadline) await new Promise((res) => setTimeout(res, 10));
    stop = true;
    await writers;
    await r.stop();
    await replica.close();
    await store.close();
    return { published, applied };
  } finally {
    for (const x of nodes) x.child.kill('SIGKILL');
  }
}

async function main() {
  if (natsBinary() === null || spawnSync(natsBinary(), ['--version']).status !== 0) {
    console.log('bench/replicate: nats-server is not installed (scripts/install-nats.sh): skipped');
    return;
  }
  const walnut = require('../dist/index.js');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'walnut-bench-replicate-'));
  const natsDir = NATS_DIR ? fs.mkdtempSync(path.join(NATS_DIR, 'walnut-bench-nats-')) : path.join(dir, 'nats');
  const server = await startServer(natsDir);
  try {
    const kases = ['off', 'thread', 'loop'];
    const runs = { off: [], thread: [], loop: [] };
    const ratios = { thread: [], loop: [] };
    const p99s = { thread: [], loop: [] };
    for (let round = 0; round < ROUNDS; round++) { // WALNUT_BENCH_ROUNDS=0: the lag, failover and bytes parts only
      const order = kases.map((_, i) => kases[(i + round) % kases.length]);
      const res = {};
      for (const kase of order) res[kase] = await throughput(walnut, dir, server, kase);
      for (const kase of kases) runs[kase].push(res[kase]);
      for (const kase of ['thread', 'loop']) {
        ratios[kase].push(res[kase].rate / res.off.rate);
        p99s[kase].push(res[kase].p99 / res.off.p99);
      }
    }
    if (ROUNDS > 0) console.log(`throughput, 64 committers, ${ROUNDS} rounds of ${SECONDS} s (load ${os.loadavg()[0].toFixed(1)})`);
    const row = (name, kase) => {
      const xs = runs[kase];
      const on = kase !== 'off';
      return { case: name, 'commits/s': Math.round(median(xs.map((x) => x.rate))), 'x off': on ? spread(ratios[kase]) : '', 'p99 µs': Math.round(median(xs.map((x) => x.p99))), 'p99 x off': on ? spread(p99s[kase]) : '', 'main µs/commit': median(xs.map((x) => x.mainCpu)).toFixed(1), 'process µs/commit': median(xs.map((x) => x.processCpu)).toFixed(1), 'nats-server µs/commit': on ? median(xs.map((x) => x.serverCpu)).toFixed(1) : '', 'publish msg/s': on ? Math.round(median(xs.map((x) => x.messagesPerSecond))) : '', 'commits acked/s': on ? Math.round(median(xs.map((x) => x.publishedPerSecond))) : '', 'peak in flight': on ? Math.max(...xs.map((x) => x.peak)) : '', 'exported': on ? `${Math.round(100 * median(xs.map((x) => x.exportedShare)))}%` : '' };
    };
    if (ROUNDS > 0) console.log(table([row('replication off', 'off'), row('on, worker thread', 'thread'), row("on, store's loop", 'loop')], ['case', 'commits/s', 'x off', 'p99 µs', 'p99 x off', 'main µs/commit', 'process µs/commit', 'nats-server µs/commit', 'publish msg/s', 'commits acked/s', 'peak in flight', 'exported']));
    if (STEADY > 0) {
      const st = await steady(walnut, dir, server, STEADY);
      const srow = (name, kase) => {
        const xs = st.runs[kase];
        const on = kase !== 'off';
        return { case: name, 'commits/s': Math.round(median(xs.map((x) => x.rate))), 'x off': on ? spread(st.ratios[kase]) : '', 'p99 µs': Math.round(median(xs.map((x) => x.p99))), 'main µs/commit': median(xs.map((x) => x.mainCpu)).toFixed(1), 'process µs/commit': median(xs.map((x) => x.processCpu)).toFixed(1), 'nats-server µs/commit': on ? median(xs.map((x) => x.serverCpu)).toFixed(1) : '' };
      };
      console.log(`\nsteady state, 64 committers: one store per case replicating for the whole run, a warm-up round discarded, ${STEADY} rounds of ${SECONDS} s, CPU until the stream acknowledged the round (load ${os.loadavg()[0].toFixed(1)})`);
      console.log(table([srow('replication off', 'off'), srow('on, worker thread', 'thread'), srow('on, worker thread, background class', 'idle'), srow("on, store's loop", 'loop'), ...(BASELINE ? [srow('baseline build, worker thread', 'baseline')] : [])], ['case', 'commits/s', 'x off', 'p99 µs', 'main µs/commit', 'process µs/commit', 'nats-server µs/commit']));
      console.log(`worker thread in the background class (background: true) / in the normal class (the default): ${spread(st.ratios.idleOverThread)} (median of per-round ratios)`);
      if (BASELINE) console.log(`worker thread, this build / baseline build: ${spread(st.ratios.threadOverBaseline)} (median of per-round ratios)`);
    }
    const l = await lag(walnut, dir, server);
    console.log(`\nlag at ${TARGET} commits/s offered (${Math.round(l.achieved)} achieved), ${SECONDS} s after ${WARMUP} s of warm-up at that rate: replica lag p50 ${l.p50} ms, p99 ${l.p99} ms over ${l.batches} batches (the whole run, warm-up included: p99 ${l.wholeP99} ms); replica apply rate ${Math.round(l.applyRate)} commits/s; drained ${Math.round(l.drainMs)} ms after the last commit`);
    console.log(`  stage: export queued -> stream acknowledged p50 ${Math.round(l.publishP50)} ms, p99 ${Math.round(l.publishP99)} ms over ${l.acks} acks (peak ${l.peak} messages in flight); the rest of the lag is delivery, batching and apply`);
    console.log(`    of which queued -> the message sent p50 ${l.queuedP50.toFixed(1)} ms, p99 ${l.queuedP99.toFixed(1)} ms; sent -> acknowledged p50 ${l.ackP50.toFixed(1)} ms, p99 ${l.ackP99.toFixed(1)} ms (the rest: acks of messages ahead)`);
    console.log(`  CPU per commit: process ${l.processCpu.toFixed(1)} µs (primary, publisher, replica), nats-server ${l.serverCpu.toFixed(1)} µs (load ${os.loadavg()[0].toFixed(1)})`);
    console.log(`  from the commit's resolve: -> acknowledged p50 ${Math.round(l.ackedP50)} ms, p99 ${Math.round(l.ackedP99)} ms; -> applied by the replica p50 ${Math.round(l.e2eP50)} ms, p99 ${Math.round(l.e2eP99)} ms over ${l.e2e} batches (publisher ${THREAD ? 'on a worker thread' : "on the store's loop"})`);
    if (FAILOVER > 0) {
      const runs = [];
      for (let run = 0; run < FAILOVER; run++) runs.push(await failover(walnut, dir, run));
      const s = (xs) => `${median(xs).toFixed(1)} s (${Math.min(...xs).toFixed(1)}-${Math.max(...xs).toFixed(1)})`;
      console.log(`\nfailover, 3-node cluster R=3, stream leader SIGKILLed, ${FAILOVER} runs: publishing again after ${s(runs.map((x) => x.published))}, replica applying new commits after ${s(runs.map((x) => x.applied))}`);
    }
    const full = await bytesPerCommit(walnut, dir, server.url, false);
    const delta = await bytesPerCommit(walnut, dir, server.url, true);
    console.log(`\nbytes published per one-row commit (4 KiB pages): full pages ${Math.round(full)}, delta ${Math.round(delta)} = ${(delta / full).toFixed(3)}x`);
  } finally {
    server.child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
    if (NATS_DIR) fs.rmSync(natsDir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
