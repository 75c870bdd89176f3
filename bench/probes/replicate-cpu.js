// bench/probes/replicate-cpu.js — where a replicating primary's CPU goes, per commit and per
// thread (issue #22): for each build given, one store replicating on a worker thread (steady:
// opened once, a warm-up round discarded) and, for the first build, one store with replication
// off; ROUNDS rounds of COMMITS one-page commits by 64 committers (each round waits until the
// stream acknowledged its commits), the cases interleaved, the order reversed every other round.
// Per round: CPU µs per commit of every thread of the process from /proc/self/task/*/stat,
// grouped by the thread's name (the store's thread is the process's pid: 'main'; a worker's
// JavaScript thread is the task whose name is the worker's), the whole process
// (process.cpuUsage) and the nats-server (/proc/<pid>/stat); each thread group's sleeps (voluntary
// context switches, /proc/self/task/*/status: its wake-ups) per 1,000 commits. Medians over the rounds.
//   [WALNUT_PROBE_REPLICATE=<json>] node bench/probes/replicate-cpu.js ROUNDS COMMITS <dist> [<dist> ...]
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const net = require('node:net');
const path = require('node:path');
const { spawn } = require('node:child_process');

const args = process.argv.slice(2);
const ROUNDS = Number(args.shift());
const COMMITS = Number(args.shift());
const dists = args.map((d) => path.resolve(d));
const CLK_TCK = 100;
/** More replicateTo options, as JSON (WALNUT_PROBE_REPLICATE='{"baseEveryCommits":1000000000}': the log's cost alone, no later base images). */
const extraOptions = JSON.parse(process.env.WALNUT_PROBE_REPLICATE ?? '{}');
/** Tasks born while a replication started: its worker's threads (named 'worker' below). */
const workerTids = new Set();

/** Every task of this process: tid -> { name, micros }. */
function tasks() {
  const out = new Map();
  for (const tid of fs.readdirSync('/proc/self/task')) {
    try {
      const s = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const name = s.slice(s.indexOf('(') + 1, s.lastIndexOf(')'));
      const f = s.slice(s.lastIndexOf(') ') + 2).split(' ');
      const st = fs.readFileSync(`/proc/self/task/${tid}/status`, 'utf8');
      const sleeps = Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(st)?.[1] ?? 0);
      out.set(tid, { name: Number(tid) === process.pid ? 'main' : workerTids.has(tid) ? `worker ${name}` : name, micros: ((Number(f[11]) + Number(f[12])) * 1e6) / CLK_TCK, sleeps });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}
function childMicros(pid) {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1e6) / CLK_TCK;
}
function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = s.address().port;
      s.close(() => resolve(port));
    });
  });
}
async function startServer(dir) {
  const port = await freePort();
  const child = spawn('nats-server', ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', dir], { stdio: 'ignore' });
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise((r) => net.connect(port, '127.0.0.1').once('connect', function () { this.destroy(); r(true); }).once('error', () => r(false)));
    if (ok) return { url: `nats://127.0.0.1:${port}`, child };
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('nats-server did not start');
}

(async () => {
  const libs = dists.map((d) => require(path.join(d, 'index.js')));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'walnut-repl-cpu-'));
  const server = await startServer(path.join(dir, 'nats'));
  const cases = [];
  try {
    const data = Buffer.alloc(4096, 3);
    for (const [b, lib] of libs.entries()) {
      for (const on of b === 0 ? [false, true] : [true]) {
        const store = await lib.open(path.join(dir, `s${cases.length}.db`));
        const before = new Set(fs.readdirSync('/proc/self/task'));
        const r = on ? store.replicateTo({ servers: server.url, stream: `s${cases.length}`, ...extraOptions }) : null;
        await r?.ready;
        for (const tid of fs.readdirSync('/proc/self/task')) if (!before.has(tid)) workerTids.add(tid);
        cases.push({ name: `${b === 0 ? 'this' : path.basename(path.dirname(dists[b]))}${on ? '' : ' off'}`, store, r, made: 0, rounds: [] });
      }
    }
    const round = async (c, keep) => {
      const m0 = c.r?.metrics();
      const t0 = tasks();
      const p0 = process.cpuUsage();
      const n0 = childMicros(server.child.pid);
      const w0 = performance.now();
      await Promise.all(Array.from({ length: 64 }, async (_, w) => {
        for (let i = 0; i < COMMITS / 64; i++) await c.store.commit([{ pgno: 2 + ((w * 7919 + i + c.made) % 5000), data }]);
      }));
      const wall = performance.now() - w0;
      c.made += COMMITS;
      while (c.r !== null && c.r.metrics().publishedSeq < c.made) await new Promise((s) => setTimeout(s, 2));
      const t1 = tasks();
      const p = process.cpuUsage(p0);
      const byName = {};
      const sleepsByName = {};
      for (const [tid, t] of t1) {
        const before = t0.get(tid)?.micros ?? 0;
        const name = t.name.replace(/[0-9]+$/, '');
        byName[name] = (byName[name] ?? 0) + (t.micros - before) / COMMITS;
        sleepsByName[name] = (sleepsByName[name] ?? 0) + ((t.sleeps - (t0.get(tid)?.sleeps ?? 0)) * 1000) / COMMITS;
      }
      const m1 = c.r?.metrics();
      const per = (k) => (m1 ? (m1[k] - m0[k]) / COMMITS : 0);
      if (keep) c.rounds.push({ messages: per('messages'), bytes: per('bytesPublished'), bases: per('bases') * COMMITS, full: per('fullFrames'), deltas: per('deltaFrames'), rate: COMMITS / (wall / 1000), process: (p.user + p.system) / COMMITS, nats: (childMicros(server.child.pid) - n0) / COMMITS, threads: byName, sleeps: sleepsByName });
    };
    for (const c of cases) await round(c, false); // warm-up
    for (let r = 0; r < ROUNDS; r++) {
      const order = r % 2 === 0 ? cases : cases.slice().reverse();
      for (const c of order) await round(c, true);
    }
    const med = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    console.log(`${ROUNDS} rounds of ${COMMITS} commits (load ${os.loadavg().map((x) => x.toFixed(1)).join(' ')})`);
    for (const c of cases) {
      const names = new Set(c.rounds.flatMap((x) => Object.keys(x.threads)));
      const threads = [...names].map((n) => [n, med(c.rounds.map((x) => x.threads[n] ?? 0))]).filter(([, v]) => v >= 0.05).sort((a, b) => b[1] - a[1]);
      console.log(`${c.name.padEnd(12)} commits/s ${Math.round(med(c.rounds.map((x) => x.rate)))}  process ${med(c.rounds.map((x) => x.process)).toFixed(1)}  nats-server ${med(c.rounds.map((x) => x.nats)).toFixed(1)} µs/commit; threads: ${threads.map(([n, v]) => `${n} ${v.toFixed(1)}`).join(', ')}`);
      const sleepers = [...names].map((n) => [n, med(c.rounds.map((x) => x.sleeps[n] ?? 0))]).filter(([, v]) => v >= 0.5).sort((a, b) => b[1] - a[1]);
      console.log(`  sleeps (voluntary context switches) per 1,000 commits: ${sleepers.map(([n, v]) => `${n} ${v.toFixed(1)}`).join(', ')}`);
      if (c.r !== null) console.log(`  per commit: messages ${med(c.rounds.map((x) => x.messages)).toFixed(4)}, bytes published ${Math.round(med(c.rounds.map((x) => x.bytes)))}, full frames ${med(c.rounds.map((x) => x.full)).toFixed(3)}, deltas ${med(c.rounds.map((x) => x.deltas)).toFixed(3)}; bases a round ${med(c.rounds.map((x) => x.bases))}`);
    }
    if (cases.length > 2) {
      const ratios = cases[1].rounds.map((x, i) => x.process / cases[2].rounds[i].process);
      console.log(`process CPU this / ${cases[2].name}: ${med(ratios).toFixed(2)} (${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)})`);
    }
  } finally {
    for (const c of cases) {
      await c.r?.stop();
      await c.store.close();
    }
    server.child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
})();
