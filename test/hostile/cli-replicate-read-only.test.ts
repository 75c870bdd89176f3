// `walnut replicate --read-only`: a replication that writes nothing to the database file or its
// -wal (open()'s readOnly: its store and its worker's connection read-only, commit/read-only.ts).
// `walnut replicate` opened a read-write store: its worker checkpointed as each session began and,
// the last connection at the end, it checkpointed the -wal into the file and removed the -wal and
// -shm. With --read-only, a database whose commits are only in its -wal is published (a restore
// from the stream has every row) and keeps every byte of its file and -wal (sha256); without the
// flag the -wal is gone after the same run; an empty file, which the replication would have to
// give a page 1, is refused (exit 2, WALNUT_CANTOPEN) and stays empty.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { spawnOutput } from '../helpers/children';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { fileAndWalSha256, walDatabaseIn } from '../helpers/read-only-files';
import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';

const dir = tmpDir('walnut-replicate-ro-');
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
const walnut = (...args: string[]) => spawnOutput(process.execPath, [bin, ...args], { timeout: 15_000 });
let nats: NatsNode | null = null;
afterAll(() => stopNats([nats]));
let n = 0;



/** Runs `walnut replicate` (with `extra`) until it published a base image, then SIGINT; its exit. */
async function replicateOnce(url: string, file: string, stream: string, extra: string[]): Promise<void> {
  const child = spawn(process.execPath, [bin, 'replicate', file, '--nats', url, '--stream', stream, '--interval', '100', '--json', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  let [stdout, stderr] = ['', ''];
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<[number | null, string | null]>((resolve) => child.once('exit', (code, signal) => resolve([code, signal])));
  try {
    await until(() => /"publishedSeq":[1-9]/.test(stdout) || child.exitCode !== null, 30_000, () => ({ stdout, stderr }));
  } finally {
    child.kill('SIGINT');
  }
  expect(await exited, stderr).toEqual([0, null]);
}

describe.skipIf(NATS_SKIP !== null)('walnut replicate --read-only', () => {
  it('publishes the commits in the -wal and leaves the file and the -wal byte for byte; without it the -wal is gone', async () => {
    nats ??= await startNatsServer();
    const file = await walDatabaseIn(dir);
    const before = fileAndWalSha256(file);
    await replicateOnce(nats.url, file, 'ro', ['--read-only']);
    expect(fileAndWalSha256(file), 'replicate --read-only changed the database').toEqual(before);
    const restored = path.join(dir, `restored${n++}.db`);
    const r = await walnut('restore', '--nats', nats.url, '--stream', 'ro', restored);
    expect(r.status, r.stderr).toBe(0);
    expect((await spawnOutput('sqlite3', [restored, 'SELECT count(*) FROM t; PRAGMA integrity_check'])).stdout.trim()).toBe('5\nok');
    // (what it keeps from happening: the same run without the flag)
    await replicateOnce(nats.url, file, 'rw', []);
    expect(fileAndWalSha256(file).wal).toBe('absent');
  });

  it('an empty file is refused, WALNUT_CANTOPEN, and stays empty', async () => {
    nats ??= await startNatsServer();
    const file = path.join(dir, 'empty.db');
    fs.writeFileSync(file, '');
    const r = await walnut('replicate', file, '--nats', nats.url, '--stream', 'empty', '--read-only');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/WALNUT_CANTOPEN/);
    expect(fs.statSync(file).size).toBe(0);
  });
});
