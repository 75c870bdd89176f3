// A failed batch's frames past a shorter later batch (run with WALNUT_FAULT_INJECTION=1).
// Three store.begin() transactions go in one batch: T1 (page 2), T2 (page 3), T3 (pages 4, 5),
// four frames. Scenario 'write': the batch's pwritev is short (half of it, T1's and T2's frames,
// reaches the WAL) and fails EIO; 'sync': it is written whole and its fdatasync fails (the store
// stops; this child closes and reopens it). Every one of the three is rejected. Scenario
// 'zeroing': the short write of 'write', then the invalidation's second header write fails EIO
// (the batch's commits are rejected WALNUT_FAILED/OutcomeUnknown, the store stops; this child
// closes it, reopens it and reads pages 2..5: what a caller told OutcomeUnknown reads to find
// out, printed as `read`). Then T1's caller retries T1 as it was (same page, same bytes): in
// 'write' and 'sync' its frames are written where T1's were, with the same checksums. The child prints one JSON line and kills itself (SIGKILL): the parent's reopen
// recovers the WAL from the file, as sqlite3's and walnut's first connection after a crash do.
// A rejected T2 or T3 must not be there.
'use strict';
const { open } = require('../../dist/index.js');
const native = require('../../dist/native.js');

// a third argument 'fec': the store keeps an FEC sidecar (-wal-fec) too; 'zero-ahead': the store
// zeroes ahead (zeroAhead), the first commit takes the WAL past where that starts, and the batch
// is written over those synced zeros (the faults are set once the zeroing wrote them all: its
// writes count as the rules' writes)
const [dbPath, scenario, mode] = process.argv.slice(2);
const withFec = mode === 'fec' ? 'fec' : undefined;
const zeroAhead = mode === 'zero-ahead';
// wal-file.ts: the WAL's frames reach past ZERO_AHEAD_FROM before it zeroes ahead, ZERO_AHEAD bytes
const ZERO_AHEAD_FROM = 8 << 20;
const ZERO_AHEAD = 8 << 20;
const firstPages = zeroAhead ? Math.ceil(ZERO_AHEAD_FROM / 4096) + 16 : 4;
const unhandled = [];
process.on('unhandledRejection', (e) => unhandled.push(String(e && e.message)));
const page = (v) => Buffer.alloc(4096, v);
const outcome = (p) => p.then(() => 'ok', (e) => `${e.code}/${e.reason || ''}`);
const options = { synchronous: 'full', autoCheckpoint: false, shareLane: false, zeroAhead, ...(withFec === 'fec' ? { fec: { repairSymbols: 2 } } : {}) };

(async () => {
  const out0 = {};
  let store = await open(dbPath, options);
  await store.commit(Array.from({ length: firstPages }, (_, i) => ({ pgno: i + 2, data: page(1) })));
  if (zeroAhead) {
    const fs = require('node:fs');
    const end = 32 + firstPages * (24 + 4096);
    for (let i = 0; i < 1000 && fs.statSync(`${dbPath}-wal`).size < end + ZERO_AHEAD; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    out0.walBytes = fs.statSync(`${dbPath}-wal`).size - end;
  }
  const faults = {
    write: { shortWrite: { nth: 1, errno: 5 } },
    sync: { failSync: { nth: 1, errno: 5 } },
    // write 1: the batch's (short); 2 and 3: the invalidation's two header writes (two frames reached the WAL)
    zeroing: { shortWrite: { nth: 1, errno: 5 }, failWrite: { nth: 3, errno: 5 } },
  };
  // with fec: the first commit's sidecar group is written (in the background) before the faults are
  // set, or the nth-write fault lands on it instead of the batch's pwritev (the batch then stood: seen
  // once in a fresh-clone CI run under load)
  for (let i = 0; withFec === 'fec' && i < 500 && (store.metrics().fec.groups < 1 || store.metrics().fec.queuedBytes > 0); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  native.TEST_setFaults(faults[scenario]);
  const t1 = store.begin();
  t1.write(2, page(2));
  const t2 = store.begin();
  t2.write(3, page(3));
  const t3 = store.begin();
  t3.write(4, page(4));
  t3.write(5, page(4));
  const out = { scenario, ...out0 };
  out.batch = await Promise.all([outcome(t1.commit()), outcome(t2.commit()), outcome(t3.commit())]);
  if (scenario !== 'write') {
    out.close = await outcome(store.close());
    store = await open(dbPath, options);
  }
  if (scenario === 'zeroing') {
    const snap = await store.snapshot();
    out.read = [];
    for (const pgno of [2, 3, 4, 5]) out.read.push({ pgno, v: (await snap.read(pgno))[100] });
    snap.release();
  }
  const retry = store.begin();
  retry.write(2, page(2));
  out.retry = await outcome(retry.commit());
  await new Promise((resolve) => setTimeout(resolve, 10));
  // with fec: the retry's group is written before the kill (the sidecar writes in the background)
  for (let i = 0; withFec === 'fec' && i < 500 && store.metrics().fec.queuedBytes > 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  if (withFec === 'fec') out.fecGroups = store.metrics().fec.groups;
  out.unhandled = unhandled;
  process.stdout.write(JSON.stringify(out) + '\n', () => process.kill(process.pid, 'SIGKILL'));
})().catch((e) => {
  process.stdout.write(JSON.stringify({ crashed: String(e && e.stack) }) + '\n');
});
