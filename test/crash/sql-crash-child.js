// walnut/sql under SIGKILL (test/crash/sql-crash.test.ts): CALLERS concurrent callers each run
// transactions of two rows (g, 'a') and (g, 'b') plus a counter increment (run again on
// WALNUT_CONFLICT: another process committed after its snapshot), and print
// "ack <caller> <g>" once a transaction resolved (durable); "ready" once the schema is there.
// Runs until killed. AUTOCHECKPOINT: frames, or "off" (the WAL grows until someone else
// checkpoints: interop/concurrency-large-wal.test.ts); 64 unless given.
// usage: node sql-crash-child.js DB CALLERS [AUTOCHECKPOINT]
'use strict';
const { openDatabase } = require('../../dist/sql.js');

const [dbPath, callers, ckpt] = [process.argv[2], Number(process.argv[3]), process.argv[4] ?? '64'];

(async () => {
  // small auto-checkpoints: kills land in checkpoints and WAL restarts too
  const db = await openDatabase(dbPath, { autoCheckpoint: ckpt === 'off' ? false : Number(ckpt) });
  await db.exec("CREATE TABLE IF NOT EXISTS t(g INTEGER, half TEXT, pad BLOB, PRIMARY KEY (g, half)); CREATE TABLE IF NOT EXISTS n(k INTEGER PRIMARY KEY, c INTEGER); INSERT OR IGNORE INTO n VALUES (1, 0)");
  process.stdout.write('ready\n');
  await Promise.all(
    Array.from({ length: callers }, async (_, w) => {
      for (let i = 0; ; i++) {
        const g = process.pid * 10_000_000 + w * 1_000_000 + i; // unique across processes on one database too
        for (;;) {
          try {
            await db.transaction(async (tx) => {
              await tx.run("INSERT INTO t VALUES (?, 'a', randomblob(?))", [g, 50 + ((g * 37) % 3000)]);
              await tx.run("INSERT INTO t VALUES (?, 'b', randomblob(10))", [g]);
              await tx.run('UPDATE n SET c = c + 1 WHERE k = 1');
            });
            break;
          } catch (e) {
            // another process committed after its snapshot (several of these on one database): run it again, as README asks
            if (!e || e.code !== 'WALNUT_CONFLICT') throw e;
          }
        }
        process.stdout.write(`ack ${w} ${g}\n`);
      }
    }),
  );
})().catch((e) => {
  process.stdout.write(`error ${e && e.code} ${e && e.message}\n`);
  process.exit(1);
});
