// bench/commit: durable one-page (4 KiB) commits/s and commit latency, walnut side by side
// with better-sqlite3 (WAL, synchronous FULL and NORMAL, one-row inserts), lmdb-js durable puts
// of 4 KiB values, a hand-written group commit on fs.promises (writev + datasync per batch),
// and the physical bound: the same 64-frame batch (pwritev + fdatasync) in a loop through
// walnut's native file. Each case runs for a fixed time; concurrency = committers in flight.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const Database = require('better-sqlite3');
const { open, WalnutFile } = require('../dist/index.js');
const { Histogram } = require('../dist/telemetry/histogram.js');
const { drive: driveFor } = require('./harness');

const SECONDS = Number(process.env.WALNUT_BENCH_SECONDS || 2);
const PAGE = 4096;

function optional(name) {
  try {
    return require(name);
  } catch {
    return null;
  }
}

const drive = (committers, commitOnce) => driveFor(committers, SECONDS, commitOnce);

function driveSync(commitOnce) {
  const hist = new Histogram();
  const deadline = performance.now() + SECONDS * 1000;
  let count = 0;
  const t0 = performance.now();
  for (let i = 0; performance.now() < deadline; i++) {
    const s = performance.now();
    commitOnce(i);
    hist.record((performance.now() - s) * 1000);
    count++;
  }
  return { perSecond: count / ((performance.now() - t0) / 1000), p50: hist.percentile(50), p99: hist.percentile(99) };
}

/** A minimal group commit over fs.promises: queue, one writev + datasync per batch. */
function fsGroupCommitter(fh) {
  let queue = [];
  let running = false;
  let offset = 0;
  async function loop() {
    running = true;
    while (queue.length) {
      const batch = queue;
      queue = [];
      const bufs = batch.map((b) => b.data);
      await fh.writev(bufs, offset);
      offset = (offset + bufs.length * PAGE) % (64 << 20);
      await fh.datasync();
      for (const b of batch) b.resolve();
    }
    running = false;
  }
  return (data) =>
    new Promise((resolve) => {
      queue.push({ data, resolve });
      if (!running) loop();
    });
}

async function run() {
  const dir = fs.mkdtempSync(path.join(process.env.WALNUT_BENCH_DIR || os.tmpdir(), 'walnut-bench-commit-'));
  const rows = [];
  const add = (system, mode, committers, r, peer) =>
    rows.push({ system, synchronous: mode, committers, 'commits/s': Math.round(r.perSecond), 'p50 µs': Math.round(r.p50), 'p99 µs': Math.round(r.p99), ratio: peer });
  const data = Buffer.alloc(PAGE, 0x5a);

  // better-sqlite3, one-row inserts of a 4 KiB blob, FULL and NORMAL
  const sqlite = {};
  for (const mode of ['FULL', 'NORMAL']) {
    const file = path.join(dir, `sqlite-${mode}.db`);
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${mode}`);
    db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)');
    const ins = db.prepare('INSERT INTO t(v) VALUES (?)');
    sqlite[mode] = driveSync(() => ins.run(data));
    add('better-sqlite3', mode.toLowerCase(), 1, sqlite[mode], '');
    db.close();
  }

  // walnut full at several concurrencies, and normal at 64
  const walnut = {};
  for (const [mode, committers] of [['full', 1], ['full', 16], ['full', 64], ['full', 256], ['normal', 64]]) {
    const file = path.join(dir, `walnut-${mode}-${committers}.db`);
    const store = await open(file, { synchronous: mode }); // defaults: autoCheckpoint 1000 frames, as SQLite
    const r = await drive(committers, (w, i) => store.commit([{ pgno: 2 + ((w * 7919 + i) % 5000), data }]));
    walnut[`${mode}-${committers}`] = r;
    const peer = mode === 'full' ? sqlite.FULL.perSecond : sqlite.NORMAL.perSecond;
    add('walnut', mode, committers, r, `${(r.perSecond / peer).toFixed(1)}x better-sqlite3 ${mode.toUpperCase()}`);
    await store.close();
  }

  // lmdb-js durable puts at 64 in flight
  const lmdb = optional('lmdb');
  if (lmdb) {
    const db = lmdb.open({ path: path.join(dir, 'lmdb'), noSync: false, encoding: 'binary' });
    const r = await drive(64, (w, i) => db.put(`k${w}-${i % 5000}`, data));
    add('lmdb-js (durable put)', 'full', 64, r, '');
    walnut.lmdb = r;
    await db.close();
  }

  // hand-written group commit on fs.promises at 64 in flight
  {
    const fh = await fs.promises.open(path.join(dir, 'fsgc.bin'), 'w+');
    const commit = fsGroupCommitter(fh);
    const r = await drive(64, () => commit(data));
    add('fs.promises group commit', 'full', 64, r, '');
    walnut.fsgc = r;
    await fh.close();
  }

  // physical bound: 64 frames (24 + 4096 bytes) pwritev + fdatasync, over preallocated space
  {
    const f = await WalnutFile.open(path.join(dir, 'raw.bin'), { create: true });
    const frames = [];
    for (let i = 0; i < 64; i++) frames.push(Buffer.alloc(24), data);
    let off = 0;
    const r = await drive(1, async () => {
      await f.writev(frames, off, 'data');
      off = (off + 64 * 4120) % (64 << 20);
    });
    const raw = { perSecond: r.perSecond * 64, p50: r.p50, p99: r.p99 };
    add('raw batch bound (64 frames writev+fdatasync)', 'full', 64, raw, '');
    walnut.raw = raw;
    await f.close();
  }
  fs.rmSync(dir, { recursive: true, force: true });

  const w64 = walnut['full-64'].perSecond;
  const notes = [
    `walnut full @64 = ${(w64 / sqlite.FULL.perSecond).toFixed(1)}x better-sqlite3 FULL (goal >= 25x)`,
    `walnut full @64 = ${(w64 / walnut.fsgc.perSecond).toFixed(2)}x fs.promises group commit (goal >= 2x)`,
    walnut.lmdb ? `walnut full @64 = ${(w64 / walnut.lmdb.perSecond).toFixed(2)}x lmdb-js durable puts (goal >= 4x)` : 'lmdb-js not installed',
    `walnut full @64 = ${((100 * w64) / walnut.raw.perSecond).toFixed(0)}% of the raw batch bound (goal >= 70%)`,
    `walnut full @1 = ${(walnut['full-1'].perSecond / sqlite.FULL.perSecond).toFixed(2)}x better-sqlite3 FULL (goal >= 1.2x)`,
    `walnut normal @64 = ${(walnut['normal-64'].perSecond / sqlite.NORMAL.perSecond).toFixed(2)}x better-sqlite3 NORMAL (goal >= 3x)`,
  ];
  return { rows, columns: ['system', 'synchronous', 'committers', 'commits/s', 'p50 µs', 'p99 µs', 'ratio'], notes };
}

module.exports = { run };
