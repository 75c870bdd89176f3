// Fuzzing the export stream reader and restore on random and mutated streams: zero crashes,
// every failure a WalnutError, and every successful restore a database SQLite accepts
// (integrity_check ok). Shared by the vitest suite and `npm run fuzz`.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const Database = require('better-sqlite3');
const { open, restore, WalStreamReader, WalnutError } = require('../../dist/index.js');
const { seededRandom } = require('../helpers/wal-damage.js');

/** A real export stream: a SQLite database, then commits exported in follow mode. */
async function makeStream(dir) {
  const src = path.join(dir, 'fuzz-src.db');
  const db = new Database(src);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)');
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  const store = await open(src);
  const chunks = [];
  const { Writable } = require('node:stream');
  const handle = store.exportTo(new Writable({ write: (c, _e, cb) => (chunks.push(Buffer.from(c)), cb()) }), { follow: true, pollMs: 1 });
  for (let i = 0; i < 6; i++) {
    // SQLite-valid commits through walnut: rebuild the table's pages with better-sqlite3 on a copy
    const scratch = path.join(dir, `scratch-${i}.db`);
    const snap = await store.snapshot();
    const pages = [];
    for (let p = 1; p <= snap.dbSize; p++) pages.push(await snap.read(p));
    snap.release();
    fs.writeFileSync(scratch, Buffer.concat(pages));
    const s = new Database(scratch);
    s.pragma('journal_mode = DELETE');
    s.prepare('INSERT INTO t(v) VALUES (?)').run(`row ${i} `.repeat(40));
    s.close();
    const image = fs.readFileSync(scratch);
    image[18] = 2; // back to WAL mode in the header, as it is in the source
    image[19] = 2;
    const next = [];
    for (let p = 0; p < image.length / 4096; p++) next.push({ pgno: p + 1, data: image.subarray(p * 4096, (p + 1) * 4096) });
    await store.commit(next, { dbSize: next.length });
    await new Promise((r) => setTimeout(r, 3));
  }
  await handle.stop();
  await store.close();
  return Buffer.concat(chunks);
}

function mutate(rand, stream) {
  const b = Buffer.from(stream);
  switch (rand(5)) {
    case 0:
      return Buffer.alloc(rand(200)).map(() => rand(256));
    case 1:
      return b.subarray(0, rand(b.length + 1));
    case 2:
      for (let i = 0, n = 1 + rand(4); i < n; i++) b[rand(b.length)] ^= 1 << rand(8);
      return b;
    case 3: {
      // a random length prefix somewhere after the magic
      const at = 8 + rand(Math.max(1, b.length - 16));
      b.writeBigUInt64BE(BigInt(rand(2) ? rand(64) : 2 ** 24 + rand(10)), at);
      return b;
    }
    default:
      return Buffer.concat([b.subarray(0, rand(b.length)), Buffer.alloc(rand(100)).map(() => rand(256))]);
  }
}

/** `cases` cases, or fewer when `deadline` (a Date.now() value) passes first; returns { cases (those run), failures, outcomes }. */
async function fuzzExport({ cases, seed, dir, deadline = Infinity }) {
  const rand = seededRandom(seed);
  const stream = await makeStream(dir);
  const failures = [];
  const target = path.join(dir, 'fuzz-restore.db');
  const outcomes = { restored: 0, rejected: 0 };
  let i = 0;
  for (; i < cases && Date.now() < deadline; i++) {
    const input = mutate(rand, stream);
    try {
      for (const _ of WalStreamReader.fromBuffer(input)); // the synchronous reader alone
    } catch (e) {
      if (!(e instanceof WalnutError)) failures.push({ case: i, problem: `reader: ${e && e.stack}` });
    }
    try {
      await restore(input, target, { force: true });
      const db = new Database(target, { readonly: true });
      const ok = db.pragma('integrity_check', { simple: true });
      db.close();
      if (ok !== 'ok') failures.push({ case: i, problem: `restored a database that fails integrity_check: ${ok}` });
      outcomes.restored++;
    } catch (e) {
      if (!(e instanceof WalnutError)) failures.push({ case: i, problem: `restore: ${e && e.stack}` });
      outcomes.rejected++;
    }
    if (failures.length >= 20) break;
  }
  return { cases: i, failures, outcomes };
}

module.exports = { fuzzExport };
