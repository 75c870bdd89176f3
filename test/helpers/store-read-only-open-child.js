// open(DB, { readOnly: true }) and a snapshot of page 1, in a process of its own (run as another
// user by test/hostile/store-read-only-unwritable). Prints one JSON line: { dbSize } or
// { code, reason, errno, message } of the failure.
// usage: node store-read-only-open-child.js DB
'use strict';
const { open } = require('../../dist/index.js');

(async () => {
  try {
    const store = await open(process.argv[2], { readOnly: true });
    try {
      const snap = await store.snapshot();
      console.log(JSON.stringify({ dbSize: snap.dbSize }));
      snap.release();
    } finally {
      await store.close();
    }
  } catch (e) {
    console.log(JSON.stringify({ code: e.code, reason: e.reason, errno: e.errno, message: e.message }));
  }
})();
