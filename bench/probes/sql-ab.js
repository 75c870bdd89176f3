// bench/probes/sql-ab: what the walnut/sql A/B probes (sql-lone-ab.js, sql-64-ab.js) share: two
// builds' walnut/sql (A and B: dist/ folders, both ./dist by default) in one process, each on a
// database of its own under DIR (default /dev/shm) with the table and prepared one-row INSERT
// the probes time; `warmups` blocks of each first (JIT, wasm tier-up), then BLOCKS (default 40)
// blocks alternating A and B in rotating order; the median of the per-block ratios B / A with
// its quartiles for each measure named.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const A = path.resolve(process.env.A || path.join(__dirname, '../../dist'));
const B = path.resolve(process.env.B || path.join(__dirname, '../../dist'));
const BLOCKS = Number(process.env.BLOCKS || 40);
const DIR = process.env.DIR || '/dev/shm';
const ROW = 'x'.repeat(100);
const sorted = (xs) => xs.slice().sort((a, b) => a - b);
/** The p-quantile of xs. */
const at = (xs, p) => sorted(xs)[Math.floor(xs.length * p)];

async function setup(dist, dir) {
  const { openDatabase } = require(path.join(dist, 'sql.js'));
  const db = await openDatabase(path.join(dir, 's.db'));
  await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)');
  return { db, insert: await db.prepare('INSERT INTO t(v) VALUES (?)') };
}

/**
 * Runs the A/B: `block(x)` times one block on build x ({ db, insert }) and returns its measures;
 * `describe(results)` is one build's line; `ratios` names the measures compared ([key, label]).
 * The process exits 2 on a failure.
 */
function runAB({ name, title, warmups, block, describe, ratios }) {
  const main = async () => {
    const dir = fs.mkdtempSync(path.join(DIR, `walnut-${name}-`));
    try {
      fs.mkdirSync(path.join(dir, 'a'));
      fs.mkdirSync(path.join(dir, 'b'));
      const a = await setup(A, path.join(dir, 'a'));
      const b = await setup(B, path.join(dir, 'b'));
      for (let i = 0; i < warmups; i++) await block(a), await block(b); // warm-up: JIT, wasm tier-up
      const ra = [];
      const rb = [];
      for (let i = 0; i < BLOCKS; i++) {
        if (i % 2 === 0) ra.push(await block(a)), rb.push(await block(b));
        else rb.push(await block(b)), ra.push(await block(a));
      }
      const fmt = (xs) => `${at(xs, 0.5).toFixed(3)} [${at(xs, 0.25).toFixed(3)}-${at(xs, 0.75).toFixed(3)}]`;
      console.log(`${BLOCKS} alternating blocks ${title} on ${DIR}`);
      console.log(`A ${A}: ${describe(ra)}`);
      console.log(`B ${B}: ${describe(rb)}`);
      console.log(`B / A: ${ratios.map(([key, label]) => `${label} ${fmt(ra.map((x, i) => rb[i][key] / x[key]))}`).join(', ')}`);
      await a.db.close();
      await b.db.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  };
  main().catch((e) => {
    console.error(e);
    process.exit(2);
  });
}

module.exports = { at, ROW, runAB };
