// store.replicateTo's worker thread in the kernel's background class (option `background: true`,
// default false; replicate/worker.ts, native/thread_class.h): on Linux the worker alone moves to
// SCHED_IDLE, the store's thread and every thread that was there before stay in the normal
// class, and so do the libuv pool's threads even when the worker is the first to use the pool
// (they serve the store's thread too); by default, and with `background: false`, every thread
// stays normal (in the background class the worker all but stops when other threads keep every
// CPU busy: test/hostile/replicate-background-starved.test.ts). Each case
// runs in a fresh process (test/helpers/replicate-thread-class-child.js) whose main thread has
// not started the pool and whose servers name 'localhost' (the worker's connect resolves it on
// the pool). Replication still delivers every commit (20 acknowledged).
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { open } from '../../lib/open';
import { expectWalnutError } from '../helpers/expect-error';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { tmpDir } from '../helpers/tmp';

const run = promisify(execFile);
const dir = tmpDir();
const child = path.join(__dirname, '..', 'helpers', 'replicate-thread-class-child.js');
const SCHED_OTHER = 0;
const SCHED_IDLE = 5;

interface Thread {
  tid: number;
  comm: string;
  policy: number;
}

describe.skipIf(NATS_SKIP !== null || process.platform !== 'linux')('the replication worker in the background class', () => {
  let server: NatsNode;
  beforeAll(async () => {
    server = await startNatsServer();
  });
  afterAll(() => stopNats([server]));

  const classes = async (name: string, background: 'default' | 'true' | 'false') => {
    const { stdout } = await run(process.execPath, [child, path.join(dir, `${name}.db`), server.url, background], { timeout: 120_000 });
    const report = JSON.parse(stdout.trim()) as { before: Thread[]; after: Thread[]; published: number };
    const existed = new Set(report.before.map((t) => t.tid));
    const born = report.after.filter((t) => !existed.has(t.tid));
    return { ...report, born, note: JSON.stringify(report.after) };
  };

  for (const background of ['true'] as const) {
    it(`background ${background}: the worker thread alone is SCHED_IDLE; the store's thread, the threads before it and the libuv pool it started stay normal`, async () => {
      const { before, after, born, published, note } = await classes(`bg-${background}`, background);
      expect(published, note).toBeGreaterThanOrEqual(20);
      expect(before.every((t) => t.policy === SCHED_OTHER), note).toBe(true);
      // every thread there before replicateTo (the store's thread among them) is still normal
      const stayed = after.filter((t) => before.some((b) => b.tid === t.tid));
      expect(stayed.every((t) => t.policy === SCHED_OTHER), note).toBe(true);
      // born meanwhile: the worker's JS thread (comm 'node', idle), the libuv pool's four threads
      // (comm 'node', started by the worker: its connect's DNS lookup of 'localhost' would
      // otherwise be the pool's first use, after it moved: measured, all four were then idle),
      // and the worker's own I/O lanes (walnut-*, not asserted)
      const idleNode = born.filter((t) => t.comm === 'node' && t.policy === SCHED_IDLE);
      const normalNode = born.filter((t) => t.comm === 'node' && t.policy === SCHED_OTHER);
      expect(idleNode, note).toHaveLength(1);
      expect(normalNode.length, note).toBeGreaterThanOrEqual(1); // the pool (4 by default, UV_THREADPOOL_SIZE)
      expect(born.filter((t) => t.comm === 'node' && t.policy !== SCHED_IDLE && t.policy !== SCHED_OTHER), note).toHaveLength(0);
    });
  }

  for (const background of ['default', 'false'] as const) {
    it(`background ${background}: every thread stays in the normal class`, async () => {
      const { after, born, published, note } = await classes(`bg-${background}`, background);
      expect(published, note).toBeGreaterThanOrEqual(20);
      expect(born.length, note).toBeGreaterThan(0);
      expect(after.every((t) => t.policy === SCHED_OTHER), note).toBe(true);
    });
  }
});

describe('replicateTo option background', () => {
  it('must be true or false, and true only with the worker thread: WALNUT_INVALID_ARGUMENT reason background', async () => {
    const store = await open(path.join(dir, 'option.db'));
    try {
      for (const bad of ['yes', 1, null]) {
        expectWalnutError(() => store.replicateTo({ servers: 'nats://127.0.0.1:1', stream: 's', background: bad as unknown as boolean }), 'WALNUT_INVALID_ARGUMENT', { reason: 'background' });
      }
      // the class is the worker's: with no worker it was silently not had
      expectWalnutError(() => store.replicateTo({ servers: 'nats://127.0.0.1:1', stream: 's', thread: false, background: true }), 'WALNUT_INVALID_ARGUMENT', { reason: 'background' });
    } finally {
      await store.close();
    }
  });
});
