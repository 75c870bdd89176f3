// Commits under strace (test/interop/commit-syscalls.test.ts): opens a store, warms up, then
// writes the marker "<<commits>>" to stderr, runs `loops` committers that each commit `each`
// one-page commits back to back (so batches follow each other with the queue never empty),
// writes "<</commits>>" and closes. With `laneStores: n` in the options, n stores of this thread
// share the file's commit lane and the committers are spread over them (the first leads). The test counts the system calls strace saw between the
// markers; stdout gets the batches and commits made between them.
'use strict';
const { open } = require('../../dist/index.js');

async function main() {
  const [file, loops, each, json] = process.argv.slice(2);
  const { laneStores = 1, ...options } = JSON.parse(json);
  const store = await open(file, options);
  const stores = [store];
  for (let i = 1; i < laneStores; i++) stores.push(await open(file, options));
  const data = Buffer.alloc(store.pageSize, 7);
  for (let i = 0; i < 4; i++) await store.commit([{ pgno: 2 + i, data }]);
  const m0 = store.metrics();
  process.stderr.write('<<commits>>\n');
  await Promise.all(Array.from({ length: Number(loops) }, async (_, w) => {
    const s = stores[w % stores.length];
    for (let i = 0; i < Number(each); i++) await s.commit([{ pgno: 2 + ((w + i) % 64), data }]);
  }));
  process.stderr.write('<</commits>>\n');
  const m = store.metrics();
  for (const s of stores.slice(1)) await s.close();
  await store.close();
  process.stdout.write(JSON.stringify({ batches: m.batches - m0.batches, commits: m.commits - m0.commits }) + '\n');
}

main().catch((e) => {
  process.stdout.write(JSON.stringify({ error: String(e && e.stack) }) + '\n');
  process.exitCode = 1;
});
