// bench/export: base export and restore of a 256 MiB database vs better-sqlite3's online
// backup() and a plain file copy, same run; and the commit latency p99 (64 committers, full)
// with and without a follow-mode export running.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const Database = require('better-sqlite3');
const { open, restore, WalnutFile } = require('../dist/index.js');
const { commitLoad } = require('./harness');

const DB_MB = Number(process.env.WALNUT_BENCH_DB_MB || 256);

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

async function run() {
  const dir = fs.mkdtempSync(path.join(process.env.WALNUT_BENCH_DIR || os.tmpdir(), 'walnut-bench-export-'));
  const src = path.join(dir, 'src.db');
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
  const bytes = fs.statSync(src).size;

  // walnut: base export to a file, then restore from it
  const store = await open(src, { keepWal: true });
  const sink = await WalnutFile.open(path.join(dir, 'export.ark'), { create: true, truncate: true });
  let t0 = performance.now();
  await store.exportTo(sink).done;
  await sink.fsync();
  const exportMs = performance.now() - t0;
  await sink.close();
  await store.close();
  t0 = performance.now();
  await restore(fs.createReadStream(path.join(dir, 'export.ark'), { highWaterMark: 1 << 20 }), path.join(dir, 'restored.db'));
  const restoreMs = performance.now() - t0;

  // better-sqlite3 online backup, and a plain copy (with fsync, as the others sync)
  const s = new Database(src, { readonly: true });
  t0 = performance.now();
  await s.backup(path.join(dir, 'backup.db'));
  const backupMs = performance.now() - t0;
  s.close();
  t0 = performance.now();
  fs.copyFileSync(src, path.join(dir, 'copy.db'));
  const fd = fs.openSync(path.join(dir, 'copy.db'), 'r+');
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  const copyMs = performance.now() - t0;

  const without = await commitRun(path.join(dir, 'c1.db'), false);
  const withFollow = await commitRun(path.join(dir, 'c2.db'), true);
  fs.rmSync(dir, { recursive: true, force: true });
  const gbps = (ms) => (bytes / (ms / 1000) / 1e9).toFixed(2);
  return {
    rows: [
      { case: `export base image (${(bytes / 1048576).toFixed(0)} MiB)`, system: 'walnut exportTo', ms: exportMs.toFixed(0), 'GB/s': gbps(exportMs), ratio: `${(backupMs / exportMs).toFixed(2)}x backup()` },
      { case: 'online backup', system: 'better-sqlite3 backup()', ms: backupMs.toFixed(0), 'GB/s': gbps(backupMs), ratio: '' },
      { case: 'restore', system: 'walnut restore', ms: restoreMs.toFixed(0), 'GB/s': gbps(restoreMs), ratio: `${(copyMs / restoreMs).toFixed(2)}x copy speed` },
      { case: 'plain file copy + fsync', system: 'fs.copyFileSync', ms: copyMs.toFixed(0), 'GB/s': gbps(copyMs), ratio: '' },
      { case: 'commit p99 µs, 64 committers, no export', system: 'walnut', ms: Math.round(without.p99), 'GB/s': '', ratio: `${Math.round(without.rate)} commits/s` },
      { case: 'commit p99 µs, 64 committers, follow export', system: 'walnut', ms: Math.round(withFollow.p99), 'GB/s': '', ratio: `${Math.round(withFollow.rate)} commits/s, p99 ${((100 * withFollow.p99) / without.p99 - 100).toFixed(0)}%` },
    ],
    columns: ['case', 'system', 'ms', 'GB/s', 'ratio'],
  };
}

module.exports = { run };
