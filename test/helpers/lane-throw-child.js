// A second store of a database in one thread commits through the commit lane, whose outcome
// reaches JS from the lane's own libuv wake-up; a handler of that commit queues a
// process.nextTick callback that throws. In Node that exception is uncaught (process
// 'uncaughtException', else the process dies). Prints "uncaught <message>" from the handler, or
// "vanished" when the exception went nowhere.
// usage: node lane-throw-child.js <db>
'use strict';
const { open } = require('../../dist/index.js');

(async () => {
  const db = process.argv[2];
  const leader = await open(db, { pageSize: 4096 });
  const member = await open(db, { pageSize: 4096 });
  process.on('uncaughtException', (e) => {
    process.stdout.write(`uncaught ${e.message} member=${member.metrics().lane.member}\n`);
    process.exit(0);
  });
  await member.commit([{ pgno: 2, data: Buffer.alloc(4096, 7) }]).then(() => {
    process.nextTick(() => {
      throw new Error('boom from a commit handler');
    });
  });
  await new Promise((resolve) => setTimeout(resolve, 200)); // (a deadline for "vanished" only: the uncaught case exits at once)
  process.stdout.write('vanished\n');
  await member.close();
  await leader.close();
})();
