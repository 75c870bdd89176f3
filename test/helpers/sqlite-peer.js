// A real SQLite connection in its own process, driven line by line over stdin/stdout, so
// tests can hold SQLite read transactions and make SQLite commits while walnut works on the
// same files, as a lock owner of its own like any other process (SQLite beside walnut in ONE
// process is tested in test/interop/same-process.test.ts).
// Request: {"op": "exec"|"get"|"all"|"pragma", "sql": "..."} -> reply {"ok": true, "result": ...}
// or {"ok": false, "error": "...", "code": "SQLITE_..."}; {"op": "close"} ends the process.
'use strict';
const readline = require('node:readline');
const Database = require('better-sqlite3');

const db = new Database(process.argv[2]);
db.pragma('busy_timeout = 5000');
const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const req = JSON.parse(line);
  let reply;
  try {
    let result = null;
    if (req.op === 'exec') db.exec(req.sql);
    else if (req.op === 'get') result = db.prepare(req.sql).get();
    else if (req.op === 'all') result = db.prepare(req.sql).all();
    else if (req.op === 'pragma') result = db.pragma(req.sql, { simple: true });
    else if (req.op === 'close') {
      db.close();
      process.stdout.write(JSON.stringify({ ok: true }) + '\n', () => process.exit(0));
      return;
    }
    reply = { ok: true, result };
  } catch (e) {
    reply = { ok: false, error: e.message, code: e.code };
  }
  process.stdout.write(JSON.stringify(reply, (_, v) => (typeof v === 'bigint' ? Number(v) : v)) + '\n');
});
process.stdout.write(JSON.stringify({ ready: true }) + '\n');
