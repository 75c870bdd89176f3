#!/usr/bin/env node
// walnut's main job (npm start): many concurrent durable commits of real SQLite pages,
// group-committed into SQLite's own -wal, while a real SQLite process reads the same database;
// walnut checkpoints, then SQLite reads, checkpoints and checks the database; throughput next
// to better-sqlite3 FULL measured in the same run. Then the FEC sidecar repairs a WAL frame
// damaged on disk, and walnut verifies the database. Last, SQL on walnut (walnut/sql): 64
// concurrent requests insert rows through one group-committed SQL connection, next to
// better-sqlite3 WAL FULL in the same run, while a SQLite process reads the same live file.
// Prints what happened and cleans up.
//
// The page images come from SQLite itself (a source database built with better-sqlite3), so
// what walnut commits is a valid SQLite database at every commit.
'use strict';
const { execFile, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const Database = require('better-sqlite3');
const { open, verify } = require('../dist/index.js');
const { openDatabase } = require('../dist/sql.js');

/** Rows of `table` as a SQLite reader in another process sees the live file (async: commits go on meanwhile). */
function countInOtherProcess(file, table) {
  const code = `const D = require('better-sqlite3'); const d = new D(${JSON.stringify(file)}, { readonly: true }); process.stdout.write(String(d.prepare('SELECT count(*) AS n FROM ${table}').get().n)); d.close();`;
  return new Promise((resolve, reject) => execFile(process.execPath, ['-e', code], { encoding: 'utf8', cwd: __dirname }, (e, out) => (e ? reject(e) : resolve(Number(out)))));
}

/**
 * A SQLite reader in another process that counts `table`'s rows every 5 ms until it sees
 * `until` rows (or 20 s pass; a table not created yet counts 0); resolves with the counts it saw, in order.
 */
function watchInOtherProcess(file, table, until) {
  const code = `const D = require('better-sqlite3'); const d = new D(${JSON.stringify(file)}, { readonly: true }); let q = null;
    const count = () => { try { q ??= d.prepare('SELECT count(*) AS n FROM ${table}'); return q.get().n; } catch (e) { if (!/no such table/.test(e.message)) throw e; return 0; } };
    const seen = []; const end = Date.now() + 20000; const nap = new Int32Array(new SharedArrayBuffer(4));
    for (;;) { const n = count(); seen.push(n); if (n >= ${until} || Date.now() > end) break; Atomics.wait(nap, 0, 0, 5); }
    d.close(); process.stdout.write(JSON.stringify(seen));`;
  return new Promise((resolve, reject) => execFile(process.execPath, ['-e', code], { encoding: 'utf8', cwd: __dirname }, (e, out) => (e ? reject(e) : resolve(JSON.parse(out)))));
}

/** 64 concurrent requests, 40 one-row INSERT transactions each, through walnut/sql; the same rows through better-sqlite3 WAL FULL. */
async function sqlDemo(dir) {
  const CLIENTS = 64;
  const EACH = 40;
  const file = path.join(dir, 'sql.db');
  const db = await openDatabase(file);
  await db.exec('CREATE TABLE requests(id INTEGER PRIMARY KEY, client INTEGER, body TEXT)');
  const insert = await db.prepare('INSERT INTO requests(client, body) VALUES (?, ?)');
  const watching = watchInOtherProcess(file, 'requests', CLIENTS * EACH);
  await new Promise((resolve) => setTimeout(resolve, 300)); // the reader's process starts
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, c) => {
      for (let i = 0; i < EACH; i++) {
        await insert.run([c, `request ${i} of client ${c}`]);
      }
    }),
  );
  const ms = performance.now() - t0;
  const rows = (await db.get('SELECT count(*) AS n FROM requests')).n;
  const seen = await watching;
  await db.close();
  const seenAfter = await countInOtherProcess(file, 'requests');

  const peerFile = path.join(dir, 'peer-sql.db');
  const peer = new Database(peerFile);
  peer.pragma('journal_mode = WAL');
  peer.pragma('synchronous = FULL');
  peer.exec('CREATE TABLE requests(id INTEGER PRIMARY KEY, client INTEGER, body TEXT)');
  const peerInsert = peer.prepare('INSERT INTO requests(client, body) VALUES (?, ?)');
  const p0 = performance.now();
  for (let i = 0; i < CLIENTS * EACH; i++) peerInsert.run(i % CLIENTS, `request ${i}`);
  const peerMs = performance.now() - p0;
  peer.close();
  let cli = 'sqlite3 command not installed';
  try {
    cli = execFileSync('sqlite3', [file, 'SELECT count(*) FROM requests; PRAGMA integrity_check;'], { encoding: 'utf8' }).trim().replace(/\n/g, ', ');
  } catch (e) {
    if (e.code !== 'ENOENT') throw e;
  }
  const rate = rows / (ms / 1000);
  const peerRate = (CLIENTS * EACH) / (peerMs / 1000);
  return {
    ok: rows === CLIENTS * EACH && seenAfter === rows && seen[seen.length - 1] === rows,
    lines: [
      `walnut/sql: ${CLIENTS} concurrent requests inserted ${rows} rows, one durable transaction each, in ${ms.toFixed(0)} ms: ${rate.toFixed(0)} transactions/s`,
      `better-sqlite3 (WAL, synchronous=FULL) in the same run: ${peerRate.toFixed(0)} transactions/s -> walnut/sql ${(rate / peerRate).toFixed(1)}x`,
      `a SQLite reader in another process read the live file ${seen.length} times meanwhile: ${new Set(seen).size} different row counts from ${seen[0]} to ${seen[seen.length - 1]}; after close: ${seenAfter}; sqlite3 command: ${cli}`,
    ],
  };
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'walnut-demo-'));
  const target = path.join(dir, 'demo.db');

  // 1. SQLite builds a source database; each version of it is a list of page images.
  const src = path.join(dir, 'source.db');
  const s = new Database(src);
  s.pragma('journal_mode = WAL');
  s.exec('CREATE TABLE orders(id INTEGER PRIMARY KEY, customer TEXT, total REAL)');
  const versions = [];
  const snapshotPages = () => {
    s.pragma('wal_checkpoint(TRUNCATE)');
    const image = fs.readFileSync(src);
    return Array.from({ length: image.length / 4096 }, (_, i) => ({ pgno: i + 1, data: image.subarray(i * 4096, (i + 1) * 4096) }));
  };
  versions.push(snapshotPages());
  const ins = s.prepare('INSERT INTO orders(customer, total) VALUES (?, ?)');
  for (let v = 1; v <= 40; v++) {
    s.transaction(() => {
      for (let i = 0; i < 25; i++) ins.run(`customer-${v}-${i}`, v * 100 + i);
    })();
    versions.push(snapshotPages());
  }
  s.close();

  // 2. walnut: a new database, then 2,000 concurrent durable commits (synchronous 'full').
  //    Each commit carries what a database engine would: the pages its version changed from
  //    the version the commit before it left (the first, the whole image; a commit that repeats
  //    its predecessor's version, page 1 as it is). Commits take their place in the commit
  //    order as they are made, so the database is a valid image of some version at every commit.
  const changedPages = [versions[0]];
  for (let v = 1; v < versions.length; v++) {
    changedPages.push(versions[v].filter((p, i) => versions[v - 1][i] === undefined || Buffer.compare(versions[v - 1][i].data, p.data) !== 0));
  }
  // keepWal: close() leaves walnut's -wal and -shm for SQLite to open below (the last
  // connection's close would otherwise checkpoint and remove them, as SQLite's does).
  const store = await open(target, { pageSize: 4096, synchronous: 'full', keepWal: true });
  // SQLite reads in its own process (SQLite's classic POSIX locks and walnut's descriptors must
  // not share a process: closing any descriptor drops all of a process's classic locks on it),
  // started before the commits and reading while they go on (a reader started at the 1,000th
  // commit's acknowledgement came after the last: one group commit acknowledges them all at
  // once); never a synchronous spawn here, which would stop the event loop and every commit with it
  const watching = watchInOtherProcess(target, 'orders', 1000);
  await new Promise((resolve) => setTimeout(resolve, 300)); // the reader's process starts
  const t0 = performance.now();
  const commits = [];
  let previous = -1;
  for (let c = 0; c < 2000; c++) {
    const v = Math.floor((c * 40) / 1999); // versions go up by at most one a commit; the last commit is version 40
    const pages = v === previous ? [versions[v][0]] : changedPages[v];
    previous = v;
    commits.push(store.commit(pages, { dbSize: versions[v].length }));
  }
  const results = await Promise.all(commits);
  const ms = performance.now() - t0;
  const seen = await watching;
  const m = store.metrics();
  const ckpt = await store.checkpoint('passive');
  await store.close();

  // For scale, in the same run: better-sqlite3 with synchronous=FULL, one durable commit each.
  const peer = new Database(path.join(dir, 'peer.db'));
  peer.pragma('journal_mode = WAL');
  peer.pragma('synchronous = FULL');
  peer.exec('CREATE TABLE orders(id INTEGER PRIMARY KEY, customer TEXT, total REAL)');
  const peerIns = peer.prepare('INSERT INTO orders(customer, total) VALUES (?, ?)');
  const p0 = performance.now();
  for (let i = 0; i < 2000; i++) peerIns.run(`customer-${i}`, i);
  const peerRate = 2000 / ((performance.now() - p0) / 1000);
  peer.close();

  // 3. SQLite opens walnut's -wal and -shm, reads, checkpoints the WAL (TRUNCATE: it is cut
  //    to 0 bytes), and checks the database.
  const walBytes = () => (fs.existsSync(`${target}-wal`) ? fs.statSync(`${target}-wal`).size : null);
  const walBefore = walBytes();
  const db = new Database(target);
  const rows = db.prepare('SELECT count(*) AS n, sum(total) AS total FROM orders').get();
  const ck = db.pragma('wal_checkpoint(TRUNCATE)')[0];
  const walAfter = walBytes();
  const integrity = db.pragma('integrity_check', { simple: true });
  db.close();
  let cli = 'sqlite3 command not installed';
  try {
    cli = execFileSync('sqlite3', [target, 'SELECT count(*) FROM orders; PRAGMA integrity_check;'], { encoding: 'utf8' }).trim().replace(/\n/g, ', ');
  } catch {
    // optional
  }

  // 4. Self-healing and integrity: with the FEC sidecar on, a WAL frame damaged on disk is
  //    repaired when the database is next opened (SQLite's recovery would drop that commit and
  //    every later one); then walnut verifies the whole database (levels 1-5).
  const healed = path.join(dir, 'healed.db');
  fs.copyFileSync(target, healed);
  const protectedStore = await open(healed, { fec: { repairSymbols: 2 }, autoCheckpoint: false, keepWal: true });
  await protectedStore.commit(versions[40], { dbSize: versions[40].length });
  await protectedStore.close();
  const fd = fs.openSync(`${healed}-wal`, 'r+');
  fs.writeSync(fd, Buffer.from([0xff]), 0, 1, 32 + 2 * (24 + 4096) + 24 + 1000); // one byte of frame 3's page
  fs.closeSync(fd);
  fs.rmSync(`${healed}-shm`, { force: true });
  const reopened = await open(healed, { fec: { repairSymbols: 2 } });
  const recovery = reopened.metrics().fec.recovery;
  await reopened.close();
  const report = await verify(healed, 5);

  console.log(`walnut committed ${results.length} transactions (${m.frames} frames, ${(m.bytes / 1048576).toFixed(1)} MiB) in ${ms.toFixed(0)} ms: ${(results.length / (ms / 1000)).toFixed(0)} durable commits/s`);
  console.log(`group commit: ${m.batches} batches, ${m.fsyncs} fdatasyncs; commit latency p50 ${(m.latency.commit.p50 / 1000).toFixed(2)} ms, p99 ${(m.latency.commit.p99 / 1000).toFixed(2)} ms`);
  console.log(`better-sqlite3 (synchronous=FULL, one durable commit at a time) in the same run: ${peerRate.toFixed(0)} commits/s -> walnut ${(results.length / (ms / 1000) / peerRate).toFixed(1)}x`);
  console.log(`walnut checkpoint (passive): ${ckpt.checkpointedFrames} of ${ckpt.walFrames} frames copied into the database file`);
  console.log(`a SQLite reader in another process read the live file ${seen.length} times meanwhile, row counts ${[...new Set(seen)].join(' -> ')}; ${rows.n} orders at the end (sum ${rows.total})`);
  console.log(`SQLite opened walnut's -wal (${walBefore} bytes) and -shm, and checkpointed it (TRUNCATE): busy=${ck.busy}, -wal now ${walAfter} bytes; integrity_check: ${integrity}`);
  console.log(`sqlite3 command: ${cli}`);
  console.log(`FEC sidecar: a flipped byte in WAL frame 3 was repaired at recovery (repaired frames: ${recovery.repairedFrames}, fallbacks: ${JSON.stringify(recovery.fallbacks)})`);
  console.log(`walnut verify --level 5: ${report.ok ? 'ok' : JSON.stringify(report.issues.slice(0, 3))} (${report.pages} pages)`);
  const sql = await sqlDemo(dir);
  for (const line of sql.lines) console.log(line);
  fs.rmSync(dir, { recursive: true, force: true });
  if (integrity !== 'ok' || !(walBefore > 0) || ck.busy !== 0 || walAfter !== 0 || rows.n !== 1000 || recovery.repairedFrames !== 1 || !report.ok || !sql.ok) process.exit(1);
}

main().catch((e) => {
  console.error(`${e.code ?? 'ERROR'}: ${e.message}`);
  process.exit(2);
});
