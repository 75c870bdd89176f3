// bench/follow: what a follow-mode export (continuous backup) costs the writers it follows.
//   committers  64 walnut committers (one-page commits, synchronous full) with no export, with a
//               follow export to a file on the main I/O lane (the default), to a file on the
//               background lane, and to /dev/null (the follower's own cost, without the cost of
//               storing the stream on the same disk): commits/s, p99 commit latency, CPU per
//               commit (all threads), WAL size at the end
//   physical bound (with the committers group) the raw commit loop (64 frames, pwritev +
//               fdatasync, a WAL that wraps at 8 MiB) alone, and with the bytes a follower streams
//               for each batch (its frames + FRAMES/COMMIT_META records, framed) appended to a
//               second file on the same disk, on another lane, written back per MiB as the
//               export's file sink does: what a stream to a file on the same disk costs the disk
//               itself; 'follow' over 'none' is read against 'raw + stream' over 'raw'
//   sqlite3     3 python3/sqlite3 writer processes (one 4-8 KB row per transaction, FULL,
//               wal_autocheckpoint 200) alone, and with `walnut export --follow` running: the -wal's
//               peak size (sampled every 5 ms) and the writers' commits/s
//   loop µs/commit  the event loop's busy time (performance.eventLoopUtilization) per commit; in
//               brackets its difference from 'none' in the same round: the follower's JS cost per exported commit
// The bound is the writers alone (1.00x): the export adds a page-cache read and a stream append
// per page and can only take from them. Cases run interleaved in short rounds (order reversed
// every other round); each ratio is the median of per-round ratios, with its spread.
// WALNUT_BENCH_BASELINE=<other dist/> runs every case on that build too, in the same rounds;
// WALNUT_BENCH_FOLLOW=committers (or sqlite3) runs one group only.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { drive } = require('./harness');

const SECONDS = Number(process.env.WALNUT_BENCH_SECONDS || 2);
const ROUNDS = Number(process.env.WALNUT_BENCH_ROUNDS || 5);
const WRITER = path.join(__dirname, '..', 'test', 'helpers', 'sqlite-writer.py');
const COMMITTER_CASES = ['none', 'follow', 'follow, stream on the background lane', 'follow, stream to /dev/null'];
const SQLITE_CASES = ['alone', 'walnut export --follow'];
const RAW_CASES = ['raw', 'raw + stream bytes to a second file'];
const PAGE = 4096;
const FRAME = 24 + PAGE;
const BATCH = 64;
const RAW_SPAN = 8 << 20;
/** A follower's bytes per one-page commit: the frame in a FRAMES record, then COMMIT_META, each framed (8 bytes). */
const STREAM_PER_COMMIT = 8 + 1 + FRAME + 8 + 33;

/** The raw commit loop for `seconds`, and with `stream`, the follower's bytes appended to a second file (see the header). */
async function rawLoop(walnut, dir, stream, tag) {
  const walPath = path.join(dir, `${tag}.wal`);
  const fd = fs.openSync(walPath, 'w');
  const zeros = Buffer.alloc(1 << 20);
  for (let at = 0; at < 2 * RAW_SPAN; at += zeros.length) fs.writeSync(fd, zeros, 0, zeros.length, at);
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  const wal = await walnut.WalnutFile.open(walPath);
  const out = stream ? await walnut.WalnutFile.open(`${walPath}.ark`, { create: true, truncate: true, lane: 'background' }) : null;
  const data = Buffer.alloc(PAGE, 0x5a);
  const frames = [];
  for (let i = 0; i < BATCH; i++) frames.push(Buffer.alloc(24, i), data);
  const streamBytes = Buffer.alloc(BATCH * STREAM_PER_COMMIT, 0x5a);
  const { Histogram } = require(path.join(__dirname, '..', 'dist', 'telemetry', 'histogram.js'));
  const { startWriteback } = require(path.join(__dirname, '..', 'dist', 'export', 'page-writer.js')); // the export sink's writeback hint
  const hist = new Histogram();
  let off = 32;
  let outAt = 0;
  let written = 0;
  let appending = Promise.resolve();
  let batches = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const deadline = t0 + SECONDS * 1000;
  while (performance.now() < deadline) {
    const s = performance.now();
    await wal.writev(frames, off, 'data');
    hist.record((performance.now() - s) * 1000);
    off += BATCH * FRAME;
    if (off + BATCH * FRAME > RAW_SPAN) off = 32;
    batches++;
    if (out !== null) {
      // one append in flight at a time, as the exporter's sink; written back per MiB
      await appending;
      const at = outAt;
      outAt += streamBytes.length;
      appending = out.writev([streamBytes], at).then(() => {
        written += streamBytes.length;
        if (written >= 1 << 20) {
          startWriteback(out, at + streamBytes.length - written, written);
          written = 0;
        }
      });
    }
  }
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await appending;
  await wal.close();
  await out?.close();
  for (const s of ['', '.ark']) fs.rmSync(walPath + s, { force: true });
  const rate = (batches * BATCH) / elapsed;
  return { rate, p99: hist.percentile(99), cpuMicros: (cpu.user + cpu.system) / (rate * elapsed), walMiB: RAW_SPAN / 2 ** 20 };
}

async function committers(walnut, dir, kase, tag) {
  const db = path.join(dir, `${tag}.db`);
  const store = await walnut.open(db);
  let sink = null;
  let handle = null;
  if (kase !== 'none') {
    const devNull = kase.endsWith('/dev/null');
    sink = await walnut.WalnutFile.open(devNull ? '/dev/null' : `${db}.ark`, { create: !devNull, truncate: !devNull, lane: kase === 'follow' ? 'main' : 'background' });
    handle = store.exportTo(sink, { follow: true });
  }
  const data = Buffer.alloc(4096, 3);
  const cpu0 = process.cpuUsage();
  const elu0 = performance.eventLoopUtilization();
  const r = await drive(64, SECONDS, (w, i) => store.commit([{ pgno: 2 + ((w * 7919 + i) % 5000), data }]));
  const elu = performance.eventLoopUtilization(elu0);
  const cpu = process.cpuUsage(cpu0);
  const walMiB = fs.statSync(`${db}-wal`).size / 2 ** 20;
  await handle?.stop();
  await sink?.close();
  await store.close();
  for (const s of ['', '-wal', '-shm', '.ark']) fs.rmSync(db + s, { force: true });
  // the event loop's busy time per commit: its difference from 'none' is what the follower costs the JavaScript thread
  return { rate: r.perSecond, p99: r.p99, cpuMicros: (cpu.user + cpu.system) / (r.perSecond * SECONDS), loopMicros: (elu.active * 1000) / (r.perSecond * SECONDS), walMiB };
}

function run3(cmd, args, options = {}) {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'], ...options });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  return { child, done: new Promise((resolve) => child.on('exit', () => resolve(out))) };
}

async function sqliteWriters(dist, dir, kase, tag) {
  const db = path.join(dir, `${tag}.db`);
  const Database = require('better-sqlite3');
  const d = new Database(db);
  d.pragma('journal_mode = WAL');
  d.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, w INTEGER, v BLOB)');
  d.close();
  let exporter = null;
  if (kase !== 'alone') {
    // the CLI of the build under test (its bin/walnut.js loads ../dist)
    exporter = run3(process.execPath, [path.join(dist, '..', 'bin', 'walnut.js'), 'export', db, '--follow', '-o', `${db}.ark`]);
    while (!fs.existsSync(`${db}.ark`) || fs.statSync(`${db}.ark`).size === 0) await new Promise((r) => setTimeout(r, 10));
  }
  let peak = 0;
  const timer = setInterval(() => (peak = Math.max(peak, fs.statSync(`${db}-wal`, { throwIfNoEntry: false })?.size ?? 0)), 5);
  const writers = [1, 2, 3].map((w) => run3('python3', [WRITER, db, String(SECONDS), String(w), '200']).done);
  const commits = (await Promise.all(writers)).reduce((a, b) => a + Number(b), 0);
  clearInterval(timer);
  if (exporter) {
    exporter.child.kill('SIGINT');
    await exporter.done;
  }
  for (const s of ['', '-wal', '-shm', '.ark']) fs.rmSync(db + s, { force: true });
  return { rate: commits / SECONDS, walMiB: peak / 2 ** 20 };
}

const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const spread = (xs) => `${median(xs).toFixed(2)} (${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)})`;

async function run() {
  const builds = { walnut: path.join(__dirname, '..', 'dist') };
  if (process.env.WALNUT_BENCH_BASELINE) builds.baseline = path.resolve(process.env.WALNUT_BENCH_BASELINE);
  const libs = Object.fromEntries(Object.entries(builds).map(([b, d]) => [b, require(path.join(d, 'index.js'))]));
  const dir = fs.mkdtempSync(path.join(process.env.WALNUT_BENCH_DIR || os.tmpdir(), 'walnut-bench-follow-'));
  const seen = {}; // `${build}|${case}` -> per-round results
  for (let round = 0; round < ROUNDS; round++) {
    const group = process.env.WALNUT_BENCH_FOLLOW;
    const order = Object.keys(builds).flatMap((b) => [
      ...(group === 'sqlite3' ? [] : COMMITTER_CASES.map((c) => [b, 'committers', c])),
      ...(group === 'sqlite3' || b !== 'walnut' ? [] : RAW_CASES.map((c) => [b, 'raw', c])),
      ...(group === 'committers' ? [] : SQLITE_CASES.map((c) => [b, 'sqlite3', c])),
    ]);
    if (round % 2 === 1) order.reverse();
    for (const [b, kind, c] of order) {
      const tag = `${b}-${round}-${kind}-${c.replace(/\W+/g, '-')}`;
      const r = kind === 'committers' ? await committers(libs[b], dir, c, tag) : kind === 'raw' ? await rawLoop(libs[b], dir, c !== 'raw', tag) : await sqliteWriters(builds[b], dir, c, tag);
      (seen[`${b}|${c}`] ??= []).push(r);
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });
  const rows = [];
  for (const b of Object.keys(builds)) {
    for (const [cases, base] of [[COMMITTER_CASES, 'none'], [RAW_CASES, 'raw'], [SQLITE_CASES, 'alone']]) {
      for (const c of cases) {
        const list = seen[`${b}|${c}`];
        const ref = seen[`${b}|${base}`];
        if (list === undefined) continue;
        const rate = list.map((x, k) => x.rate / ref[k].rate);
        const p99 = list[0].p99 === undefined ? null : list.map((x, k) => x.p99 / ref[k].p99);
        rows.push({
          case: base === 'none' ? `64 walnut committers, ${c}` : base === 'raw' ? `physical bound: ${c}` : `3 sqlite3 writers, ${c}`,
          system: b,
          'commits/s': Math.round(median(list.map((x) => x.rate))),
          'x alone': c === base ? '' : spread(rate),
          'p99 x alone': p99 === null || c === base ? '' : spread(p99),
          'CPU µs/commit': list[0].cpuMicros === undefined ? '' : median(list.map((x) => x.cpuMicros)).toFixed(1),
          // the follower's event-loop time per exported commit: this case's loop µs/commit minus 'none''s, per round
          'loop µs/commit (- none)': list[0].loopMicros === undefined ? '' : `${median(list.map((x) => x.loopMicros)).toFixed(1)}${c === base ? '' : ` (${median(list.map((x, k) => x.loopMicros - ref[k].loopMicros)).toFixed(2)})`}`,
          'WAL MiB': `${median(list.map((x) => x.walMiB)).toFixed(1)}${base === 'alone' ? ' peak' : ' end'}`,
        });
      }
    }
  }
  return { rows, columns: ['case', 'system', 'commits/s', 'x alone', 'p99 x alone', 'CPU µs/commit', 'loop µs/commit (- none)', 'WAL MiB'] };
}

module.exports = { run };
