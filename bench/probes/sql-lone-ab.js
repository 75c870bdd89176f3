// bench/probes/sql-lone-ab: two builds' walnut/sql in one process, the same lone transactions
// (1 caller, one-row INSERT, prepared statement, autocommit) in alternating blocks: CPU and wall
// µs per transaction of each, and the median of the per-block ratios B / A with its quartiles.
// In one process both builds see the same load, so a change of a few percent in CPU resolves
// where bench/sql.js's fsync-bound rates cannot. SLEEP_MS > 0 sleeps that long after each
// transaction (Atomics.wait: the thread blocks as in fdatasync; sql-lone-sleep.js says why
// that matters); the sleep is left out of the wall figure.
//   A=<base dist/> B=<dist/> node bench/probes/sql-lone-ab.js   (BLOCKS, N, SLEEP_MS, DIR: default /dev/shm)
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const A = path.resolve(process.env.A || path.join(__dirname, '../../dist'));
const B = path.resolve(process.env.B || path.join(__dirname, '../../dist'));
const BLOCKS = Number(process.env.BLOCKS || 40);
const N = Number(process.env.N || 500);
const SLEEP_MS = Number(process.env.SLEEP_MS || 0);
const DIR = process.env.DIR || '/dev/shm';
const ROW = 'x'.repeat(100);
const cell = new Int32Array(new SharedArrayBuffer(4));
const sorted = (xs) => xs.slice().sort((a, b) => a - b);
const at = (xs, p) => sorted(xs)[Math.floor(xs.length * p)];

async function setup(dist, dir) {
  const { openDatabase } = require(path.join(dist, 'sql.js'));
  const db = await openDatabase(path.join(dir, 's.db'));
  await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)');
  return { db, insert: await db.prepare('INSERT INTO t(v) VALUES (?)') };
}

async function block(x) {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) {
    await x.insert.run([ROW]);
    if (SLEEP_MS > 0) Atomics.wait(cell, 0, 0, SLEEP_MS);
  }
  const c = process.cpuUsage(c0);
  return { cpu: (c.user + c.system) / N, wall: Number(process.hrtime.bigint() - t0) / 1e3 / N - SLEEP_MS * 1000 };
}

async function main() {
  const dir = fs.mkdtempSync(path.join(DIR, 'walnut-sql-lone-ab-'));
  try {
    fs.mkdirSync(path.join(dir, 'a'));
    fs.mkdirSync(path.join(dir, 'b'));
    const a = await setup(A, path.join(dir, 'a'));
    const b = await setup(B, path.join(dir, 'b'));
    for (let i = 0; i < 6; i++) await block(a), await block(b); // warm-up: JIT, wasm tier-up
    const ra = [];
    const rb = [];
    for (let i = 0; i < BLOCKS; i++) {
      if (i % 2 === 0) ra.push(await block(a)), rb.push(await block(b));
      else rb.push(await block(b)), ra.push(await block(a));
    }
    const fmt = (xs) => `${at(xs, 0.5).toFixed(3)} [${at(xs, 0.25).toFixed(3)}-${at(xs, 0.75).toFixed(3)}]`;
    const each = (rs) => `CPU min ${Math.min(...rs.map((r) => r.cpu)).toFixed(1)} / median ${at(rs.map((r) => r.cpu), 0.5).toFixed(1)} µs, wall median ${at(rs.map((r) => r.wall), 0.5).toFixed(1)} µs`;
    console.log(`${BLOCKS} alternating blocks of ${N} on ${DIR}${SLEEP_MS > 0 ? `, ${SLEEP_MS} ms sleep after each transaction` : ''}`);
    console.log(`A ${A}: ${each(ra)}`);
    console.log(`B ${B}: ${each(rb)}`);
    console.log(`B / A: CPU ${fmt(ra.map((x, i) => rb[i].cpu / x.cpu))}, wall ${fmt(ra.map((x, i) => rb[i].wall / x.wall))}`);
    await a.db.close();
    await b.db.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(2);
});
