// Fuzzing walnut's WAL recovery scan: random and mutated WAL files, each compared with the
// independent oracle (test/helpers/wal-oracle.js). Every case must end in a recovery result
// equal to the oracle's, or in WalnutError WALNUT_CANTOPEN exactly when the oracle refuses
// the version; anything else (another error type, a crash, a different frame count) fails.
// Shared by the vitest suite (a few thousand cases) and `npm run fuzz` (100,000+).
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { WalFile } = require('../../dist/wal/wal-file.js');
const { WalnutError } = require('../../dist/errors.js');
const { encodeWalHeader } = require('../../dist/format/wal-header.js');
const { sqliteWalChecksum, sqliteWalFrameChecksums } = require('../../dist/checksum.js');
const { oracleScan } = require('../helpers/wal-oracle.js');
const { damage, DAMAGE_KINDS, seededRandom } = require('../helpers/wal-damage.js');

/** Valid WALs to mutate: several page sizes, both checksum byte orders, uncommitted tails. */
function makeBases(dir, rand) {
  const bases = [];
  for (const pageSize of [512, 1024, 4096, 65536]) {
    const file = path.join(dir, `base-${pageSize}.wal`);
    fs.rmSync(file, { force: true });
    const w = WalFile.openSync(file, { create: true });
    w.writeHeaderSync({ pageSize, checkpointSeq: rand(100), durability: 'none' });
    const txns = pageSize === 65536 ? 3 : 8;
    for (let t = 0; t < txns; t++) {
      const pages = [];
      for (let i = 0, n = 1 + rand(3); i < n; i++) pages.push({ pgno: 1 + rand(20), data: Buffer.alloc(pageSize).map(() => rand(256)) });
      w.appendSync([{ pages, dbSize: 20 + t }]);
    }
    w.closeSync();
    const le = fs.readFileSync(file);
    bases.push({ pageSize, bytes: le });
    bases.push({ pageSize, bytes: toBigEndian(le, pageSize) });
  }
  return bases;
}

/** The same WAL re-chained with magic 0x377f0683 (big-endian checksum words). */
function toBigEndian(wal, pageSize) {
  const out = Buffer.from(wal);
  out.writeUInt32BE(0x377f0683, 0);
  const [h0, h1] = sqliteWalChecksum(out, 0, 0, { length: 24, bigEndianWords: true });
  out.writeUInt32BE(h0, 24);
  out.writeUInt32BE(h1, 28);
  const frames = out.subarray(32, 32 + Math.floor((out.length - 32) / (pageSize + 24)) * (pageSize + 24));
  sqliteWalFrameChecksums(frames, pageSize, [h0, h1], [out.readUInt32BE(16), out.readUInt32BE(20)], { bigEndianWords: true });
  return out;
}

function randomBytes(rand, n) {
  return Buffer.alloc(n).map(() => rand(256));
}

/** One fuzz input. */
function mutate(rand, bases) {
  const base = bases[rand(bases.length)];
  switch (rand(6)) {
    case 0:
      return { bytes: randomBytes(rand, rand(3 * 1048)), what: 'random bytes' };
    case 1: {
      // a valid header (random page size, maybe a bad one) over random frames
      const pageSizes = [512, 1024, 2048, 4096, 8192];
      const pageSize = pageSizes[rand(pageSizes.length)];
      const h = Buffer.from(encodeWalHeader({ pageSize, checkpointSeq: rand(1000), salt1: rand(2 ** 31), salt2: rand(2 ** 31) }).bytes);
      if (rand(4) === 0) {
        // another format version behind a valid checksum: SQLite refuses these (CANTOPEN)
        h.writeUInt32BE(3007000 + 1 + rand(5), 4);
        const [c0, c1] = sqliteWalChecksum(h, 0, 0, { length: 24 });
        h.writeUInt32BE(c0, 24);
        h.writeUInt32BE(c1, 28);
      }
      return { bytes: Buffer.concat([h, randomBytes(rand, rand(4 * (pageSize + 24)))]), what: `valid header over random frames (${pageSize})` };
    }
    case 2: {
      // several damages in a row
      let bytes = base.bytes;
      const parts = [];
      for (let i = 0, n = 1 + rand(3); i < n; i++) {
        const d = damage(bytes, base.pageSize, DAMAGE_KINDS[rand(DAMAGE_KINDS.length)], rand);
        bytes = d.bytes;
        parts.push(d.what);
      }
      return { bytes, what: parts.join('; ') };
    }
    case 3: {
      // frames of one WAL spliced onto another's header (salt mismatch and chain breaks)
      const other = bases[rand(bases.length)];
      const cut = 32 + rand(Math.max(1, base.bytes.length - 32));
      return { bytes: Buffer.concat([base.bytes.subarray(0, cut), other.bytes.subarray(32 + rand(Math.max(1, other.bytes.length - 32)))]), what: 'spliced' };
    }
    default: {
      const d = damage(base.bytes, base.pageSize, DAMAGE_KINDS[rand(DAMAGE_KINDS.length)], rand);
      return d;
    }
  }
}

function check(file, bytes, outcomes) {
  let expected;
  let expectCantopen = false;
  try {
    expected = oracleScan(bytes);
    outcomes[expected === null ? 'empty' : expected.frames.length === 0 ? 'noCommit' : 'frames']++;
  } catch {
    expectCantopen = true;
    outcomes.cantopen++;
  }
  fs.writeFileSync(file, bytes);
  const w = WalFile.openSync(file, { readOnly: true });
  try {
    const r = w.recoverSync();
    if (expectCantopen) return 'recovered a WAL the oracle refuses (version)';
    if (expected === null) return r.mxFrame === 0 && r.commits === 0 && r.headerStatus !== 'ok' ? null : `expected an empty WAL, got ${r.mxFrame} frames`;
    const want = { mxFrame: expected.frames.length, dbSize: expected.dbSize, commits: expected.commits, lastValidFrame: expected.lastValidFrame, running: expected.running };
    const got = { mxFrame: r.mxFrame, dbSize: r.dbSize, commits: r.commits, lastValidFrame: r.lastValidFrame, running: r.running };
    return JSON.stringify(want) === JSON.stringify(got) ? null : `oracle ${JSON.stringify(want)} walnut ${JSON.stringify(got)}`;
  } catch (e) {
    if (!(e instanceof WalnutError)) return `non-WalnutError: ${e && e.stack}`;
    if (expectCantopen && e.code === 'WALNUT_CANTOPEN') return null;
    return `unexpected ${e.code}: ${e.message}`;
  } finally {
    w.closeSync();
  }
}

/**
 * The fuzz run, a step per YIELD_EVERY cases; returns { cases, failures: [{ case, what, problem }], outcomes }
 * (`cases`: those run, fewer than asked when `deadline`, a Date.now() value, passed first).
 * (Steps so that a caller inside vitest can let its event loop turn between them: 1,200 cases in
 * one synchronous stretch held a worker's loop 45 s at load 15, past the 60 s of vitest's RPC
 * timeout when more loaded.)
 */
const YIELD_EVERY = 20;

function* fuzzSteps({ cases, seed, dir, onProgress, deadline = Infinity }) {
  const rand = seededRandom(seed);
  const bases = makeBases(dir, rand);
  const file = path.join(dir, 'case.wal');
  const failures = [];
  const outcomes = { empty: 0, noCommit: 0, frames: 0, cantopen: 0 };
  let i = 0;
  for (; i < cases && Date.now() < deadline; i++) {
    const input = mutate(rand, bases);
    const problem = check(file, input.bytes, outcomes);
    if (problem) {
      const keep = path.join(dir, `failure-${failures.length}.wal`);
      fs.writeFileSync(keep, input.bytes);
      failures.push({ case: i, what: input.what, problem, file: keep });
      if (failures.length >= 20) break;
    }
    if (onProgress && i % 1000 === 0) onProgress(i);
    if (i % YIELD_EVERY === YIELD_EVERY - 1) yield;
  }
  return { cases: i, failures, outcomes };
}

/** Runs `cases` fuzz cases in one go (npm run fuzz). */
function fuzzWalRecovery(options) {
  const steps = fuzzSteps(options);
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
  }
}

/** The same cases, letting the event loop turn between steps (inside a vitest worker). */
async function fuzzWalRecoveryAsync(options) {
  const steps = fuzzSteps(options);
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
    await new Promise((resolve) => setImmediate(resolve));
  }
}

module.exports = { fuzzWalRecovery, fuzzWalRecoveryAsync };
