// A walnut writer in a process of its own for test/hostile/writer-beside-full-lane: opens <db>
// with a connection of its own (shareLane: false) and busy timeout <ms>, prints "open", then
// commits page <pgno> once per line read on stdin, printing "ok <ms taken>" or
// "failed <code> <reason> <ms taken>" for each.
// usage: node beside-lane-writer-child.js <db> <pgno> <busyTimeoutMs>
'use strict';
const readline = require('node:readline');
const { open } = require('../../dist/index.js');

const [db, pgno, busyTimeout] = process.argv.slice(2);

(async () => {
  const store = await open(db, { busyTimeout: Number(busyTimeout), shareLane: false, synchronous: 'off' });
  const data = Buffer.alloc(store.pageSize);
  process.stdout.write('open\n');
  let k = 0;
  for await (const _line of readline.createInterface({ input: process.stdin })) {
    data.writeUInt32BE(++k, 0);
    const t0 = performance.now();
    try {
      await store.commit([{ pgno: Number(pgno), data }]);
      process.stdout.write(`ok ${Math.round(performance.now() - t0)}\n`);
    } catch (e) {
      process.stdout.write(`failed ${e.code} ${e.reason} ${Math.round(performance.now() - t0)}\n`);
      if (store.chainBrokenBy) store.resumeCommits(store.chainBrokenBy);
    }
  }
  await store.close();
})();
