// bench/probes/sqlite-writer-beside.js — how a python3 sqlite3 writer fares beside walnut/sql
// callers inserting back to back (README "the WRITE lock": a known limit, not yet solved).
//
// A WAL-mode database with one table; CALLERS walnut/sql callers insert one 100-byte row per
// transaction for SECONDS; meanwhile a python3 process (sqlite3 module, timeout 5 s, autocommit)
// inserts rows the same way. Prints walnut/sql's transactions and errors, and the python3
// writer's commits, SQLITE_BUSY failures and p50 / p99 commit latency (ms). A sqlite3 writer's
// busy handler polls for WRITE at 1..100 ms intervals, which no process can see; walnut/sql
// holds WRITE across its batches and lets it go for a turn of the event loop every 5 ms, so the
// poller rarely meets a free lock. Session 17 (quiet machine): 16 callers -> python3 0 commits,
// 2 busy in 6 s (walnut/sql 195,937 transactions); 1 caller -> 0 commits, 2 busy (33,331).
//   node bench/probes/sqlite-writer-beside.js [CALLERS=16] [SECONDS=6]
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { openDatabase } = require('../../dist/sql.js');

const CALLERS = Number(process.argv[2] || 16);
const SECONDS = Number(process.argv[3] || 6);

const PYTHON_WRITER = `
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], timeout=5.0, isolation_level=None)
ok = busy = 0
lat = []
t0 = time.time()
while time.time() - t0 < float(sys.argv[2]):
    a = time.time()
    try:
        c.execute("INSERT INTO t(v) VALUES (randomblob(100))")
        ok += 1
        lat.append(time.time() - a)
    except sqlite3.OperationalError:
        busy += 1
lat.sort()
p = lambda q: round(lat[min(len(lat) - 1, int(len(lat) * q))] * 1000, 2) if lat else None
print(ok, busy, p(0.5), p(0.99))
`;

(async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'walnut-writer-beside-'));
  const file = path.join(dir, 'beside.db');
  try {
    const db = await openDatabase(file);
    await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)');
    let stop = false;
    let made = 0;
    const errors = {};
    const callers = Array.from({ length: CALLERS }, async () => {
      while (!stop) {
        try {
          await db.run('INSERT INTO t(v) VALUES (randomblob(100))');
          made++;
        } catch (e) {
          errors[e.code] = (errors[e.code] ?? 0) + 1;
        }
      }
    });
    const py = spawn('python3', ['-c', PYTHON_WRITER, file, String(SECONDS)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    py.stdout.on('data', (d) => (out += d));
    await new Promise((resolve) => py.on('exit', resolve));
    stop = true;
    await Promise.all(callers);
    await db.close();
    const [ok, busy, p50, p99] = out.trim().split(/\s+/);
    console.log(`walnut/sql, ${CALLERS} callers, ${SECONDS} s: ${made} transactions, errors ${JSON.stringify(errors)}`);
    console.log(`python3 sqlite3 writer beside it: ${ok} commits, ${busy} SQLITE_BUSY (timeout 5 s), commit p50 ${p50} ms, p99 ${p99} ms (load ${os.loadavg()[0].toFixed(1)})`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
