// A checkpoint whose background descriptors cannot be opened (WALNUT_FAULT_INJECTION=1, rule
// failOpen: the nth WalnutFile open from the moment it is set). The store commits 5 pages with
// autoCheckpoint off, then: the first checkpoint's background open fails (nth 1: the database's,
// nth 2: the WAL's), and a second checkpoint, with no fault, runs. Prints one JSON line: how each
// checkpoint settled and the process's open descriptors before the failed one and after it (a
// descriptor opened for a failed pair must be closed).
// usage: node background-open-fault-child.js <db> <nth>
'use strict';
const fs = require('node:fs');
const { open } = require('../../dist/index.js');
const native = require('../../dist/native.js');

const [dbPath, nth] = process.argv.slice(2);
const settle = (p) =>
  p.then(
    (r) => ({ ok: true, busy: r.busy, walFrames: r.walFrames, checkpointedFrames: r.checkpointedFrames }),
    (e) => ({ ok: false, code: e.code, errno: e.errno, syscall: e.syscall }),
  );

(async () => {
  const store = await open(dbPath, { autoCheckpoint: false, keepWal: true });
  for (let i = 0; i < 5; i++) await store.commit([{ pgno: 2 + i, data: Buffer.alloc(4096, i + 1) }]);
  const fdsBefore = fs.readdirSync('/proc/self/fd').length;
  native.TEST_setFaults({ failOpen: { nth: Number(nth), errno: 24 } });
  const first = await settle(store.checkpoint('passive'));
  native.TEST_setFaults({ failOpen: null });
  const fdsAfter = fs.readdirSync('/proc/self/fd').length;
  const second = await settle(store.checkpoint('passive'));
  await store.close();
  process.stdout.write(`${JSON.stringify({ first, second, fdsBefore, fdsAfter })}\n`);
})().catch((e) => {
  process.stdout.write(`${JSON.stringify({ crashed: `${e.code} ${e.stack}` })}\n`);
  process.exit(1);
});
