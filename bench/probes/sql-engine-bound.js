// bench/probes/sql-engine-bound: what the SQL engine itself costs per one-row INSERT
// transaction (autocommit, prepared statement), without walnut: better-sqlite3 (native SQLite)
// in memory and on /dev/shm files without sync, against wa-sqlite's sync build driven the way
// walnut/sql drives it (its StatementRunner: bind, step, reset) on SQLite's in-memory database
// (no JS VFS), on wa-sqlite's MemoryVFS, and on PageMapVFS below: a JS VFS shaped like walnut's
// (batch-atomic device, journal in memory, page writes copied into reused buffers and applied at
// FCNTL_COMMIT_PHASETWO, callbacks dispatched straight from the wasm imports) over a Map of pages.
// The last one is the bound of wasm SQLite plus its VFS callbacks for walnut/sql's transaction;
// walnut/sql's CPU per transaction less raw walnut's commit less it is walnut/sql's own glue.
// CPU µs per transaction (process.cpuUsage), ROUNDS rounds of N, cases interleaved.
//   node bench/probes/sql-engine-bound.js   (N, ROUNDS; ONLY=<part of a case name>; DIST=<dist/>)
'use strict';
const path = require('node:path');
const D = process.env.DIST || path.join(__dirname, '../../dist');
const Database = require('better-sqlite3');
const { loadEngine } = require(path.join(D, 'sql/engine.js'));
const { StatementRunner } = require(path.join(D, 'sql/statement-runner.js'));
const N = Number(process.env.N || 20000), ROUNDS = Number(process.env.ROUNDS || 7);
const ROW = 'x'.repeat(100);
const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
function cpuPer(fn) { const c0 = process.cpuUsage(); fn(); const c = process.cpuUsage(c0); return (c.user + c.system) / N; }
(async () => {
  const cases = {};
  for (const [label, file, pragmas] of [['better-sqlite3 :memory:', ':memory:', []], ['better-sqlite3 /dev/shm file, journal MEMORY, sync OFF', `/dev/shm/walnut-engine-bound-${process.pid}.db`, ['journal_mode = MEMORY', 'synchronous = OFF']], ['better-sqlite3 /dev/shm file, WAL, sync OFF', `/dev/shm/walnut-engine-bound-wal-${process.pid}.db`, ['journal_mode = WAL', 'synchronous = OFF']]]) {
    const db = new Database(file);
    for (const p of pragmas) db.pragma(p);
    db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)');
    const ins = db.prepare('INSERT INTO t(v) VALUES (?)');
    cases[label] = () => { for (let i = 0; i < N; i++) ins.run(ROW); };
  }
  for (const vfs of [null, 'memvfs', 'pagemap']) {
    const e = await loadEngine();
    let name;
    if (vfs === 'pagemap') {
      registerPageMapVfs(e);
      name = 'walnut-like.db';
    } else if (vfs) {
      const url = require('node:url').pathToFileURL(path.join(path.dirname(require.resolve('@journeyapps/wa-sqlite/package.json')), 'src/examples/MemoryVFS.js')).href;
      const { MemoryVFS } = await import(url);
      const v = await MemoryVFS.create('memvfs', e.module);
      e.sqlite3.vfs_register(v, false);
      name = 'walnut-like.db';
    } else name = ':memory:';
    const db = await e.sqlite3.open_v2(name, e.C.SQLITE_OPEN_READWRITE | e.C.SQLITE_OPEN_CREATE, vfs ?? undefined);
    const r = new StatementRunner(e, db, false);
    if (vfs) await r.exec('PRAGMA journal_mode=MEMORY');
    await r.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)');
    const stmt = await r.prepare('INSERT INTO t(v) VALUES (?)');
    cases[`wa-sqlite (walnut's runner) ${vfs === 'pagemap' ? "PageMapVFS (walnut's VFS shape, no store)" : vfs ? 'MemoryVFS (JS VFS), journal MEMORY' : ':memory: (no JS VFS)'}`] = () => { for (let i = 0; i < N; i++) { r.execute(stmt, [ROW], 'run'); r.runResult(); } };
  }
  if (process.env.ONLY) for (const k of Object.keys(cases)) if (!k.includes(process.env.ONLY)) delete cases[k];
  const per = {};
  for (const f of Object.values(cases)) f(); // warm-up
  for (let k = 0; k < ROUNDS; k++) for (const [n, f] of Object.entries(cases)) (per[n] ??= []).push(cpuPer(f));
  for (const [n, xs] of Object.entries(per)) console.log(`${n.padEnd(62)} CPU µs/tx min ${Math.min(...xs).toFixed(2)} median ${median(xs).toFixed(2)}`);
  for (const f of require('node:fs').readdirSync('/dev/shm')) if (f.startsWith('walnut-engine-bound-') && f.includes(String(process.pid))) require('node:fs').rmSync(`/dev/shm/${f}`, { force: true });
  console.log('load', require('os').loadavg().map((x) => x.toFixed(2)).join(' '));
  process.exit(0);
})();

/**
 * A JS VFS shaped like walnut's (batch-atomic device, journal in memory, writes buffered as page
 * copies and applied at FCNTL_COMMIT_PHASETWO, callbacks dispatched directly from the wasm
 * imports), over a Map of pages: SQLite's callback traffic without a store behind it.
 */
function registerPageMapVfs(e) {
  const { C, module } = e;
  const { DIRECT } = require(path.join(D, 'sql/engine.js'));
  const PAGE = 4096;
  const IOCAP = C.SQLITE_IOCAP_BATCH_ATOMIC | C.SQLITE_IOCAP_UNDELETABLE_WHEN_OPEN | C.SQLITE_IOCAP_POWERSAFE_OVERWRITE | C.SQLITE_IOCAP_SAFE_APPEND;
  const pages = new Map(); let size = 0; const writes = new Map(); let committing = false; let main = -1;
  const mem = new Map();
  const spare = []; // page buffers reused (walnut's VFS reuses its own)
  class PageMapVfs extends e.FacadeVFS {
    xRead(f, p, n, lo, hi) { return this.jRead(f, module.HEAPU8.subarray(p, p + n), hi * 2 ** 32 + (lo >>> 0)); }
    xWrite(f, p, n, lo, hi) { return this.jWrite(f, module.HEAPU8.subarray(p, p + n), hi * 2 ** 32 + (lo >>> 0)); }
    xFileControl(f, op) { return this.jFileControl(f, op); }
    xFileSize(f, p) { return this.jFileSize(f, new DataView(module.HEAPU8.buffer, p, 8)); }
    xLock() { return 0; }
    xUnlock() { return 0; }
    xSync() { return 0; }
    xDeviceCharacteristics(f) { return f === main ? IOCAP : C.SQLITE_IOCAP_UNDELETABLE_WHEN_OPEN; }
    xAccess(_v, _z, _f, p) { new DataView(module.HEAPU8.buffer, p, 4).setInt32(0, 0, true); return 0; }
    xCheckReservedLock(_f, p) { new DataView(module.HEAPU8.buffer, p, 4).setInt32(0, 0, true); return 0; }
    jOpen(name, f, flags, out) { if (flags & C.SQLITE_OPEN_MAIN_DB) main = f; else mem.set(f, { size: 0, data: new Uint8Array(0) }); out.setInt32(0, flags, true); return 0; }
    jClose(f) { mem.delete(f); return 0; }
    jRead(f, buf, off) {
      if (f !== main) { buf.fill(0); return C.SQLITE_IOERR_SHORT_READ; }
      const pgno = Math.floor(off / PAGE) + 1, within = off % PAGE;
      const page = writes.get(pgno) ?? pages.get(pgno);
      if (page === undefined) { buf.fill(0); return C.SQLITE_IOERR_SHORT_READ; }
      buf.set(page.subarray(within, within + buf.length)); return 0;
    }
    jWrite(f, buf, off) {
      if (f !== main) return 0;
      const pgno = off / PAGE + 1; const copy = spare.pop() ?? new Uint8Array(PAGE); copy.set(buf); const was = writes.get(pgno); if (was) spare.push(was); writes.set(pgno, copy); return 0;
    }
    jTruncate() { return 0; }
    jSync() { return 0; }
    jFileSize(f, out) { out.setBigInt64(0, BigInt(f === main ? Math.max(size, ...(writes.size ? writes.keys() : [0])) * PAGE : 0), true); return 0; }
    jFileControl(f, op) {
      if (f !== main) return C.SQLITE_NOTFOUND;
      if (op === C.SQLITE_FCNTL_SYNC) { committing = writes.size > 0; return C.SQLITE_NOTFOUND; }
      if (op === C.SQLITE_FCNTL_COMMIT_PHASETWO) { if (committing) { for (const [p, d] of writes) { const was = pages.get(p); if (was) spare.push(was); pages.set(p, d); if (p > size) size = p; } writes.clear(); committing = false; } return C.SQLITE_NOTFOUND; }
      if (op === C.SQLITE_FCNTL_BEGIN_ATOMIC_WRITE || op === C.SQLITE_FCNTL_COMMIT_ATOMIC_WRITE) return 0;
      if (op === C.SQLITE_FCNTL_ROLLBACK_ATOMIC_WRITE) { writes.clear(); return 0; }
      return C.SQLITE_NOTFOUND;
    }
    jDeviceCharacteristics(f) { return f === main ? IOCAP : 0; }
    jSectorSize() { return 4096; }
  }
  const vfs = new PageMapVfs('pagemap', module);
  const methods = new Map();
  const dispatch = (namePtr, a, b, c, d, e2, f) => {
    let m = methods.get(namePtr);
    if (m === undefined) methods.set(namePtr, (m = vfs[module.UTF8ToString(namePtr)]));
    return m.call(vfs, a, b, c, d, e2, f);
  };
  Object.defineProperty(dispatch, DIRECT, { value: true });
  const setCallback = module.setCallback;
  module.setCallback = (key, t) => setCallback(key, t === vfs ? dispatch : t);
  try { e.sqlite3.vfs_register(vfs, false); } finally { module.setCallback = setCallback; }
}
