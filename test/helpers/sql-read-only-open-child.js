// openDatabase(DB, { readOnly: true }) and one read, in a process of its own (run as another
// user by test/hostile/sql-read-only-unwritable). Prints one JSON line: { rows } or
// { code, reason, errno, message } of the failure.
// usage: node sql-read-only-open-child.js DB
'use strict';
const { openDatabase } = require('../../dist/sql.js');

(async () => {
  try {
    const db = await openDatabase(process.argv[2], { readOnly: true });
    try {
      console.log(JSON.stringify({ rows: await db.all('SELECT v FROM t ORDER BY v') }));
    } finally {
      await db.close();
    }
  } catch (e) {
    console.log(JSON.stringify({ code: e.code, reason: e.reason, errno: e.errno, message: e.message }));
  }
})();
