// Hostile: replication while other threads keep every CPU busy. With the worker thread in the
// kernel's background class (SCHED_IDLE, which was the default for one release) the kernel
// weighs it 3 against 1,024: measured, a replica applied 192-3,648 of 8,000-33,000 commits,
// stop() took 12-28 s against stopTimeoutMs 5 s and ended WorkerExited, and lagExceeded never
// fired (the backlog waited in the WAL, ahead of the export). By default the worker now stays in
// the normal class and gets its fair share: every commit made under the load is acknowledged by
// the stream when stop() resolves, without a StopTimeout. Each case runs in a fresh process
// (test/helpers/replicate-busy-cpus-child.js) with one spinning thread per CPU of its own.
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import { restoreFromNats } from '../../lib/replicate/restore-nats';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { pageHashes } from '../helpers/page-hashes';
import { tmpDir } from '../helpers/tmp';

const run = promisify(execFile);
const dir = tmpDir('walnut-hostile-busy-cpus-');
const child = path.join(__dirname, '..', 'helpers', 'replicate-busy-cpus-child.js');

describe.skipIf(NATS_SKIP !== null)('replication while every CPU is busy', () => {
  let server: NatsNode;
  beforeAll(async () => {
    server = await startNatsServer();
  });
  afterAll(() => stopNats([server]));

  it('default options: every commit made under the load is stored in the stream by the time stop() resolves', async () => {
    const db = path.join(dir, 'busy.db');
    const { stdout } = await run(process.execPath, [child, db, server.url, 'busy', '3', 'default'], { timeout: 120_000 });
    const report = JSON.parse(stdout.trim()) as { made: number; published: number; stopMs: number; stopError: string | null; lastError: string | null; behindAtEnd: number; behindCaughtUp: number | null };
    const note = JSON.stringify(report);
    expect(report.made, note).toBeGreaterThan(0);
    expect(report.stopError, note).toBeNull();
    expect(report.lastError, note).toBeNull();
    expect(report.published, note).toBe(report.made);
    // nothing is left ahead of the export once the stream has every commit (metrics().exportBehindBytes)
    expect(typeof report.behindAtEnd, note).toBe('number');
    expect(report.behindCaughtUp, note).toBe(0);
    // and the stream holds them: restored, it is the primary's newest state, page for page
    const restored = path.join(dir, 'busy-restored.db');
    await restoreFromNats(restored, { servers: server.url, stream: 'busy' });
    const [primary, copy] = [await open(db), await open(restored)];
    try {
      expect(await pageHashes(copy)).toEqual(await pageHashes(primary));
    } finally {
      await primary.close();
      await copy.close();
    }
  }, 150_000);
});
