// A process for test/hostile/export-writable-error.test.ts: a follow export to a Writable that
// has no 'error' listener of its caller's (a socket whose peer resets, a file stream destroyed
// under it), destroyed with an error (ECONNRESET, a peer that went away) between two flushes.
// usage: node export-sink-error-child.js <dir>
// Prints "done <json: how handle.done settled, and the 'error' listeners left on the stream>" and exits 0; an uncaught exception (the 'error'
// event of a stream nobody listens to) ends the process with status 1 and no "done".
'use strict';
const path = require('node:path');
const { Writable } = require('node:stream');
const { open } = require('../../dist/index.js');

const [dir] = process.argv.slice(2);
const page = (v) => Buffer.alloc(4096, v);

(async () => {
  const store = await open(path.join(dir, 'reset.db'));
  await store.commit([{ pgno: 2, data: page(1) }]);
  let written = 0;
  const sink = new Writable({
    write(chunk, _enc, callback) {
      written += chunk.length;
      setImmediate(callback);
    },
  });
  const handle = store.exportTo(sink, { follow: true, pollMs: 1 });
  const settled = handle.done.then((v) => ({ ok: v }), (e) => ({ name: e.name, code: e.code }));
  const grown = () => written > 8192;
  for (let i = 0; !grown(); i++) {
    await store.commit([{ pgno: 2 + (i % 3), data: page(i) }]);
    handle.poke();
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  sink.destroy(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }));
  for (let i = 0; i < 10; i++) {
    await store.commit([{ pgno: 2 + (i % 3), data: page(100 + i) }]);
    handle.poke();
  }
  const outcome = await settled;
  outcome.errorListeners = sink.listenerCount('error'); // the export's own left with it
  await store.close();
  await new Promise((resolve) => setTimeout(resolve, 50)); // a late 'error' event would end the process here
  process.stdout.write(`done ${JSON.stringify(outcome)}\n`);
})().catch((e) => {
  process.stdout.write(`error ${String(e && e.stack).replace(/\n/g, ' ')}\n`);
  process.exitCode = 1;
});
