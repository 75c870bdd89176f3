// Worker-thread body for test/hostile/write-wait-blocked-teardown: opens <db> with a connection
// of its own (busy timeout 5 s), starts three commits (pages 2..4) and a truncate checkpoint,
// all of which wait for WRITE held by another process (blocked in the kernel on the addon's
// lock lane once the first tries failed: wal-index.ts #lockShm), posts 'waiting', and stays
// until terminated (posting ['settled', outcomes] should they all settle first).
//
// workerData: { db }
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const { open } = require('../../dist/index.js');

(async () => {
  const store = await open(workerData.db, { busyTimeout: 5000, shareLane: false });
  const data = new Uint8Array(store.pageSize).fill(7);
  const calls = [2, 3, 4].map((pgno) => store.commit([{ pgno, data }]));
  calls.push(store.checkpoint('truncate'));
  parentPort.postMessage('waiting');
  const outcomes = await Promise.all(calls.map((c) => c.then(() => 'ok', (e) => e.code)));
  parentPort.postMessage(['settled', outcomes]);
})();
