// bench/commit-worker: one worker_thread of bench/commit.js's worker cases (issue #21). Opens a
// store on workerData.db (shareLane as given) and, for each { seconds } message, drives
// `committers` loops of one-page commits (pages disjoint between workers) for that long;
// replies { commits, p50, p99, batches, fsyncs, lane } (batches/fsyncs: this store's own
// committer, i.e. the leader's when the lane is shared). 'close' closes the store.
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const { open } = require('../dist/index.js');
const { drive } = require('./harness');

const { db, w, committers, shareLane } = workerData;
(async () => {
  const store = await open(db, { shareLane });
  const data = Buffer.alloc(4096, 0x5a);
  // 8 pages per committer, disjoint across workers: at most 8 x 64 x 8 + 1 pages
  const commitOnce = (c, i) => store.commit([{ pgno: 2 + (w * 64 + c) * 8 + (i % 8), data }]);
  parentPort.on('message', async (m) => {
    if (m === 'close') {
      await store.close();
      parentPort.close();
      return;
    }
    const before = store.metrics();
    const x = await drive(committers, m.seconds, commitOnce);
    const after = store.metrics();
    parentPort.postMessage({ commits: Math.round(x.perSecond * m.seconds), p50: x.p50, p99: x.p99, batches: after.batches - before.batches, fsyncs: after.fsyncs - before.fsyncs, lane: after.lane ?? null });
  });
  parentPort.postMessage('ready');
})().catch((e) => parentPort.postMessage({ error: String(e.stack) }));
