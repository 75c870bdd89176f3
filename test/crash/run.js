#!/usr/bin/env node
// npm run test:crash [-- --trials N --seed S]: the long crash run; one summary line (with the seed, which
// gives each trial's kill delay again; the kill lands where the child's timing puts it), exit 1 on failure.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { trial } = require('./trials.js');
const { seededRandom } = require('../helpers/wal-damage.js');

const arg = (name, otherwise) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : otherwise;
};
const trials = arg('trials', 1000);
const seed = arg('seed', Date.now() % 2 ** 31);
(async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'walnut-crash-'));
  const rand = seededRandom(seed);
  let acked = 0;
  let failures = 0;
  for (let t = 0; t < trials; t++) {
    const r = await trial({ dir, index: t, rand });
    acked += r.acked;
    if (r.problems.length) {
      failures++;
      console.log(`trial ${t} (${r.synchronous}, ${r.committers} committers): ${r.problems.join('; ')}`);
    }
    if (process.stderr.isTTY) process.stderr.write(`\r${t + 1}/${trials}`);
  }
  if (process.stderr.isTTY) process.stderr.write('\n');
  console.log(`crash trials: ${trials} trials, seed ${seed}, ${acked} acknowledged commits checked, ${failures} failures`);
  fs.rmSync(dir, { recursive: true, force: true });
  process.exit(failures ? 1 : 0);
})();
