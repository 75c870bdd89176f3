#!/usr/bin/env node
// npm run fuzz [-- --cases N --export-cases N --verify-cases N --fec-cases N --seed S --seconds T]:
// the long fuzz runs: WAL recovery scan, export stream, verify, FEC recovery.
// Bounded in time: the four runs together stop starting cases after T seconds (default 600; 0:
// no bound, every case asked for), each by its share of T (wal 35%, export 35%, verify 15%, FEC
// 15%; what a run leaves unused goes to the next), so a bound run still reaches all four. Each
// summary line says how many cases ran, of how many asked.
// Prints a summary line per run; exits 1 when any case failed (failing inputs are kept, their paths printed).
// The scratch directory is in memory (/dev/shm) where there is one, as memoryTmpDir() in
// test/helpers/tmp.ts: the cases are throwaway files whose subject is parsing and recovery, not
// the disk. Failing inputs kept there last until a reboot: copy them out.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { fuzzWalRecovery } = require('./wal-fuzz.js');
const { fuzzExport } = require('./export-fuzz.js');
const { fuzzVerify, fuzzFecRecovery } = require('./verify-fuzz.js');

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const cases = arg('cases', 100_000);
const seed = arg('seed', Date.now() % 2 ** 31);
const seconds = arg('seconds', 600);
const started = Date.now();
/** The Date.now() after which the run ending at `share` (cumulative, 0..1) of the bound starts no more cases. */
const deadline = (share) => (seconds > 0 ? started + seconds * 1000 * share : Infinity);
/** "N cases" or "N of M cases (time bound)". */
const ran = (done, asked) => (done < asked ? `${done} of ${asked} cases (time bound)` : `${done} cases`);
/** A fresh scratch directory: in /dev/shm where it can be made there, else in os.tmpdir(). */
function scratchDir() {
  try {
    return fs.mkdtempSync(path.join('/dev/shm', 'walnut-fuzz-'));
  } catch {
    return fs.mkdtempSync(path.join(os.tmpdir(), 'walnut-fuzz-')); // no /dev/shm (not Linux), or not writable
  }
}
const dir = scratchDir();
(async () => {
const t0 = Date.now();
const r = fuzzWalRecovery({ cases, seed, dir, deadline: deadline(0.35), onProgress: (i) => process.stderr.isTTY && process.stderr.write(`\r${i}/${cases}`) });
if (process.stderr.isTTY) process.stderr.write('\n');
for (const f of r.failures) console.log(`case ${f.case} (${f.what}): ${f.problem}\n  input kept at ${f.file}`);
console.log(`wal recovery fuzz: ${ran(r.cases, cases)}, seed ${seed}, ${r.failures.length} failures, outcomes ${JSON.stringify(r.outcomes)}, ${((Date.now() - t0) / 1000).toFixed(1)} s`);
const exportCases = arg('export-cases', 100_000);
const t1 = Date.now();
const x = await fuzzExport({ cases: exportCases, seed, dir, deadline: deadline(0.7) });
for (const f of x.failures) console.log(`export case ${f.case}: ${f.problem}`);
console.log(`export stream fuzz: ${ran(x.cases, exportCases)}, seed ${seed}, ${x.failures.length} failures, outcomes ${JSON.stringify(x.outcomes)}, ${((Date.now() - t1) / 1000).toFixed(1)} s`);
const verifyCases = arg('verify-cases', 10_000);
const t2 = Date.now();
const v = await fuzzVerify({ cases: verifyCases, seed, dir, deadline: deadline(0.85) });
for (const f of v.failures) console.log(`verify case ${f.case}: ${f.problem}`);
console.log(`verify fuzz: ${ran(v.cases, verifyCases)}, seed ${seed}, ${v.failures.length} failures, outcomes ${JSON.stringify(v.outcomes)}, ${((Date.now() - t2) / 1000).toFixed(1)} s`);
const fecCases = arg('fec-cases', 2_000);
const t3 = Date.now();
const f = await fuzzFecRecovery({ cases: fecCases, seed, dir, deadline: deadline(1) });
for (const x of f.failures) console.log(`fec case ${x.case}: ${x.problem}`);
console.log(`fec recovery fuzz: ${ran(f.cases, fecCases)}, seed ${seed}, ${f.failures.length} failures, outcomes ${JSON.stringify(f.outcomes)}, ${((Date.now() - t3) / 1000).toFixed(1)} s`);
const failed = r.failures.length + x.failures.length + v.failures.length + f.failures.length;
if (failed === 0) fs.rmSync(dir, { recursive: true, force: true });
process.exit(failed === 0 ? 0 : 1);
})();
