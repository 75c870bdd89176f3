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
// SQLite's own writers do it to each other: with CALLERS = better-sqlite3 the python3 writer
// runs beside one better-sqlite3 connection (WAL, synchronous FULL, busy_timeout 5 s)
// inserting back to back on the event loop (50 ms slices) instead.
//   node bench/probes/sqlite-writer-beside.js [CALLERS=16 | better-sqlite3] [SECONDS=6]
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { openDatabase } = require('../../dist/sql.js');

const PEER_BETTER_SQLITE3 = process.argv[2] === 'better-sqlite3';
const CALLERS = PEER_BETTER_SQLITE3 ? 1 : Number(process.argv[2] || 16);
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

function pythonWriter(file) {
  const py = spawn('python3', ['-c', PYTHON_WRITER, file, String(SECONDS)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  py.stdout.on('data', (d) => (out += d));
  return new Promise((resolve) => py.on('exit', () => resolve(out.trim().split(/\s+/))));
}

function report([ok, busy, p50, p99]) {
  console.log(`python3 sqlite3 writer beside it: ${ok} commits, ${busy} SQLITE_BUSY (timeout 5 s), commit p50 ${p50} ms, p99 ${p99} ms (load ${os.loadavg()[0].toFixed(1)})`);
}

/** The python3 writer beside better-sqlite3 inserting back to back: SQLite beside SQLite. */
async function besideBetterSqlite3(file) {
  const Database = require('better-sqlite3');
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 5000');
  db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)');
  const insert = db.prepare('INSERT INTO t(v) VALUES (randomblob(100))');
  let made = 0;
  const errors = {};
  let stop = false;
  const slice = () => {
    const until = performance.now() + 50;
    while (performance.now() < until) {
      try {
        insert.run();
        made++;
      } catch (e) {
        errors[e.code] = (errors[e.code] ?? 0) + 1;
      }
    }
    if (!stop) setImmediate(slice);
  };
  setImmediate(slice);
  const out = await pythonWriter(file);
  stop = true;
  db.close();
  console.log(`better-sqlite3 (FULL), ${SECONDS} s: ${made} transactions, errors ${JSON.stringify(errors)}`);
  report(out);
}

(async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'walnut-writer-beside-'));
  const file = path.join(dir, 'beside.db');
  if (PEER_BETTER_SQLITE3) {
    try {
      return await besideBetterSqlite3(file);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
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
    const out = await pythonWriter(file);
    stop = true;
    await Promise.all(callers);
    await db.close();
    console.log(`walnut/sql, ${CALLERS} callers, ${SECONDS} s: ${made} transactions, errors ${JSON.stringify(errors)} (run again after a conflict: ${db.conflictRetries})`);
    report(out);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
