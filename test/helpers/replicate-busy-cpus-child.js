// A process whose own threads keep every CPU busy while its store replicates, for
// test/hostile/replicate-busy-cpus.test.ts: one spinning worker_thread per CPU, then 64
// committers for `seconds`, then stop(). Its own process, so that the spinning threads compete
// with the replication worker whatever the kernel's grouping of processes (autogroup, cgroups).
// usage: node replicate-busy-cpus-child.js <db> <servers> <stream> <seconds> <background: default|true|false>
// Prints one JSON line { made, published, stopMs, stopError, lastError, behindAtEnd, behindCaughtUp }:
// metrics().exportBehindBytes as the commits end, and once the stream has them all (null: it
// did not within 30 s).
'use strict';
const os = require('node:os');
const { Worker } = require('node:worker_threads');
const { open } = require('../../dist/index.js');

const [db, servers, stream, seconds, background] = process.argv.slice(2);

(async () => {
  const spinners = Array.from({ length: os.availableParallelism() }, () => new Worker('for (;;) {}', { eval: true }));
  const store = await open(db);
  const options = { servers, stream, stopTimeoutMs: 10_000, ...(background === 'default' ? {} : { background: background === 'true' }) };
  const r = store.replicateTo(options);
  let lastError = null;
  r.on('error', (e) => (lastError = `${e.code} ${e.message}`));
  await r.ready;
  const page = Buffer.alloc(store.pageSize, 7);
  let made = 0;
  const until = Date.now() + Number(seconds) * 1000;
  await Promise.all(
    Array.from({ length: 64 }, async (_, w) => {
      for (let i = 0; Date.now() < until; i++) {
        await store.commit([{ pgno: 2 + ((w * 31 + i) % 500), data: page }]);
        made++;
      }
    }),
  );
  // the backlog ahead of the export as the commits end, and once the stream has them all
  const behindAtEnd = r.metrics().exportBehindBytes;
  const caughtUpBy = Date.now() + 30_000;
  while (r.metrics().publishedSeq < made && Date.now() < caughtUpBy) await new Promise((s) => setTimeout(s, 10));
  const behindCaughtUp = r.metrics().publishedSeq >= made ? r.metrics().exportBehindBytes : null;
  const t0 = Date.now();
  let stopError = null;
  await r.stop().catch((e) => (stopError = `${e.code} ${e.message}`));
  const stopMs = Date.now() - t0;
  const published = r.metrics().publishedSeq;
  await Promise.all(spinners.map((s) => s.terminate()));
  await store.close();
  process.stdout.write(`${JSON.stringify({ made, published, stopMs, stopError, lastError, behindAtEnd, behindCaughtUp })}\n`);
})().catch((e) => {
  process.stdout.write(`error ${e && e.stack}\n`);
  process.exit(1);
});
