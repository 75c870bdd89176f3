// The soak: everything at once on one database, for minutes (SOAK_SECONDS, default 180), with
// real parts only. At the same time:
//  - raw-committer.js: 64 concurrent walnut transactions on raw slot pages (conflicts), a process
//    SIGKILLed and started again now and then;
//  - sql-worker.js: walnut/sql read-modify-write counters (16 callers) and readers checking every
//    read, store checkpoints, replication to a real nats-server (replicateTo, worker thread);
//  - py-writer.py: python3's sqlite3 incrementing the same counters and checkpointing
//    (PASSIVE/RESTART/TRUNCATE), SIGKILLed and started again now and then;
//  - the sqlite3 command inserting rows and checkpointing (PASSIVE/RESTART/TRUNCATE);
//  - here: a follow-mode export (createExportStream follow) to a file, a replica applying the
//    NATS stream (openReplica) and read by better-sqlite3 while it applies, `walnut verify` runs,
//    and a snapshot held now and then until the WAL passes 16,000 frames.
// At the end: every acknowledged commit and transaction present, counters equal to their
// increments' rows, integrity_check ok on the primary, the restored export and the replica,
// and both equal to the primary; no raw transaction refused ChainBroken (a transaction's
// failure breaks no commit chain, and nothing else commits through that store), and no minute
// without a raw commit while the other writers commit (rawStarved). Prints the numbers and `soak: ok` (exit 0) or the failures
// (exit 1). Run: `npm run test:soak` (SOAK_SECONDS=60 for a short one; SOAK_DIR to keep files).
'use strict';
const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const Database = require('better-sqlite3');
const { open, createExportStream, restore, openReplica } = require('../../dist/index.js');

const SECONDS = Number(process.env.SOAK_SECONDS ?? 180);
const KILL_EVERY_MS = Number(process.env.SOAK_KILL_EVERY_MS ?? 12_000);
const PIN_EVERY_MS = Number(process.env.SOAK_PIN_EVERY_MS ?? 45_000);
const PIN_FRAMES = 16_500;
/** The parts to run (SOAK_PARTS, comma-separated; default all): to tell which part causes what. */
const PARTS = new Set((process.env.SOAK_PARTS ?? 'raw,py,cli,export,pin,kill,verify').split(','));
/**
 * SOAK_FOLLOWERS: 'two' (default) the follow export is createExportStream's own connection and
 * the replication runs on the walnut/sql store (two followers on two connections: the WAL restarts
 * only around SQLite's RESTART/TRUNCATE checkpoints, each follower letting them pass once it has read
 * every frame, README); 'one': both on this process's store (exportTo follow + replicateTo), so the
 * WAL can restart under the rest of the load.
 */
const FOLLOWERS = process.env.SOAK_FOLLOWERS ?? 'two';
const RAW_SLOTS = 16;
const MAGIC = Buffer.from('SOAKSLOT');
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
const NATS = ['/usr/sbin/nats-server', '/usr/bin/nats-server', '/usr/local/bin/nats-server'].find((f) => fs.existsSync(f));
const dir = process.env.SOAK_DIR ?? fs.mkdtempSync(path.join(os.tmpdir(), 'walnut-soak-'));
fs.mkdirSync(dir, { recursive: true });
const dbPath = path.join(dir, 'soak.db');
const failures = [];
const numbers = { seconds: SECONDS, rawCommits: 0, sqlTransactions: 0, pyTransactions: 0, cliInserts: 0, kills: { raw: 0, py: 0 }, restarts: 0, checkpoints: { py: 0, pyBusy: 0, cli: 0, cliBusy: 0, sqlStore: 0 }, walPeakFrames: 0, walGenerationsSeen: 0, pins: 0, pinsPast16k: 0, verifyRuns: 0, replicaReads: 0 };
const children = new Set();
const t0 = Date.now();
const log = (...a) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1)}s]`, ...a);
const fail = (m) => {
  if (failures.length < 200) failures.push(m);
  log('FAIL', m);
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Spawns a child, calls onLine for each line of its stdout; `exited` resolves with its code/signal. */
function child(cmd, args, onLine, name) {
  const c = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  children.add(c);
  let buf = '';
  let err = '';
  c.stdout.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      onLine(line);
    }
  });
  c.stderr.on('data', (d) => {
    err = (err + d).slice(-8000);
    if (name === 'sql') process.stderr.write(d);
  });
  c.stdin.on('error', () => undefined);
  c.exited = new Promise((res) => c.on('close', (code, signal) => {
    children.delete(c);
    res({ code, signal, err });
  }));
  c.name = name;
  c.stderrTail = () => err;
  return c;
}

function untilLine(c, pred, ms, what) {
  return new Promise((res, rej) => {
    const t = setTimeout(() => rej(new Error(`${what}: no line within ${ms} ms`)), ms);
    const on = (d) => {
      if (String(d).split('\n').some(pred)) {
        clearTimeout(t);
        c.stdout.off('data', on);
        res();
      }
    };
    c.stdout.on('data', on);
    c.exited.then((x) => rej(new Error(`${what} exited (${x.code} ${x.signal}): ${x.err}`)));
  });
}

// ---------------------------------------------------------------- setup
function setup() {
  const db = new Database(dbPath);
  db.pragma('journal_mode = WAL');
  db.exec(`CREATE TABLE c(id INTEGER PRIMARY KEY, n INTEGER NOT NULL);
    CREATE TABLE inc(src TEXT NOT NULL, k INTEGER NOT NULL, cid INTEGER NOT NULL, pad BLOB, PRIMARY KEY(src, k));
    CREATE TABLE cli(k INTEGER PRIMARY KEY, v BLOB);
    CREATE TABLE raw(id INTEGER PRIMARY KEY, b BLOB);`);
  const ins = db.prepare('INSERT INTO c VALUES (?, 0)');
  for (let i = 1; i <= 8; i++) ins.run(i);
  const raw = db.prepare('INSERT INTO raw VALUES (?, ?)');
  for (let s = 0; s < RAW_SLOTS; s++) {
    const b = Buffer.alloc(3000, 0x2e);
    MAGIC.copy(b, 0);
    b.writeUInt32LE(s, 8);
    b.fill(0, 12, 12 + 4 * 64);
    raw.run(s, b);
  }
  db.close(); // the last connection: checkpointed, -wal removed
  const file = fs.readFileSync(dbPath);
  const pageSize = file.readUInt16BE(16);
  const pages = new Array(RAW_SLOTS);
  for (let p = 0; p * pageSize < file.length; p++) {
    const page = file.subarray(p * pageSize, (p + 1) * pageSize);
    const at = page.indexOf(MAGIC);
    if (at >= 0) pages[page.readUInt32LE(at + 8)] = p + 1;
  }
  if (pages.some((p) => p === undefined) || new Set(pages).size !== RAW_SLOTS) throw new Error(`raw slots not found one per page: ${pages}`);
  return pages;
}

/** The WAL header's salt-1 now (null: no header), to count WAL generations. */
function walSalt() {
  try {
    const fd = fs.openSync(`${dbPath}-wal`, 'r');
    try {
      const b = Buffer.alloc(4);
      return fs.readSync(fd, b, 0, 4, 16) === 4 ? b.readUInt32BE(0) : null;
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return null;
  }
}

/** mxFrame of the -shm header (0 when there is none yet). */
function walFrames() {
  try {
    const fd = fs.openSync(`${dbPath}-shm`, 'r');
    try {
      const b = Buffer.alloc(4);
      return fs.readSync(fd, b, 0, 4, 16) === 4 ? b.readUInt32LE(0) : 0;
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return 0;
  }
}

// ---------------------------------------------------------------- nats
async function startNats() {
  for (let attempt = 0; attempt < 10; attempt++) {
    const port = 20000 + crypto.randomInt(40000);
    const sd = path.join(dir, 'nats');
    const c = spawn(NATS, ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', sd], { stdio: ['ignore', 'ignore', 'pipe'] });
    children.add(c);
    let err = '';
    const ok = await new Promise((res) => {
      c.stderr.on('data', (d) => {
        err = (err + d).slice(-4000);
        if (err.includes('Server is ready')) res(true);
      });
      c.on('exit', () => res(false));
      setTimeout(() => res(false), 30_000);
    });
    c.stderr.resume();
    if (ok) return { url: `nats://127.0.0.1:${port}`, proc: c };
    c.kill('SIGKILL');
    children.delete(c);
  }
  throw new Error('nats-server did not start');
}

// ---------------------------------------------------------------- raw committers
const rawLast = new Map(); // `${slot},${w}` -> { last, killedSince }
let rawProc = null;
/**
 * Starvation: this long without a raw commit while the other writers commit fails the soak. The
 * longest waits a raw transaction may meet are a busy timeout (5 s: its store's, python3's and
 * the sqlite3 CLI's, each a writer or checkpointer holding WRITE) and a restart after a SIGKILL
 * (seconds); a minute is many of them in a row.
 */
const RAW_STARVED_MS = 60_000;
/** When the raw committers last committed (or started), and the other writers' commits then. */
const rawProgress = { at: 0, others: 0 };
const othersCommitted = () => numbers.sqlTransactions + numbers.pyTransactions + numbers.cliInserts;
function rawStarved() {
  if (rawProc === null || Date.now() - rawProgress.at < RAW_STARVED_MS || othersCommitted() === rawProgress.others) return;
  fail(`raw committers starved: no commit in ${Math.round((Date.now() - rawProgress.at) / 1000)} s while the other writers committed ${othersCommitted() - rawProgress.others} (busy/conflict answers retried: ${JSON.stringify(numbers.rawStats ?? 'no stats yet')})`);
  rawProgress.at = Date.now(); // once a minute at most
  rawProgress.others = othersCommitted();
}
function startRaw(pages) {
  rawProc = child(process.execPath, [path.join(__dirname, 'raw-committer.js'), dbPath, pages.join(',')], (line) => {
    if (line === 'ready') {
      rawProgress.at = Date.now();
      rawProgress.others = othersCommitted();
    } else if (line.startsWith('a ')) {
      rawProgress.at = Date.now();
      rawProgress.others = othersCommitted();
      const [, s, w, v] = line.split(' ').map(Number);
      const key = `${s},${w}`;
      const prev = rawLast.get(key) ?? { last: 0, killedSince: false };
      if (v <= prev.last) fail(`raw slot ${s} committer ${w}: acknowledged ${v} after ${prev.last} (an acknowledged transaction lost)`);
      else if (v > prev.last + 1 && !prev.killedSince) fail(`raw slot ${s} committer ${w}: ${v} after ${prev.last} without a kill between`);
      rawLast.set(key, { last: v, killedSince: false });
      numbers.rawCommits++;
    } else if (line.startsWith('stats ')) {
      numbers.rawStats = JSON.parse(line.slice(6));
    }
  }, 'raw');
  rawProc.exited.then(({ code, signal, err }) => {
    if (signal !== 'SIGKILL' && code !== 0) fail(`raw committer exited ${code} ${signal}: ${err}`);
    else if (err.trim() !== '') fail(`raw committer stderr: ${err.slice(0, 2000)}`);
  });
  return untilLine(rawProc, (l) => l === 'ready', 60_000, 'raw committer');
}

// ---------------------------------------------------------------- python3 writer
const pyAcked = new Map(); // src -> Set(k)
const pyKilled = new Set();
let pyProc = null;
let pyGen = 0;
function startPy() {
  const src = `py${pyGen++}`;
  pyAcked.set(src, new Set());
  pyProc = child('python3', [path.join(__dirname, 'py-writer.py'), dbPath, src, '40'], (line) => {
    if (line.startsWith('a ')) {
      pyAcked.get(src).add(Number(line.slice(2)));
      numbers.pyTransactions++;
    } else if (line.startsWith('c ')) {
      numbers.checkpoints.py++;
      if (line.split(' ')[2] === '1') numbers.checkpoints.pyBusy++;
    } else if (line.startsWith('stats ')) {
      const s = JSON.parse(line.slice(6));
      if (Object.keys(s.errors).length > 0) fail(`python3 writer errors: ${JSON.stringify(s.errors)}`);
    }
  }, 'py');
  pyProc.src = src;
  pyProc.exited.then(({ code, signal, err }) => {
    if (signal !== 'SIGKILL' && code !== 0) fail(`python3 writer exited ${code} ${signal}: ${err}`);
  });
  return untilLine(pyProc, (l) => l === 'ready', 60_000, 'python3 writer');
}

// ---------------------------------------------------------------- sqlite3 CLI
const cliAcked = new Set();
function startCli() {
  let k = 0;
  let waiting = null;
  let stopping = false;
  const modes = ['PASSIVE', 'RESTART', 'TRUNCATE'];
  const cli = child('sqlite3', ['-batch', dbPath], (line) => {
    const m = /^ack\|(\d+)$/.exec(line);
    if (m) {
      cliAcked.add(Number(m[1]));
      numbers.cliInserts++;
    } else if (/^\d+\|-?\d+\|-?\d+$/.test(line)) {
      numbers.checkpoints.cli++;
      if (line.startsWith('1|')) numbers.checkpoints.cliBusy++;
    } else if (line.startsWith('done ') && waiting !== null) {
      const w = waiting;
      waiting = null;
      w();
    }
  }, 'cli');
  cli.stdin.write('.timeout 5000\n');
  const loop = (async () => {
    while (!stopping) {
      const i = k++;
      let cmd = `INSERT INTO cli(k, v) VALUES (${i}, randomblob(${100 + ((i * 53) % 3000)}));\nSELECT 'ack', k FROM cli WHERE k = ${i};\n`;
      if (i % 25 === 24) cmd += `.timeout 500\nPRAGMA wal_checkpoint(${modes[(i / 25) % 3 | 0]});\n.timeout 5000\n`;
      cmd += `.print done ${i}\n`;
      const done = new Promise((res) => (waiting = res));
      cli.stdin.write(cmd);
      await Promise.race([done, cli.exited, sleep(30_000)]);
      if (waiting !== null) {
        fail(`sqlite3 CLI did not answer command ${i} within 30 s`);
        break;
      }
      await sleep(3);
    }
    cli.stdin.end();
    const { code, err } = await cli.exited;
    const unexpected = err.split('\n').filter((l) => l.trim() !== '' && !/database is locked|SQLITE_BUSY/.test(l));
    if (unexpected.length > 0) fail(`sqlite3 CLI errors: ${unexpected.slice(0, 5).join(' / ')}`);
    else if (code !== 0 && code !== 1) fail(`sqlite3 CLI exited ${code}`); // 1: a statement failed (database is locked)
  })();
  return { stop: () => ((stopping = true), loop) };
}

// ---------------------------------------------------------------- verify
async function verifyOnce(label) {
  const r = await new Promise((res) => {
    const c = spawn(process.execPath, [bin, 'verify', dbPath, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d) => (stdout += d));
    c.stderr.on('data', (d) => (stderr += d));
    const t = setTimeout(() => c.kill('SIGKILL'), 120_000);
    c.on('close', (status, signal) => {
      clearTimeout(t);
      res({ status, signal, stdout, stderr });
    });
  });
  numbers.verifyRuns++;
  let report = null;
  try {
    report = JSON.parse(r.stdout);
  } catch {
    /* below */
  }
  if (report === null) {
    if (/WALNUT_BUSY/.test(r.stderr)) return; // a lock past its busy timeout: no finding
    fail(`walnut verify (${label}) exited ${r.status} ${r.signal}: ${r.stdout.slice(0, 500)} ${r.stderr.slice(0, 1000)}`);
  } else if (!report.ok) fail(`walnut verify (${label}): ${JSON.stringify(report.issues).slice(0, 1500)}`);
}

// ---------------------------------------------------------------- checks
function tableDigest(db, sql) {
  const h = crypto.createHash('sha256');
  let n = 0;
  for (const row of db.prepare(sql).raw().iterate()) {
    n++;
    for (const v of row) h.update(Buffer.isBuffer(v) ? v.toString('hex') : JSON.stringify(v)).update('|');
    h.update('\n');
  }
  return `${n}:${h.digest('hex').slice(0, 16)}`;
}

function view(file) {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return {
      c: tableDigest(db, 'SELECT * FROM c ORDER BY id'),
      inc: tableDigest(db, 'SELECT * FROM inc ORDER BY src, k'),
      cli: tableDigest(db, 'SELECT * FROM cli ORDER BY k'),
      raw: tableDigest(db, 'SELECT * FROM raw ORDER BY id'),
      integrity: String(db.pragma('integrity_check', { simple: true })),
    };
  } finally {
    db.close();
  }
}

function checkReplicaRead(file) {
  if (!fs.existsSync(file)) return;
  let db;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true, timeout: 2000 });
    const r = db.prepare('SELECT (SELECT sum(n) FROM c) AS s, (SELECT count(*) FROM inc) AS k').get();
    numbers.replicaReads++;
    if (r.s !== r.k) fail(`replica read: sum(c.n) ${r.s} != count(inc) ${r.k} (not a commit boundary)`);
  } catch (e) {
    if (!/locked|busy|no such table/i.test(String(e))) fail(`replica read: ${e}`);
  } finally {
    db?.close();
  }
}

function finalChecks(sqlAcked, sqlDone) {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    for (const r of db.prepare('SELECT id, n, (SELECT count(*) FROM inc WHERE cid = c.id) AS rows FROM c').all()) {
      if (r.n !== r.rows) fail(`counter ${r.id} is ${r.n} but ${r.rows} increments committed (lost update)`);
    }
    const rows = new Map();
    for (const r of db.prepare('SELECT src, k FROM inc').raw().iterate()) {
      if (!rows.has(r[0])) rows.set(r[0], new Set());
      rows.get(r[0]).add(r[1]);
    }
    const have = (src) => rows.get(src) ?? new Set();
    const missing = (acked, src) => [...acked].filter((k) => !have(src).has(k));
    const m = missing(sqlAcked, 'sql');
    if (m.length > 0) fail(`${m.length} acknowledged walnut/sql transactions missing, e.g. ${m.slice(0, 5)}`);
    const sqlOther = Object.keys(sqlDone.other).length;
    if (sqlOther === 0 && have('sql').size !== sqlAcked.size) fail(`${have('sql').size} walnut/sql increments in the file, ${sqlAcked.size} acknowledged (a rejected one committed)`);
    for (const [src, acked] of pyAcked) {
      const mm = missing(acked, src);
      if (mm.length > 0) fail(`${mm.length} acknowledged python3 transactions of ${src} missing, e.g. ${mm.slice(0, 5)}`);
      const extra = have(src).size - acked.size;
      if (extra < 0 || extra > (pyKilled.has(src) ? 1 : 0)) fail(`${src}: ${have(src).size} rows, ${acked.size} acknowledged`);
    }
    const cli = new Set(db.prepare('SELECT k FROM cli').pluck().all());
    const cm = [...cliAcked].filter((k) => !cli.has(k));
    if (cm.length > 0) fail(`${cm.length} acknowledged sqlite3 CLI inserts missing, e.g. ${cm.slice(0, 5)}`);
    for (const r of db.prepare('SELECT id, b FROM raw').all()) {
      const at = r.b.indexOf(MAGIC);
      for (let w = 0; w < 64; w++) {
        const v = r.b.readUInt32LE(at + 12 + 4 * w);
        const e = rawLast.get(`${r.id},${w}`) ?? { last: 0, killedSince: false };
        if (v < e.last) fail(`raw slot ${r.id} committer ${w}: file holds ${v}, ${e.last} was acknowledged (lost)`);
        else if (v > e.last + (e.killedSince ? 1 : 0)) fail(`raw slot ${r.id} committer ${w}: file holds ${v}, last acknowledged ${e.last}`);
      }
    }
  } finally {
    db.close();
  }
}

// ---------------------------------------------------------------- main
async function main() {
  if (NATS === undefined) throw new Error('nats-server is not installed: run scripts/install-nats.sh');
  log(`soak in ${dir} for ${SECONDS} s`);
  const pages = setup();
  const nats = await startNats();
  log(`nats-server at ${nats.url}, raw slot pages ${pages.join(',')}`);

  // walnut/sql + replication
  const sqlAcked = new Set();
  let sqlDone = null;
  const sql = child(process.execPath, [path.join(__dirname, 'sql-worker.js'), dbPath, FOLLOWERS === 'one' ? 'none' : nats.url, 'soak'], (line) => {
    if (line.startsWith('a ')) {
      sqlAcked.add(Number(line.slice(2)));
      numbers.sqlTransactions++;
    } else if (line.startsWith('done ')) sqlDone = JSON.parse(line.slice(5));
  }, 'sql');
  await untilLine(sql, (l) => l === 'ready', 120_000, 'sql worker');
  sql.exited.then(({ code, signal, err }) => {
    if (code !== 0) fail(`sql worker exited ${code} ${signal}: ${err.slice(0, 2000)}`);
  });

  const store = await open(dbPath, { busyTimeout: 5000 });
  let ownReplication = null;
  if (FOLLOWERS === 'one') {
    ownReplication = store.replicateTo({ servers: nats.url, stream: 'soak', thread: true, stopTimeoutMs: 120_000, baseEveryCommits: 3000 });
    ownReplication.on('error', (e) => fail(`replication: ${e}`));
    await ownReplication.ready;
  }
  const replicaPath = path.join(dir, 'replica.db');
  const replica = await openReplica(replicaPath, { servers: nats.url, stream: 'soak' });
  replica.on('error', (e) => fail(`replica error: ${e}`));
  const arkPath = path.join(dir, 'follow.ark');
  const arkOut = fs.createWriteStream(arkPath);
  let exportError = null;
  let exportStream = null;
  let ownExport = null;
  if (PARTS.has('export') && FOLLOWERS === 'one') {
    ownExport = store.exportTo(arkOut, { follow: true });
    ownExport.done.catch((e) => (exportError = e));
  } else if (PARTS.has('export')) {
    exportStream = createExportStream(dbPath, { follow: true });
    exportStream.on('error', (e) => (exportError = e));
    exportStream.pipe(arkOut);
  }

  if (PARTS.has('raw')) await startRaw(pages);
  if (PARTS.has('py')) await startPy();
  const cli = PARTS.has('cli') ? startCli() : { stop: async () => undefined };
  log('all writers running');

  let running = true;
  const end = t0 + SECONDS * 1000;
  /** sleep(ms), cut short when the run ends (the loops' pauses are up to a minute). */
  const nap = async (ms) => {
    for (const until = Date.now() + ms; running && Date.now() < until; ) await sleep(Math.min(200, until - Date.now()));
  };
  const loops = [];
  /** A loop's own error (a child that does not start again, say) is a failure of the soak, not an unhandled rejection that ends it without its numbers and leaves nats-server running. */
  const loop = (what, body) => loops.push(body().catch((e) => fail(`${what}: ${e && e.stack ? e.stack : e}`)));
  // kills: raw, raw, py, ...
  if (PARTS.has('kill') && PARTS.has('raw') && PARTS.has('py')) loop('kills', async () => {
    for (let i = 0; running; i++) {
      await nap(KILL_EVERY_MS * (0.5 + Math.random()));
      if (!running) break;
      const which = i % 3 === 2 ? 'py' : 'raw';
      const proc = which === 'raw' ? rawProc : pyProc;
      proc.kill('SIGKILL');
      await proc.exited;
      numbers.kills[which]++;
      if (which === 'raw') for (const e of rawLast.values()) e.killedSince = true;
      else pyKilled.add(proc.src);
      log(`SIGKILL ${which}; WAL ${walFrames()} frames`);
      await sleep(200 + Math.random() * 1000);
      if (which === 'raw') await startRaw(pages);
      else await startPy();
      numbers.restarts++;
    }
  });
  // WAL frames (peak), WAL generations (a new salt-1 in its header) and reads of the replica
  let lastSalt = null;
  loop('WAL watch', async () => {
    while (running) {
      numbers.walPeakFrames = Math.max(numbers.walPeakFrames, walFrames());
      const salt = walSalt();
      if (salt !== null && salt !== lastSalt) {
        lastSalt = salt;
        numbers.walGenerationsSeen++;
      }
      checkReplicaRead(replicaPath);
      if (PARTS.has('raw')) rawStarved();
      await sleep(250);
    }
  });
  // a held snapshot until the WAL passes 16,000 frames (or 40 s)
  if (PARTS.has('pin')) loop('pins', async () => {
    await nap(Math.min(PIN_EVERY_MS / 3, SECONDS * 300));
    while (running) {
      const snap = await store.snapshot();
      numbers.pins++;
      const until = Date.now() + 40_000;
      let f = 0;
      while (running && Date.now() < until && (f = walFrames()) < PIN_FRAMES) await sleep(100);
      snap.release();
      if (f >= 16_000) numbers.pinsPast16k++;
      log(`pin released at ${f} WAL frames`);
      await nap(PIN_EVERY_MS * (0.5 + Math.random()));
    }
  });
  // walnut verify
  if (PARTS.has('verify')) loop('verify', async () => {
    while (running) {
      await nap(8000);
      if (running) await verifyOnce('live');
    }
  });
  // progress
  loop('progress', async () => {
    while (running) {
      await nap(15_000);
      log(`raw ${numbers.rawCommits} sql ${numbers.sqlTransactions} py ${numbers.pyTransactions} cli ${numbers.cliInserts}; WAL now ${walFrames()}, peak ${numbers.walPeakFrames}; replica ${JSON.stringify(replica.lag())}`);
    }
  });

  while (Date.now() < end) await sleep(500);
  running = false;
  log('stopping');
  await Promise.all(loops);
  rawProc?.kill('SIGTERM');
  pyProc?.kill('SIGTERM');
  const stopped = (what, p) => Promise.resolve(p).then((x) => log(`${what} stopped`, x?.code ?? '', x?.signal ?? ''));
  await Promise.all([stopped('raw committer', rawProc?.exited), stopped('python3 writer', pyProc?.exited), stopped('sqlite3 CLI', cli.stop())]);
  sql.stdin.write('stop\n');
  const sqlExit = await Promise.race([sql.exited, sleep(240_000).then(() => null)]);
  if (sqlExit === null) throw new Error(`the sql worker did not end within 240 s of stop: ${sql.stderrTail()}`);
  if (sqlDone === null) throw new Error('the sql worker ended without its report');
  numbers.checkpoints.sqlStore = sqlDone.checkpoints;
  if (ownReplication !== null) {
    await ownReplication.stop();
    const m = ownReplication.metrics();
    sqlDone.replication = { session: m.session, sessions: m.sessions, publishedSeq: m.publishedSeq, messages: m.messages, bases: m.bases, lagResets: m.lagResets };
  }
  if (sqlDone.readViolations.length > 0) fail(`walnut/sql reads: ${sqlDone.readViolations.slice(0, 5).join(' / ')} (${sqlDone.readViolations.length})`);
  if (Object.keys(sqlDone.other).length > 0) fail(`walnut/sql unexpected errors: ${JSON.stringify(sqlDone.other).slice(0, 2000)}`);
  if (sqlDone.publisherErrors.length > 0) fail(`replication errors: ${sqlDone.publisherErrors.slice(0, 5).join(' / ')}`);
  if (numbers.rawStats && Object.keys(numbers.rawStats.other).length > 0) fail(`raw committer unexpected errors: ${JSON.stringify(numbers.rawStats.other)}`);
  if (numbers.rawStats) {
    // (of the raw committer's last run: a SIGKILLed one prints no stats)
    const r = numbers.rawStats;
    numbers.rawRefusalsPerCommit = { chainBroken: +(r.chainBroken / Math.max(1, r.commits)).toFixed(2), busy: +(r.busy / Math.max(1, r.commits)).toFixed(2), conflicts: +(r.conflicts / Math.max(1, r.commits)).toFixed(2) };
    if (r.chainBroken > 0) fail(`raw committer: ${r.chainBroken} transactions refused ChainBroken against ${r.commits} commits (broken by ${JSON.stringify(r.brokenBy)}): its store commits transactions only, whose failures break no chain`);
  }
  numbers.sql = sqlDone;
  log(`writers stopped; replication ${JSON.stringify(sqlDone.replication)}`);

  // the primary at rest
  const p = view(dbPath);
  if (p.integrity !== 'ok') fail(`primary integrity_check: ${p.integrity}`);
  finalChecks(sqlAcked, sqlDone);
  await verifyOnce('at rest');

  // the replica
  try {
    await Promise.race([replica.waitFor(sqlDone.replication.publishedSeq, sqlDone.replication.session), sleep(180_000).then(() => { throw new Error('replica did not catch up within 180 s'); })]);
  } catch (e) {
    fail(`replica: ${e}`);
  }
  numbers.replica = replica.lag();
  const q = view(replicaPath);
  if (q.integrity !== 'ok') fail(`replica integrity_check: ${q.integrity}`);
  for (const t of ['c', 'inc', 'cli', 'raw']) if (q[t] !== p[t]) fail(`replica table ${t}: ${q[t]}, primary ${p[t]}`);
  await replica.close();

  // the follow export: restored once it holds the primary's last commit
  if (ownExport !== null) {
    await ownExport.stop(); // reads up to the WAL's last commit
    await new Promise((res) => arkOut.end(res));
  }
  if (exportStream !== null || ownExport !== null) await checkExport(p);
  numbers.primary = { c: p.c, inc: p.inc, cli: p.cli };
  numbers.storeMetrics = { checkpoints: store.metrics().checkpoints };
  await store.close();
  nats.proc.kill('SIGTERM');

  async function checkExport(p) {
  const restoredPath = path.join(dir, 'restored.db');
  let r = null;
  const deadline = Date.now() + 60_000;
  for (;;) {
    const copy = path.join(dir, 'follow-copy.ark');
    fs.copyFileSync(arkPath, copy);
    fs.rmSync(restoredPath, { force: true });
    r = await restore(fs.createReadStream(copy), restoredPath, { force: true });
    r.view = view(restoredPath);
    if (['c', 'inc', 'cli', 'raw'].every((t) => r.view[t] === p[t]) || Date.now() > deadline) break;
    await sleep(1000);
  }
  if (exportStream !== null) {
    exportStream.unpipe(arkOut);
    exportStream.destroy();
    await new Promise((res) => arkOut.end(res));
  }
  if (exportError !== null) fail(`follow export: ${exportError}`);
  numbers.export = { bytes: fs.statSync(arkPath).size, lastCommitSeq: r.lastCommitSeq, stoppedBy: r.stoppedBy };
  if (r.view.integrity !== 'ok') fail(`restored integrity_check: ${r.view.integrity}`);
  for (const t of ['c', 'inc', 'cli', 'raw']) if (r.view[t] !== p[t]) fail(`restored table ${t}: ${r.view[t]}, primary ${p[t]}`);
  }
}

main()
  .catch((e) => fail(`soak: ${e && e.stack ? e.stack : e}`))
  .finally(() => {
    for (const c of children) c.kill('SIGKILL');
    numbers.elapsedSeconds = Math.round((Date.now() - t0) / 1000);
    console.log(JSON.stringify(numbers, null, 1));
    if (failures.length === 0) console.log('soak: ok');
    else console.log(`soak: ${failures.length} failures\n${failures.join('\n')}`);
    process.exit(failures.length === 0 ? 0 : 1);
  });
