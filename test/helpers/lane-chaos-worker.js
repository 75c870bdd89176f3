// Worker-thread body for test/hostile/lane-worker-chaos.test.ts: a store on workerData.db whose
// committers commit one page each, back to back, until the worker is terminated or told to stop.
// What each slot committed is kept in shared memory (so it survives worker.terminate(), where a
// postMessage queued just before may be lost):
//   tried[slot]  the k of the commit in flight (set before commit() is called)
//   acked[slot]  the highest k whose commit() resolved
// A committer starts at tried[slot] + 1, so a page only ever holds a k that was acknowledged or
// was in flight when a worker ended. A commit failed with WALNUT_CLOSED/LeaderExited (the lane's
// leader ended mid-batch: maybe written) or WALNUT_BUSY (WRITE held by another process past the
// busy timeout, as SQLite's SQLITE_BUSY) and the ChainBroken refusals after it (both counted in
// errors[2]; the chain is resumed) is retried with a new k; any other failure is posted as
// ['error', code, reason, message] and counted in errors[0].
//
// workerData: { db, slots: [{ pgno, next, slot }], tried, acked, errors (SharedArrayBuffers; errors: 3 Int32), w,
//   leads (optional SharedArrayBuffer), autoCheckpoint, mode, closeAfter }
//  mode 'commit'    commit until terminated or parent posts 'stop' (then close, post ['closed'])
//  mode 'churn'     open, commit closeAfter times per slot, close; post ['closed'] (a short-lived store)
//  mode 'exit'      commit until the commit numbered closeAfter resolves, then in its handler
//                   process.exit(3) (the store never closed)
//  mode 'throw'     the same, but throw from the handler (uncaught: the worker dies with an error)
//  mode 'spin'      commit closeAfter times, then block the event loop (busy loop, no await)
//                   until Atomics flag errors[1] is set, then go on committing until terminated
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const { open } = require('../../dist/index.js');

const { db, slots, w = 0, autoCheckpoint = 200, mode = 'commit', closeAfter = 0 } = workerData;
const tried = new Int32Array(workerData.tried);
const acked = new Int32Array(workerData.acked);
const errors = new Int32Array(workerData.errors);
// leads[w]: 1 while this worker's store led the lane at its last look (every 8th commit)
const leads = workerData.leads ? new Int32Array(workerData.leads) : null;
let stop = false;
let done = 0;

function lanePage(pageSize, next, k) {
  const data = Buffer.alloc(pageSize, (w * 7 + k) & 0xff);
  data.writeUInt32BE(next, 0); // an overflow page's link to the next page of its chain
  data.writeUInt32BE(w, 4);
  data.writeUInt32BE(k, 12);
  return data;
}

async function committer(store, i) {
  const { pgno, next, slot } = slots[i];
  for (let n = 0; !stop && (mode !== 'churn' || n < closeAfter); n++) {
    const k = Atomics.add(tried, slot, 1) + 1;
    try {
      await store.commit([{ pgno, data: lanePage(store.pageSize, next, k) }]);
    } catch (e) {
      if (e.code === 'WALNUT_CLOSED' && e.reason === 'LeaderExited') continue;
      // WRITE held by another process past the busy timeout (a sqlite3 writer or TRUNCATE
      // checkpoint): not written; it broke this store's commit chain (fail-stop), so the commits
      // sequenced after it are refused (ChainBroken, not written either) until resumeCommits()
      if (e.code === 'WALNUT_BUSY' || (e.code === 'WALNUT_FAILED' && e.reason === 'ChainBroken')) {
        Atomics.add(errors, 2, 1);
        if (store.chainBrokenBy) store.resumeCommits(store.chainBrokenBy);
        continue;
      }
      Atomics.add(errors, 0, 1);
      parentPort.postMessage(['error', e.code, e.reason, String(e.stack)]);
      return;
    }
    // acked is monotonic per slot (one committer per slot at a time)
    if (Atomics.load(acked, slot) < k) Atomics.store(acked, slot, k);
    done++;
    if (leads && done % 8 === 0) Atomics.store(leads, w, store.metrics().lane?.leader ? 1 : 0);
    if (mode === 'exit' && done === closeAfter) process.exit(3);
    if (mode === 'throw' && done === closeAfter) throw new Error('thrown from a commit handler');
    if (mode === 'spin' && done === closeAfter) {
      parentPort.postMessage(['spinning']);
      while (Atomics.load(errors, 1) === 0) { /* a blocked event loop */ }
    }
  }
}

(async () => {
  const store = await open(db, { autoCheckpoint });
  parentPort.postMessage(['open', store.metrics().lane?.leader ?? null]);
  parentPort.on('message', (m) => {
    if (m === 'stop') stop = true;
  });
  const running = slots.map((_, i) => committer(store, i));
  if (mode === 'throw') {
    // let the throw escape as an uncaught exception (not a rejection of this async function)
    for (const r of running) r.catch((e) => setImmediate(() => { throw e; }));
    await Promise.allSettled(running);
  } else await Promise.all(running);
  await store.close();
  parentPort.postMessage(['closed']);
  parentPort.removeAllListeners('message');
  parentPort.unref(); // the worker ends once its store is closed
})().catch((e) => {
  Atomics.add(errors, 0, 1);
  parentPort.postMessage(['error', e.code, e.reason, String(e.stack)]);
});
