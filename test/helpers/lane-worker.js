// Worker-thread body for the commit-lane tests (test/interop/workers.test.ts) and their child
// processes (lane-child.js): opens a store on workerData.db and commits.
//
// workerData: { db, w, slots: [{ pgno, next }], commits, shareLane, mode, rounds, barrier, workers, holdOpen, ackFd, autoCheckpoint }
//  (autoCheckpoint: the store's option, default 200; false lets the WAL grow)
//  mode 'commit'   one committer loop per slot: commits k = 1..commits (0: forever) of that page
//                  (lanePage: the overflow chain's next pointer kept, then w, slot, k), posting
//                  ['ack', slot, k] after each (with ackFd: writing "ack w slot k" to that
//                  descriptor synchronously, so it is out before the next commit begins). A commit failed with WALNUT_CLOSED/LeaderExited
//                  (the lane's leader ended mid-batch: maybe written, maybe not) is retried with
//                  the same k, so a page never holds a k that was not acknowledged or in flight.
//  mode 'conflict' `rounds` rounds: begin(), read slot 0's page, write it, wait on the barrier
//                  until every worker has its snapshot, commit; posts ['round', r, 'won'|code].
//  mode 'stall'    commits k = 1 on each slot (not awaited), posts ['stalled'], and never returns
//                  to its event loop (until worker.terminate()): its commits never enter the lane.
// Posts ['open', leader] once the store is open, ['done', laneMetrics, committerCommits] when
// finished, then (with holdOpen: after the parent posts 'close'; until then it answers
// 'metrics') closes the store and posts ['closed'].
'use strict';
const fs = require('node:fs');
const { parentPort, workerData } = require('node:worker_threads');
const { open } = require('../../dist/index.js');

const { db, w, slots, commits, shareLane = true, mode = 'commit', rounds = 0, barrier, workers, holdOpen = false, ackFd, autoCheckpoint = 200 } = workerData;

function lanePage(pageSize, next, slot, k) {
  const data = Buffer.alloc(pageSize, (w * 7 + slot * 3 + k) & 0xff);
  data.writeUInt32BE(next, 0); // an overflow page's link to the next page of its chain
  data.writeUInt32BE(w, 4);
  data.writeUInt32BE(slot, 8);
  data.writeUInt32BE(k, 12);
  return data;
}

// fd 1 of the child is a non-blocking pipe: a full one (a parent slow to read) answers EAGAIN
// until it drains; the ack must be out before the next commit begins, so it is retried here.
function writeAck(line) {
  const bytes = Buffer.from(line);
  for (let at = 0; at < bytes.length;) {
    try {
      at += fs.writeSync(ackFd, bytes, at);
    } catch (e) {
      if (e.code !== 'EAGAIN') throw e;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
    }
  }
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 1));

async function commitLoop(store, slot) {
  const { pgno, next } = slots[slot];
  for (let k = 1; commits === 0 || k <= commits; k++) {
    for (;;) {
      try {
        await store.commit([{ pgno, data: lanePage(store.pageSize, next, slot, k) }]);
        break;
      } catch (e) {
        if (e.code === 'WALNUT_CLOSED' && e.reason === 'LeaderExited') {
          parentPort.postMessage(['orphaned', slot, k]);
          continue;
        }
        throw e;
      }
    }
    if (ackFd !== undefined) writeAck(`ack ${w} ${slot} ${k}\n`);
    else parentPort.postMessage(['ack', slot, k]);
  }
}

async function conflictRounds(store) {
  const counter = new Int32Array(barrier);
  const { pgno, next } = slots[0];
  for (let r = 0; r < rounds; r++) {
    const tx = store.begin();
    await tx.read(pgno);
    tx.write(pgno, lanePage(store.pageSize, next, 0, r + 1));
    Atomics.add(counter, 0, 1);
    // every worker holds its snapshot before anyone commits (polled: this event loop may be the
    // lane's leader, which others' commits of the last round still need)
    while (Atomics.load(counter, 0) < workers * (r + 1)) await tick();
    try {
      await tx.commit();
      parentPort.postMessage(['round', r, 'won']);
    } catch (e) {
      parentPort.postMessage(['round', r, e.code]);
    }
  }
}

(async () => {
  const store = await open(db, { shareLane, autoCheckpoint });
  parentPort.postMessage(['open', store.metrics().lane?.leader ?? null]);
  if (mode === 'stall') {
    const { pgno, next } = slots[0];
    for (let slot = 0; slot < slots.length; slot++) store.commit([{ pgno: slots[slot].pgno, data: lanePage(store.pageSize, slots[slot].next, slot, 1) }]).catch(() => undefined);
    parentPort.postMessage(['stalled', pgno, next]);
    const blocked = new Int32Array(new SharedArrayBuffer(4));
    for (;;) Atomics.wait(blocked, 0, 0, 10); // terminate() lands between two waits
  }
  if (mode === 'conflict') await conflictRounds(store);
  else await Promise.all(slots.map((_, slot) => commitLoop(store, slot)));
  const m = store.metrics();
  parentPort.postMessage(['done', m.lane ?? null, m.commits]);
  // holdOpen: answers 'metrics' with ['metrics', laneMetrics, committerCommits] until 'close'
  if (holdOpen) {
    await new Promise((resolve) => parentPort.on('message', (m) => {
      if (m === 'close') return resolve();
      const now = store.metrics();
      parentPort.postMessage(['metrics', now.lane ?? null, now.commits]);
    }));
    parentPort.removeAllListeners('message');
    parentPort.unref(); // the worker ends when its store is closed, as without holdOpen
  }
  await store.close();
  parentPort.postMessage(['closed']);
})().catch((e) => parentPort.postMessage(['error', `${e.code} ${e.reason ?? ''} ${e.stack}`]));
