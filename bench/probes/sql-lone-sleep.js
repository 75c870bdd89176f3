// bench/probes/sql-lone-sleep: what a lone caller's transaction costs once the thread has slept.
// A lone durable transaction sleeps in fdatasync every time; on this VM the code that runs after
// such a sleep runs several times slower than the same code run back to back (caches and the
// vCPU's state are lost while it sleeps). This probe runs the same lone transactions on /dev/shm
// (fdatasync is free there) with and without a sleep of SLEEP_MS after each (Atomics.wait: the
// thread blocks as it does in fdatasync), and on the disk (WALNUT_BENCH_DIR or the OS temp dir,
// the real fsync), and prints CPU µs per transaction (process.cpuUsage: user, and user+system)
// and wall µs per transaction, medians over BLOCKS interleaved blocks of N:
//   walnut/sql   one-row INSERT, prepared statement, autocommit, 1 caller
//   raw walnut   store.commit of 2 pages (page 1 and one leaf: what that transaction writes)
//   sqlite       better-sqlite3 on /dev/shm, WAL, synchronous OFF: native SQLite's own work
//   nothing      the loop and the sleep alone (what the others include besides their work)
// The walnut/sql - raw difference is what issue #20's 1-caller goal (>= 0.9x raw walnut) must fit.
//   node bench/probes/sql-lone-sleep.js   (N, BLOCKS, SLEEP_MS; DIST=<dist/>)
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const Database = require('better-sqlite3');
const D = path.resolve(process.env.DIST || path.join(__dirname, '../../dist'));
const { open } = require(path.join(D, 'index.js'));
const { openDatabase } = require(path.join(D, 'sql.js'));
const { newDatabasePage1 } = require(path.join(D, 'format/db-header.js'));
const N = Number(process.env.N || 500);
const BLOCKS = Number(process.env.BLOCKS || 10);
const SLEEP_MS = Number(process.env.SLEEP_MS || 0.1);
const ROW = 'x'.repeat(100);
const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const cell = new Int32Array(new SharedArrayBuffer(4));

async function setup(dir) {
  const db = await openDatabase(path.join(dir, 's.db'));
  await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)');
  const insert = await db.prepare('INSERT INTO t(v) VALUES (?)');
  const store = await open(path.join(dir, 'r.db'), { pageSize: 4096 });
  const page1 = Buffer.from(newDatabasePage1(4096));
  const leaf = Buffer.alloc(4096, 2);
  return {
    'walnut/sql': { run: () => insert.run([ROW]), close: () => db.close() },
    'raw walnut': { run: () => store.commit([{ pgno: 1, data: page1 }, { pgno: 2, data: leaf }]), close: () => store.close() },
  };
}

(async () => {
  const shm = fs.mkdtempSync(path.join('/dev/shm', 'walnut-lone-sleep-'));
  const disk = fs.mkdtempSync(path.join(process.env.WALNUT_BENCH_DIR || os.tmpdir(), 'walnut-lone-sleep-'));
  const onShm = await setup(shm);
  const onDisk = await setup(disk);
  const native = new Database(path.join(shm, 'b.db'));
  native.pragma('journal_mode = WAL');
  native.pragma('synchronous = OFF');
  native.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)');
  const nativeInsert = native.prepare('INSERT INTO t(v) VALUES (?)');
  const cases = [];
  for (const sleep of [0, SLEEP_MS]) {
    const where = sleep === 0 ? '/dev/shm, back to back' : `/dev/shm, ${sleep} ms sleep after each`;
    for (const [name, c] of Object.entries(onShm)) cases.push({ label: `${name}, ${where}`, run: c.run, sleep });
    cases.push({ label: `sqlite, ${where}`, run: async () => nativeInsert.run(ROW), sleep });
    cases.push({ label: `nothing (the loop and the sleep), ${where}`, run: async () => undefined, sleep });
  }
  for (const [name, c] of Object.entries(onDisk)) cases.push({ label: `${name}, disk (fdatasync)`, run: c.run, sleep: 0 });
  const per = new Map(cases.map((c) => [c.label, { cpu: [], user: [], wall: [] }]));
  for (let b = -1; b < BLOCKS; b++) {
    for (const c of b % 2 === 0 ? cases : cases.slice().reverse()) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      for (let i = 0; i < N; i++) {
        await c.run();
        if (c.sleep > 0) Atomics.wait(cell, 0, 0, c.sleep);
      }
      const wall = ((performance.now() - t0) * 1000) / N - c.sleep * 1000;
      const cpu = process.cpuUsage(c0);
      if (b < 0) continue; // warm-up block
      const r = per.get(c.label);
      r.cpu.push((cpu.user + cpu.system) / N);
      r.user.push(cpu.user / N);
      r.wall.push(wall);
    }
  }
  console.log(`${BLOCKS} blocks of ${N} transactions, medians (wall less the sleep asked for)`);
  console.log('case | CPU µs/tx | user µs/tx | wall µs/tx');
  for (const [label, r] of per) console.log(`${label} | ${median(r.cpu).toFixed(1)} | ${median(r.user).toFixed(1)} | ${median(r.wall).toFixed(1)}`);
  native.close();
  for (const c of [...Object.values(onShm), ...Object.values(onDisk)]) await c.close();
  fs.rmSync(shm, { recursive: true, force: true });
  fs.rmSync(disk, { recursive: true, force: true });
})();
