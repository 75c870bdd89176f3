// bench/recovery: scan of a 256 MiB WAL with 4 KiB pages (in the page cache): walnut's
// recovery vs SQLite's own recovery of the same WAL (a copy opened without its -shm, timed to
// the end of the first query, through better-sqlite3). Median of several runs each.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const Database = require('better-sqlite3');
const { WalFile } = require('../dist/wal/wal-file.js');
const { baseDatabase, largeWal } = require('./fixtures');

const WAL_BYTES = Number(process.env.WALNUT_BENCH_WAL_MB || 256) << 20;
const RUNS = 5;

function median(xs) {
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function run() {
  const dir = fs.mkdtempSync(path.join(process.env.WALNUT_BENCH_DIR || os.tmpdir(), 'walnut-bench-recovery-'));
  const base = path.join(dir, 'base.db');
  const { image, pageCount } = baseDatabase(base, 400);
  const walPath = `${base}-wal`;
  await largeWal(base, image, pageCount, WAL_BYTES);
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
