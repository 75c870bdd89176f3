// `walnut replica` listened for SIGINT/SIGTERM/SIGHUP twice in turn: while openReplica ran (to
// remove the replica it never made), then, once it resolved, in runUntilSignal (to close the
// replica). A signal that arrived while the process was busy as openReplica resolved was read
// only after the first listener was gone: Node hands a signal to the listener it was queued for,
// and none heard it. The replica ran on, catching up (breaker2: a Ctrl-C 4 s into a new replica
// of a 126 MB stream, the process still applying and reading 10 minutes later; a second Ctrl-C
// ended it). Now one listener serves the whole command, its handler chosen by phase: such a
// signal closes the replica, exit 0, as any signal once it is open. The helper preloaded into
// the command makes it busy for 1 s as openReplica resolves, and the signal comes then.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { open } from '../../lib/open';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';

if (NATS_SKIP !== null) console.warn(NATS_SKIP);

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
const busy = path.resolve(__dirname, '..', 'helpers', 'replica-busy-as-opened.js');
let nats: NatsNode | null = null;

describe.skipIf(NATS_SKIP !== null)('walnut replica signalled while openReplica resolves', () => {
  beforeAll(async () => {
    nats = await startNatsServer();
    const store = await open(path.join(dir, 'p.db'));
    const r = store.replicateTo({ servers: nats.url, stream: 'opened' });
    await r.ready;
    for (let i = 0; i < 5; i++) await store.commit([{ pgno: 2 + i, data: Buffer.alloc(4096, i + 1) }]);
    await r.stop();
    await store.close();
  }, 60_000);
  afterAll(() => stopNats([nats]));

  // (SIGTERM and SIGHUP go to the same listener)
  for (const signal of ['SIGINT'] as const) {
    it(`${signal}: the replica is closed and the command exits 0 (the signal was lost: it ran on)`, async () => {
      const db = path.join(dir, `${signal}.db`);
      const mark = path.join(dir, `${signal}.busy`);
      const replica = spawn(process.execPath, ['-r', busy, bin, 'replica', db, '--nats', nats!.url, '--stream', 'opened', '--json'], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, WALNUT_TEST_BUSY_MARK: mark, WALNUT_TEST_BUSY_MS: '1000' },
      });
      let stderr = '';
      let stdout = '';
      replica.stderr!.on('data', (d) => (stderr += d));
      replica.stdout!.on('data', (d) => (stdout += d));
      const exited = new Promise<[number | null, string | null]>((resolve) => replica.once('exit', (code, sig) => resolve([code, sig])));
      try {
        await until(() => fs.existsSync(mark), 30_000, () => stderr);
        replica.kill(signal); // while the command is busy, openReplica about to resolve
        const outcome = await Promise.race([exited, new Promise<string>((res) => setTimeout(() => res('still running 6 s after the signal'), 6000))]);
        expect(outcome, stderr).toEqual([0, null]);
      } finally {
        replica.kill('SIGKILL');
      }
      expect(JSON.parse(stdout.trim().split('\n').pop()!)).toHaveProperty('appliedSeq'); // its last report, as it closed
      const check = new Database(db, { readonly: true });
      try {
        expect(check.pragma('integrity_check', { simple: true })).toBe('ok');
      } finally {
        check.close();
      }
    }, 30_000);
  }
});
