// A sqlite3 writer that changes the schema as fast as it can: better-sqlite3 (WAL mode, busy
// timeout 5 s) runs `CREATE TABLE p<k>(a, b); INSERT INTO p<k> VALUES (k, k)` for k = 0, 1, ...
// about every 2 ms (a spin, not a timer: the turn of an event loop is too coarse) for
// <durationMs> after its first table and until it made at least <minTables> (default 1), then
// prints {"tables": n} (tables p0..p<n-1> exist, each with its one row) and exits. Prints {"first": true} once its first table committed. A commit
// that stays SQLITE_BUSY past the busy timeout is tried again with the same k: both statements
// are one transaction (two autocommit statements, the INSERT busy after the CREATE committed,
// were tried again as "table pK already exists").
// Usage: node sqlite-table-maker.js <db> <durationMs> [minTables]
'use strict';
const Database = require('better-sqlite3');

const db = new Database(process.argv[2]);
db.pragma('busy_timeout = 5000');
db.pragma('journal_mode = WAL');
const duration = Number(process.argv[3]);
const minTables = Number(process.argv[4] ?? 1);
let end = Infinity;
let k = 0;
while (Date.now() < end || k < minTables) {
  try {
    db.exec(`BEGIN IMMEDIATE; CREATE TABLE p${k}(a, b); INSERT INTO p${k} VALUES (${k}, ${k}); COMMIT`);
    if (k++ === 0) {
      end = Date.now() + duration;
      process.stdout.write(JSON.stringify({ first: true }) + '\n');
    }
  } catch (e) {
    if (db.inTransaction) db.exec('ROLLBACK');
    if (e.code !== 'SQLITE_BUSY') throw e;
  }
  const spin = Date.now() + 2;
  while (Date.now() < spin);
}
db.close();
process.stdout.write(JSON.stringify({ tables: k }) + '\n');
