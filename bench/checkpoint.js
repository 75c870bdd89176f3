// bench/checkpoint: TRUNCATE checkpoint of a 256 MiB WAL (4 KiB pages) by walnut vs SQLite's
// PRAGMA wal_checkpoint(TRUNCATE) on a copy of the same files (both copies synced first, so
// each measures the checkpoint's own work); and commit throughput (64 committers, full) with
// the background auto-checkpoint on vs off.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const Database = require('better-sqlite3');
const { open } = require('../dist/index.js');
const { baseDatabase, largeWal } = require('./fixtures');
const { commitLoad } = require('./harness');

const WAL_BYTES = Number(process.env.WALNUT_BENCH_WAL_MB || 256) << 20;

function syncFile(p) {
  const fd = fs.openSync(p, 'r+');
  fs.fsyncSync(fd);
  fs.closeSync(fd);
}

async function throughput(dir, autoCheckpoint) {
  const store = await open(path.join(dir, `tp-${autoCheckpoint}.db`), { autoCheckpoint });
  const r = await commitLoad(store, 64, 3);
  const m = store.metrics();
  await store.close();
  return { rate: r.perSecond, checkpoints: m.checkpoints };
}

async function run() {
  const dir = fs.mkdtempSync(path.join(process.env.WALNUT_BENCH_DIR || os.tmpdir(), 'walnut-bench-ckpt-'));
  const base = path.join(dir, 'base.db');
  const { image, pageCount } = baseDatabase(base, 4000);
  const frames = await largeWal(base, image, pageCount, WAL_BYTES);

  const copy = (name) => {
    const p = path.join(dir, name);
    fs.copyFileSync(base, p);
    fs.copyFileSync(`${base}-wal`, `${p}-wal`);
    syncFile(p);
    syncFile(`${p}-wal`);
    return p;
  };
  const ours = copy('walnut.db');
  const theirs = copy('sqlite.db');

  const store = await open(ours, { autoCheckpoint: false, keepWal: true });
  let t0 = performance.now();
  const r = await store.checkpoint('truncate');
  const walnutMs = performance.now() - t0;
  await store.close();

  const s = new Database(theirs);
  s.prepare('SELECT 1').get(); // recovery happens here, not in the timed checkpoint
  t0 = performance.now();
  const their = s.pragma('wal_checkpoint(TRUNCATE)')[0];
  const sqliteMs = performance.now() - t0;
  s.close();

  const off = await throughput(dir, false);
  const on = await throughput(dir, 1000);
  fs.rmSync(dir, { recursive: true, force: true });
  return {
    rows: [
      { case: `TRUNCATE checkpoint, ${WAL_BYTES >> 20} MiB WAL (${frames} frames, ${pageCount} distinct pages)`, system: 'walnut', result: `${r.busy ? 1 : 0}|${r.walFrames}|${r.checkpointedFrames}`, 'ms or commits/s': walnutMs.toFixed(1), ratio: `${(walnutMs / sqliteMs).toFixed(2)}x SQLite time` },
      { case: `TRUNCATE checkpoint, ${WAL_BYTES >> 20} MiB WAL`, system: 'SQLite', result: `${their.busy}|${their.log}|${their.checkpointed}`, 'ms or commits/s': sqliteMs.toFixed(1), ratio: '' },
      { case: 'commits/s, 64 committers, full, auto-checkpoint off', system: 'walnut', result: '', 'ms or commits/s': Math.round(off.rate), ratio: '' },
      { case: 'commits/s, 64 committers, full, auto-checkpoint 1000', system: 'walnut', result: `${on.checkpoints} checkpoints`, 'ms or commits/s': Math.round(on.rate), ratio: `${((100 * on.rate) / off.rate).toFixed(0)}% of off` },
    ],
    columns: ['case', 'system', 'result', 'ms or commits/s', 'ratio'],
  };
}

module.exports = { run };
