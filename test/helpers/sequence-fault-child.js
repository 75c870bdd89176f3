// Sequenced commits failing (issue #20 store API item 1), driven through the fault hook in a
// process started with WALNUT_FAULT_INJECTION=1. maxBatchBytes of one page makes every commit
// its own batch. Scenarios: 'write' (EIO on the first batch after arming), 'close' (the same,
// with close() called in the turn that sequenced the commits). Prints one JSON line; the
// parent reopens the database and checks that exactly the acknowledged pages are there.
// 'lane' (laneScenario): a store whose lane commit failed leads the lane later.
'use strict';
const { open } = require('../../dist/index.js');
const native = require('../../dist/native.js');

const [dbPath, scenario] = process.argv.slice(2);
const unhandled = [];
process.on('unhandledRejection', (e) => unhandled.push(String(e && e.message)));
const page = (v) => Buffer.alloc(4096, v);
const outcome = (e) => ({ ok: false, code: e.code, reason: e.reason, causeCode: e.cause && e.cause.code });
const attempt = (fn) => {
  try {
    return { ok: true, value: fn() };
  } catch (e) {
    return outcome(e);
  }
};

/**
 * 'lane': two stores of this thread share a commit lane; a commit the follower hands to the lane
 * meets the fault (its own chain breaks), then the leader closes and the follower leads: its
 * sequence() must refuse (nothing sequenced, nothing seen) until it acknowledges the failure.
 */
async function laneScenario() {
  const options = { groupCommit: { maxBatchBytes: 4096 }, autoCheckpoint: false };
  const leader = await open(dbPath, options);
  const follower = await open(dbPath, options);
  await leader.commit([{ pgno: 2, data: page(1) }]);
  native.TEST_setFaults({ failWrite: { nth: 1, errno: 5 } });
  const out = { scenario };
  out.failed = await follower.commit([{ pgno: 3, data: page(2) }]).then(() => ({ ok: true }), outcome);
  native.TEST_setFaults({});
  await leader.close();
  out.followerLeads = follower.metrics().lane.leader;
  out.whileBroken = attempt(() => follower.sequence([{ pgno: 4, data: page(9) }]).ticket);
  const snap = follower.trySnapshotSync();
  out.seen = { pendingTicket: snap.pendingTicket, dbSize: snap.dbSize, page4: snap.readSync(4)[0] };
  snap.release();
  out.resumed = follower.resumeCommits(follower.chainBrokenBy);
  const after = follower.sequence([{ pgno: 4, data: page(10) }]);
  out.afterResume = { ticket: after.ticket, settled: await after.durable.then(() => ({ ok: true }), outcome) };
  await follower.close();
  await new Promise((resolve) => setTimeout(resolve, 10));
  out.unhandled = unhandled;
  process.stdout.write(JSON.stringify(out) + '\n');
}

(async () => {
  if (scenario === 'lane') return laneScenario();
  const store = await open(dbPath, { synchronous: 'full', groupCommit: { maxBatchBytes: 4096 }, autoCheckpoint: false });
  const acknowledged = [];
  const sequence = (pgno, v) => {
    const s = store.sequence([{ pgno, data: page(v) }]);
    const settled = s.durable.then(
      () => {
        acknowledged.push({ pgno, v });
        return { ok: true };
      },
      outcome,
    );
    return { ticket: s.ticket, settled };
  };
  const out = { scenario };
  const first = sequence(2, 1);
  out.before = await first.settled;
  native.TEST_setFaults({ failWrite: { nth: 1, errno: 5 } });
  // five commits (pages 3..7), each its own batch; the first batch's write fails
  const chain = [3, 4, 5, 6, 7].map((pgno) => sequence(pgno, pgno));
  out.tickets = chain.map((c) => c.ticket);
  const snap = store.trySnapshotSync(); // sees all five before any is durable
  out.seenBefore = { pendingTicket: snap.pendingTicket, dbSize: snap.dbSize, pages: [3, 7].map((p) => snap.readSync(p)[0]) };
  const snapDurable = snap.whenDurable().then(() => ({ ok: true }), outcome);
  let closed = null;
  if (scenario === 'close') {
    closed = store.close().then(() => ({ ok: true }), outcome);
    out.sequenceDuringClose = attempt(() => store.sequence([{ pgno: 8, data: page(8) }]).ticket);
  }
  out.chain = await Promise.all(chain.map((c) => c.settled));
  out.snapDurable = await snapDurable;
  out.readAfterFailure = attempt(() => snap.readSync(3)[0]);
  out.whenDurable = await Promise.all([out.tickets[0], out.tickets[2], first.ticket].map((t) => store.whenDurable(t).then(() => ({ ok: true }), outcome)));
  if (scenario === 'close') {
    out.close = await closed;
    out.afterClose = attempt(() => store.sequence([{ pgno: 8, data: page(8) }]).ticket);
  } else {
    const fresh = store.trySnapshotSync();
    out.seenAfter = { pendingTicket: fresh.pendingTicket, dbSize: fresh.dbSize, pages: [2, 3, 7].map((p) => fresh.readSync(p)[0]) };
    fresh.release();
    out.whileBroken = attempt(() => store.sequence([{ pgno: 8, data: page(8) }]).ticket);
    out.resumed = store.resumeCommits(store.chainBrokenBy);
    const after = sequence(9, 9);
    out.afterResume = { ticket: after.ticket, settled: await after.settled };
    snap.release();
    await store.close();
  }
  out.acknowledged = acknowledged;
  await new Promise((resolve) => setTimeout(resolve, 10));
  out.unhandled = unhandled;
  process.stdout.write(JSON.stringify(out) + '\n');
})().catch((e) => {
  process.stdout.write(JSON.stringify({ crashed: String(e && e.stack) }) + '\n');
});
