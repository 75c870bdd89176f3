// Fuzzing verify (integrity levels 1..5) and the -wal-fec repair on randomly mutated files:
// every case ends in a report or a WalnutError, never another exception, and within a time bound
// (every walk is bounded). Database cases: a SQLite-built database with 1-40 random byte
// changes (half aimed at page headers and cell pointers), random truncation or extension, random
// header fields. FEC cases: a walnut WAL with its sidecar, both mutated; recovery then either
// repairs or falls back, and the database that results passes SQLite's integrity_check.
// Shared by the vitest suite and `npm run fuzz`.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const Database = require('better-sqlite3');
const { open, verify, WalnutError } = require('../../dist/index.js');
const { seededRandom } = require('../helpers/wal-damage.js');

const PS = 1024;
/**
 * A case's budget: 5 s of CPU time (this process's threads: verify reads on its I/O threads
 * too), where a wall-clock 5 s measured the machine's load as much as the walk (a loaded machine
 * keeps a process off the CPU for seconds); and 60 s of wall time, for a walk that waits instead
 * of working (a case takes milliseconds).
 */
const CASE_BUDGET_MS = 5000;
const CASE_WAIT_BUDGET_MS = 60_000;
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

function baseDatabase(dir) {
  const file = path.join(dir, 'vf-base.db');
  for (const s of ['', '-wal', '-shm']) fs.rmSync(file + s, { force: true });
  const db = new Database(file);
  db.pragma(`page_size = ${PS}`);
  db.pragma('auto_vacuum = full');
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT, v BLOB); CREATE INDEX t_k ON t(k COLLATE NOCASE DESC)');
  const ins = db.prepare('INSERT INTO t(k, v) VALUES (?, ?)');
  db.transaction(() => {
    for (let i = 0; i < 300; i++) ins.run(`Key-${(i * 7919) % 1000}`, Buffer.alloc(i % 30 === 0 ? 3000 : 40, i));
  })();
  db.exec('DELETE FROM t WHERE id % 5 = 0');
  db.close();
  return fs.readFileSync(file);
}

function mutate(base, rand) {
  let b = Buffer.from(base);
  const pages = b.length / PS;
  const n = 1 + rand(40);
  for (let i = 0; i < n; i++) {
    const p = rand(pages);
    const aimed = rand(2) === 0;
    const at = p * PS + (aimed ? (p === 0 ? 100 : 0) + rand(16) : rand(PS));
    b[at] = rand(4) === 0 ? 0 : rand(256);
  }
  switch (rand(6)) {
    case 0:
      b = b.subarray(0, rand(b.length));
      break;
    case 1:
      b = Buffer.concat([b, Buffer.alloc(rand(4) * PS, rand(256))]);
      break;
    case 2:
      b.writeUInt32BE(rand(2 ** 32) >>> 0, [28, 32, 36, 52][rand(4)]);
      break;
    default:
  }
  return b;
}

/** `cases` cases, or fewer when `deadline` (a Date.now() value) passes first; returns { cases (those run), failures, outcomes }. */
async function fuzzVerify({ cases, seed, dir, deadline = Infinity }) {
  const rand = seededRandom(seed);
  const base = baseDatabase(dir);
  const failures = [];
  const outcomes = { ok: 0, findings: 0, refused: 0 };
  const file = path.join(dir, 'vf.db');
  let c = 0;
  for (; c < cases && Date.now() < deadline; c++) {
    const bytes = mutate(base, rand);
    for (const s of ['', '-wal', '-shm']) fs.rmSync(file + s, { force: true });
    fs.writeFileSync(file, bytes);
    const t0 = cpuMs();
    const wall0 = Date.now();
    try {
      const r = await verify(file, 1 + rand(5));
      if (r.ok) outcomes.ok++;
      else outcomes.findings++;
      for (const i of r.issues) if (typeof i.kind !== 'string' || typeof i.message !== 'string' || !(i.level >= 1 && i.level <= 5)) throw new Error(`malformed finding ${JSON.stringify(i)}`);
    } catch (e) {
      if (e instanceof WalnutError) outcomes.refused++;
      else failures.push({ case: c, problem: `${e && e.stack}` });
    }
    const spent = cpuMs() - t0;
    const waited = Date.now() - wall0;
    if (spent > CASE_BUDGET_MS || waited > CASE_WAIT_BUDGET_MS) failures.push({ case: c, problem: `took ${spent.toFixed(0)} ms of CPU, ${waited} ms` });
  }
  return { cases: c, failures, outcomes };
}

/** As fuzzVerify: `cases` cases or fewer when `deadline` passes first. */
async function fuzzFecRecovery({ cases, seed, dir, deadline = Infinity }) {
  const rand = seededRandom(seed ^ 0x5bd1e995);
  const base = baseDatabase(dir);
  const failures = [];
  const outcomes = { repaired: 0, fellBack: 0, clean: 0 };
  const file = path.join(dir, 'ff.db');
  let c = 0;
  for (; c < cases && Date.now() < deadline; c++) {
    for (const s of ['', '-wal', '-shm', '-wal-fec']) fs.rmSync(file + s, { force: true });
    fs.writeFileSync(file, base);
    const pages = base.length / PS;
    try {
      let store = await open(file, { fec: { repairSymbols: 1 + rand(3) }, autoCheckpoint: false, keepWal: true });
      let frameCount = 0;
      for (let b = 0, batches = 1 + rand(6); b < batches; b++) {
        const batch = [];
        const start = rand(pages);
        for (let i = 0; i < 1 + rand(20); i++) {
          const pgno = 1 + ((start + i) % pages);
          batch.push({ pgno, data: base.subarray((pgno - 1) * PS, pgno * PS) });
        }
        frameCount = (await store.commit(batch, { dbSize: pages })).lastFrame;
      }
      await store.close();
      fs.rmSync(`${file}-shm`, { force: true });
      // damage lands in the frames (not the preallocated zeros after them); the sidecar is
      // damaged in one case out of four
      const frames = frameCount;
      const wal = fs.readFileSync(`${file}-wal`);
      for (let i = 0, n = 1 + rand(4); i < n; i++) wal[32 + rand(frames * (24 + PS))] ^= 1 << rand(8);
      fs.writeFileSync(`${file}-wal`, rand(8) === 0 ? wal.subarray(0, rand(wal.length + 1)) : wal);
      if (rand(4) === 0) {
        const side = fs.readFileSync(`${file}-wal-fec`);
        if (side.length > 0) side[rand(side.length)] ^= 1 << rand(8);
        fs.writeFileSync(`${file}-wal-fec`, rand(3) === 0 ? side.subarray(0, rand(side.length + 1)) : side);
      }
      store = await open(file, { fec: { repairSymbols: 2 }, autoCheckpoint: false });
      const m = store.metrics().fec.recovery;
      if (m.repairedFrames > 0) outcomes.repaired++;
      else if (Object.keys(m.fallbacks).length > 0) outcomes.fellBack++;
      else outcomes.clean++;
      await store.close();
      const db = new Database(file);
      const ic = db.pragma('integrity_check', { simple: true });
      db.close();
      if (ic !== 'ok') failures.push({ case: c, problem: `integrity_check after recovery: ${ic}` });
    } catch (e) {
      if (!(e instanceof WalnutError)) failures.push({ case: c, problem: `${e && e.stack}` });
    }
  }
  return { cases: c, failures, outcomes };
}

module.exports = { fuzzVerify, fuzzFecRecovery };
