// A store whose commit-lane member cannot add its environment cleanup hook (process started
// with WALNUT_FAULT_INJECTION=1; rule failLaneCleanupHook). Prints one JSON line: how open()
// settled, the lanes left in the process, the files left beside the database, and whether a
// later open (no fault) commits.
// usage: node lane-hook-fault-child.js <db>
'use strict';
const fs = require('node:fs');
const { open } = require('../../dist/index.js');
const native = require('../../dist/native.js');

const [db] = process.argv.slice(2);

(async () => {
  native.TEST_setFaults({ failLaneCleanupHook: { nth: 1 } });
  const first = await open(db, { pageSize: 4096 }).then(
    async (s) => {
      await s.close();
      return { opened: true };
    },
    (e) => ({ code: e.code, message: e.message }),
  );
  const lanes = native.NativeCommitLane.count();
  const left = ['-wal', '-shm'].filter((s) => fs.existsSync(`${db}${s}`));
  const again = await open(db, { pageSize: 4096 });
  await again.commit([{ pgno: 2, data: Buffer.alloc(4096, 1) }]);
  await again.close();
  process.stdout.write(`${JSON.stringify({ first, lanes, left, lanesAfter: native.NativeCommitLane.count() })}\n`);
})().catch((e) => {
  process.stdout.write(`${JSON.stringify({ crashed: `${e.code} ${e.stack}` })}\n`);
  process.exit(1);
});
