// Soak child: walnut/sql on the soak database, replicated to NATS (store.replicateTo on a
// worker thread). CALLERS callers run read-modify-write increments (transaction(): read
// c.n, write n + 1, insert the increment's row into inc, so c.n = count(inc) per counter in
// every committed state and a lost update shows as a counter behind its rows), retrying on
// WALNUT_CONFLICT / WALNUT_BUSY; it prints `a <k>` for each acknowledged increment k. READERS
// readers check what each read sees: sum(c.n) = count(inc) (no partial transaction), the count
// never going back for one reader, and every increment acknowledged before the read began in
// it. Now and then a store checkpoint (passive / truncate). A line `stop` on stdin: the callers
// finish, the replication stops (publishing everything committed), it prints
// `done {...}` and closes the database.
// usage: node sql-worker.js DB NATS_URL|none STREAM [CALLERS] [READERS]
'use strict';
const { openDatabase, isWalnutError } = require('../../dist/sql.js');

const [file, servers, stream, callersArg, readersArg] = process.argv.slice(2);
const CALLERS = Number(callersArg ?? 16);
const READERS = Number(readersArg ?? 4);
const COUNTERS = 8;
const stats = { commits: 0, conflicts: 0, busy: 0, other: {}, reads: 0, readViolations: [], checkpoints: 0, checkpointErrors: {}, publisherErrors: [] };
let running = true;
let nextK = 0;
let acked = 0;
const busyNow = new Map(); // who -> what it is doing (reported while the stop waits)
const note = (m) => process.stderr.write(`[sql-worker ${new Date().toISOString()}] ${m}\n`);

function other(e, where) {
  const k = `${where}: ${isWalnutError(e) ? `${e.code}/${e.reason ?? ''} ${e.message.slice(0, 160)}` : `raw ${String(e && e.stack ? e.stack : e).slice(0, 400)}`}`;
  stats.other[k] = (stats.other[k] ?? 0) + 1;
}

async function caller(db, w) {
  while (running) {
    const k = nextK++;
    const cid = 1 + ((k * 7 + w) % COUNTERS);
    for (let attempt = 0; ; attempt++) {
      busyNow.set(`caller ${w}`, `k ${k} attempt ${attempt} since ${Date.now()}`);
      try {
        await db.transaction(async (tx) => {
          const row = await tx.get('SELECT n FROM c WHERE id = ?', [cid]);
          await tx.run('UPDATE c SET n = ? WHERE id = ?', [row.n + 1, cid]);
          await tx.run('INSERT INTO inc(src, k, cid, pad) VALUES (?, ?, ?, randomblob(?))', ['sql', k, cid, 50 + ((k * 37) % 1500)]);
        });
        stats.commits++;
        acked++;
        process.stdout.write(`a ${k}\n`);
        break;
      } catch (e) {
        if (isWalnutError(e, 'WALNUT_CONFLICT')) stats.conflicts++;
        else if (isWalnutError(e, 'WALNUT_BUSY')) stats.busy++;
        else {
          other(e, 'caller');
          break; // outcome unknown: k is given up (the end checks only acknowledged ones)
        }
        if (!running && attempt > 50) break;
        await new Promise((r) => setTimeout(r, 1 + (attempt % 10)));
      }
    }
    if (k % 8 === 0) await new Promise((r) => setImmediate(r));
  }
  busyNow.delete(`caller ${w}`);
}

async function reader(db, r) {
  let last = -1;
  while (running) {
    const before = acked;
    busyNow.set(`reader ${r}`, `since ${Date.now()}`);
    try {
      const row = await db.get("SELECT (SELECT sum(n) FROM c) AS s, (SELECT count(*) FROM inc) AS k, (SELECT count(*) FROM inc WHERE src = 'sql') AS mine");
      stats.reads++;
      if (row.s !== row.k) stats.readViolations.push(`reader ${r}: sum(c.n) ${row.s} != count(inc) ${row.k}`);
      if (row.k < last) stats.readViolations.push(`reader ${r}: count(inc) went back from ${last} to ${row.k}`);
      if (row.mine < before) stats.readViolations.push(`reader ${r}: saw ${row.mine} sql increments, ${before} were acknowledged before the read`);
      last = row.k;
    } catch (e) {
      if (!isWalnutError(e, 'WALNUT_BUSY')) other(e, 'reader');
    }
    await new Promise((res) => setTimeout(res, 5 + r));
  }
  busyNow.delete(`reader ${r}`);
}

async function checkpointer(db) {
  const modes = ['passive', 'truncate', 'passive', 'restart'];
  for (let i = 0; running; i++) {
    await new Promise((res) => setTimeout(res, 1500 + (i % 7) * 200));
    if (!running) break;
    busyNow.set('checkpointer', `${modes[i % modes.length]} since ${Date.now()}`);
    try {
      await db.store.checkpoint(modes[i % modes.length]);
      stats.checkpoints++;
    } catch (e) {
      const k = isWalnutError(e) ? `${e.code}/${e.reason ?? ''}` : `raw ${String(e)}`;
      stats.checkpointErrors[k] = (stats.checkpointErrors[k] ?? 0) + 1;
    }
    busyNow.delete('checkpointer');
  }
}

function noReplication() {
  return { on: () => undefined, ready: Promise.resolve(), stop: async () => undefined, metrics: () => ({}) };
}

(async () => {
  const db = await openDatabase(file, { busyTimeout: 5000 });
  // servers 'none': the soak replicates from its own store (SOAK_FOLLOWERS=one)
  const r = servers === 'none' ? noReplication() : db.store.replicateTo({ servers, stream, thread: true, stopTimeoutMs: 120_000, baseEveryCommits: 3000 });
  r.on('error', (e) => stats.publisherErrors.push(isWalnutError(e) ? `${e.code}/${e.reason ?? ''} ${e.message.slice(0, 200)}` : `raw ${String(e)}`));
  await r.ready;
  process.stdout.write('ready\n');
  let stopLine = '';
  const stopped = new Promise((res) => {
    process.stdin.on('data', (d) => {
      stopLine += d;
      if (stopLine.includes('stop')) res();
    });
  });
  const work = Promise.all([
    ...Array.from({ length: CALLERS }, (_, w) => caller(db, w)),
    ...Array.from({ length: READERS }, (_, i) => reader(db, i)),
    checkpointer(db),
  ]);
  await stopped;
  process.stdin.destroy(); // nothing more to read: the process may end once the work is done
  running = false;
  note('stop: waiting for the callers');
  const watchdog = setInterval(() => note(`still running: ${JSON.stringify([...busyNow])}; replication ${JSON.stringify(r.metrics())}`), 5000);
  await work;
  note('callers done; stopping the replication');
  await r.stop();
  note('replication stopped');
  clearInterval(watchdog);
  const m = r.metrics();
  const storeMetrics = db.store.metrics();
  note('closing the database');
  const closeWatch = setInterval(() => note(`close still waiting; store ${JSON.stringify({ chainBrokenBy: String(db.store.chainBrokenBy), wal: db.store.metrics().wal })}`), 5000);
  await db.close();
  clearInterval(closeWatch);
  note('closed');
  process.stdout.write(`done ${JSON.stringify({ ...stats, nextK, replication: { session: m.session, sessions: m.sessions, publishedSeq: m.publishedSeq, messages: m.messages, bases: m.bases, lagResets: m.lagResets }, store: { commits: storeMetrics.commits, checkpoints: storeMetrics.checkpoints, handedOverFrames: storeMetrics.handedOverFrames } })}\n`);
})().catch((e) => {
  process.stderr.write(`sql worker failed: ${e && e.stack ? e.stack : e}\n`);
  process.exit(3);
});
