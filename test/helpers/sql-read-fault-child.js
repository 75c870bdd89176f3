// A read transaction on walnut/sql's writer connection sees a transaction sequenced before it
// (not durable yet) whose write or fsync then fails with an injected errno (fault hook; started with
// WALNUT_FAULT_INJECTION=1). Prints one JSON line: what the write and the read were answered
// ({ code, reason, errno } or the read's row), then a read once the pipeline has recovered.
'use strict';
const { openDatabase } = require('../../dist/sql.js');
const native = require('../../dist/native.js');

// kind: 'write' (a failed write: the pipeline recovers) or 'sync' (a failed fsync: the store stops)
const [dbPath, errno, kind = 'write'] = process.argv.slice(2);
const outcome = (e) => ({ code: e.code, reason: e.reason ?? null, errno: e.errno ?? null });

(async () => {
  // one transaction per batch: the read is built on the failing one, not in its batch
  const db = await openDatabase(dbPath, { groupCommit: { maxBatchBytes: 4096 } });
  await db.exec('CREATE TABLE t(v INTEGER)');
  await db.run('INSERT INTO t VALUES (0)');
  native.TEST_setFaults({ [kind === 'sync' ? 'failSync' : 'failWrite']: { nth: 1, errno: Number(errno) } });
  const write = db.transaction((tx) => tx.run('INSERT INTO t VALUES (1)')).then(() => 'ok', outcome);
  const read = db.transaction((tx) => tx.get('SELECT count(*) AS n FROM t')).then((row) => row, outcome);
  const out = { write: await write, read: await read };
  out.after = await db.get('SELECT count(*) AS n FROM t').then((row) => row, outcome);
  await db.close().catch((e) => (out.closeError = e.code));
  process.stdout.write(JSON.stringify(out) + '\n');
})().catch((e) => {
  process.stdout.write(JSON.stringify({ crashed: String(e && e.stack) }) + '\n');
});
