// Worker-thread body for test/hostile/close-member-lane-cut: one store on workerData.db (a lane
// member or leader, by the order of opening), driven by the parent's messages.
// workerData: { db, busyTimeout }
//  ['commit', id, pages: [{ pgno, data }]]  commits them, posts ['outcome', id, 'ok' | 'CODE/reason']
//  ['close']                                 closes the store, posts ['closed', ms it took]
// Posts ['open', leader] once the store is open; ['error', message] on anything unexpected.
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const { open } = require('../../dist/index.js');

const describe = (e) => `${e.code ?? String(e)}${e.reason ? `/${e.reason}` : ''}`;

open(workerData.db, { busyTimeout: workerData.busyTimeout }).then(
  (store) => {
    parentPort.on('message', (m) => {
      if (m[0] === 'commit') {
        const pages = m[2].map((p) => ({ pgno: p.pgno, data: Buffer.from(p.data) }));
        store.commit(pages).then(
          () => parentPort.postMessage(['outcome', m[1], 'ok']),
          (e) => parentPort.postMessage(['outcome', m[1], describe(e)]),
        );
      } else if (m[0] === 'close') {
        const t0 = performance.now();
        store.close().then(
          () => {
            parentPort.postMessage(['closed', performance.now() - t0]);
            parentPort.close();
          },
          (e) => parentPort.postMessage(['error', `close: ${describe(e)}`]),
        );
      }
    });
    parentPort.postMessage(['open', store.metrics().lane?.leader === true]);
  },
  (e) => parentPort.postMessage(['error', `open: ${describe(e)}`]),
);
