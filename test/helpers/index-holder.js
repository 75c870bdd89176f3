// Holds the wal-index write lock or a read mark, says "holding", then waits to be killed.
// usage: node index-holder.js <db> write|read
'use strict';
const { WalIndex } = require('../../dist/wal-index/wal-index.js');

(async () => {
  const [db, what] = process.argv.slice(2);
  const index = await WalIndex.open(db);
  const snap = await index.beginRead();
  if (what === 'write') await index.beginWrite(snap);
  process.stdout.write(`holding ${snap.readLock}\n`);
  setInterval(() => {}, 1000);
})();
