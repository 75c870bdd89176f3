// Child/worker body for test/unit/workers.test.ts "the I/O thread's wake-up": what the
// completion wake-up (native/io_thread.h, a uv_async_t referenced only while operations are
// pending) must do to the life of the process or worker around it.
//   idle     opens a file, writes, syncs, leaves it open and schedules nothing: the process must
//            exit on its own (an idle addon keeps nothing alive)
//   inflight starts a write and a sync without awaiting them or keeping any other handle: the
//            process must stay alive until both completed, and print what the file holds
//   loop     (worker) writes and syncs in a loop until terminated, posting each round
'use strict';
const { isMainThread, parentPort, workerData } = require('node:worker_threads');
const { WalnutFile } = require('../../dist/index.js');

const [mode, file] = isMainThread ? process.argv.slice(2) : [workerData.mode, workerData.file];
(async () => {
  const f = await WalnutFile.open(file, { create: true });
  const data = Buffer.alloc(4096, 7);
  if (mode === 'idle') {
    await f.write(data, 0, data.length, 0);
    await f.fdatasync();
    process.stdout.write('idle\n');
  } else if (mode === 'inflight') {
    f.write(data, 0, data.length, 4096).then(() => f.fdatasync()).then(async () => {
      const back = Buffer.alloc(8192);
      await f.read(back, 0, back.length, 0);
      process.stdout.write(`done ${back[4096]} ${back[8191]}\n`);
      await f.close();
    });
  } else {
    for (let round = 0; ; round++) {
      for (let i = 0; i < 8; i++) await f.write(data, 0, data.length, i * 4096);
      await f.fdatasync();
      parentPort.postMessage(round);
    }
  }
})().catch((e) => {
  process.stderr.write(String(e && e.stack) + '\n');
  process.exitCode = 1;
});
