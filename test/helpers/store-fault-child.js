// Fault matrix of the commit path (DESIGN.md section 4), driven through the fault hook in a
// process started with WALNUT_FAULT_INJECTION=1: one commit, the fault, a batch of three, one
// more commit (refused while the chain is broken), resumeCommits(), one more. Prints one JSON line:
// { acknowledged: [pgno...], outcomes: {...}, ... } for the parent to check after reopening.
'use strict';
const { open } = require('../../dist/index.js');
const native = require('../../dist/native.js');

const [dbPath, scenario] = process.argv.slice(2);
const page = (v) => Buffer.alloc(4096, v);
const settle = (p) => p.then((r) => ({ ok: true, r }), (e) => ({ ok: false, code: e.code, reason: e.reason, causeCode: e.cause && e.cause.code, causeReason: e.cause && e.cause.reason, errno: e.errno, syscall: e.syscall, name: e.constructor.name }));

(async () => {
  const store = await open(dbPath, { synchronous: 'full' });
  const acknowledged = [];
  const commit = async (pgno, v) => {
    const r = await settle(store.commit([{ pgno, data: page(v) }]));
    if (r.ok) acknowledged.push({ pgno, v });
    return r;
  };
  const out = { scenario };
  out.before = await commit(2, 1);
  const faults = {
    writeEIO: { failWrite: { nth: 1, errno: 5 } },
    writeENOSPC: { failWrite: { nth: 1, errno: 28 } },
    shortWrite: { shortWrite: { nth: 1, errno: 5 } },
    fsyncEIO: { failSync: { nth: 1, errno: 5 } },
    // the sync fails, and so does the write that would invalidate the batch's frames
    fsyncEIOInvalidateFails: { failSync: { nth: 1, errno: 5 }, failWrite: { nth: 2, errno: 5 } },
    // the write is short (half of it reaches the WAL), and the sync of the zeros that would
    // invalidate the batch's frames fails (the batch's own sync never ran)
    shortWriteInvalidateSyncFails: { shortWrite: { nth: 1, errno: 5 }, failSync: { nth: 1, errno: 5 } },
  };
  native.TEST_setFaults(faults[scenario]);
  // a batch of three concurrent commits meets the fault
  out.batch = await Promise.all([commit(3, 2), commit(4, 3), commit(5, 4)]);
  out.after = await commit(6, 5);
  out.resumed = store.resumeCommits();
  out.afterResume = await commit(7, 6);
  out.metrics = { failedCommits: store.metrics().failedCommits };
  out.acknowledged = acknowledged;
  try {
    await store.close();
  } catch (e) {
    out.closeError = e.code;
  }
  process.stdout.write(JSON.stringify(out) + '\n');
})().catch((e) => {
  process.stdout.write(JSON.stringify({ crashed: String(e && e.stack) }) + '\n');
});
