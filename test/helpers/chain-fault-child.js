// Fail-stop chaining (issue #20 store API item 2), driven through the fault hook in a process
// started with WALNUT_FAULT_INJECTION=1. maxBatchBytes of one page makes every commit its own
// batch, so the commits after the failing one are in later batches (the ones that used to
// commit). Scenarios: 'write' (EIO on the failing batch's pwritev), 'enospc', 'close' (close()
// called in the same turn as the commits), 'transaction' (EIO, the failing commit a store.begin()
// transaction's: it breaks no chain, so the later batches are written where its frames were). Prints one JSON line for the parent, which reopens
// the database and checks that exactly the acknowledged pages are there.
'use strict';
const { open } = require('../../dist/index.js');
const native = require('../../dist/native.js');

const [dbPath, scenario] = process.argv.slice(2);
const unhandled = [];
process.on('unhandledRejection', (e) => unhandled.push(String(e && e.message)));
const page = (v) => Buffer.alloc(4096, v);
// (guarded: the same child shows what a build without resumeCommits() does)
const resume = (store, ...a) => (typeof store.resumeCommits === 'function' ? store.resumeCommits(...a) : 'missing');
const outcome = (e) => ({ ok: false, code: e.code, reason: e.reason, causeCode: e.cause && e.cause.code });

(async () => {
  const store = await open(dbPath, { synchronous: 'full', groupCommit: { maxBatchBytes: 4096 }, autoCheckpoint: false });
  const acknowledged = [];
  const commit = (pgno, v) => store.commit([{ pgno, data: page(v) }]).then(
    () => {
      acknowledged.push({ pgno, v });
      return { ok: true };
    },
    outcome,
  );
  const out = { scenario };
  out.before = await commit(2, 1);
  native.TEST_setFaults(scenario === 'enospc' ? { failWrite: { nth: 1, errno: 28 } } : { failWrite: { nth: 1, errno: 5 } });
  // five commits in sequence (pages 3..7), each its own batch; the first batch's write fails
  let chain;
  if (scenario === 'transaction') {
    const tx = store.begin();
    tx.write(3, page(3));
    const first = tx.commit().then(() => (acknowledged.push({ pgno: 3, v: 3 }), { ok: true }), outcome);
    for (let i = 0; i < 3; i++) await null; // its submit (after its snapshot's await), before the others'
    chain = [first, ...[4, 5, 6, 7].map((pgno) => commit(pgno, pgno))];
  } else {
    chain = [3, 4, 5, 6, 7].map((pgno) => commit(pgno, pgno));
  }
  let closed = null;
  if (scenario === 'close') closed = store.close().then(() => ({ ok: true }), outcome);
  out.chain = await Promise.all(chain);
  if (scenario === 'close') {
    out.close = await closed;
    out.afterClose = await commit(8, 8);
    out.resumeAfterClose = resume(store);
  } else {
    out.brokenBy = store.chainBrokenBy && store.chainBrokenBy.code;
    out.whileBroken = await commit(8, 8); // submitted after the caller saw the failure: still refused
    out.snapshotWhileBroken = await store.snapshot().then((s) => (s.release(), { ok: true }), outcome);
    out.resumeOther = resume(store, new Error('not the failure')); // not the failure that broke it
    out.resumed = resume(store);
    out.resumedAgain = resume(store);
    out.afterResume = await commit(9, 9);
    await store.close();
  }
  out.acknowledged = acknowledged;
  out.metrics = { chainBreaks: store.metrics().chainBreaks };
  await new Promise((resolve) => setTimeout(resolve, 10));
  out.unhandled = unhandled;
  process.stdout.write(JSON.stringify(out) + '\n');
})().catch((e) => {
  process.stdout.write(JSON.stringify({ crashed: String(e && e.stack) }) + '\n');
});
