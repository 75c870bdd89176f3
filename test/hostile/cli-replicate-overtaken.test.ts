// Hostile: `walnut replicate` whose replication stops for good — another primary took its
// stream ('error' WALNUT_CONFLICT reason OtherPrimary, then 'end') — exits 2 naming the
// failure; it ran on until a signal, printing metrics that never moved (and then exited 0).
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';

const dir = tmpDir('walnut-hostile-cli-overtaken-');
const started: NatsNode[] = [];
const commands: ChildProcess[] = [];
afterAll(async () => {
  for (const c of commands) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL'); // a command that ran on
  await stopNats(started);
});

function walDb(name: string): string {
  const file = path.join(dir, name);
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE t(x)');
  db.close();
  return file;
}

describe.skipIf(NATS_SKIP !== null)('walnut replicate overtaken by another primary', () => {
  it('exits 2 with WALNUT_CONFLICT once the other primary took the stream', async () => {
    const server = await startNatsServer();
    started.push(server);
    const a = walDb('a.db');
    const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
    const child = spawn(process.execPath, [bin, 'replicate', a, '--nats', server.url, '--stream', 'twin', '--interval', '20', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    commands.push(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
    // a's first session is published (its metrics name a session and its base image)
    await until(() => /"bases":1/.test(stdout), 60_000, () => stdout + stderr);
    // b, another database, is started on the same stream by mistake
    const b = await open(walDb('b.db'));
    const rb = b.replicateTo({ servers: server.url, stream: 'twin' });
    await rb.ready;
    await until(() => rb.metrics().bases >= 1, 60_000, () => rb.metrics());
    // a's next commit (sqlite3's) is refused by the stream: a's replication stops
    const db = new Database(a);
    db.exec('INSERT INTO t VALUES (1)');
    db.close();
    const code = await closed;
    await rb.stop();
    await b.close();
    expect(stderr).toMatch(/^walnut: WALNUT_CONFLICT: .*another walnut primary/m);
    expect(code).toBe(2);
  });
});
