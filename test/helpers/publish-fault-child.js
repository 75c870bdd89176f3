// The commit pipeline fails after a batch's frames reached the WAL but before the index
// published them: the -shm cannot grow (the fault hook fails its write), in a process started
// with WALNUT_FAULT_INJECTION=1. Prints one JSON line for the parent to check after reopening.
'use strict';
const { open } = require('../../dist/index.js');
const native = require('../../dist/native.js');

const [dbPath] = process.argv.slice(2);
const PAGE = 512;
const pages = (from, count, v) => Array.from({ length: count }, (_, i) => ({ pgno: from + i, data: Buffer.alloc(PAGE, v) }));
const settle = (p) => p.then(() => ({ ok: true }), (e) => ({ ok: false, code: e.code, walnut: e.constructor.name }));
const unhandled = [];
process.on('unhandledRejection', (e) => unhandled.push(String(e && e.message)));

(async () => {
  const store = await open(dbPath, { pageSize: PAGE, autoCheckpoint: false, keepWal: true });
  const out = {};
  // 4000 frames: the next batch crosses into the -shm's second 32 KiB segment (frame 4063)
  out.before = await settle(store.commit(pages(2, 4000, 1)));
  // write 1: the batch's frames (pwritev); write 2: growing the -shm for their index entries
  native.TEST_setFaults({ failWrite: { nth: 2, errno: 5 } });
  out.batch = await Promise.all([settle(store.commit(pages(2, 50, 2))), settle(store.commit(pages(52, 50, 2)))]);
  native.TEST_setFaults({ failWrite: null });
  out.after = await settle(store.commit(pages(2, 1, 3)));
  out.snapshot = await settle(store.snapshot());
  out.close = await settle(store.close());
  await new Promise((resolve) => setTimeout(resolve, 10));
  out.unhandled = unhandled;
  process.stdout.write(JSON.stringify(out) + '\n');
})().catch((e) => {
  process.stdout.write(JSON.stringify({ crashed: String(e && e.stack) }) + '\n');
});
