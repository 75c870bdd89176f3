// bench/base-memory: what a base image costs in memory, on the primary and on a new replica or
// restore (issue: base images streamed, not held whole), against a nats-server started here on
// loopback (storage in a temporary directory).
//   primary   replicateTo() on a database of WALNUT_BENCH_ROWS rows of 4 KiB (default 250,000:
//             ~1 GiB, made with better-sqlite3 and kept in WALNUT_BENCH_DIR between runs):
//             the process's peak RSS (sampled every 50 ms) while the session's first base image
//             is published (start -> its 'base' event), and while a later one is (baseEveryMs
//             30 s; one small commit every 500 ms so that it is taken), and the time of each
//   replica   openReplica() of a new file in a fresh process: seconds until it resolved, maxRSS
//             (process.resourceUsage(), the whole process's peak)
//   restore   restoreFromNats() in a fresh process: seconds, maxRSS
//   rebase    the primary begins a new session (its first base image), then the replica is opened
//             again in a fresh process and re-bases onto it (one commit of the whole base): seconds
//             until its rebase, maxRSS; WALNUT_BENCH_REWRITE=1 rewrites every row first (every
//             page differs from the replica's: the re-base's worst case)
// WALNUT_BENCH_DIST=<dist/> measures another build (e.g. main's, for a before/after);
// WALNUT_BENCH_THREAD=0 publishes from the store's event loop (thread: false).
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const net = require('node:net');
const path = require('node:path');
const { spawn, spawnSync, execFileSync } = require('node:child_process');

/**
 * This process's own peak resident memory (VmHWM), in bytes. Not resourceUsage().maxRSS: Linux
 * keeps the peak of the memory a child was forked with across its exec, so a child's maxRSS was
 * at least the bench process's resident memory when it was started.
 */
function peakRss() {
  return Number(/VmHWM:\s*(\d+) kB/.exec(require('node:fs').readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;
}

const DIST = path.resolve(process.env.WALNUT_BENCH_DIST || path.join(__dirname, '..', 'dist'));
const ROWS = Number(process.env.WALNUT_BENCH_ROWS || 250_000);
const DIR = process.env.WALNUT_BENCH_DIR || path.join(os.tmpdir(), 'walnut-base-memory');
const MiB = 1 << 20;

function natsBinary() {
  for (const dir of [...(process.env.PATH || '').split(':'), '/usr/sbin', '/usr/local/sbin']) {
    const file = path.join(dir, 'nats-server');
    if (dir !== '' && fs.existsSync(file)) return file;
  }
  throw new Error('nats-server is not installed (scripts/install-nats.sh)');
}

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = s.address().port;
      s.close(() => resolve(port));
    });
  });
}

async function startServer(dir) {
  const port = await freePort();
  const child = spawn(natsBinary(), ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', dir], { stdio: 'ignore' });
  for (let i = 0; i < 400; i++) {
    const ok = await new Promise((r) => net.connect(port, '127.0.0.1').once('connect', function () { this.destroy(); r(true); }).once('error', () => r(false)));
    if (ok) return { url: `nats://127.0.0.1:${port}`, child };
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('nats-server did not start');
}

function makeDatabase(file) {
  if (fs.existsSync(file)) return;
  const Database = require('better-sqlite3');
  const db = new Database(file + '.tmp');
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)');
  const ins = db.prepare('INSERT INTO t (v) VALUES (?)');
  const blob = Buffer.alloc(4000);
  const many = db.transaction((n) => {
    for (let i = 0; i < n; i++) {
      blob.writeUInt32LE(i, 0);
      for (let j = 4; j < blob.length; j += 64) blob[j] = (i * 31 + j) & 0xff;
      ins.run(blob);
    }
  });
  for (let done = 0; done < ROWS; done += 10_000) many(Math.min(10_000, ROWS - done));
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  fs.renameSync(file + '.tmp', file);
}

const rss = () => process.memoryUsage().rss;

async function primary(url, file, stream) {
  const w = require(DIST);
  const store = await w.open(file);
  const before = rss();
  let peak = before;
  let laterFrom = 0; // when the later base began to be published (the worker's metrics, <= 50 ms late)
  let bases0 = 0;
  const sampler = setInterval(() => {
    peak = Math.max(peak, rss());
    const held = r?.metrics().baseHeldBytes;
    if (bases0 === 1 && laterFrom === 0 && held > 0) laterFrom = performance.now();
  }, 50);
  var r = store.replicateTo({ servers: url, stream, baseEveryMs: 30_000, thread: process.env.WALNUT_BENCH_THREAD !== '0' });
  r.on('error', (e) => console.error('replication error', e.message));
  const bases = [];
  r.on('base', () => (bases0 = bases.push(performance.now())));
  const t0 = performance.now();
  const until = async (n) => { while (bases.length < n) await new Promise((res) => setTimeout(res, 20)); };
  await until(1);
  const first = { ms: bases[0] - t0, peak };
  peak = rss();
  const atFirst = peak;
  // a later base: one small commit every 500 ms until it is stored
  let stop = false;
  const committing = (async () => {
    const page = Buffer.alloc(store.pageSize);
    for (let i = 0; !stop; i++) {
      const snap = await store.snapshot();
      const data = Buffer.from(await snap.read(snap.dbSize));
      const size = snap.dbSize;
      snap.release();
      data.copy(page);
      await store.commit([{ pgno: size, data: page }], { dbSize: size });
      await new Promise((res) => setTimeout(res, 500));
    }
  })();
  // the later base starts at a commit past baseEveryMs: its time counted from the first base's end + the wait
  await until(2);
  const later = { ms: bases[1] - bases[0], publishMs: laterFrom > 0 ? bases[1] - laterFrom : null, peak };
  stop = true;
  await committing;
  clearInterval(sampler);
  await r.stop();
  await store.close();
  console.log(JSON.stringify({ before, atFirst, first, later }));
}

/** A new session (its first base image), published and stopped: a replica of the session before re-bases onto it. */
async function newSession(url, file, stream) {
  if (process.env.WALNUT_BENCH_REWRITE === '1') {
    // every row rewritten (every page of the table differs): the re-base's worst case
    const Database = require('better-sqlite3');
    const db = new Database(file);
    db.exec("UPDATE t SET v = randomblob(4000)");
    db.pragma('wal_checkpoint(TRUNCATE)');
    db.close();
  }
  const w = require(DIST);
  const store = await w.open(file);
  const r = store.replicateTo({ servers: url, stream });
  let based = false;
  r.on('base', () => (based = true));
  await r.ready;
  while (!based) await new Promise((res) => setTimeout(res, 20));
  await r.stop();
  await store.close();
  console.log(JSON.stringify({ ok: true }));
}

/** An existing replica opened again after its primary began a new session: it re-bases (one commit of the whole base). */
async function rebase(url, file, stream) {
  const w = require(DIST);
  const t0 = performance.now();
  const rep = await w.openReplica(file, { servers: url, stream });
  while (rep.lag().rebases === 0) await new Promise((res) => setTimeout(res, 20));
  const ms = performance.now() - t0;
  await rep.close();
  console.log(JSON.stringify({ ms, maxRss: peakRss() }));
}

async function replica(url, file, stream) {
  const w = require(DIST);
  const t0 = performance.now();
  const rep = await w.openReplica(file, { servers: url, stream });
  const ms = performance.now() - t0;
  await rep.close();
  console.log(JSON.stringify({ ms, maxRss: peakRss() }));
}

async function restoreNats(url, file, stream) {
  const w = require(DIST);
  const t0 = performance.now();
  const r = await w.restoreFromNats(file, { servers: url, stream });
  const ms = performance.now() - t0;
  console.log(JSON.stringify({ ms, maxRss: peakRss(), pages: r.dbPages }));
}

function child(role, url, file, stream) {
  const out = execFileSync(process.execPath, [__filename, role, url, file, stream], { encoding: 'utf8', env: process.env, stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 20 });
  return JSON.parse(out.trim().split('\n').pop());
}

async function main() {
  const [role, url, file, stream] = process.argv.slice(2);
  if (role === 'primary') return primary(url, file, stream);
  if (role === 'replica') return replica(url, file, stream);
  if (role === 'restore') return restoreNats(url, file, stream);
  if (role === 'session') return newSession(url, file, stream);
  if (role === 'rebase') return rebase(url, file, stream);
  fs.mkdirSync(DIR, { recursive: true });
  const db = path.join(DIR, `primary-${ROWS}.db`);
  makeDatabase(db);
  const work = fs.mkdtempSync(path.join(DIR, 'run-'));
  const natsDir = path.join(work, 'nats');
  const server = await startServer(natsDir);
  try {
    const copy = path.join(work, 'primary.db');
    fs.copyFileSync(db, copy);
    const size = fs.statSync(copy).size;
    console.log(`build ${DIST}; database ${(size / MiB).toFixed(0)} MiB (${ROWS} rows of 4 KiB)`);
    const p = child('primary', server.url, copy, 'bm');
    console.log(`primary: RSS ${(p.before / MiB).toFixed(0)} MiB before; first base ${(p.first.ms / 1000).toFixed(1)} s, peak RSS ${(p.first.peak / MiB).toFixed(0)} MiB; later base ${(p.later.ms / 1000).toFixed(1)} s after the first (30 s due; published in ${p.later.publishMs === null ? '?' : (p.later.publishMs / 1000).toFixed(1)} s), peak RSS ${(p.later.peak / MiB).toFixed(0)} MiB (${(p.atFirst / MiB).toFixed(0)} MiB as it began)`);
    const rep = child('replica', server.url, path.join(work, 'replica.db'), 'bm');
    console.log(`new replica: opened in ${(rep.ms / 1000).toFixed(1)} s, maxRSS ${(rep.maxRss / MiB).toFixed(0)} MiB`);
    const res = child('restore', server.url, path.join(work, 'restored.db'), 'bm');
    console.log(`restore --nats: ${(res.ms / 1000).toFixed(1)} s, maxRSS ${(res.maxRss / MiB).toFixed(0)} MiB (${res.pages} pages)`);
    child('session', server.url, copy, 'bm');
    const reb = child('rebase', server.url, path.join(work, 'replica.db'), 'bm');
    console.log(`live replica's re-base onto a new session: ${(reb.ms / 1000).toFixed(1)} s, maxRSS ${(reb.maxRss / MiB).toFixed(0)} MiB`);
  } finally {
    server.child.kill('SIGTERM');
    await new Promise((r) => server.child.once('exit', r));
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
