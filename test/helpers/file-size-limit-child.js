// A walnut process under a file-size limit (RLIMIT_FSIZE), which the parent sets for this
// process only: bash -c 'ulimit -f N; exec node file-size-limit-child.js <role> <path>'
// (test/hostile/full-disk-file-size-limit.test.ts). A write past the limit fails with EFBIG and
// raises SIGXFSZ, whose default action kills the process: Node ignores it, so this process
// survives every one of them. Prints one JSON line.
//  - 'wal' <walPath>: a WalFile (4 KiB pages, preallocation on) appends one-frame commits until
//    one fails; each append's outcome ('ok', or code/reason/errno), and the file's size.
//  - 'sql' <dbPath>: walnut/sql inserts rows of ~3 KB until an INSERT fails, three more fail
//    the same way, then a TRUNCATE checkpoint makes room and one more goes in; every call
//    settles (a call still pending after 10 s is reported as 'hang', not awaited); prints the
//    rows acknowledged and each failure.
//  - 'zero-ahead' <dbPath>: a store with zeroAhead on commits 4-page transactions until one
//    fails, then three more; the commits acknowledged, each failure, and the SIGXFSZ raised.
'use strict';
const fs = require('node:fs');
const { WalFile } = require('../../dist/wal/wal-file.js');
const { openDatabase } = require('../../dist/sql.js');
const { open } = require('../../dist/index.js');

const [role, file] = process.argv.slice(2);
const PS = 4096;

const outcome = (p) => {
  let timer;
  const hang = new Promise((resolve) => (timer = setTimeout(() => resolve('hang'), 10_000)));
  return Promise.race([p.then(() => 'ok', (e) => `${e.code}/${e.reason ?? ''}/${e.errno ?? ''}`), hang]).finally(() => clearTimeout(timer));
};

/** SIGXFSZ raised from now on (a handler, not the default action: a write or extension past the limit). */
function countSigxfsz() {
  const seen = { n: 0 };
  process.on('SIGXFSZ', () => seen.n++);
  return async () => {
    await new Promise((resolve) => setImmediate(resolve)); // (signals are delivered through the event loop)
    return seen.n;
  };
}

const roles = {
  async wal() {
    const wal = await WalFile.open(file, { create: true });
    await wal.writeHeader({ pageSize: PS, checkpointSeq: 0 });
    const appends = [];
    for (let n = 1; n <= 1000; n++) {
      const r = await outcome(wal.append([{ pages: [{ pgno: 2, data: new Uint8Array(PS).fill(n & 0xff) }], dbSize: 2 }], 'data'));
      appends.push(r);
      if (r !== 'ok') break;
    }
    const size = fs.statSync(file).size;
    const recovered = (await wal.recover()).mxFrame;
    await wal.close();
    return { appends, size, recovered };
  },

  async sql() {
    const sigxfsz = countSigxfsz();
    const db = await openDatabase(file, { autoCheckpoint: false, keepWal: true });
    await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)');
    let rows = 0;
    const failures = [];
    const insert = () => outcome(db.run('INSERT INTO t(v) VALUES (?)', [Buffer.alloc(3000, rows & 0xff)]));
    for (let i = 0; i < 1000 && failures.length === 0; i++) {
      const r = await insert();
      if (r === 'ok') rows++;
      else failures.push(r);
    }
    for (let i = 0; i < 3; i++) failures.push(await insert());
    const visible = (await db.get('SELECT count(*) AS n FROM t')).n;
    const checkpoint = await outcome(db.store.checkpoint('truncate'));
    const after = await insert();
    if (after === 'ok') rows++;
    const walBytes = fs.statSync(`${file}-wal`).size;
    return { rows, failures, visible, checkpoint, after, walBytes, sigxfsz: await sigxfsz() };
  },

  async 'zero-ahead'() {
    const sigxfsz = countSigxfsz();
    const store = await open(file, { pageSize: PS, synchronous: 'off', autoCheckpoint: false, keepWal: true, zeroAhead: true });
    let commits = 0;
    const failures = [];
    for (let i = 0; i < 5000 && failures.length < 4; i++) {
      let failed = null;
      const r = await outcome(store.commit([2, 3, 4, 5].map((pgno) => ({ pgno, data: new Uint8Array(PS).fill(commits & 0xff) }))).catch((e) => {
        failed = e;
        throw e;
      }));
      if (r === 'ok') commits++;
      else failures.push(r);
      if (failed !== null) store.resumeCommits(failed);
    }
    return { commits, failures, sigxfsz: await sigxfsz() };
  },
};

roles[role]().then(
  (out) => process.stdout.write(JSON.stringify(out) + '\n', () => process.exit(0)),
  (e) => process.stdout.write(JSON.stringify({ crashed: String(e && e.stack) }) + '\n', () => process.exit(0)),
);
