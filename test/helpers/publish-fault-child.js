// A batch whose index entries need the -shm's next segment, which cannot grow (the fault hook
// fails its first write), in a process started with WALNUT_FAULT_INJECTION=1. The segment is
// grown before the batch writes anything (WalIndex.appendAndPublish): the batch fails before its
// frames reach the WAL (it failed after them, and the store stopped, when the -shm grew only in
// the index append). Prints one JSON line for the parent to check after reopening.
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
  // write 1: growing the -shm for the batch's index entries (before the frames' pwritev)
  native.TEST_setFaults({ failWrite: { nth: 1, errno: 5 } });
  let failure = null;
  out.batch = await Promise.all([store.commit(pages(2, 50, 2)), store.commit(pages(52, 50, 2))].map((p) => {
    p.catch((e) => (failure = failure ?? e));
    return settle(p);
  }));
  native.TEST_setFaults({ failWrite: null });
  out.walFrames = store.metrics().walFrames;
  out.resumed = store.resumeCommits(failure);
  out.after = await settle(store.commit(pages(4002, 1, 3)));
  out.snapshot = await settle(store.snapshot().then((s) => s.release()));
  out.close = await settle(store.close());
  await new Promise((resolve) => setTimeout(resolve, 10));
  out.unhandled = unhandled;
  process.stdout.write(JSON.stringify(out) + '\n');
})().catch((e) => {
  process.stdout.write(JSON.stringify({ crashed: String(e && e.stack) }) + '\n');
});
