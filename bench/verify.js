// bench/verify: integrity checks on a ~256 MiB database SQLite built (4 KiB pages: a rowid
// table with two indexes, short rows and some overflow rows, a freelist left by deletes), file in
// the page cache. walnut verify level 5 vs SQLite's PRAGMA integrity_check, and level 1 vs
// PRAGMA quick_check, on the same file in the same run. Median of RUNS each.
// WALNUT_BENCH_DB_MB changes the size.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const Database = require('better-sqlite3');
const { verify } = require('../dist/index.js');

const DB_BYTES = Number(process.env.WALNUT_BENCH_DB_MB || 256) << 20;
const RUNS = 3;

function median(xs) {
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function build(file) {
  const db = new Database(file);
  db.pragma('page_size = 4096');
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, score INTEGER, body BLOB); CREATE INDEX t_name ON t(name); CREATE INDEX t_score ON t(score, name)');
  const ins = db.prepare('INSERT INTO t(name, score, body) VALUES (?, ?, ?)');
  let i = 0;
  const chunk = db.transaction((n) => {
    for (let k = 0; k < n; k++, i++) ins.run(`user-${(i * 2654435761) % 1e9}`, i % 10007, Buffer.alloc(i % 97 === 0 ? 9000 : 60 + (i % 120), i & 0xff));
  });
  while (fs.statSync(file).size + (fs.existsSync(`${file}-wal`) ? fs.statSync(`${file}-wal`).size : 0) < DB_BYTES) {
    chunk(50_000);
    db.pragma('wal_checkpoint(TRUNCATE)');
  }
  db.exec('DELETE FROM t WHERE id % 50 = 0');
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
}

function timeSqlite(file, pragma) {
  const db = new Database(file, { readonly: true });
  const t0 = process.hrtime.bigint();
  const out = db.prepare(`PRAGMA ${pragma}`).all();
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  db.close();
  if (out.length !== 1 || Object.values(out[0])[0] !== 'ok') throw new Error(`${pragma}: ${JSON.stringify(out.slice(0, 3))}`);
  return ms;
}

async function timeWalnut(file, level) {
  const t0 = process.hrtime.bigint();
  const r = await verify(file, level);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (!r.ok) throw new Error(`verify level ${level}: ${JSON.stringify(r.issues.slice(0, 3))}`);
  return ms;
}

async function run() {
  const dir = fs.mkdtempSync(path.join(process.env.WALNUT_BENCH_DIR || os.tmpdir(), 'walnut-bench-verify-'));
  const file = path.join(dir, 'big.db');
  build(file);
  const mib = fs.statSync(file).size / (1 << 20);
  fs.readFileSync(file); // into the page cache for both
  const pairs = [
    { level: 5, pragma: 'integrity_check' },
    { level: 1, pragma: 'quick_check' },
  ];
  const rows = [];
  for (const p of pairs) {
    const w = [];
    const s = [];
    for (let r = 0; r < RUNS; r++) {
      s.push(timeSqlite(file, p.pragma));
      w.push(await timeWalnut(file, p.level));
    }
    const wm = median(w);
    const sm = median(s);
    rows.push({ case: `${mib.toFixed(0)} MiB database`, system: `walnut verify level ${p.level}`, 'median ms': wm.toFixed(0), 'x SQLite time': (wm / sm).toFixed(2) });
    rows.push({ case: `${mib.toFixed(0)} MiB database`, system: `SQLite PRAGMA ${p.pragma}`, 'median ms': sm.toFixed(0), 'x SQLite time': '1.00' });
  }
  fs.rmSync(dir, { recursive: true, force: true });
  return { rows, columns: ['case', 'system', 'median ms', 'x SQLite time'], notes: ['goal: <= 0.5x SQLite time for each pair'] };
}

module.exports = { run, build };
