// bench/sql: durable one-row INSERT transactions (autocommit, prepared statement) through
// walnut/sql, against better-sqlite3 (one connection, WAL, synchronous=FULL) and raw walnut
// store.commit() of 2 pages (what one such transaction writes: a leaf and page 1) at the same
// concurrency. Cases run interleaved in short rounds; each ratio is the median of the
// per-round ratios, with its spread. CPU µs per transaction is this process's user+system time
// over the transactions (better-sqlite3 and walnut/sql both run in this process).
// The physical bound is the fsync: every case makes its transactions durable with fdatasync;
// group commit shares one among the transactions that arrive during the previous one.
//   node bench/sql.js   (after npm run build:ts)   or   npm run bench -- sql
//   node bench/sql.js --callers 1   (only the cases at that concurrency, and better-sqlite3)
// WALNUT_BENCH_BASELINE=<other dist/> runs the walnut/sql cases on that build too, in the same
// rounds (column "x baseline": median of the per-round ratios of this build's rate to that one's;
// its "x raw walnut" is against this build's raw walnut of the same round).
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const Database = require('better-sqlite3');
const { drive, table } = require('./harness');
const { open } = require('../dist/index.js');
const { openDatabase } = require('../dist/sql.js');
const baseline = process.env.WALNUT_BENCH_BASELINE ? require(path.resolve(process.env.WALNUT_BENCH_BASELINE, 'sql.js')) : null;

const SECONDS = Number(process.env.WALNUT_BENCH_SECONDS || 2);
const ROUNDS = Number(process.env.WALNUT_BENCH_ROUNDS || 5);
const CALLERS = 64;
const ROW = 'x'.repeat(100);

const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function measure(work) {
  const c0 = process.cpuUsage();
  const r = await work();
  const c = process.cpuUsage(c0);
  return { rate: r.perSecond, cpuMicros: (c.user + c.system) / (r.perSecond * SECONDS) };
}

const BASELINE = ' (baseline)';
const CASES = {
  [`walnut/sql, ${CALLERS} callers`]: (dir) => sqlCase(dir, CALLERS),
  'walnut/sql, 1 caller': (dir) => sqlCase(dir, 1),
  ...(baseline === null
    ? {}
    : {
        [`walnut/sql${BASELINE}, ${CALLERS} callers`]: (dir) => sqlCase(dir, CALLERS, baseline.openDatabase),
        [`walnut/sql${BASELINE}, 1 caller`]: (dir) => sqlCase(dir, 1, baseline.openDatabase),
      }),
  'better-sqlite3 WAL FULL, 1 connection': async (dir) => {
    const db = new Database(path.join(dir, 'b.db'));
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)');
    const insert = db.prepare('INSERT INTO t(v) VALUES (?)');
    try {
      // synchronous: the callers take turns; async wrapper only so drive() can run it
      return await measure(() => drive(1, SECONDS, async () => insert.run(ROW)));
    } finally {
      db.close();
    }
  },
  [`raw walnut store.commit 2 pages, ${CALLERS} committers`]: (dir) => rawCase(dir, CALLERS),
  'raw walnut store.commit 2 pages, 1 committer': (dir) => rawCase(dir, 1),
};

async function sqlCase(dir, callers, openDb = openDatabase) {
  const db = await openDb(path.join(dir, 's.db'));
  try {
    await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)');
    const insert = await db.prepare('INSERT INTO t(v) VALUES (?)');
    return await measure(() => drive(callers, SECONDS, () => insert.run([ROW])));
  } finally {
    await db.close();
  }
}

async function rawCase(dir, committers) {
  const store = await open(path.join(dir, 'r.db'));
  const page = Buffer.alloc(store.pageSize, 7);
  try {
    return await measure(() => drive(committers, SECONDS, (w, i) => store.commit([{ pgno: 1, data: page1(store.pageSize) }, { pgno: 2 + ((w * 7919 + i) % 5000), data: page }])));
  } finally {
    await store.close();
  }
}

let cachedPage1 = null;
function page1(pageSize) {
  if (cachedPage1 === null) {
    const { newDatabasePage1 } = require('../dist/format/db-header.js');
    cachedPage1 = Buffer.from(newDatabasePage1(pageSize));
  }
  return cachedPage1;
}

/** `--callers N` on the command line: the cases at that concurrency only (and the better-sqlite3 peer). */
function callersWanted() {
  const i = process.argv.indexOf('--callers');
  return i < 0 ? null : Number(process.argv[i + 1]);
}

async function run() {
  const base = process.env.WALNUT_BENCH_DIR || os.tmpdir();
  const only = require.main === module ? callersWanted() : null;
  const names = Object.keys(CASES).filter((n) => only === null || n.startsWith('better-sqlite3') || n.endsWith(only === 1 ? ', 1 caller' : `, ${only} callers`) || n.endsWith(only === 1 ? ', 1 committer' : `, ${only} committers`));
  const per = Object.fromEntries(names.map((n) => [n, []]));
  for (let round = 0; round < ROUNDS; round++) {
    // every other round in reverse: a case's place in the round (the disk's state, the load) shifts
    for (const name of round % 2 === 0 ? names : names.slice().reverse()) {
      const dir = fs.mkdtempSync(path.join(base, 'walnut-bench-sql-'));
      try {
        per[name].push(await CASES[name](dir));
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }
  }
  const ratio = (a, b) => names.length && per[a].map((x, i) => x.rate / per[b][i].rate);
  const fmt = (rs) => `${median(rs).toFixed(2)} (${Math.min(...rs).toFixed(2)}-${Math.max(...rs).toFixed(2)})`;
  const bsq = 'better-sqlite3 WAL FULL, 1 connection';
  const rawOf = (name) => (name.includes(`${CALLERS} callers`) ? `raw walnut store.commit 2 pages, ${CALLERS} committers` : name.includes('1 caller') ? 'raw walnut store.commit 2 pages, 1 committer' : null);
  const baselineOf = (name) => (name.startsWith('walnut/sql, ') && per[name.replace('walnut/sql', `walnut/sql${BASELINE}`)] ? name.replace('walnut/sql', `walnut/sql${BASELINE}`) : null);
  const rows = names.map((name) => ({
    case: name,
    'tx/s': Math.round(median(per[name].map((x) => x.rate))),
    'CPU µs/tx': Math.round(median(per[name].map((x) => x.cpuMicros))),
    'x better-sqlite3': name === bsq ? '1.00' : fmt(ratio(name, bsq)),
    'x raw walnut': rawOf(name) ? fmt(ratio(name, rawOf(name))) : '',
    'x baseline': baselineOf(name) ? fmt(ratio(name, baselineOf(name))) : '',
  }));
  return {
    columns: ['case', 'tx/s', 'CPU µs/tx', 'x better-sqlite3', 'x raw walnut', ...(baseline === null ? [] : ['x baseline'])],
    rows,
    notes: [`${ROUNDS} interleaved rounds of ${SECONDS} s per case; ratios: median of per-round ratios (min-max); load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} at the end.`],
  };
}

module.exports = { run };

if (require.main === module) {
  run().then(
    (r) => {
      console.log(table(r.rows, r.columns));
      for (const n of r.notes) console.log(n);
    },
    (e) => {
      console.error(e);
      process.exit(2);
    },
  );
}
