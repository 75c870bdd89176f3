// A concurrent writer for the wal-index tests, run as a child process or a worker thread.
// Each commit reads the shared counter (page 10), checks that page 11 carries the same value
// (a torn or mixed read would break that), then writes counter + 1 to pages 10 and 11 and its
// own commit count to page 20 + id (pages past the SQLite-made base database, which holds 2). Reports { id, commits, tornReads, busyRetries }.
'use strict';
const { isMainThread, parentPort, workerData } = require('node:worker_threads');
const { WalIndex } = require('../../dist/wal-index/wal-index.js');

async function run({ db, id, commits }) {
  const index = await WalIndex.open(db, { busyTimeout: 20_000 });
  const pageSize = index.pageSize;
  let tornReads = 0;
  let busyRetries = 0;
  for (let done = 0; done < commits; ) {
    const snap = await index.beginRead();
    try {
      const p2 = await snap.read(10);
      const p3 = await snap.read(11);
      const mine = await snap.read(20 + id);
      const counter = p2.readUInt32BE(0);
      if (p3.readUInt32BE(0) !== counter || !p2.equals(p3)) tornReads++;
      const next = Buffer.alloc(pageSize, (counter + 1) & 0xff);
      next.writeUInt32BE(counter + 1, 0);
      const own = Buffer.alloc(pageSize);
      own.writeUInt32BE(mine.readUInt32BE(0) + 1, 0);
      try {
        await index.beginWrite(snap);
      } catch (e) {
        if (e.code === 'WALNUT_BUSY' && e.reason === 'BusySnapshot') {
          busyRetries++;
          continue;
        }
        throw e;
      }
      try {
        await index.appendAndPublish([{ pages: [{ pgno: 10, data: next }, { pgno: 11, data: Buffer.from(next) }, { pgno: 20 + id, data: own }], dbSize: Math.max(snap.dbSize, 30) }], 'data');
        done++;
      } finally {
        index.endWrite();
      }
    } finally {
      snap.release();
    }
  }
  await index.close();
  return { id, commits, tornReads, busyRetries };
}

if (!isMainThread) {
  run(workerData).then((r) => parentPort.postMessage(r), (e) => parentPort.postMessage({ error: String(e && e.stack) }));
} else if (require.main === module) {
  const [db, id, commits] = process.argv.slice(2);
  run({ db, id: Number(id), commits: Number(commits) }).then(
    (r) => process.stdout.write(JSON.stringify(r) + '\n'),
    (e) => {
      process.stdout.write(JSON.stringify({ error: String(e && e.stack) }) + '\n');
      process.exitCode = 1;
    },
  );
}
