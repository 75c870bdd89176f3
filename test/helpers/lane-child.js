// A process whose worker_threads commit through one commit lane (lane-worker.js), for the
// two-process and SIGKILL tests of test/interop/workers.test.ts.
// usage: node lane-child.js <db> <slotsJson> <commits>
//   slotsJson: one array of { pgno, next } per worker; commits: per slot, 0 = until killed.
// Prints "ready" once every worker's store is open, "ack <w> <slot> <k>" the moment a commit
// resolves (the worker writes it to fd 1 itself, synchronously), "done <json: lane metrics of each worker>" after every store closed, "error ..." on
// any other outcome (then exits 1).
'use strict';
const path = require('node:path');
const { Worker } = require('node:worker_threads');

const [db, slotsJson, commitsArg] = process.argv.slice(2);
const perWorker = JSON.parse(slotsJson);
const commits = Number(commitsArg);
let open = 0;
const metrics = [];
const runs = perWorker.map((slots, w) => new Promise((resolve, reject) => {
  const worker = new Worker(path.join(__dirname, 'lane-worker.js'), { workerData: { db, w, slots, commits, ackFd: 1 } });
  worker.on('message', ([kind, a, b]) => {
    if (kind === 'open' && ++open === perWorker.length) process.stdout.write('ready\n');
    else if (kind === 'done') metrics[w] = a;
    else if (kind === 'error') reject(new Error(a));
  });
  worker.on('error', reject);
  worker.on('exit', resolve);
}));
Promise.all(runs).then(
  () => process.stdout.write(`done ${JSON.stringify(metrics)}\n`),
  (e) => {
    process.stdout.write(`error ${String(e.message).replace(/\n/g, ' ')}\n`);
    process.exit(1);
  },
);
