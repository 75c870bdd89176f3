// Power-loss model for the WAL: commits are appended and synced one by one (with WAL restarts
// in between), and the file's durable state is captured at every sync. Power fails after sync
// point k, while the writes that sync k + 1 would have made durable are in flight: a damaged
// copy is the state at k plus an arbitrary subset of those writes, sector by sector (512 or
// 4096 bytes): each such sector is either lost (old bytes), written (new bytes) or zero-filled. Recovery must keep every commit of the current generation synced by point k, and
// every commit it keeps must be exactly one that was written (nothing torn, nothing mixed), and
// the recovered WAL must take the next commit (overwriting whatever torn frames follow it).
// Shared by the vitest suite and `npm run test:power-loss -- --cases N [--seed S]`.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { WalFile } = require('../../dist/wal/wal-file.js');
const { seededRandom } = require('../helpers/wal-damage.js');

const PAGE = 1024;

/** Builds a history: snapshots of the WAL after each sync, and what each commit wrote. */
function buildHistory(dir, rand) {
  const file = path.join(dir, 'history.wal');
  fs.rmSync(file, { force: true });
  const w = WalFile.openSync(file, { create: true });
  w.preallocate = rand(2) === 0;
  w.writeHeaderSync({ pageSize: PAGE, checkpointSeq: 0 });
  const states = []; // { bytes, generation, commits: [{ pages: Map<pgno, fill> }] }
  let generation = 0;
  let commits = [];
  states.push({ bytes: fs.readFileSync(file), generation, commits: [] });
  const total = 6 + rand(14);
  for (let c = 0; c < total; c++) {
    if (c > 0 && rand(6) === 0) {
      w.writeHeaderSync({ pageSize: PAGE, checkpointSeq: w.checkpointSeq + 1 }); // restart: a new generation overwrites from frame 1
      generation++;
      commits = [];
      states.push({ bytes: fs.readFileSync(file), generation, commits: [] });
    }
    const pages = new Map();
    const n = 1 + rand(4);
    for (let i = 0; i < n; i++) pages.set(1 + rand(12), (c * 7 + i) & 0xff || 1);
    w.appendSync([{ pages: [...pages].map(([pgno, fill]) => ({ pgno, data: Buffer.alloc(PAGE, fill) })), dbSize: 12 }], 'data');
    commits = [...commits, { pages }];
    states.push({ bytes: fs.readFileSync(file), generation, commits });
  }
  w.closeSync();
  return states;
}

/**
 * Power-safe overwrite (what SQLite assumes on unix, and walnut too): a sector that is being
 * written may end up old, new or zero-filled in the bytes that write changes, but bytes of the
 * sector that the write did not change (earlier, synced data) survive.
 */
function damagedCopy(rand, durable, final, sector) {
  const len = Math.max(durable.length, final.length);
  const out = Buffer.alloc(len);
  durable.copy(out);
  for (let s = 0; s < len; s += sector) {
    const end = Math.min(len, s + sector);
    let changed = false;
    for (let i = s; i < end && !changed; i++) changed = (durable[i] ?? 0) !== (final[i] ?? 0);
    if (!changed) continue; // not written after the sync
    const choice = rand(3);
    if (choice === 0) continue; // the write was lost: the durable bytes stay
    for (let i = s; i < end; i++) {
      if ((durable[i] ?? 0) === (final[i] ?? 0) && i < durable.length) continue; // untouched bytes survive
      out[i] = choice === 1 ? final[i] ?? 0 : 0;
    }
  }
  // a file may also end up shorter: the size is metadata, synced only at the last sync point
  return out.subarray(0, rand(2) === 0 ? durable.length : len);
}

function check(file, state, next) {
  const w = WalFile.openSync(file, { readOnly: true });
  try {
    const r = w.recoverSync();
    // A restart (new header) is only ever written after a complete checkpoint put every commit
    // of the old generation into the database file: losing them from the WAL then loses nothing.
    const want = next.generation === state.generation ? state.commits.length : 0;
    if (r.commits < want) return `lost synced commits: recovered ${r.commits} of ${want}`;
    // every recovered frame carries one of the images that was written for its page
    const buf = Buffer.alloc(PAGE);
    for (let f = 1; f <= r.mxFrame; f++) {
      w.readFramePageSync(f, buf, PAGE);
      const fill = buf[0];
      if (!buf.equals(Buffer.alloc(PAGE, fill))) return `frame ${f} is torn (mixed bytes)`;
    }
    return null;
  } finally {
    w.closeSync();
  }
}

/** After recovery, the WAL takes a new commit where the recovered log ends (torn frames are overwritten). */
function appendAfterRecovery(file) {
  const w = WalFile.openSync(file);
  try {
    const r = w.recoverSync();
    const before = w.hasHeader ? r.commits : 0;
    if (!w.hasHeader) w.writeHeaderSync({ pageSize: PAGE, checkpointSeq: w.nextCheckpointSeq });
    w.appendSync([{ pages: [{ pgno: 1, data: Buffer.alloc(PAGE, 0xab) }], dbSize: 12 }], 'data');
    const again = w.recoverSync();
    if (again.commits !== before + 1) return `append after recovery: ${again.commits} commits, expected ${before + 1}`;
    return null;
  } catch (e) {
    return `append after recovery failed: ${e.code} ${e.message}`;
  } finally {
    w.closeSync();
  }
}

function powerLossCases({ cases, seed, dir }) {
  const rand = seededRandom(seed);
  const failures = [];
  const file = path.join(dir, 'damaged.wal');
  let histories = 0;
  let states = null;
  for (let i = 0; i < cases; i++) {
    if (states === null || i % 50 === 0) {
      states = buildHistory(dir, rand);
      histories++;
    }
    const k = rand(states.length);
    const final = states[Math.min(k + 1, states.length - 1)].bytes; // the writes of the next sync
    const sector = rand(2) === 0 ? 512 : 4096;
    const bytes = damagedCopy(rand, states[k].bytes, final, sector);
    fs.writeFileSync(file, bytes);
    const problem = check(file, states[k], states[Math.min(k + 1, states.length - 1)]) ?? appendAfterRecovery(file);
    if (problem) {
      const keep = path.join(dir, `power-loss-failure-${failures.length}.wal`);
      fs.writeFileSync(keep, bytes);
      failures.push({ case: i, syncPoint: k, sector, problem, file: keep });
      if (failures.length >= 20) break;
    }
  }
  return { cases, histories, failures };
}

module.exports = { powerLossCases };

if (require.main === module) {
  const os = require('node:os');
  const arg = (name, otherwise) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? Number(process.argv[i + 1]) : otherwise;
  };
  const cases = arg('cases', 10_000);
  const seed = arg('seed', Date.now() % 2 ** 31); // the summary prints it: --seed S runs those cases again
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'walnut-power-'));
  const t0 = Date.now();
  const r = powerLossCases({ cases, seed, dir });
  for (const f of r.failures) console.log(`case ${f.case} (sync point ${f.syncPoint}, ${f.sector}-byte sectors): ${f.problem}; input kept at ${f.file}`);
  console.log(`power-loss model: ${cases} cases over ${r.histories} histories, seed ${seed}, ${r.failures.length} failures, ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  if (r.failures.length === 0) fs.rmSync(dir, { recursive: true, force: true });
  process.exit(r.failures.length ? 1 : 0);
}
