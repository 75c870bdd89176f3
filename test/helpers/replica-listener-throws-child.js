// A replica whose 'applied' and 'rebase' listeners throw, for
// test/hostile/replicate-listener-throws.test.ts (a child process: the listeners' exceptions are
// uncaught exceptions, which would fail the test runner's own process).
// usage: node replica-listener-throws-child.js <dir> <servers> <stream>
// A primary publishes 5 commits, then a second session (a re-base of the replica) and 5 more.
// Prints one JSON line { uncaught, errors, reached, rebases }: the uncaught exceptions'
// messages (each once), the replica's 'error' events, whether it reached the primary's last
// commit of the second session within 10 s, and its re-bases.
'use strict';
const path = require('node:path');
const { open, openReplica } = require('../../dist/index.js');

const [dir, servers, stream] = process.argv.slice(2);
const uncaught = new Set();
process.on('uncaughtException', (e) => uncaught.add(e.message));
const page = (store, i) => Buffer.alloc(store.pageSize, i + 1);

(async () => {
  const store = await open(path.join(dir, 'p.db'));
  let r = store.replicateTo({ servers, stream, stopTimeoutMs: 30_000 });
  await r.ready;
  const replica = await openReplica(path.join(dir, 'replica.db'), { servers, stream });
  const errors = [];
  replica.on('error', (e) => errors.push(`${e.code} ${e.reason ?? ''} ${e.message}`));
  replica.on('applied', () => {
    throw new Error('a bug in the applied listener');
  });
  replica.on('rebase', () => {
    throw new Error('a bug in the rebase listener');
  });
  for (let i = 0; i < 5; i++) {
    await store.commit([{ pgno: 2 + i, data: page(store, i) }]);
    await new Promise((res) => setTimeout(res, 20)); // a batch each
  }
  await r.stop();
  r = store.replicateTo({ servers, stream, stopTimeoutMs: 30_000 }); // a new session: the replica re-bases
  await r.ready;
  for (let i = 5; i < 10; i++) await store.commit([{ pgno: 2 + i, data: page(store, i) }]);
  await r.stop();
  const { publishedSeq, session } = r.metrics();
  const reached = await Promise.race([replica.waitFor(publishedSeq, session).then(() => true, () => false), new Promise((res) => setTimeout(res, 10_000, false).unref())]);
  const rebases = replica.lag().rebases;
  await replica.close();
  await store.close();
  process.stdout.write(`${JSON.stringify({ uncaught: [...uncaught].sort(), errors, reached, rebases })}\n`);
})();
