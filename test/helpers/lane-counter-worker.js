// Worker-thread body for test/interop/lane-base-member.test.ts: a lane member (the test's main
// thread opened the first store: it leads) that increments a counter page in transactions
// until the stop flag is set: begin(), read the page, write it with the counter + 1, commit;
// a WALNUT_CONFLICT (first committer wins) is retried on a new snapshot.
// workerData: { db, pgno, next, w, stop: SharedArrayBuffer (Int32 0: go on, 1: stop) }
// Posts ['open', leader] once open, then ['done', values] (each acknowledged commit's counter)
// once closed, or ['error', message].
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const { open } = require('../../dist/index.js');

const { db, pgno, next, w, stop } = workerData;
const MARK = 0xc0ffee00;

(async () => {
  const store = await open(db);
  parentPort.postMessage(['open', store.metrics().lane?.leader ?? null]);
  const flag = new Int32Array(stop);
  const values = [];
  while (Atomics.load(flag, 0) === 0) {
    const tx = store.begin();
    const page = await tx.read(pgno);
    const v = page.readUInt32BE(8) === MARK ? page.readUInt32BE(12) : 0;
    const data = Buffer.alloc(store.pageSize, w + 1);
    data.writeUInt32BE(next, 0); // the overflow chain's link kept
    data.writeUInt32BE(w, 4);
    data.writeUInt32BE(MARK, 8);
    data.writeUInt32BE(v + 1, 12);
    tx.write(pgno, data);
    try {
      await tx.commit();
      values.push(v + 1);
    } catch (e) {
      if (e.code !== 'WALNUT_CONFLICT') throw e;
    }
  }
  await store.close();
  parentPort.postMessage(['done', values]);
})().catch((e) => parentPort.postMessage(['error', `${e.code} ${e.reason ?? ''} ${e.stack}`]));
