// Another process cuts the -shm under this one (test/interop/break-shm-truncate.test.ts).
// 'held': a snapshot is held, the -shm is truncated to 0, then the snapshot's synchronous
// lookups run (no size check there: native/shm.h) and the store is closed.
// 'storm': the -shm is truncated every half millisecond while stores open, commit and
// checkpoint in every mode.
// 'publish': the -shm is truncated after a batch's frames are written and synced, before the
// index publishes them (the native append wrapped), for a lone commit (written on the JS
// thread in one native call: the cut is then the fault rule cutShmAfterInlineWrite, and the
// test runs this with WALNUT_FAULT_INJECTION=1) and a batch of two (the I/O thread); then the store is reopened and the failed
// commits' pages read: 'page <pgno>=<first byte>' keys (they must show the acknowledged value).
// Prints one JSON line: the error codes and reasons seen. A SIGBUS ends the process instead.
'use strict';
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const { open } = require('../../dist/index.js');
const { nativeFrames, TEST_setFaults } = require('../../dist/native.js');

const [dbPath, scenario, seconds] = process.argv.slice(2);
const page = (v) => Buffer.alloc(4096, v & 255);
const seen = {};
const note = (e) => {
  const key = `${e.code ?? `not a WalnutError: ${e.message}`}${e.reason ? `/${e.reason}` : ''}`;
  seen[key] = (seen[key] ?? 0) + 1;
};
const attempt = async (what) => {
  try {
    await what();
  } catch (e) {
    note(e);
  }
};

(async () => {
  const store = await open(dbPath, { autoCheckpoint: false });
  for (let i = 0; i < 100; i++) await store.commit([{ pgno: 2 + (i % 40), data: page(i) }]);
  if (scenario === 'publish') {
    // each wrapped append cuts the -shm once its frames are on disk (what a hostile process
    // can do in that window); nothing else touches the -shm in between
    let cut = false;
    const cutAfter = (v) => {
      if (cut) fs.truncateSync(`${dbPath}-shm`, 0);
      cut = false;
      return v;
    };
    const [appendAsync, appendSync] = [nativeFrames.append, nativeFrames.appendSync];
    nativeFrames.append = (...a) => appendAsync(...a).then(cutAfter);
    nativeFrames.appendSync = (...a) => cutAfter(appendSync(...a));
    let s = store;
    for (const batch of [[2], [3, 4]]) {
      // a lone commit appends, indexes and publishes in one native call (ShmRegion.commitInline):
      // its cut is the fault rule that truncates the -shm inside it, between the sync and the index
      if (batch.length === 1) TEST_setFaults({ cutShmAfterInlineWrite: { nth: 1 } });
      else cut = true;
      await Promise.all(batch.map((pgno) => attempt(() => s.commit([{ pgno, data: page(200) }]))));
      await attempt(() => s.close());
      s = await open(dbPath, { autoCheckpoint: false });
      const snap = await s.snapshot();
      for (const pgno of batch) seen[`page ${pgno}=${(await snap.read(pgno))[0]}`] = 1;
      snap.release();
    }
    await s.close();
  } else if (scenario === 'held') {
    const snap = await store.snapshot();
    const cut = spawnSync('python3', ['-c', 'import os, sys; os.truncate(sys.argv[1], 0)', `${dbPath}-shm`]);
    if (cut.status !== 0) throw new Error(String(cut.stderr));
    await attempt(() => snap.frameOf(2));
    await attempt(() => snap.readSync(3));
    await attempt(() => snap.release());
    await attempt(() => store.close());
  } else {
    await store.close();
    const cutter = spawn('python3', ['-c', `
import os, sys, time
end = time.time() + float(sys.argv[2])
while time.time() < end:
    try: os.truncate(sys.argv[1], 0)
    except OSError: pass
    time.sleep(0.0005)
`, `${dbPath}-shm`, seconds], { stdio: 'inherit' });
    let cutting = true;
    cutter.on('exit', () => (cutting = false));
    for (let round = 0; cutting; round++) {
      let s = null;
      await attempt(async () => {
        s = await open(dbPath, { autoCheckpoint: false });
        for (let i = 0; i < 200; i++) await s.commit([{ pgno: 2 + (i % 40), data: page(i) }]);
        await s.checkpoint(['passive', 'full', 'restart', 'truncate'][round % 4]);
      });
      if (s !== null) await attempt(() => s.close());
    }
  }
  process.stdout.write(`${JSON.stringify(seen)}\n`);
})();
