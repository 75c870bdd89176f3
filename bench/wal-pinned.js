// bench/wal-pinned: commit throughput (16 committers, 1 page each, synchronous full,
// autoCheckpoint 1000) while a reader holds the WAL, against the same run with no reader:
//   held      a snapshot of this store taken once and kept
//   keeps up  a snapshot re-taken after every commit (always in the WAL at its newest frame:
//             each checkpoint copies everything and still cannot restart the WAL)
//   sqlite3   a better-sqlite3 read transaction in another process, kept
//   own transactions  no other reader, but every commit is a store.begin() transaction whose
//             snapshot is held until its commit is written (ratio against 'none' all the same)
// Rows give commits/s, checkpoints and batch waits per 1,000 commits, and the WAL's size at the
// end. Cases run interleaved in short rounds; each ratio is the median of per-round ratios (and
// its spread). WALNUT_BENCH_BASELINE=<other dist/> runs every case on that build too, in the
// same rounds (before/after).
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { drive } = require('./harness');

const SECONDS = Number(process.env.WALNUT_BENCH_SECONDS || 2);
const ROUNDS = Number(process.env.WALNUT_BENCH_ROUNDS || 3);
const COMMITTERS = 16;
const READERS = ['none', 'held', 'keeps up', 'sqlite3', 'own transactions'];

/** A better-sqlite3 connection in its own process holding a read transaction until stopped. */
function sqliteReader(db) {
  const child = spawn(process.execPath, [path.join(__dirname, '..', 'test', 'helpers', 'sqlite-peer.js'), db], { stdio: ['pipe', 'pipe', 'inherit'] });
  let buffer = '';
  const waiting = [];
  child.stdout.on('data', (d) => {
    buffer += d;
    for (let nl; (nl = buffer.indexOf('\n')) >= 0; buffer = buffer.slice(nl + 1)) waiting.shift()?.(JSON.parse(buffer.slice(0, nl)));
  });
  const request = (op, sql) => new Promise((resolve) => {
    waiting.push(resolve);
    child.stdin.write(JSON.stringify({ op, sql }) + '\n');
  });
  return {
    async start() {
      await new Promise((resolve) => waiting.push(resolve)); // { ready: true }
      await request('exec', 'BEGIN');
      await request('get', 'SELECT count(*) FROM sqlite_master');
    },
    async stop() {
      await request('exec', 'COMMIT');
      const exited = new Promise((resolve) => child.once('exit', resolve));
      await request('close');
      await exited;
    },
  };
}

async function runCase(walnut, dir, reader, tag) {
  const db = path.join(dir, `${tag}-${reader.replace(/ /g, '-')}.db`);
  const store = await walnut.open(db, { autoCheckpoint: 1000 });
  const data = Buffer.alloc(4096, 5);
  const pgno = (w, i) => 2 + ((w * 7919 + i) % 2000);
  const commitOnce = (w, i) => store.commit([{ pgno: pgno(w, i), data }]);
  await drive(COMMITTERS, 0.3, commitOnce); // past the threshold: the reader pins a WAL that is due
  let snap = null;
  let peer = null;
  if (reader === 'held' || reader === 'keeps up') snap = await store.snapshot();
  if (reader === 'sqlite3') {
    peer = sqliteReader(db);
    await peer.start();
  }
  const m0 = store.metrics();
  const r = await drive(COMMITTERS, SECONDS, async (w, i) => {
    if (reader === 'own transactions') {
      const tx = store.begin();
      tx.write(pgno(w, i), data);
      await tx.commit();
      return;
    }
    await commitOnce(w, i);
    if (reader === 'keeps up') {
      const next = await store.snapshot();
      snap.release();
      snap = next;
    }
  });
  const m = store.metrics();
  const walBytes = fs.statSync(`${db}-wal`).size;
  snap?.release();
  await peer?.stop();
  await store.close();
  for (const s of ['', '-wal', '-shm']) fs.rmSync(db + s, { force: true });
  const commits = m.commits - m0.commits;
  return { rate: r.perSecond, checkpoints: (1000 * (m.checkpoints - m0.checkpoints)) / commits, waits: (1000 * (m.checkpointWaits - m0.checkpointWaits)) / commits, walMiB: walBytes / 2 ** 20 };
}

const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function run() {
  const builds = { walnut: require('../dist/index.js') };
  if (process.env.WALNUT_BENCH_BASELINE) builds.baseline = require(path.resolve(process.env.WALNUT_BENCH_BASELINE, 'index.js'));
  const dir = fs.mkdtempSync(path.join(process.env.WALNUT_BENCH_DIR || os.tmpdir(), 'walnut-bench-pinned-'));
  const seen = {}; // `${build}|${reader}` -> per-round results
  for (let round = 0; round < ROUNDS; round++) {
    const order = Object.keys(builds).flatMap((b) => READERS.map((r) => [b, r]));
    if (round % 2 === 1) order.reverse();
    for (const [b, reader] of order) (seen[`${b}|${reader}`] ??= []).push(await runCase(builds[b], dir, reader, `${b}${round}`));
  }
  fs.rmSync(dir, { recursive: true, force: true });
  const rows = [];
  for (const b of Object.keys(builds)) {
    for (const reader of READERS) {
      const list = seen[`${b}|${reader}`];
      const ratios = list.map((x, k) => x.rate / seen[`${b}|none`][k].rate);
      rows.push({
        case: `reader: ${reader}`,
        system: b,
        'commits/s': Math.round(median(list.map((x) => x.rate))),
        'x no reader': reader === 'none' ? '' : `${median(ratios).toFixed(2)} (${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)})`,
        'checkpoints/1k': median(list.map((x) => x.checkpoints)).toFixed(1),
        'waits/1k': median(list.map((x) => x.waits)).toFixed(1),
        'WAL MiB': median(list.map((x) => x.walMiB)).toFixed(1),
      });
    }
  }
  return { rows, columns: ['case', 'system', 'commits/s', 'x no reader', 'checkpoints/1k', 'waits/1k', 'WAL MiB'] };
}

module.exports = { run };
