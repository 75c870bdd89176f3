// A walnut/sql call whose commit an injected write error loses (fault hook; started with
// WALNUT_FAULT_INJECTION=1), then the caller's retry of it, each inserting a child row
// ch(k, pid = last_insert_rowid()) after a parent p whose id is past 2^32. Prints one JSON line
// { parent, lost: code|'ok', retry: code|'ok', rows: ['k:pid', ..] } for the parent to check:
// the retry's child points at the parent, not at the lost child's own rowid (its k).
'use strict';
const { openDatabase } = require('../../dist/sql.js');
const native = require('../../dist/native.js');

// call: 'run' (db.run), 'transaction' (db.transaction), 'exec' (db.exec), 'exec-begin' (exec('BEGIN'),
// run(), exec('COMMIT')), 'run-begin' (run('BEGIN'), run(), run('COMMIT')), 'exec-text' (one exec() of
// BEGIN; INSERT; COMMIT); errno: the write's (5 EIO, 28 ENOSPC)
const [dbPath, call, errno] = process.argv.slice(2);
const PARENT_ID = 3 * 2 ** 32 + 7;
const CHILD = 'INSERT INTO ch(k, pid) VALUES (?, last_insert_rowid())';

/** Inserts ch(k, pid = last_insert_rowid()) by `call`. */
function child(db, k) {
  if (call === 'transaction') return db.transaction((tx) => tx.run(CHILD, [k]));
  if (call === 'exec') return db.exec(`INSERT INTO ch(k, pid) VALUES (${k}, last_insert_rowid())`);
  if (call === 'exec-begin') return db.exec('BEGIN').then(() => db.run(CHILD, [k])).then(() => db.exec('COMMIT'));
  if (call === 'run-begin') return db.run('BEGIN').then(() => db.run(CHILD, [k])).then(() => db.run('COMMIT'));
  if (call === 'exec-text') return db.exec(`BEGIN; INSERT INTO ch(k, pid) VALUES (${k}, last_insert_rowid()); COMMIT`);
  return db.run(CHILD, [k]);
}

const outcome = (p) => p.then(() => 'ok', (e) => (e.reason ? `${e.code}/${e.reason}` : String(e.code)));

(async () => {
  const db = await openDatabase(dbPath, { groupCommit: { maxBatchBytes: 4096 } });
  await db.exec('CREATE TABLE p(id INTEGER PRIMARY KEY, k INT); CREATE TABLE ch(k INTEGER PRIMARY KEY, pid INT)');
  const parent = await db.run('INSERT INTO p(id, k) VALUES (?, 1)', [PARENT_ID]);
  const out = { parent: String(parent.lastInsertRowid) };
  native.TEST_setFaults({ failWrite: { nth: 1, errno: Number(errno) } });
  out.lost = await outcome(child(db, 7));
  out.retry = await outcome(child(db, 8));
  out.rows = await db.all('SELECT k, pid FROM ch ORDER BY k').then((rows) => rows.map((r) => `${r.k}:${r.pid}`), (e) => String(e.code));
  await db.close().catch((e) => (out.closeError = e.code));
  process.stdout.write(JSON.stringify(out) + '\n');
})().catch((e) => {
  process.stdout.write(JSON.stringify({ crashed: String(e && e.stack) }) + '\n');
});
