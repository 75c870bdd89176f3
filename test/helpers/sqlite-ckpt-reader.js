// A sqlite3 process that checkpoints and reads back to back: better-sqlite3 (WAL mode, busy
// timeout 5 s) runs `PRAGMA wal_checkpoint(PASSIVE)` and then reads every counter of table c
// (checkpoint-restart.test.ts's rows: blob 'ROW<id>' + an 8-digit counter), over and over
// until the file <stop> exists. A counter read lower than an earlier read of the same row is
// a commit seen undone: the first such read is reported. Prints {"ready": true} first, then
// {"checkpoints": n, "reads": n, "backwards": null | {"id", "was", "now"}} and exits.
// Usage: node sqlite-ckpt-reader.js <db> <stop>
'use strict';
const fs = require('node:fs');
const Database = require('better-sqlite3');

const [dbPath, stop] = process.argv.slice(2);
const db = new Database(dbPath);
db.pragma('busy_timeout = 5000');
const read = db.prepare('SELECT id, CAST(substr(v, 9, 8) AS TEXT) AS c FROM c');
const seen = new Map();
let checkpoints = 0;
let reads = 0;
let backwards = null;
process.stdout.write(JSON.stringify({ ready: true }) + '\n');
while (!fs.existsSync(stop)) {
  db.pragma('wal_checkpoint(PASSIVE)');
  checkpoints++;
  for (const { id, c } of read.all()) {
    const now = Number(c);
    if (backwards === null && now < (seen.get(id) ?? 0)) backwards = { id, was: seen.get(id), now };
    seen.set(id, Math.max(now, seen.get(id) ?? 0));
  }
  reads++;
}
db.close();
process.stdout.write(JSON.stringify({ checkpoints, reads, backwards }) + '\n');
