// Zero-ahead child: a store with auto-checkpoint off (its WAL only grows, so zeros are written
// ahead of it all the time) on a database SQLite built; `committers` loops re-commit the
// database's own pages unchanged (page p of 1..dbSize, one page per commit: the database
// SQLite sees stays the same, every commit is a real frame) and print "ack <lastFrame>" the
// moment a commit resolves. The parent SIGKILLs it mid-way.
// usage: node zero-ahead-child.js <db> <committers>
'use strict';
const { open } = require('../../dist/index.js');

const [db, committers] = process.argv.slice(2);
(async () => {
  const store = await open(db, { autoCheckpoint: false, zeroAhead: true });
  const snap = await store.snapshot();
  const pages = [];
  for (let p = 1; p <= snap.dbSize; p++) pages.push(await snap.read(p));
  snap.release();
  process.stdout.write('ready\n');
  await Promise.all(
    Array.from({ length: Number(committers) }, async (_, w) => {
      for (let k = w; ; k += Number(committers)) {
        const pgno = 1 + (k % pages.length);
        const r = await store.commit([{ pgno, data: pages[pgno - 1] }]);
        process.stdout.write(`ack ${r.lastFrame}\n`);
      }
    }),
  );
})().catch((e) => {
  process.stdout.write(`error ${e.code} ${e.message}\n`);
  process.exit(1);
});
