// bench/recovery: scan of a 256 MiB WAL with 4 KiB pages (in the page cache): walnut's
// recovery vs SQLite's own recovery of the same WAL (a copy opened without its -shm, timed to
// the end of the first query, through better-sqlite3). Median of several runs each.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const Database = require('better-sqlite3');
const { WalFile } = require('../dist/wal/wal-file.js');

const WAL_BYTES = Number(process.env.WALNUT_BENCH_WAL_MB || 256) << 20;
const RUNS = 5;

function median(xs) {
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function run() {
  const dir = fs.mkdtempSync(path.join(process.env.WALNUT_BENCH_DIR || os.tmpdir(), 'walnut-bench-recovery-'));
  const base = path.join(dir, 'base.db');
  const db = new Database(base);
  db.pragma('page_size = 4096');
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE t(x BLOB)');
  const ins = db.prepare('INSERT INTO t VALUES (?)');
  db.transaction(() => {
    for (let i = 0; i < 400; i++) ins.run(Buffer.alloc(1000, i));
  })();
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close(); // the WAL is gone; base.db holds everything
  const pageCount = fs.statSync(base).size / 4096;
  const image = fs.readFileSync(base);

  // a WAL of WAL_BYTES written by walnut: transactions rewriting existing pages unchanged
  const walPath = `${base}-wal`;
  const w = await WalFile.open(walPath, { create: true });
  await w.writeHeader({ pageSize: 4096, checkpointSeq: 0, durability: 'none' });
  const frames = Math.floor((WAL_BYTES - 32) / 4120);
  const batch = [];
  for (let f = 0; f < frames; f++) {
    const pgno = 1 + (f % pageCount);
    batch.push({ pages: [{ pgno, data: image.subarray((pgno - 1) * 4096, pgno * 4096) }], dbSize: pageCount });
    if (batch.length === 1024 || f === frames - 1) {
      await w.append(batch.splice(0));
    }
  }
  await w.close();
  const walCopy = path.join(dir, 'wal.copy');
  fs.copyFileSync(walPath, walCopy);

  const walnutMs = [];
  const sqliteMs = [];
  let walnutFrames = 0;
  let sqliteFrames = 0;
  for (let r = 0; r < RUNS; r++) {
    // walnut: open + recovery scan
    let t0 = process.hrtime.bigint();
    const wf = await WalFile.open(walPath, { readOnly: true });
    const rec = await wf.recover();
    walnutMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
    walnutFrames = rec.mxFrame;
    await wf.close();

    // SQLite: open without -shm, first query (recovery happens there)
    fs.rmSync(`${base}-shm`, { force: true });
    fs.copyFileSync(walCopy, walPath); // the previous close checkpointed and removed it
    t0 = process.hrtime.bigint();
    const s = new Database(base);
    s.prepare('SELECT count(*) FROM t').get();
    sqliteMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
    sqliteFrames = fs.readFileSync(`${base}-shm`).readUInt32LE(16);
    s.close();
    fs.copyFileSync(walCopy, walPath);
  }
  fs.rmSync(dir, { recursive: true, force: true });
  const wm = median(walnutMs);
  const sm = median(sqliteMs);
  return {
    rows: [
      { case: `recover ${WAL_BYTES >> 20} MiB WAL, 4 KiB pages`, system: 'walnut', 'median ms': wm.toFixed(1), frames: walnutFrames, 'GB/s': (WAL_BYTES / wm / 1e6).toFixed(2), 'x SQLite time': (wm / sm).toFixed(2) },
      { case: `recover ${WAL_BYTES >> 20} MiB WAL, 4 KiB pages`, system: 'SQLite (better-sqlite3)', 'median ms': sm.toFixed(1), frames: sqliteFrames, 'GB/s': (WAL_BYTES / sm / 1e6).toFixed(2), 'x SQLite time': '1.00' },
    ],
    columns: ['case', 'system', 'median ms', 'frames', 'GB/s', 'x SQLite time'],
  };
}

module.exports = { run };
