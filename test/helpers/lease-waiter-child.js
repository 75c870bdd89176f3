// Opens a store on <db> and asks for holdWriteLease() (busy timeout 60 s): prints "waiting" once
// the call is made, "held" once it has the lock, then idles until killed. For tests that SIGKILL
// a process in the middle of the lease's wait (its bursts of lock tries on the lock lane) or
// while it holds the lease.
// usage: node lease-waiter-child.js <db>
'use strict';
const { open } = require('../../dist/index.js');

(async () => {
  const store = await open(process.argv[2], { busyTimeout: 60_000, shareLane: false });
  const lease = store.holdWriteLease();
  process.stdout.write('waiting\n');
  await lease;
  process.stdout.write('held\n');
  setInterval(() => undefined, 1000);
})().catch((e) => {
  process.stdout.write(`failed ${e.code}\n`);
  process.exit(1);
});
