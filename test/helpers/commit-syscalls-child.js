// Commits under strace (test/interop/commit-syscalls.test.ts): opens a store, warms up, then
// writes the marker "<<commits>>" to stderr, commits `lone` one-page commits one after
// another and `rounds` rounds of `width` concurrent one-page commits, writes "<</commits>>"
// and closes. The test counts the system calls strace saw between the markers.
'use strict';
const { open } = require('../../dist/index.js');

async function main() {
  const [file, lone, rounds, width, options] = process.argv.slice(2);
  const store = await open(file, JSON.parse(options));
  const data = Buffer.alloc(store.pageSize, 7);
  for (let i = 0; i < 4; i++) await store.commit([{ pgno: 2 + i, data }]);
  await Promise.all(Array.from({ length: Number(width) }, (_, i) => store.commit([{ pgno: 2 + i, data }])));
  process.stderr.write('<<commits>>\n');
  for (let i = 0; i < Number(lone); i++) await store.commit([{ pgno: 2 + (i % 8), data }]);
  for (let r = 0; r < Number(rounds); r++) {
    await Promise.all(Array.from({ length: Number(width) }, (_, i) => store.commit([{ pgno: 2 + i, data }])));
  }
  process.stderr.write('<</commits>>\n');
  const m = store.metrics();
  await store.close();
  process.stdout.write(JSON.stringify({ batches: m.batches, commits: m.commits }) + '\n');
}

main().catch((e) => {
  process.stdout.write(JSON.stringify({ error: String(e && e.stack) }) + '\n');
  process.exitCode = 1;
});
