// A writer killed between its write and its publish leaves frames of the WAL's current generation
// past the last commit, unpublished; the next writer appends over them (test/interop/
// dropped-tail-crash.test.ts). Three roles, one process each, on one database:
//  - 'holder' (the parent's child): opens the store, commits T0 (pages 2..N+1 = 1), keeps it
//    open (so nobody recovers the WAL: the -shm stays valid), runs 'killed', then retries T1
//    itself ('self') or has a new process do it ('other'), prints one JSON line and SIGKILLs
//    itself: the parent's reopen recovers the WAL from the file as after a crash.
//  - 'killed' (run with WALNUT_FAULT_INJECTION=1): commits T1 (page 2 = 2), T2 (page 3 = 3) and
//    T3 (pages 4, 5 = 4) in one batch; the fault rule killAtSync SIGKILLs it at the batch's
//    fdatasync, after its pwritev: four frames in the WAL, never published, never acknowledged.
//  - 'retry': opens the store (its window read from the index: the slot after T0 holds the killed
//    writer's frame) and commits T1 again; prints one JSON line and SIGKILLs itself.
// T1's retry is byte for byte T1's frame (same page, same dbSize, same salts and running
// checksum): without a zero header after it, the killed writer's T2 and T3 continued its chain.
// Arguments: role, database path, then for 'holder' the retrier ('self' | 'other') and T0's page
// count; the page size is 4096 for up to 16 pages, else 1024 (a WAL of 16,000+ frames kept small).
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const { open } = require('../../dist/index.js');

const [role, dbPath, retrier, t0Pages] = process.argv.slice(2);
const unhandled = [];
process.on('unhandledRejection', (e) => unhandled.push(String(e && e.message)));
const outcome = (p) => p.then(() => 'ok', (e) => `${e.code}/${e.reason || ''}`);

/** Runs this script as `role` with `args` and `env`; resolves with its stdout and how it ended. */
function run(childRole, env) {
  const child = spawn(process.execPath, [__filename, childRole, dbPath], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  let stdout = '';
  child.stdout.on('data', (d) => (stdout += d));
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout })));
}

/** The page number in each of the `count` frame headers from frame `first` (0: a zero header or past the end). */
function framePgnos(first, count, pageSize) {
  const fd = fs.openSync(`${dbPath}-wal`, 'r');
  try {
    const pgnos = [];
    for (let n = first; n < first + count; n++) {
      const h = Buffer.alloc(24);
      const got = fs.readSync(fd, h, 0, 24, 32 + (n - 1) * (24 + pageSize));
      pgnos.push(got === 24 ? h.readUInt32BE(0) : 0);
    }
    return pgnos;
  } finally {
    fs.closeSync(fd);
  }
}

const options = { synchronous: 'full', autoCheckpoint: false, shareLane: false };

async function pageSizeOf(store) {
  const snap = await store.snapshot();
  const size = (await snap.read(1)).length;
  snap.release();
  return size;
}

async function retryT1(store) {
  const pageSize = await pageSizeOf(store);
  const t1 = store.begin();
  t1.write(2, Buffer.alloc(pageSize, 2));
  return outcome(t1.commit());
}

const roles = {
  async holder() {
    const first = Number(t0Pages);
    const pageSize = first <= 16 ? 4096 : 1024;
    const store = await open(dbPath, { ...options, pageSize });
    const t0 = await store.commit(Array.from({ length: first }, (_, i) => ({ pgno: i + 2, data: Buffer.alloc(pageSize, 1) })));
    const out = { t0LastFrame: t0.lastFrame };
    const killed = await run('killed', { WALNUT_FAULT_INJECTION: '1' });
    out.killed = killed.signal ?? `exit ${killed.code}: ${killed.stdout.trim()}`;
    out.killedFrames = framePgnos(t0.lastFrame + 1, 4, pageSize); // its batch, in the WAL, unpublished
    if (retrier === 'self') {
      out.retry = await retryT1(store);
    } else {
      const r = await run('retry', {});
      out.retry = r.stdout.trim() === '' ? `exit ${r.code ?? r.signal}` : JSON.parse(r.stdout).retry;
    }
    out.afterRetry = framePgnos(t0.lastFrame + 1, 2, pageSize); // T1's frame, then a zero header
    out.unhandled = unhandled;
    process.stdout.write(JSON.stringify(out) + '\n', () => process.kill(process.pid, 'SIGKILL'));
  },

  async killed() {
    const store = await open(dbPath, options);
    const pageSize = await pageSizeOf(store);
    require('../../dist/native.js').TEST_setFaults({ killAtSync: { nth: 1 } });
    const t1 = store.begin();
    t1.write(2, Buffer.alloc(pageSize, 2));
    const t2 = store.begin();
    t2.write(3, Buffer.alloc(pageSize, 3));
    const t3 = store.begin();
    t3.write(4, Buffer.alloc(pageSize, 4));
    t3.write(5, Buffer.alloc(pageSize, 4));
    const batch = await Promise.all([outcome(t1.commit()), outcome(t2.commit()), outcome(t3.commit())]);
    process.stdout.write(JSON.stringify({ notKilled: batch }) + '\n'); // the holder reports it
  },

  async retry() {
    const store = await open(dbPath, options);
    const out = { retry: await retryT1(store), unhandled };
    process.stdout.write(JSON.stringify(out) + '\n', () => process.kill(process.pid, 'SIGKILL'));
  },
};

roles[role]().catch((e) => {
  process.stdout.write(JSON.stringify({ crashed: String(e && e.stack) }) + '\n');
});
