// bench/export: base export and restore of a 256 MiB database against better-sqlite3's online
// backup() and the physical bounds, same run, interleaved rounds; and the commit latency p99
// (64 committers, full) with and without a follow-mode export running.
//
// Each round runs every case once (the order alternates between rounds); a case's ratio is
// taken within its round, and the table shows the median of the per-round ratios with their
// spread. The bounds: a plain sequential write + fsync of exactly the stream's bytes (8 MiB
// writes, what any exporter must at least do), a plain read of the database file (the read
// side), a plain copy + fsync of the database (copyFileSync: copied inside the kernel), and the
// raw loops doing each case's I/O (8 MiB reads of the source, writes of the output, one fsync:
// database -> stream bytes for the export, stream -> database bytes for the restore). All input
// files are in the page cache, as they are right after they were written. "CPU ms" is the
// process's user + system time during the case (every thread), steadier than wall time on a
// shared machine. WALNUT_BENCH_COMMIT=0 leaves out the commit-latency runs.
// WALNUT_BENCH_BASELINE=<other dist/> also runs the export and the restore of that build in the
// same rounds (before/after).
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const Database = require('better-sqlite3');
const { open, restore, WalnutFile } = require('../dist/index.js');
const { commitLoad } = require('./harness');

const DB_MB = Number(process.env.WALNUT_BENCH_DB_MB || 256);
const ROUNDS = Number(process.env.WALNUT_BENCH_ROUNDS || 5);
const CHUNK = 8 << 20;

async function commitRun(file, withExport) {
  const store = await open(file);
  let handle = null;
  let sink = null;
  if (withExport) {
    sink = await WalnutFile.open(`${file}.ark`, { create: true, truncate: true });
    handle = store.exportTo(sink, { follow: true, pollMs: 5 });
  }
  const r = await commitLoad(store, 64, 3, 9);
  if (handle) await handle.stop();
  if (sink) await sink.close();
  await store.close();
  return { rate: r.perSecond, p50: r.p50, p99: r.p99 };
}

function buildDatabase(src) {
  const db = new Database(src);
  db.pragma('page_size = 4096');
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = OFF');
  db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)');
  const ins = db.prepare('INSERT INTO t(v) VALUES (?)');
  const rows = Math.floor((DB_MB << 20) / 4200);
  db.transaction(() => {
    for (let i = 0; i < rows; i++) ins.run(Buffer.alloc(4000, i & 0xff));
  })();
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
}

function fsyncFile(file) {
  const fd = fs.openSync(file, 'r+');
  fs.fsyncSync(fd);
  fs.closeSync(fd);
}

function rm(...files) {
  for (const f of files) fs.rmSync(f, { force: true });
}

/** CPU time (ms, every thread of this process: user + system) of the last timed() call. */
let lastCpuMs = 0;

async function timed(fn) {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await fn();
  const c = process.cpuUsage(c0);
  lastCpuMs = (c.user + c.system) / 1000;
  return performance.now() - t0;
}

function plainWrite(file, bytes) {
  const buf = Buffer.alloc(CHUNK, 0x5a);
  const fd = fs.openSync(file, 'w');
  for (let at = 0; at < bytes; at += CHUNK) fs.writeSync(fd, buf, 0, Math.min(CHUNK, bytes - at), at);
  fs.fsyncSync(fd);
  fs.closeSync(fd);
}

/** The raw loop doing an export's or a restore's I/O: reads `from` whole, writes `bytes` to `to` (8 MiB each), fsync. */
function readWrite(from, to, bytes) {
  const buf = Buffer.allocUnsafe(CHUNK);
  const src = fs.openSync(from, 'r');
  const fd = fs.openSync(to, 'w');
  for (let at = 0; ; at += CHUNK) {
    const n = fs.readSync(src, buf, 0, CHUNK, at);
    if (at < bytes) fs.writeSync(fd, buf, 0, Math.min(CHUNK, bytes - at), at);
    if (n === 0 && at + CHUNK >= bytes) break;
  }
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  fs.closeSync(src);
}

function plainRead(file) {
  const buf = Buffer.allocUnsafe(CHUNK);
  const fd = fs.openSync(file, 'r');
  for (let at = 0; fs.readSync(fd, buf, 0, CHUNK, at) > 0; at += CHUNK);
  fs.closeSync(fd);
}

function median(xs) {
  const s = xs.slice().sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function run() {
  const dir = fs.mkdtempSync(path.join(process.env.WALNUT_BENCH_DIR || os.tmpdir(), 'walnut-bench-export-'));
  const src = path.join(dir, 'src.db');
  buildDatabase(src);
  const dbBytes = fs.statSync(src).size;
  const ark = path.join(dir, 'export.ark');
  const files = { restored: path.join(dir, 'restored.db'), backup: path.join(dir, 'backup.db'), plain: path.join(dir, 'plain.bin'), copy: path.join(dir, 'copy.db') };
  const store = await open(src, { keepWal: true });
  let arkBytes = 0;
  const exportWith = (build, connection, file) => async () => {
    rm(file);
    const ms = await timed(async () => {
      const sink = await build.WalnutFile.open(file, { create: true, truncate: true });
      await connection.exportTo(sink).done;
      await sink.fsync();
      await sink.close();
    });
    arkBytes = fs.statSync(file).size;
    return ms;
  };
  // a read stream of the file, as the CLI opens it (1 MiB chunks); restore() reads such an untouched
  // stream's file itself (restore.ts), the CLI (whose progress bar listens to the chunks) does not
  const restoreWith = (build, target, highWaterMark = 1 << 20) => async () => {
    rm(target);
    return timed(() => build.restore(fs.createReadStream(ark, { highWaterMark }), target));
  };
  const cases = {
    export: exportWith({ WalnutFile }, store, ark),
    backup: async () => {
      rm(files.backup);
      const s = new Database(src, { readonly: true });
      try {
        return await timed(() => s.backup(files.backup));
      } finally {
        s.close();
      }
    },
    write: async () => {
      rm(files.plain);
      return timed(() => plainWrite(files.plain, arkBytes || dbBytes));
    },
    read: async () => timed(() => plainRead(src)),
    exportLoop: async () => {
      rm(files.plain);
      return timed(() => readWrite(src, files.plain, arkBytes || dbBytes));
    },
    restore: restoreWith({ restore }, files.restored),
    restoreLoop: async () => {
      rm(files.copy);
      return timed(() => readWrite(ark, files.copy, dbBytes));
    },
    copy: async () => {
      rm(files.copy);
      return timed(() => {
        fs.copyFileSync(src, files.copy);
        fsyncFile(files.copy);
      });
    },
  };
  let baselineStore = null;
  if (process.env.WALNUT_BENCH_BASELINE) {
    const before = require(path.resolve(process.env.WALNUT_BENCH_BASELINE, 'index.js'));
    baselineStore = await before.open(src, { keepWal: true });
    cases.exportBefore = exportWith(before, baselineStore, path.join(dir, 'before.ark'));
    cases.restoreBefore = restoreWith(before, path.join(dir, 'restored-before.db'));
  }
  const load = [os.loadavg()[0]];
  await cases.export(); // the stream the restores read, and its size for the write bound
  const ms = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
  const cpu = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
  for (let r = 0; r < ROUNDS; r++) {
    const names = Object.keys(cases);
    for (const name of r % 2 === 0 ? names : names.reverse()) {
      ms[name].push(await cases[name]());
      cpu[name].push(lastCpuMs);
    }
    load.push(os.loadavg()[0]);
  }
  await store.close();
  await baselineStore?.close();

  const commits = process.env.WALNUT_BENCH_COMMIT !== '0'; // 0: the export and restore cases only
  const without = commits ? await commitRun(path.join(dir, 'c1.db'), false) : null;
  const withFollow = commits ? await commitRun(path.join(dir, 'c2.db'), true) : null;
  fs.rmSync(dir, { recursive: true, force: true });

  const ratio = (num, den) => {
    const per = ms[num].map((_, i) => ms[den][i] / ms[num][i]);
    return `${median(per).toFixed(2)}x (${Math.min(...per).toFixed(2)}–${Math.max(...per).toFixed(2)})`;
  };
  const row = (name, system, bytes, vs) => {
    const m = median(ms[name]);
    return { case: name, system, 'ms (median)': m.toFixed(0), 'CPU ms': median(cpu[name]).toFixed(0), 'GB/s': (bytes / (m / 1000) / 1e9).toFixed(2), 'per-round ratio, median (spread)': vs };
  };
  const mib = (b) => `${(b / 1048576).toFixed(0)} MiB`;
  return {
    rows: [
      row('export', `walnut exportTo file + fsync (${mib(arkBytes)} stream)`, dbBytes, `${ratio('export', 'write')} of the write bound; ${ratio('export', 'exportLoop')} of the read + write loop; ${ratio('export', 'backup')} backup()`),
      row('backup', 'better-sqlite3 backup()', dbBytes, ''),
      row('write', `plain sequential write + fsync of ${mib(arkBytes)} (bound)`, arkBytes, ''),
      row('exportLoop', `raw loop: read the database + write ${mib(arkBytes)} + fsync (bound)`, arkBytes, ''),
      row('read', `plain read of the ${mib(dbBytes)} database (read side)`, dbBytes, `export = ${ratio('export', 'read')} of a plain read`),
      row('restore', 'walnut restore (stream file -> database, fsync)', dbBytes, `${ratio('restore', 'copy')} of copy + fsync; ${ratio('restore', 'restoreLoop')} of the read + write loop`),
      row('restoreLoop', 'raw loop: read the stream + write the database + fsync (bound)', dbBytes, ''),
      row('copy', 'fs.copyFileSync + fsync (bound)', dbBytes, ''),
      ...(baselineStore === null ? [] : [
        row('exportBefore', 'baseline build: exportTo file + fsync', dbBytes, `${ratio('exportBefore', 'write')} of the write bound; ${ratio('exportBefore', 'backup')} backup(); this build ${ratio('export', 'exportBefore')} faster`),
        row('restoreBefore', 'baseline build: restore', dbBytes, `${ratio('restoreBefore', 'copy')} of copy + fsync; this build ${ratio('restore', 'restoreBefore')} faster`),
      ]),
      ...(without === null ? [] : [
      { case: 'commit p99 µs, 64 committers, no export', system: 'walnut', 'ms (median)': Math.round(without.p99), 'GB/s': '', 'per-round ratio, median (spread)': `${Math.round(without.rate)} commits/s` },
      { case: 'commit p99 µs, 64 committers, follow export', system: 'walnut', 'ms (median)': Math.round(withFollow.p99), 'GB/s': '', 'per-round ratio, median (spread)': `${Math.round(withFollow.rate)} commits/s, p99 ${((100 * withFollow.p99) / without.p99 - 100).toFixed(0)}%` },
      ]),
    ],
    columns: ['case', 'system', 'ms (median)', 'CPU ms', 'GB/s', 'per-round ratio, median (spread)'],
    notes: [`${ROUNDS} interleaved rounds; load average (1 min) over the rounds: ${load.map((l) => l.toFixed(1)).join(', ')} on ${os.cpus().length} CPUs`],
  };
}

module.exports = { run };
