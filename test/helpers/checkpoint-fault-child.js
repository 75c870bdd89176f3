// Faults during a checkpoint (WALNUT_FAULT_INJECTION=1): commits 20 pages, then fails the
// checkpoint's database write, its database sync, or its WAL sync. Prints
// { acknowledged, checkpoint: { ok, code } }.
'use strict';
const { open } = require('../../dist/index.js');
const native = require('../../dist/native.js');

const [dbPath, fault] = process.argv.slice(2);
(async () => {
  const store = await open(dbPath, { autoCheckpoint: false, keepWal: true });
  let acknowledged = 0;
  for (let i = 0; i < 20; i++) {
    await store.commit([{ pgno: 2 + i, data: Buffer.alloc(4096, i) }]);
    acknowledged++;
  }
  // the checkpoint's first sync is the WAL's, its second the database's; its first write is a page copy
  if (fault === 'copyWrite') native.TEST_setFaults({ failWrite: { nth: 1, errno: 5 } });
  if (fault === 'walSync') native.TEST_setFaults({ failSync: { nth: 1, errno: 5 } });
  if (fault === 'dbSync') native.TEST_setFaults({ failSync: { nth: 2, errno: 5 } });
  let checkpoint;
  try {
    const r = await store.checkpoint('truncate');
    checkpoint = { ok: true, r };
  } catch (e) {
    checkpoint = { ok: false, code: e.code };
  }
  native.TEST_setFaults({ failWrite: null, failSync: null });
  await store.close();
  process.stdout.write(JSON.stringify({ acknowledged, checkpoint }) + '\n');
})().catch((e) => process.stdout.write(JSON.stringify({ crashed: String(e && e.stack) }) + '\n'));
