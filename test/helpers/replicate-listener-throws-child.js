// A replication whose 'published' listener throws at its second call, for
// test/hostile/replicate-listener-throws.test.ts (a child process: the listener's exception is
// an uncaught exception, which would fail the test runner's own process).
// usage: node replicate-listener-throws-child.js <db> <servers> <stream> <thread: true|false>
// Prints one JSON line { uncaught, errors, publishedSeq, exportedSeq }: the uncaught exceptions'
// messages, the 'error' events' reasons, and the metrics once 10 commits were made and stop()ed.
'use strict';
const { open } = require('../../dist/index.js');

const [db, servers, stream, thread] = process.argv.slice(2);
const uncaught = [];
process.on('uncaughtException', (e) => uncaught.push(e.message));

(async () => {
  const store = await open(db);
  const r = store.replicateTo({ servers, stream, thread: thread === 'true', stopTimeoutMs: 30_000 });
  const errors = [];
  r.on('error', (e) => errors.push(`${e.code} ${e.reason ?? ''} ${e.message}`));
  let calls = 0;
  r.on('published', () => {
    if (++calls === 2) throw new Error('a bug in the listener');
  });
  await r.ready;
  for (let i = 0; i < 10; i++) {
    await store.commit([{ pgno: 2 + i, data: Buffer.alloc(store.pageSize, i + 1) }]);
    await new Promise((res) => setTimeout(res, 20)); // a message (and a 'published') each
  }
  await r.stop();
  const m = r.metrics();
  await store.close();
  process.stdout.write(`${JSON.stringify({ uncaught, errors, publishedSeq: m.publishedSeq, exportedSeq: m.exportedSeq })}\n`);
})();
