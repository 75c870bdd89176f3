// Faults during a checkpoint (WALNUT_FAULT_INJECTION=1): commits 20 pages (synchronous 'full',
// or 'normal' for the *Normal faults), then fails the checkpoint's first database write, or its
// nth sync, and records nBackfill before and after. Prints
// { acknowledged, nBackfill: [before, after], checkpoint: { ok, code, syscall, path } }.
'use strict';
const { open } = require('../../dist/index.js');
const native = require('../../dist/native.js');

const { WalIndex } = require('../../dist/wal-index/wal-index.js');

const [dbPath, fault] = process.argv.slice(2);
(async () => {
  const synchronous = fault.endsWith('Normal') ? 'normal' : 'full';
  const store = await open(dbPath, { autoCheckpoint: false, keepWal: true, synchronous });
  const watcher = await WalIndex.open(dbPath); // a second connection reads nBackfill from the -shm
  let acknowledged = 0;
  for (let i = 0; i < 20; i++) {
    await store.commit([{ pgno: 2 + i, data: Buffer.alloc(4096, i) }]);
    acknowledged++;
  }
  // Under 'full' every frame was synced by its commit: the checkpoint's one sync is the
  // database's. Under 'normal' it syncs the WAL first (as SQLite), then the database. Its first
  // write is a page copy.
  if (fault === 'copyWrite') native.TEST_setFaults({ failWrite: { nth: 1, errno: 5 } });
  if (fault === 'dbSync' || fault === 'walSyncNormal') native.TEST_setFaults({ failSync: { nth: 1, errno: 5 } });
  if (fault === 'dbSyncNormal') native.TEST_setFaults({ failSync: { nth: 2, errno: 5 } });
  const before = watcher.checkpointInfo().nBackfill;
  let checkpoint;
  try {
    const r = await store.checkpoint('truncate');
    checkpoint = { ok: true, r };
  } catch (e) {
    checkpoint = { ok: false, code: e.code, syscall: e.syscall, path: e.path };
  }
  const after = watcher.checkpointInfo().nBackfill;
  native.TEST_setFaults({ failWrite: null, failSync: null });
  await watcher.close();
  await store.close();
  process.stdout.write(JSON.stringify({ acknowledged, nBackfill: [before, after], checkpoint }) + '\n');
})().catch((e) => process.stdout.write(JSON.stringify({ crashed: String(e && e.stack) }) + '\n'));
