// A replica whose own store fails: in a process started with WALNUT_FAULT_INJECTION=1, once the
// replica is open (its base image in place), the next write of the process (the replica's
// position intent or its WAL append) fails with ENOSPC. Then waitFor(SEQ) of the primary's
// last commit must settle (reject with that failure), not wait forever; so must a later one.
// Prints one JSON line.
// usage: node replica-fault-child.js SERVERS STREAM REPLICA_PATH SEQ
'use strict';
const { openReplica } = require('../../dist/index.js');
const native = require('../../dist/native.js');

const [servers, stream, replicaPath, seq] = process.argv.slice(2);
const settle = (p) => p.then(() => ({ ok: true }), (e) => ({ ok: false, code: e.code, walnut: e.constructor.name }));
const unhandled = [];
process.on('unhandledRejection', (e) => unhandled.push(String(e && e.message)));

(async () => {
  const replica = await openReplica(replicaPath, { servers, stream, open: { autoCheckpoint: false } });
  const errors = [];
  replica.on('error', (e) => errors.push(e.code));
  native.TEST_setFaults({ failWrite: { nth: 1, errno: 28 } });
  const out = {};
  out.waitFor = await settle(replica.waitFor(Number(seq)));
  native.TEST_setFaults({ failWrite: null });
  out.later = await settle(replica.waitFor(Number(seq) + 1));
  out.errors = errors;
  out.close = await settle(replica.close());
  out.unhandled = unhandled;
  process.stdout.write(JSON.stringify(out) + '\n');
})().catch((e) => {
  process.stdout.write(JSON.stringify({ crashed: String(e && e.stack) }) + '\n');
});
