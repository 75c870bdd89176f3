// Worker-thread body for test/hostile/writer-beside-full-lane: a store that shares its commit
// lane (shareLane: true) and commits as fast as it can, from 8 committers of its own, each
// rewriting one page of its own (blind commits: none conflicts), until told to stop.
//
// workerData: { db, firstPgno, synchronous }   the committers write firstPgno .. firstPgno + 7
// Posts ['committing'] once its committers have made 200 commits (the lane runs at full speed),
// then, after the parent posts 'stop', closes the store and posts ['done', commits].
// A commit's failure ends the worker with it (the test counts on none).
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const { open } = require('../../dist/index.js');

const { db, firstPgno, synchronous = 'off' } = workerData;
const COMMITTERS = 8;

(async () => {
  const store = await open(db, { synchronous, shareLane: true, busyTimeout: 5000 });
  let stop = false;
  let commits = 0;
  parentPort.once('message', () => (stop = true));
  const data = Buffer.alloc(store.pageSize);
  await Promise.all(
    Array.from({ length: COMMITTERS }, async (_, i) => {
      for (let k = 1; !stop; k++) {
        data.writeUInt32BE(k, 0);
        await store.commit([{ pgno: firstPgno + i, data }]);
        if (++commits === 200) parentPort.postMessage(['committing']);
      }
    }),
  );
  await store.close();
  parentPort.postMessage(['done', commits]);
})();
