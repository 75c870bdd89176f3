// Rebuilds a database's -shm from its -wal COUNT times in a row (`walnut recover`'s
// rebuildWalIndex), as a process beside live connections; prints "done COUNT" at the end.
// usage: node rebuild-loop.js <db> <count>
'use strict';
const { rebuildWalIndex } = require('../../dist/index.js');

(async () => {
  const [db, count] = process.argv.slice(2);
  for (let i = 0; i < Number(count); i++) await rebuildWalIndex(db);
  process.stdout.write(`done ${count}\n`);
})().catch((e) => {
  process.stderr.write(`${e.code ?? ''} ${e.message}\n`);
  process.exit(1);
});
