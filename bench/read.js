// bench/read: snapshot reads of random pages from a database whose WAL holds 100,000 frames.
//  - hash lookups alone (batched through the native index): lookups/s
//  - page reads (lookup + one pread) through a walnut snapshot, sync and async
//  - better-sqlite3 reading the same number of rows by primary key from the same data
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const Database = require('better-sqlite3');
const { WalIndex } = require('../dist/wal-index/wal-index.js');

const FRAMES = Number(process.env.WALNUT_BENCH_FRAMES || 100_000);
const ROWS = 20_000;
const READS = 200_000;

function rate(n, fn) {
  const t0 = process.hrtime.bigint();
  fn();
  return n / (Number(process.hrtime.bigint() - t0) / 1e9);
}

async function rateAsync(n, fn) {
  const t0 = process.hrtime.bigint();
  await fn();
  return n / (Number(process.hrtime.bigint() - t0) / 1e9);
}

async function run() {
  const dir = fs.mkdtempSync(path.join(process.env.WALNUT_BENCH_DIR || os.tmpdir(), 'walnut-bench-read-'));
  const file = path.join(dir, 'read.db');
  const db = new Database(file);
  db.pragma('page_size = 4096');
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)');
  const ins = db.prepare('INSERT INTO t VALUES (?, ?)');
  db.transaction(() => {
    for (let i = 1; i <= ROWS; i++) ins.run(i, Buffer.alloc(3000, i & 0xff));
  })();
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  const image = fs.readFileSync(file);
  const pages = image.length / 4096;

  // a 100,000-frame WAL: commits of 100 frames rewriting existing pages with their own images
  const index = await WalIndex.open(file);
  for (let f = 0; f < FRAMES; f += 100) {
    const snap = await index.beginRead();
    await index.beginWrite(snap);
    const txn = [];
    for (let k = 0; k < 100; k++) {
      const pgno = 1 + ((f + k) * 7919) % pages;
      txn.push({ pgno, data: image.subarray((pgno - 1) * 4096, pgno * 4096) });
    }
    await index.appendAndPublish([{ pages: txn, dbSize: pages }], 'none');
    index.endWrite();
    snap.release();
  }
  const snap = await index.beginRead();
  const pgnos = new Uint32Array(READS);
  for (let i = 0; i < READS; i++) pgnos[i] = 1 + Math.floor(Math.random() * pages);
  const out = new Uint32Array(READS);
  snap.frameOf(1); // warm
  const lookups = Math.max(
    rate(READS, () => index.lookupMany(pgnos, snap.mxFrame, snap.minFrame, out)),
    rate(READS, () => index.lookupMany(pgnos, snap.mxFrame, snap.minFrame, out)),
  );
  const single = rate(READS, () => {
    for (let i = 0; i < READS; i++) snap.frameOf(pgnos[i]);
  });
  const buf = Buffer.alloc(4096);
  const syncReads = rate(READS, () => {
    for (let i = 0; i < READS; i++) snap.readIntoSync(pgnos[i], buf);
  });
  const asyncReads = await rateAsync(READS / 4, async () => {
    // 16 reads in flight at a time
    for (let i = 0; i < READS / 4; i += 16) {
      const batch = [];
      for (let k = 0; k < 16; k++) batch.push(snap.read(pgnos[i + k]));
      await Promise.all(batch);
    }
  });
  snap.release();
  await index.close();

  // better-sqlite3 on the same data (a copy whose WAL SQLite recovers on open)
  const copy = path.join(dir, 'copy.db');
  fs.copyFileSync(file, copy);
  fs.copyFileSync(`${file}-wal`, `${copy}-wal`);
  const s = new Database(copy);
  const get = s.prepare('SELECT v FROM t WHERE id = ?');
  get.get(1);
  const ids = pgnos.map((p) => 1 + (p % ROWS));
  const sqliteReads = rate(READS, () => {
    for (let i = 0; i < READS; i++) get.get(ids[i]);
  });
  s.close();
  fs.rmSync(dir, { recursive: true, force: true });
  const row = (c, v) => ({ case: c, 'per second': Math.round(v).toLocaleString('en-US'), 'x better-sqlite3': (v / sqliteReads).toFixed(2) });
  return {
    rows: [
      row(`hash lookups, batched (${FRAMES} frames in the WAL)`, lookups),
      row('hash lookups, one call each (frameOf)', single),
      row('page reads, walnut snapshot readIntoSync', syncReads),
      row('page reads, walnut snapshot read() (async, 16 in flight)', asyncReads),
      row('rows by primary key, better-sqlite3', sqliteReads),
    ],
    columns: ['case', 'per second', 'x better-sqlite3'],
  };
}

module.exports = { run };
