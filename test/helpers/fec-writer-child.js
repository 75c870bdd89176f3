// A walnut process committing with the FEC sidecar on: `batches` commits of `size` pages each,
// page images taken from the database file image at <image>, starting at page <offset>, then a
// close that keeps the WAL. Prints "done <firstFrame>-<lastFrame>,..." with each commit's frames.
// usage: node fec-writer-child.js <db> <image> <offset> <batches> <size>
'use strict';
const fs = require('node:fs');
const { open } = require('../../dist/index.js');

const [db, imagePath, offset, batches, size] = process.argv.slice(2);
(async () => {
  const image = fs.readFileSync(imagePath);
  const ps = 1024;
  const pages = image.length / ps;
  const store = await open(db, { fec: { repairSymbols: 2 }, autoCheckpoint: false, keepWal: true });
  const done = [];
  let next = Number(offset);
  const pending = [];
  for (let b = 0; b < Number(batches); b++) {
    const batch = [];
    for (let i = 0; i < Number(size); i++) {
      const pgno = 1 + (next++ % pages);
      batch.push({ pgno, data: image.subarray((pgno - 1) * ps, pgno * ps) });
    }
    pending.push(store.commit(batch, { dbSize: pages }).then((r) => done.push(`${r.firstFrame}-${r.lastFrame}`)));
    if (b % 4 === 3) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
  await store.close();
  process.stdout.write(`done ${done.join(',')}\n`);
})().catch((e) => {
  process.stdout.write(`error ${e.code} ${e.message}\n`);
  process.exit(1);
});
