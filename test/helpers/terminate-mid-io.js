// test/unit/workers.test.ts "terminated mid-I/O": worker.terminate() landing while a worker's
// JS thread is inside the addon (submitting an operation, or settling completions: native/
// io_thread.h), in a loop. Run as a child process: a crash ends it (exit by signal), not the
// test runner.
//   main thread: node terminate-mid-io.js <dir> <rounds> <workers>: each round starts <workers>
//                workers, lets each run 0-20 ms past its start, terminates them; prints 'ok N'.
//   worker:      keeps its I/O thread's completion list full of operations that settle with
//                values and with errors (a write to a descriptor opened read-only fails EBADF:
//                its WalnutError is built by calling the JS class), so a termination lands in
//                the addon far more often than not.
'use strict';
const path = require('node:path');
const { isMainThread, parentPort, workerData, Worker } = require('node:worker_threads');

if (isMainThread) {
  const [dir, rounds, workers] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
  (async () => {
    for (let r = 0; r < rounds; r++) {
      await Promise.all(Array.from({ length: workers }, async (_, k) => {
        const w = new Worker(__filename, { workerData: { file: path.join(dir, `t${k}.bin`) } });
        const failed = new Promise((resolve) => w.once('error', resolve));
        await Promise.race([new Promise((resolve) => w.once('message', resolve)), failed]);
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 20));
        await w.terminate();
      }));
    }
    process.stdout.write(`ok ${rounds}\n`);
  })();
} else {
  const { WalnutFile } = require('../../dist/index.js');
  (async () => {
    const rw = await WalnutFile.open(workerData.file, { create: true });
    const ro = await WalnutFile.open(workerData.file, { readOnly: true });
    const page = Buffer.alloc(512, 1);
    await rw.write(page, 0, page.length, 0);
    parentPort.postMessage('ready');
    for (;;) {
      const ops = [];
      for (let i = 0; i < 64; i++) {
        ops.push(rw.read(Buffer.alloc(512), 0, 512, 0));
        ops.push(ro.write(page, 0, page.length, 0).catch((e) => e.code));
        ops.push(rw.size());
      }
      await Promise.all(ops);
    }
  })();
}
