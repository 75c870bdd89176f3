// Preloaded (node -r) into a `walnut replica` process: as the replica's start() resolves, the
// process's one thread is busy for BUSY_MS (a long synchronous step, as a large base image's
// last steps or a loaded machine make it), in the same turn of the event loop in which
// openReplica then resolves; MARK is created as that busy time begins, so a test can send its
// signal then. Only the timing is changed: the replica, its files and NATS are the real ones.
// env: WALNUT_TEST_BUSY_MARK (path), WALNUT_TEST_BUSY_MS (default 1500)
'use strict';
const fs = require('node:fs');
const { Replica } = require('../../dist/replicate/replica.js');

const mark = process.env.WALNUT_TEST_BUSY_MARK;
const busyMs = Number(process.env.WALNUT_TEST_BUSY_MS ?? 1500);
const start = Replica.prototype.start;
Replica.prototype.start = function (...args) {
  return start.apply(this, args).then((value) => {
    fs.writeFileSync(mark, '');
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, busyMs); // (synchronous: no signal is read meanwhile)
    return value;
  });
};
