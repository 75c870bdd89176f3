// walnut/sql meets an I/O fault (fault hook; started with WALNUT_FAULT_INJECTION=1): 16
// concurrent one-row INSERTs (transactions or autocommit statements) after the fault is armed,
// then one more call. Prints one JSON line
// { acknowledged: [v...], errors: [code...], after: code|null } for the parent to check after
// reopening: every acknowledged row is there, the database is intact.
'use strict';
const { openDatabase } = require('../../dist/sql.js');
const native = require('../../dist/native.js');

// calls: 'transaction' (db.transaction: the ones built on the failed one fail too, ChainBroken)
// or 'autocommit' (db.run: walnut/sql runs those again itself, on the recovered state)
const [dbPath, scenario, calls = 'transaction'] = process.argv.slice(2);
const FAULTS = {
  fsyncEIO: { failSync: { nth: 1, errno: 5 } },
  writeENOSPC: { failWrite: { nth: 1, errno: 28 } },
};

(async () => {
  // one transaction per batch: those after the failing one are in later batches (built on it)
  const db = await openDatabase(dbPath, { groupCommit: { maxBatchBytes: 4096 } });
  await db.exec('CREATE TABLE t(v INTEGER)');
  await db.run('INSERT INTO t VALUES (0)');
  const out = { acknowledged: [0], errors: [] };
  native.TEST_setFaults(FAULTS[scenario]);
  await Promise.all(
    Array.from({ length: 16 }, (_, k) =>
      (calls === 'autocommit' ? db.run('INSERT INTO t VALUES (?)', [k + 1]) : db.transaction((tx) => tx.run('INSERT INTO t VALUES (?)', [k + 1]))).then(
        () => out.acknowledged.push(k + 1),
        (e) => out.errors.push(e.reason === 'ChainBroken' ? `${e.code}/${e.reason}` : e.code),
      ),
    ),
  );
  // a read once the pipeline has recovered (it saw none of the lost transactions)
  out.read = await db.get('SELECT count(*) AS n FROM t').then((r) => r.n, (e) => (e.reason ? `${e.code}/${e.reason}` : e.code));
  out.after = await db.run('INSERT INTO t VALUES (99)').then(() => null, (e) => (e.reason === 'ChainBroken' ? `${e.code}/${e.reason}` : e.code));
  await db.close().catch((e) => (out.closeError = e.code));
  process.stdout.write(JSON.stringify(out) + '\n');
})().catch((e) => {
  process.stdout.write(JSON.stringify({ crashed: String(e && e.stack) }) + '\n');
});
