#!/usr/bin/env node
// npm run bench [-- suite...]: runs the side-by-side benchmarks, prints a table per suite and
// writes bench/results/latest.json. Suites: checksum, io, recovery (when present).
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { table } = require('./harness');

const ALL = ['checksum', 'io', 'recovery', 'read', 'commit', 'checkpoint', 'wal-pinned', 'export', 'follow', 'verify', 'fec', 'sql'];

async function main() {
  const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
  const suites = (wanted.length ? wanted : ALL).filter((s) => fs.existsSync(path.join(__dirname, `${s}.js`)));
  const results = { date: new Date().toISOString(), node: process.version, cpus: require('node:os').cpus().length, suites: {} };
  for (const s of suites) {
    process.stderr.write(`running ${s}...\n`);
    const r = await require(`./${s}.js`).run();
    results.suites[s] = r;
    console.log(`\n## ${s}\n`);
    console.log(table(r.rows, r.columns));
    if (r.notes) for (const n of r.notes) console.log(n);
  }
  fs.mkdirSync(path.join(__dirname, 'results'), { recursive: true });
  fs.writeFileSync(path.join(__dirname, 'results', 'latest.json'), JSON.stringify(results, null, 2));
}

main().catch((e) => {
  console.error(e);
  process.exit(2);
});
