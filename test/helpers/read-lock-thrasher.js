// Child process for read-lock tests: takes the -shm's five READ lock bytes (SQLite's READ(0..4),
// bytes 123..127) exclusively again and again, as a checkpointer moving read marks does, only
// far more often: holds them HOLD_US microseconds, lets them go for FREE_US, for SECONDS. A
// reader's try finds them free now and then; two tries in a row mostly do not. Says "ready"
// once it ran its first cycle; prints its cycles on stderr at the end.
// usage: node read-lock-thrasher.js <shm> <holdUs> <freeUs> <seconds>
'use strict';
const { WalnutFile } = require('../../dist/index.js');

const [shm, holdUs, freeUs, seconds] = process.argv.slice(2).map((a, i) => (i === 0 ? a : Number(a)));
const f = WalnutFile.openSync(shm, { create: false });
const now = () => Number(process.hrtime.bigint() / 1000n);
const spin = (us) => {
  for (const t = now(); now() - t < us; );
};
const end = now() + seconds * 1e6;
let cycles = 0;
while (now() < end) {
  if (!f.tryLock(123, 5, 'exclusive')) continue; // a reader holds one: try again at once
  spin(holdUs);
  f.unlock(123, 5);
  if (cycles++ === 0) process.stdout.write('ready\n');
  spin(freeUs);
}
process.stderr.write(`read-lock-thrasher: ${cycles} cycles\n`);
