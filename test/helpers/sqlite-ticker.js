// A sqlite3 writer committing small transactions back to back: better-sqlite3 (WAL mode, busy
// timeout 5 s) runs `INSERT INTO ext(v) VALUES (n)` about every 2 ms (a spin, not a timer: the
// turn of an event loop is too coarse) for <durationMs>, then prints {"commits": n} and exits.
// Prints {"ready": true} first (ext must exist). A commit that stays SQLITE_BUSY past the busy
// timeout is tried again. With <stopFile> it also ends once that file exists (<durationMs> is then
// a bound: a test that runs until it has seen something may stop it early).
// Usage: node sqlite-ticker.js <db> <durationMs> [stopFile]
'use strict';
const fs = require('node:fs');
const Database = require('better-sqlite3');

const db = new Database(process.argv[2]);
db.pragma('busy_timeout = 5000');
const end = Date.now() + Number(process.argv[3]);
const stopFile = process.argv[4];
let n = 0;
process.stdout.write(JSON.stringify({ ready: true }) + '\n');
while (Date.now() < end && (stopFile === undefined || !fs.existsSync(stopFile))) {
  try {
    db.exec(`INSERT INTO ext(v) VALUES (${n})`);
    n++;
  } catch (e) {
    if (e.code !== 'SQLITE_BUSY') throw e;
  }
  const spin = Date.now() + 2;
  while (Date.now() < spin);
}
db.close();
process.stdout.write(JSON.stringify({ commits: n }) + '\n');
