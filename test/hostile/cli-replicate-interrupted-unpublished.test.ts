// `walnut replicate` stopped by SIGINT while commits it had exported were not stored in the
// stream (the server gone: stop() gave up after stopTimeoutMs, 5 s, with an 'error' WALNUT_IO
// reason StopTimeout naming them), or while no server had ever answered (nothing published, not
// even the base image), exited 0, "done and healthy", after printing that error line: a script
// or supervisor took the stream for complete up to the stop. Now such a stop ends the command
// with exit 2, its last line naming what was not published; a stop that published everything
// exits 0 as before (cli-replicate-overtaken, interop/replicate).
import { spawn, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { NATS_SKIP, NOBODY_ANSWERS, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';

if (NATS_SKIP !== null) console.warn(NATS_SKIP);

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
const started: NatsNode[] = [];
afterAll(() => stopNats(started));

function sqlite(db: string, sql: string): void {
  const r = spawnSync('sqlite3', [db, sql], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
}

/** `walnut replicate DB` on `url`, its JSON lines (every 100 ms) and stderr as they come, and its exit. */
function replicate(db: string, url: string, stream: string) {
  const child = spawn(process.execPath, [bin, 'replicate', db, '--nats', url, '--stream', stream, '--interval', '100', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const out = { stdout: '', stderr: '' };
  child.stdout!.on('data', (d) => (out.stdout += d));
  child.stderr!.on('data', (d) => (out.stderr += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const last = (): Record<string, unknown> | null => {
    const lines = out.stdout.trim().split('\n').filter((l) => l.startsWith('{'));
    return lines.length > 0 ? JSON.parse(lines[lines.length - 1]!) : null;
  };
  return { child, out, exited, last };
}

describe.skipIf(NATS_SKIP !== null)('walnut replicate interrupted with commits not published', () => {
  it('exits 2 naming them (the server gone after the session began; no server ever): it exited 0', async () => {
    const server = await startNatsServer();
    started.push(server);
    const gone = path.join(dir, 'gone.db');
    const never = path.join(dir, 'never.db');
    for (const db of [gone, never]) sqlite(db, 'PRAGMA journal_mode=WAL; CREATE TABLE t(v); INSERT INTO t VALUES (1);');
    const a = replicate(gone, server.url, 'gone');
    const b = replicate(never, NOBODY_ANSWERS, 'never');
    try {
      await until(() => a.last()?.['session'] != null, 30_000, () => a.out);
      await server.stop();
      sqlite(gone, 'INSERT INTO t VALUES (2);');
      await until(() => Number(a.last()?.['exportedSeq']) > Number(a.last()?.['publishedSeq']), 30_000, () => a.out); // exported, never stored
      await until(() => b.out.stderr.includes('retrying'), 30_000, () => b.out);
      a.child.kill('SIGINT');
      b.child.kill('SIGINT');
      const [codeA, codeB] = await Promise.all([a.exited, b.exited]);
      expect(codeA, a.out.stderr).toBe(2);
      // 1..1 the sqlite3 commit; 0..1 when the server went before it had stored the session's base (commit 0) too (CI, loaded)
      expect(a.out.stderr.trim().split('\n').pop()).toMatch(/^walnut: WALNUT_IO: replication stop\(\): stopTimeoutMs \(5000 ms\) passed before commits [01]\.\.1 of session \S+ were stored in the stream$/);
      expect(codeB, b.out.stderr).toBe(2);
      expect(b.out.stderr.trim().split('\n').pop()).toMatch(/^walnut: WALNUT_IO: nothing was published: no NATS server answered .* before the stop/);
    } finally {
      a.child.kill('SIGKILL');
      b.child.kill('SIGKILL');
    }
  }, 60_000);
});
