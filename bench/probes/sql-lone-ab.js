// bench/probes/sql-lone-ab: two builds' walnut/sql in one process, the same lone transactions
// (1 caller, one-row INSERT, prepared statement, autocommit) in alternating blocks: CPU and wall
// µs per transaction of each, and the median of the per-block ratios B / A with its quartiles.
// In one process both builds see the same load, so a change of a few percent in CPU resolves
// where bench/sql.js's fsync-bound rates cannot. SLEEP_MS > 0 sleeps that long after each
// transaction (Atomics.wait: the thread blocks as in fdatasync; sql-lone-sleep.js says why
// that matters); the sleep is left out of the wall figure.
//   A=<base dist/> B=<dist/> node bench/probes/sql-lone-ab.js   (BLOCKS, N, SLEEP_MS, DIR: default /dev/shm)
// (the A/B harness: sql-ab.js)
'use strict';
const { at, ROW, runAB } = require('./sql-ab');
const N = Number(process.env.N || 500);
const SLEEP_MS = Number(process.env.SLEEP_MS || 0);
const cell = new Int32Array(new SharedArrayBuffer(4));

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

runAB({
  name: 'sql-lone-ab',
  title: `of ${N}${SLEEP_MS > 0 ? `, ${SLEEP_MS} ms sleep after each transaction` : ''}`,
  warmups: 6,
  block,
  describe: (rs) => `CPU min ${Math.min(...rs.map((r) => r.cpu)).toFixed(1)} / median ${at(rs.map((r) => r.cpu), 0.5).toFixed(1)} µs, wall median ${at(rs.map((r) => r.wall), 0.5).toFixed(1)} µs`,
  ratios: [['cpu', 'CPU'], ['wall', 'wall']],
});
