// test/unit/workers.test.ts "terminated while the addon unwraps a file argument": worker.terminate()
// landing while a worker's JS thread is inside an addon function that takes a NativeFile (a
// commit's walAppend, a checkpoint's copy and sync, the lane, the export's reads: all look the
// file up through NativeFile::StateOf). Once a termination began, napi_unwrap fails (the
// environment can no longer call into JS) and node-addon-api's Unwrap returns null: StateOf
// dereferenced it (SIGSEGV in NativeFile::CheckOpen, seen under worker.terminate() of lane
// members committing). Run as a child process: a crash ends it (exit by signal), not the runner.
// The same for an options object's properties (args.h GetU32Prop, frames.cc ParseChain): read
// with node-addon-api's Object::Get, whose failure under a termination went through
// Napi::Error::New, a fatal error of the process ("FATAL ERROR: Error::New
// napi_get_last_error_info", abort), 4 of 4 runs of 100 rounds.
// And for the lane handing a member's commits to its leader (commit_lane_binding.cc Hand: a
// Float64Array and a Buffer made for them, then written into): made empty under a termination,
// they were written through null (SIGSEGV in CommitLane::Hand, 1 of 12 10-second runs of 6 lane
// workers terminated at random; 2 of 3 runs of 100 rounds here).
//   main thread: node terminate-mid-state-of.js <dir> <rounds> <workers> [lookup|props|lane]: each
//                round starts <workers> workers, lets each run 0-5 ms past its start,
//                terminates them; prints 'ok N'.
//   worker:      lookup: calls walZeroAhead(file, file) back to back: two StateOf lookups, then
//                a thrown WALNUT_INVALID_ARGUMENT (the same descriptor twice), no I/O and no
//                property read. props: walScanSync(file, chain) of an empty file back to back
//                (StateOf, the chain's six properties, one pread of nothing, a small result).
//                lane: two stores of one file, the second's one-page commits taken by the first.
'use strict';
const path = require('node:path');
const { isMainThread, parentPort, workerData, Worker } = require('node:worker_threads');

if (isMainThread) {
  const [dir, rounds, workers, mode = 'lookup'] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4]), process.argv[5]];
  (async () => {
    for (let r = 0; r < rounds; r++) {
      await Promise.all(Array.from({ length: workers }, async (_, k) => {
        const w = new Worker(__filename, { workerData: { file: path.join(dir, `s${k}.bin`), mode } });
        const failed = new Promise((resolve) => w.once('error', resolve));
        await Promise.race([new Promise((resolve) => w.once('message', resolve)), failed]);
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 5));
        await w.terminate();
      }));
    }
    process.stdout.write(`ok ${rounds}\n`);
  })();
} else {
  if (workerData.mode === 'lane') {
    // two stores of one file in this worker: the first leads, the second's commits go through
    // the lane, handed to the leader (CommitLane::Hand: a Float64Array and a Buffer made for them)
    const { open } = require('../../dist/index.js');
    (async () => {
      const leader = await open(workerData.file + '.db', { pageSize: 4096 });
      const member = await open(workerData.file + '.db', { pageSize: 4096 });
      const page = Buffer.alloc(4096, 7);
      parentPort.postMessage('ready');
      for (;;) await Promise.all(Array.from({ length: 32 }, (_, i) => member.commit([{ pgno: 2 + (i % 8), data: page }]).catch(() => 0)));
    })();
    return;
  }
  const { NativeFile, nativeFrames } = require('../../dist/native.js');
  const file = new NativeFile(workerData.file, { create: true });
  parentPort.postMessage('ready');
  const chain = { pageSize: 4096, bigEndian: false, salt1: 0, salt2: 0, s0: 0, s1: 0 };
  if (workerData.mode === 'props') for (;;) nativeFrames.scanSync(file, chain);
  for (;;) {
    try {
      nativeFrames.zeroAhead(file, file, 0, 0);
    } catch (e) {
      if (e.code !== 'WALNUT_INVALID_ARGUMENT') throw e;
    }
  }
}
