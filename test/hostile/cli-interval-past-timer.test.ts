// `walnut replicate` / `walnut replica` with an --interval past the longest timer Node.js keeps
// (2^31 - 1 ms, about 24.8 days): Node set the timer to 1 ms instead and said so on stderr
// (TimeoutOverflowWarning), so the command printed its metrics about 600 times a second (1,195
// lines in 2 s, measured) where the user asked for almost never. Now it is refused before anything
// is opened (WALNUT_INVALID_ARGUMENT, reason interval), as 0 and 'abc' were already; the longest
// timer itself is taken.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { spawn } from 'node:child_process';
import { spawnOutput } from '../helpers/children';
import { sqliteWritesWal, typicalWork } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';
import { until, WAIT_MS } from '../helpers/until';

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
const NATS = 'nats://127.0.0.1:1'; // nobody answers: nothing here may need it
/** A hang detector: a refusal is at once; the flood went on until this. */
const HANG_MS = 10_000;

describe('--interval past the longest timer', () => {
  it('is refused before anything is opened (it printed every 1 ms)', async () => {
    const db = sqliteWritesWal(dir, 'app', 4096, typicalWork(3, 1)).db;
    const before = fs.readdirSync(dir).sort();
    for (const interval of ['2147483648', '9999999999', '1000000000000']) {
      for (const args of [['replicate', db, '--nats', NATS, '--stream', 's'], ['replica', path.join(dir, 'replica.db'), '--nats', NATS, '--stream', 's']]) {
        const what = `${args[0]} --interval ${interval}`;
        const r = await spawnOutput(process.execPath, [bin, ...args, '--interval', interval, '--json'], { timeout: HANG_MS });
        expect(r.signal, `${what}: still running`).toBe(null);
        expect(r.status, what).toBe(2);
        expect(r.stderr, what).toMatch(/^walnut: WALNUT_INVALID_ARGUMENT: --interval must be at most 2147483647 ms[^\n]*\n$/);
        expect(JSON.parse(r.stdout), what).toMatchObject({ error: { code: 'WALNUT_INVALID_ARGUMENT', reason: 'interval' } });
      }
    }
    expect(fs.readdirSync(dir).sort()).toEqual(before); // no -wal/-shm, no replica files
  });

  it('2147483647 itself is taken: one report, at the stop, and no warning', async () => {
    const db = sqliteWritesWal(dir, 'max', 4096, typicalWork(3, 2)).db;
    const child = spawn(process.execPath, [bin, 'replicate', db, '--nats', NATS, '--stream', 's', '--interval', '2147483647', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    try {
      await until(() => /retrying/.test(stderr), WAIT_MS, () => stderr); // running: its first connection attempt failed
      await new Promise((r) => setTimeout(r, 200));
      child.kill('SIGTERM');
      expect(await exited).toBe(2); // nothing published, no server ever answered (cli-replicate-interrupted-unpublished)
    } finally {
      child.kill('SIGKILL');
    }
    expect(stderr).not.toMatch(/TimeoutOverflowWarning/);
    const lines = stdout.trim().split('\n');
    expect(lines).toHaveLength(2); // the report at the stop, then the exit's error
    expect(JSON.parse(lines[0]!)).toMatchObject({ publishedSeq: -1 });
    expect(JSON.parse(lines[1]!)).toMatchObject({ error: { code: 'WALNUT_IO', reason: 'Unreachable' } });
  });
});
