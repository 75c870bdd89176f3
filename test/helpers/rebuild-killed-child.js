// Runs `walnut recover` (rebuildWalIndex) on a database and SIGKILLs itself right after the
// native rebuild has copied the -shm's segments, before the header is written: a recovery
// killed midway. Prints "copied N" (frames indexed) to stderr first.
// usage: node rebuild-killed-child.js <db>
'use strict';
const native = require('../../dist/native.js');
const { rebuildWalIndex } = require('../../dist/index.js');

const newRegion = native.newShmRegion;
native.newShmRegion = (...args) => {
  const region = newRegion(...args);
  const rebuild = region.rebuild;
  Object.defineProperty(region, 'rebuild', {
    value(pgnos) {
      rebuild.call(this, pgnos);
      process.stderr.write(`copied ${pgnos.length}\n`);
      process.kill(process.pid, 'SIGKILL');
    },
  });
  return region;
};

rebuildWalIndex(process.argv[2]).then(() => process.stdout.write('not killed\n'));
