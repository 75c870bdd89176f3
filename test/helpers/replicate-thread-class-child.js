// A fresh process that replicates a store and reports its threads' scheduling classes, for
// test/interop/replicate-background-class.test.ts. Its main thread uses nothing of the libuv
// pool before replicateTo (the pool starts lazily, so the replication worker is the first to
// use it: the case where the pool's threads would be born in the worker's class). The servers'
// 127.0.0.1 is given as 'localhost', so that the worker's connect resolves it on the pool.
// usage: node replicate-thread-class-child.js <db> <servers> <background: default|true|false>
// Prints one JSON line { before, after, published }: before/after are [{ tid, comm, policy }]
// (policy: /proc/<pid>/task/<tid>/stat field 41, 0 SCHED_OTHER, 5 SCHED_IDLE), taken before
// replicateTo and once 20 commits are acknowledged by the stream.
'use strict';
const fs = require('node:fs');
const { open } = require('../../dist/index.js');

const [db, servers, background] = process.argv.slice(2);

function threads() {
  return fs.readdirSync('/proc/self/task').map((tid) => {
    const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields[0] is field 3
    return { tid: Number(tid), comm: fs.readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim(), policy: Number(fields[38]) };
  });
}

(async () => {
  const store = await open(db);
  const before = threads();
  const options = { servers: servers.replace('127.0.0.1', 'localhost'), stream: 'classes', ...(background === 'default' ? {} : { background: background === 'true' }) };
  const r = store.replicateTo(options);
  await r.ready;
  const page = Buffer.alloc(store.pageSize, 7);
  for (let i = 0; i < 20; i++) await store.commit([{ pgno: 2 + i, data: page }]);
  const until = Date.now() + 60_000;
  while (r.metrics().publishedSeq < 20 && Date.now() < until) await new Promise((s) => setTimeout(s, 5));
  const after = threads();
  process.stdout.write(`${JSON.stringify({ before, after, published: r.metrics().publishedSeq })}\n`);
  await r.stop();
  await store.close();
})().catch((e) => {
  process.stdout.write(`error ${e && e.stack}\n`);
  process.exit(1);
});
