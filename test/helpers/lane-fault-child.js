// A sync error in the lane's leader (process started with WALNUT_FAULT_INJECTION=1): two stores
// of one thread share a lane; the leader's fdatasync fails once. Prints one JSON line: the
// outcomes of the batch that met the fault (the follower's commit is in it or in the next one),
// and of commits after it through each store.
'use strict';
const { open } = require('../../dist/index.js');
const native = require('../../dist/native.js');

const [dbPath] = process.argv.slice(2);
const page = (v) => Buffer.alloc(4096, v);
const settle = (p) => p.then((r) => ({ ok: true, durable: r.durable }), (e) => ({ ok: false, code: e.code }));

(async () => {
  const leader = await open(dbPath);
  const follower = await open(dbPath);
  await leader.commit([{ pgno: 2, data: page(1) }]);
  native.TEST_setFaults({ failSync: { nth: 1, errno: 5 } });
  const failures = [];
  const kept = (p) => p.catch((e) => {
    failures.push(e);
    throw e;
  });
  const batch = await Promise.all([settle(leader.commit([{ pgno: 3, data: page(2) }])), settle(kept(follower.commit([{ pgno: 4, data: page(3) }])))]);
  native.TEST_setFaults({});
  // the leader takes the follower's commit into the batch it is forming, so that commit may have
  // met the fault too: then the follower's own chain is broken until it acknowledges the failure
  for (const e of failures) follower.resumeCommits(e);
  const after = { follower: await settle(follower.commit([{ pgno: 5, data: page(4) }])), leader: await settle(leader.commit([{ pgno: 6, data: page(5) }])) };
  const lane = follower.metrics().lane;
  await follower.close();
  await leader.close().catch(() => undefined);
  process.stdout.write(`${JSON.stringify({ batch, after, followerLeads: lane.leader })}\n`);
})().catch((e) => {
  process.stdout.write(`${JSON.stringify({ error: `${e.code} ${e.stack}` })}\n`);
  process.exit(1);
});
