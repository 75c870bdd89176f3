// walnut/sql under SIGKILL (test/crash/sql-crash.test.ts): CALLERS concurrent callers each run
// transactions of two rows (g, 'a') and (g, 'b') plus a counter increment, and print
// "ack <caller> <g>" once a transaction resolved (durable); "ready" once the schema is there.
// Runs until killed. usage: node sql-crash-child.js DB CALLERS
'use strict';
const { openDatabase } = require('../../dist/sql.js');

const [dbPath, callers] = [process.argv[2], Number(process.argv[3])];

(async () => {
  // small auto-checkpoints: kills land in checkpoints and WAL restarts too
  const db = await openDatabase(dbPath, { autoCheckpoint: 64 });
  await db.exec("CREATE TABLE IF NOT EXISTS t(g INTEGER, half TEXT, pad BLOB, PRIMARY KEY (g, half)); CREATE TABLE IF NOT EXISTS n(k INTEGER PRIMARY KEY, c INTEGER); INSERT OR IGNORE INTO n VALUES (1, 0)");
  process.stdout.write('ready\n');
  await Promise.all(
    Array.from({ length: callers }, async (_, w) => {
      for (let i = 0; ; i++) {
        const g = w * 1_000_000 + i;
        await db.transaction(async (tx) => {
          await tx.run("INSERT INTO t VALUES (?, 'a', randomblob(?))", [g, 50 + ((g * 37) % 3000)]);
          await tx.run("INSERT INTO t VALUES (?, 'b', randomblob(10))", [g]);
          await tx.run('UPDATE n SET c = c + 1 WHERE k = 1');
        });
        process.stdout.write(`ack ${w} ${g}\n`);
      }
    }),
  );
})().catch((e) => {
  process.stdout.write(`error ${e && e.code} ${e && e.message}\n`);
  process.exit(1);
});
