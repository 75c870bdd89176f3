// A store with 63 committers and one careless one that reuses its page buffer while its commit
// is in flight (scribbling over it right after commit() returns and in later turns, while
// batches are on the I/O thread), for `seconds`; then prints one JSON line (every committer's
// last acknowledged iteration) and kills itself with SIGKILL: no close, so the next opener
// (python3's sqlite3 in the test) recovers the WAL from its frames and their checksums.
// Page 2 + k holds committer k's iteration i as (k, i) u32 LE pairs; the careless one writes
// page 66 as (1000, i).
'use strict';
const { open } = require('../../dist/index.js');

const [dbPath, secondsArg] = process.argv.slice(2);
const PAGE = 4096;
const CARELESS = 1000;
function fill(buf, who, i) {
  for (let o = 0; o < PAGE; o += 8) {
    buf.writeUInt32LE(who, o);
    buf.writeUInt32LE(i, o + 4);
  }
}

(async () => {
  const store = await open(dbPath, { pageSize: PAGE, synchronous: 'full', autoCheckpoint: false });
  const acked = new Array(63).fill(0);
  let carelessAcked = 0;
  const end = Date.now() + Number(secondsArg) * 1000;
  const committer = async (k) => {
    for (let i = 1; Date.now() < end; i++) {
      const page = Buffer.allocUnsafe(PAGE);
      fill(page, k, i);
      await store.commit([{ pgno: 2 + k, data: page }]);
      acked[k] = i;
    }
  };
  const careless = async () => {
    const scratch = Buffer.allocUnsafe(PAGE);
    for (let i = 1; Date.now() < end; i++) {
      fill(scratch, CARELESS, i);
      let settled = false;
      const done = store.commit([{ pgno: 66, data: scratch }]).finally(() => (settled = true));
      let n = 0;
      while (!settled) {
        const t = process.hrtime.bigint();
        while (process.hrtime.bigint() - t < 200000n) scratch[(n++ * 97) % PAGE] ^= 0xff;
        await new Promise((resolve) => setImmediate(resolve));
      }
      await done;
      carelessAcked = i;
    }
  };
  await Promise.all([careless(), ...acked.map((_, k) => committer(k))]);
  process.stdout.write(JSON.stringify({ acked, carelessAcked, commits: store.metrics().commits }) + '\n', () => process.kill(process.pid, 'SIGKILL'));
})().catch((e) => {
  process.stdout.write(JSON.stringify({ crashed: String(e && e.stack) }) + '\n');
  process.exit(1);
});
