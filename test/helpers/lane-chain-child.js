// The commit chain (fail-stop) of stores that share a commit lane, driven through the fault hook
// in a process started with WALNUT_FAULT_INJECTION=1. Store a leads, b is a member that does not
// lead (same file, same thread). Each commit is its own batch (maxBatchBytes of one page).
// Prints one JSON line: what each step answered; the parent reopens and checks the pages.
'use strict';
const { open } = require('../../dist/index.js');
const native = require('../../dist/native.js');

const [dbPath] = process.argv.slice(2);
const unhandled = [];
process.on('unhandledRejection', (e) => unhandled.push(String(e && e.message)));
const page = (v) => Buffer.alloc(4096, v);
const outcome = (e) => ({ ok: false, code: e.code, reason: e.reason });

(async () => {
  const options = { synchronous: 'full', groupCommit: { maxBatchBytes: 4096 }, autoCheckpoint: false };
  const a = await open(dbPath, options);
  const b = await open(dbPath, options);
  const acknowledged = [];
  const commit = (s, pgno, v, extra) => s.commit([{ pgno, data: page(v) }], extra).then(
    () => {
      acknowledged.push({ pgno, v });
      return { ok: true };
    },
    outcome,
  );
  const out = { aLeads: a.metrics().lane.leader, bLeads: b.metrics().lane.leader };
  await commit(a, 2, 1);
  // a member's commit fails: its next commit is refused, the leader's go on
  native.TEST_setFaults({ failWrite: { nth: 1, errno: 5 } });
  out.bFails = await commit(b, 3, 3);
  native.TEST_setFaults({});
  out.bAfter = await commit(b, 4, 4);
  out.aAfterB = await commit(a, 5, 5);
  out.bResume = b.resumeCommits();
  out.bResumed = await commit(b, 4, 44);
  // the leader's commit fails: its next commit is refused, the member's go on
  native.TEST_setFaults({ failWrite: { nth: 1, errno: 5 } });
  out.aFails = await commit(a, 6, 6);
  native.TEST_setFaults({});
  out.aAfter = await commit(a, 7, 7);
  out.bAfterA = await commit(b, 8, 8);
  out.aResume = a.resumeCommits();
  out.aResumed = await commit(a, 7, 77);
  // conditional commits: the leader's base sees the member's commit; the member cannot use one
  const s = await a.snapshot();
  s.release();
  out.bBetween = await commit(b, 9, 9);
  out.aBase = await commit(a, 10, 10, { base: s });
  a.resumeCommits();
  const s2 = await b.snapshot();
  s2.release();
  out.bBase = await commit(b, 11, 11, { base: s2 });
  const s3 = await a.snapshot();
  s3.release();
  out.aBaseClean = await commit(a, 12, 12, { base: s3 });
  await b.close();
  await a.close();
  out.acknowledged = acknowledged;
  out.unhandled = unhandled;
  process.stdout.write(JSON.stringify(out) + '\n');
})().catch((e) => {
  process.stdout.write(JSON.stringify({ crashed: String(e && e.stack) }) + '\n');
});
