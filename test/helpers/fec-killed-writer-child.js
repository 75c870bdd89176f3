// A walnut process writing with the FEC sidecar on, beside a store the parent keeps open (so the
// -shm stays valid and nobody recovers the WAL: test/hostile/fec-killed-writer-tail.test.ts).
//  - 'killed' (run with WALNUT_FAULT_INJECTION=1): commits pages 2..7 (= 4) as six transactions
//    in one batch; the fault rule killAtSync SIGKILLs it at the batch's fdatasync, after its
//    pwritev: six frames in the WAL, never published, never acknowledged, no sidecar group.
//  - 'retry': commits page 2 (= 9) in a new process, then closes (its sidecar group written;
//    the parent's store keeps the WAL); prints "ok <lastFrame>".
// usage: node fec-killed-writer-child.js <role> <db> <pageSize>
'use strict';
const { open } = require('../../dist/index.js');

const [role, db, pageSize] = process.argv.slice(2);
const ps = Number(pageSize);
const options = { synchronous: 'full', autoCheckpoint: false, shareLane: false, keepWal: true, fec: { repairSymbols: 2 } };

const roles = {
  async killed() {
    const store = await open(db, options);
    require('../../dist/native.js').TEST_setFaults({ killAtSync: { nth: 1 } });
    const commits = [2, 3, 4, 5, 6, 7].map((pgno) => {
      const t = store.begin();
      t.write(pgno, Buffer.alloc(ps, 4));
      return t.commit();
    });
    await Promise.allSettled(commits);
    process.stdout.write('not killed\n');
  },
  async retry() {
    const store = await open(db, options);
    const r = await store.commit([{ pgno: 2, data: Buffer.alloc(ps, 9) }]);
    await store.close();
    process.stdout.write(`ok ${r.lastFrame}\n`);
  },
};

roles[role]().catch((e) => {
  process.stdout.write(`crashed ${e && e.stack}\n`);
});
