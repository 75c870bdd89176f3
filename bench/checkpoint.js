// bench/checkpoint: the TRUNCATE checkpoint of a 256 MiB WAL (4 KiB pages) by walnut vs SQLite's
// own PRAGMA wal_checkpoint(TRUNCATE) (better-sqlite3) on an identical copy of the same files,
// for two WAL shapes:
//   many pages  the frames cycle over every page of a ~40,000-page database (>= 30,000 distinct
//               pages to copy: the copy and the database sync bound it)
//   few pages   the frames cycle over 64 pages (the WAL truncate and the plan bound it)
// Every round makes fresh copies of the fixture (synced, so each checkpoint does only its own
// work; both copies are in the page cache alike), opens them (recovery is not timed) and times
// the checkpoint alone; the systems alternate order every round. Reported: each system's median
// time and the median of the per-round ratios walnut/SQLite with its range, and the floor in the
// same rounds: the disk work either checkpoint must do (the pages written to the database
// file from memory, its fsync, the WAL truncate; floorTruncate), as a ratio to SQLite's time
// (no checkpoint can be faster than that) and walnut's time as a ratio to it.
// Then the commit rate at 64 committers, synchronous full, default auto-checkpoint (1000 frames)
// and auto-checkpoint off, 1 s cases in interleaved rounds; WALNUT_BENCH_BASELINE=<other dist/>
// runs the same cases on that build in the same rounds (before/after).
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const Database = require('better-sqlite3');
const walnut = require('../dist/index.js');
const { baseDatabase, largeWal } = require('./fixtures');
const { commitLoad } = require('./harness');

const WAL_BYTES = Number(process.env.WALNUT_BENCH_WAL_MB || 256) << 20;
const ROUNDS = Number(process.env.WALNUT_BENCH_ROUNDS || 5);
const COMMIT_SECONDS = Number(process.env.WALNUT_BENCH_SECONDS || 1);
const ROWS = 160000; // 1000-byte rows, 4 per page: ~40,000 pages

const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const spread = (xs) => `${median(xs).toFixed(2)} (${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)})`;

function syncFile(p) {
  const fd = fs.openSync(p, 'r+');
  fs.fsyncSync(fd);
  fs.closeSync(fd);
}

/** A synced copy of the fixture's database and WAL under `name`. */
function copyOf(dir, fixture, name) {
  const p = path.join(dir, name);
  for (const s of ['', '-wal']) {
    fs.copyFileSync(fixture + s, p + s);
    syncFile(p + s);
  }
  return p;
}

function removeDb(p) {
  for (const s of ['', '-wal', '-shm']) fs.rmSync(p + s, { force: true });
}

async function walnutTruncate(file) {
  const store = await walnut.open(file, { autoCheckpoint: false, keepWal: true });
  const t0 = performance.now();
  const r = await store.checkpoint('truncate');
  const ms = performance.now() - t0;
  await store.close();
  return { ms, result: `${r.busy ? 1 : 0}|${r.walFrames}|${r.checkpointedFrames}` };
}

function sqliteTruncate(file) {
  const db = new Database(file);
  db.prepare('SELECT count(*) FROM sqlite_master').get(); // recovery happens here, not in the timed checkpoint
  const t0 = performance.now();
  const r = db.pragma('wal_checkpoint(TRUNCATE)')[0];
  const ms = performance.now() - t0;
  db.close();
  return { ms, result: `${r.busy}|${r.log}|${r.checkpointed}` };
}

/**
 * The disk work any TRUNCATE checkpoint of this WAL must do, without reading the WAL: the newest
 * image of each of its `distinct` pages (1..distinct) written to the database file in runs of
 * adjacent pages (pwritev of up to 1024 pages, from memory), the database file synced, the WAL
 * truncated to 0 (neither system syncs the cut WAL). The floor under both systems' times.
 */
function floorTruncate(file, image, distinct) {
  const t0 = performance.now();
  const fd = fs.openSync(file, 'r+');
  for (let first = 1; first <= distinct; first += 1024) {
    const pages = [];
    for (let p = first; p < first + 1024 && p <= distinct; p++) pages.push(image.subarray((p - 1) * 4096, p * 4096));
    fs.writevSync(fd, pages, (first - 1) * 4096);
  }
  fs.fdatasyncSync(fd);
  fs.closeSync(fd);
  fs.truncateSync(`${file}-wal`, 0);
  return { ms: performance.now() - t0, result: '' };
}

async function checkpointRounds(dir) {
  const base = path.join(dir, 'base.db');
  const { image, pageCount } = baseDatabase(base, ROWS);
  const shapes = {};
  for (const [shape, distinct] of [['many pages', pageCount], ['few pages', 64]]) {
    const fixture = path.join(dir, `${shape.replace(' ', '-')}.db`);
    fs.copyFileSync(base, fixture);
    const frames = await largeWal(fixture, image, pageCount, WAL_BYTES, distinct);
    shapes[shape] = { fixture, frames, distinct: Math.min(distinct, frames), image };
  }
  const seen = {};
  for (let round = 0; round < ROUNDS; round++) {
    for (const [shape, s] of Object.entries(shapes)) {
      const order = round % 2 === 0 ? ['walnut', 'SQLite', 'floor'] : ['floor', 'SQLite', 'walnut'];
      const r = {};
      for (const system of order) {
        const file = copyOf(dir, s.fixture, `run-${system}.db`);
        r[system] = system === 'walnut' ? await walnutTruncate(file) : system === 'SQLite' ? sqliteTruncate(file) : floorTruncate(file, s.image, s.distinct);
        removeDb(file);
      }
      (seen[shape] ??= []).push(r);
    }
  }
  const rows = [];
  for (const [shape, s] of Object.entries(shapes)) {
    const list = seen[shape];
    const ratios = list.map((r) => r.walnut.ms / r.SQLite.ms);
    const label = `TRUNCATE, ${WAL_BYTES >> 20} MiB WAL, ${s.frames} frames, ${shape} (${s.distinct} distinct)`;
    rows.push({ case: label, system: 'walnut', result: list[0].walnut.result, 'ms / commits/s': median(list.map((r) => r.walnut.ms)).toFixed(1), ratio: `${spread(ratios)}x SQLite's time` });
    rows.push({ case: label, system: 'SQLite', result: list[0].SQLite.result, 'ms / commits/s': median(list.map((r) => r.SQLite.ms)).toFixed(1), ratio: '' });
    rows.push({ case: label, system: 'floor', result: 'db writes + fsync + WAL truncate', 'ms / commits/s': median(list.map((r) => r.floor.ms)).toFixed(1), ratio: `${spread(list.map((r) => r.floor.ms / r.SQLite.ms))}x SQLite's time; walnut ${spread(list.map((r) => r.walnut.ms / r.floor.ms))}x the floor` });
  }
  return rows;
}

async function commitRounds(dir) {
  const builds = { walnut };
  if (process.env.WALNUT_BENCH_BASELINE) builds.baseline = require(path.resolve(process.env.WALNUT_BENCH_BASELINE, 'index.js'));
  const cases = Object.keys(builds).flatMap((b) => [1000, false].map((auto) => [b, auto]));
  const seen = {};
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? cases : cases.slice().reverse();
    for (const [b, auto] of order) {
      const file = path.join(dir, `commit-${b}-${auto}.db`);
      const store = await builds[b].open(file, { autoCheckpoint: auto });
      const r = await commitLoad(store, 64, COMMIT_SECONDS);
      const m = store.metrics();
      await store.close();
      removeDb(file);
      (seen[`${b}|${auto}`] ??= []).push({ ...r, checkpoints: m.checkpoints, waits: m.checkpointWaits });
    }
  }
  const rows = [];
  for (const [b, auto] of cases) {
    const list = seen[`${b}|${auto}`];
    const vsOff = list.map((x, k) => x.perSecond / seen[`${b}|false`][k].perSecond);
    const vsBase = builds.baseline && b === 'walnut' ? list.map((x, k) => x.perSecond / seen[`baseline|${auto}`][k].perSecond) : null;
    rows.push({
      case: `commits/s, 64 committers, full, auto-checkpoint ${auto === false ? 'off' : auto}`,
      system: b,
      result: `p99 ${Math.round(median(list.map((x) => x.p99)))} µs, ${median(list.map((x) => x.checkpoints))} ckpt, ${median(list.map((x) => x.waits))} waits`,
      'ms / commits/s': Math.round(median(list.map((x) => x.perSecond))),
      ratio: [auto === false ? '' : `${spread(vsOff)}x off`, vsBase ? `${spread(vsBase)}x baseline` : ''].filter(Boolean).join(', '),
    });
  }
  return rows;
}

async function run() {
  const dir = fs.mkdtempSync(path.join(process.env.WALNUT_BENCH_DIR || os.tmpdir(), 'walnut-bench-ckpt-'));
  try {
    const rows = process.env.WALNUT_BENCH_ONLY === 'commit' ? [] : await checkpointRounds(dir);
    if (process.env.WALNUT_BENCH_ONLY !== 'checkpoint') rows.push(...(await commitRounds(dir)));
    return { rows, columns: ['case', 'system', 'result', 'ms / commits/s', 'ratio'] };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

module.exports = { run };
