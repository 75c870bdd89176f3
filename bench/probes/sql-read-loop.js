// bench/probes/sql-read-loop: a lone writer beside a caller looping `await db.get()` on a read
// connection (walnut/sql), against the same writer alone. A read on a kept snapshot settles in
// microtasks, so the loop holds each turn of the event loop until database.ts makes a call wait
// for the next (10 ms, 1 ms for reads while a write waits); a commit needs a turn or two.
// Prints writes/s and reads/s per case, medians over ROUNDS interleaved rounds of SECONDS, and
// the writer's rate beside the loop over its rate alone (median of per-round ratios, spread).
// DIST=<dist/> picks the build; BASELINE=<other dist/> runs the read-loop case on it too, in the
// same rounds. The bound: the writer alone (one fdatasync per write).
//   node bench/probes/sql-read-loop.js   (ROUNDS, SECONDS, DIST, BASELINE)
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const load = (d) => require(path.join(path.resolve(d), 'sql.js'));
const builds = { this: load(process.env.DIST || path.join(__dirname, '../../dist')) };
if (process.env.BASELINE) builds.baseline = load(process.env.BASELINE);
const ROUNDS = Number(process.env.ROUNDS || 5);
const SECONDS = Number(process.env.SECONDS || 2);
const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function run(openDatabase, withReader) {
  const dir = fs.mkdtempSync(path.join(process.env.WALNUT_BENCH_DIR || os.tmpdir(), 'walnut-read-loop-'));
  const db = await openDatabase(path.join(dir, 'r.db'), { readConnections: 1 });
  try {
    await db.exec('CREATE TABLE t(k INTEGER PRIMARY KEY, v TEXT)');
    await db.run("INSERT INTO t(v) VALUES ('first')");
    let stop = false;
    let writes = 0;
    let reads = 0;
    const writer = (async () => {
      while (!stop) {
        await db.run('INSERT INTO t(v) VALUES (?)', ['x'.repeat(100)]);
        writes++;
      }
    })();
    const reader = withReader
      ? (async () => {
          while (!stop) {
            await db.get('SELECT count(*) AS n FROM t');
            reads++;
          }
        })()
      : null;
    await new Promise((resolve) => setTimeout(resolve, SECONDS * 1000));
    stop = true;
    await Promise.all([writer, reader]);
    return { writes: writes / SECONDS, reads: reads / SECONDS };
  } finally {
    await db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

(async () => {
  const cases = [['writer alone', builds.this, false], ['writer + read loop', builds.this, true]];
  if (builds.baseline) cases.push(['writer + read loop (baseline)', builds.baseline, true]);
  const results = Object.fromEntries(cases.map(([name]) => [name, []]));
  const ratios = Object.fromEntries(cases.slice(1).map(([name]) => [name, []]));
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? cases : cases.slice().reverse();
    const round = {};
    for (const [name, b, withReader] of order) round[name] = await run(b.openDatabase, withReader);
    for (const [name] of cases) results[name].push(round[name]);
    for (const name of Object.keys(ratios)) ratios[name].push(round[name].writes / round['writer alone'].writes);
  }
  for (const [name] of cases) {
    const rs = results[name];
    const line = `${name.padEnd(30)} writes/s ${Math.round(median(rs.map((x) => x.writes))).toString().padStart(6)}  reads/s ${Math.round(median(rs.map((x) => x.reads))).toString().padStart(7)}`;
    const q = ratios[name];
    console.log(q ? `${line}  writes x alone ${median(q).toFixed(2)} (${Math.min(...q).toFixed(2)}-${Math.max(...q).toFixed(2)})` : line);
  }
})();
