// A process for the worker.terminate() test of test/interop/workers.test.ts: a lane leader on
// the main thread committing back to back and, `rounds` times, a member in a worker
// (lane-worker.js, committing until terminated) terminated while its commits are in the
// leader's batches (the leader delivering their outcomes to a worker whose JS has stopped).
// usage: node lane-terminate-child.js <db> <slotsJson: the member's slots> <leader's pgno> <rounds>
// Prints "done <json: the leader's own commits, its committer's commits and batches (every
// member's), its lane metrics>" once the member's last worker is gone and the store closed (a
// crash prints nothing: the exit status says it).
'use strict';
const path = require('node:path');
const { Worker } = require('node:worker_threads');
const { open } = require('../../dist/index.js');

const [db, slotsJson, pgnoArg, roundsArg] = process.argv.slice(2);

/** A member committing until terminated; resolves once it acknowledged its first commit. */
function member() {
  const worker = new Worker(path.join(__dirname, 'lane-worker.js'), { workerData: { db, w: 1, slots: JSON.parse(slotsJson), commits: 0 } });
  let seen = 0;
  return new Promise((resolve, reject) => {
    worker.on('message', ([kind, a]) => {
      if (kind === 'error') reject(new Error(String(a)));
      else if (kind === 'ack' && ++seen === 1) resolve(worker);
    });
    worker.on('error', reject);
  });
}

(async () => {
  const store = await open(db); // the first store of the file: it leads
  const pgno = Number(pgnoArg);
  const snap = await store.snapshot();
  const page = Buffer.from(snap.readSync(pgno)); // committed again as it is: the database stays what SQLite made
  snap.release();
  let stop = false;
  let commits = 0;
  const committers = [0, 1].map(async () => {
    while (!stop) {
      await store.commit([{ pgno, data: page }]);
      commits++;
    }
  });
  for (let round = 0; round < Number(roundsArg); round++) {
    const worker = await member();
    await new Promise((resolve) => setTimeout(resolve, 10 + (round % 5) * 15)); // terminated at some point of its commits
    await worker.terminate();
  }
  stop = true;
  await Promise.all(committers);
  const m = store.metrics();
  await store.close();
  process.stdout.write(`done ${JSON.stringify({ commits, written: m.commits, batches: m.batches, lane: m.lane })}\n`);
})().catch((e) => {
  process.stdout.write(`error ${String(e.message).replace(/\n/g, ' ')}\n`);
  process.exitCode = 1;
});
