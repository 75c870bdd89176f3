// The addon is context-aware: several worker_threads load it at once, each with its own I/O
// thread, and every one of them can exit while the others keep working.
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';

import { crc32c, xxh3_64 } from '../../lib/checksum';
import { WalnutFile } from '../../lib/index';
import { HELPERS, runNode } from '../helpers/children';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

function runWorker(id: number): Promise<{ id: number; crc: number; xxh: string; error?: string }> {
  const w = new Worker(path.join(HELPERS, 'worker-io.js'), { workerData: { id, file: path.join(dir, `w${id}.bin`) } });
  return new Promise((resolve, reject) => {
    w.once('message', (m) => {
      resolve(m);
      void w.terminate();
    });
    w.once('error', reject);
  });
}

describe('worker_threads', () => {
  it('loads and works in four workers at once, twice over', async () => {
    for (let round = 0; round < 2; round++) {
      const results = await Promise.all([1, 2, 3, 4].map(runWorker));
      for (const r of results) {
        expect(r.error).toBeUndefined();
        const expected = Buffer.alloc(16 << 16, r.id);
        expect(r.crc).toBe(crc32c(expected));
        expect(r.xxh).toBe(xxh3_64(expected).toString());
      }
    }
  });

  // native/io_thread.h: completions reach JS through the I/O thread's own uv_async_t (referenced
  // only while operations are pending), closed by an async cleanup hook when the environment ends
  describe("the I/O thread's wake-up", () => {
    it('an idle process with a file left open exits on its own; one with a write and a sync in flight stays until both completed', async () => {
      const idle = await runNode(path.join(HELPERS, 'io-lifetime.js'), ['idle', path.join(dir, 'idle.bin')]);
      expect({ code: idle.code, stdout: idle.stdout, stderr: idle.stderr }).toEqual({ code: 0, stdout: 'idle\n', stderr: '' });
      const inflight = await runNode(path.join(HELPERS, 'io-lifetime.js'), ['inflight', path.join(dir, 'inflight.bin')]);
      expect({ code: inflight.code, stdout: inflight.stdout, stderr: inflight.stderr }).toEqual({ code: 0, stdout: 'done 7 7\n', stderr: '' });
    });

    it('worker.terminate() while its I/O thread writes and syncs, 16 workers: each ends, none takes the process down, and this thread\'s I/O goes on', async () => {
      const codes: number[] = [];
      for (let batch = 0; batch < 4; batch++) {
        await Promise.all([0, 1, 2, 3].map(async (k) => {
          const w = new Worker(path.join(HELPERS, 'io-lifetime.js'), { workerData: { mode: 'loop', file: path.join(dir, `loop${batch}-${k}.bin`) } });
          const errors: unknown[] = [];
          w.on('error', (e) => errors.push(e));
          // terminated after a few rounds, at a point of its loop that varies with k
          await new Promise<void>((resolve) => w.on('message', (round: number) => {
            if (round === 2 + k) resolve();
          }));
          await new Promise((resolve) => setTimeout(resolve, k));
          const code = await w.terminate();
          codes.push(code);
          expect(errors).toEqual([]);
        }));
      }
      expect(codes).toEqual(Array(16).fill(1)); // terminate()'s exit code
      const f = await WalnutFile.open(path.join(dir, 'after.bin'), { create: true });
      const data = Buffer.alloc(4096, 3);
      await f.write(data, 0, data.length, 0);
      await f.fdatasync();
      const back = Buffer.alloc(4096);
      await f.read(back, 0, back.length, 0);
      await f.close();
      expect(back.equals(data)).toBe(true);
    });

    // A termination lands from another thread at any instant, also inside the addon: a worker
    // submitting an operation (node-addon-api's Promise::Deferred left its promise handle
    // uninitialised when the promise could not be made, and the call returned it: SIGSEGV in
    // v8impl FunctionCallbackWrapper::Invoke, 3 of 3 runs of 150 rounds crashed by round 30) or
    // settling completions (a failure there was a fatal error). Now raw N-API (native/
    // js_value.h). A child process: a crash ends it, not the runner. The short form runs here;
    // `npm run test:stress-workers` runs 150 rounds of this and of the loops below.
    it('worker.terminate() landing inside the addon while it submits and settles, round after round: the process lives', async () => {
      const rounds = Number(process.env['WALNUT_STRESS_ROUNDS'] ?? 8);
      const r = await runNode(path.join(HELPERS, 'terminate-mid-io.js'), [dir, String(rounds), '4']);
      expect({ code: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({ code: 0, stdout: `ok ${rounds}\n`, stderr: '' });
    });

    // Every addon function that takes a file looks it up with NativeFile::StateOf (a commit's
    // walAppend, the checkpoint's copy and sync, the lane, the export's reads). Once a
    // termination began napi_unwrap fails and node-addon-api's Unwrap returns null, which StateOf
    // dereferenced: SIGSEGV in NativeFile::CheckOpen, first seen in a lane member terminated while
    // committing (walAppend), 1 of ~14 10-second runs; this loop crashed 6 of 6 runs of 100 rounds.
    it('worker.terminate() landing while the addon looks up a file argument, round after round: the process lives', async () => {
      const rounds = Number(process.env['WALNUT_STRESS_ROUNDS'] ?? 30); // (`npm run test:stress-workers`: 150)
      const r = await runNode(path.join(HELPERS, 'terminate-mid-state-of.js'), [dir, String(rounds), '4']);
      expect({ code: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({ code: 0, stdout: `ok ${rounds}\n`, stderr: '' });
    });

    // Options objects' properties were read with node-addon-api's Object::Get, whose failure once
    // a termination began (napi_get_named_property: napi_pending_exception) is turned into a
    // Napi::Error: a fatal error of the process ("FATAL ERROR: Error::New
    // napi_get_last_error_info", abort), 4 of 4 runs of 100 rounds of walScanSync's chain.
    it('worker.terminate() landing while the addon reads an options object\'s properties, round after round: the process lives', async () => {
      const rounds = Number(process.env['WALNUT_STRESS_ROUNDS'] ?? 15); // (it crashed within the first few rounds)
      const r = await runNode(path.join(HELPERS, 'terminate-mid-state-of.js'), [dir, String(rounds), '4', 'props']);
      expect({ code: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({ code: 0, stdout: `ok ${rounds}\n`, stderr: '' });
    });

    // The lane hands a member's commits to its leader in a Float64Array and a Buffer made for
    // them (native/commit_lane_binding.cc Hand); under a termination they are made empty and were
    // written through null: SIGSEGV in CommitLane::Hand, first seen with lane workers terminated
    // at random (test/interop/workers-chaos), 2 of 3 runs of 100 rounds of this loop.
    // No time limit of its own: the config's testTimeout, as its siblings (a 60 s one cut
    // `npm run test:stress-workers`'s 150 rounds short under load: 143 s alone on a busy 2-core VM).
    it('worker.terminate() landing while the lane hands a member\'s commits to the leader of its thread, round after round: the process lives', async () => {
      const rounds = Number(process.env['WALNUT_STRESS_ROUNDS'] ?? 30); // (`npm run test:stress-workers`: 150)
      const r = await runNode(path.join(HELPERS, 'terminate-mid-state-of.js'), [dir, String(rounds), '4', 'lane']);
      expect({ code: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({ code: 0, stdout: `ok ${rounds}\n`, stderr: '' });
    });
  });
});

