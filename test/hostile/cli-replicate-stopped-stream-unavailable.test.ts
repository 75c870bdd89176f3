// `walnut replicate --replicas 3` against a server that answers but is not in a cluster: the
// stream cannot be created ("replicas > 1 not supported in non-clustered mode"), which the
// command tells while it retries (WALNUT_IO reason StreamUnavailable). Stopped then (SIGTERM),
// it exits 2, nothing published, and its last line said "no NATS server answered at URL
// before the stop": the network blamed for a server that answered and refused the stream.
// Now the last line gives the reason the retries were told (reason StreamUnavailable); with
// no server answering at all it says what it said (cli-replicate-interrupted-unpublished).
import { spawn, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';

if (NATS_SKIP !== null) console.warn(NATS_SKIP);

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
const started: NatsNode[] = [];
afterAll(() => stopNats(started));

describe.skipIf(NATS_SKIP !== null)('walnut replicate stopped while its stream cannot be created', () => {
  it('exits 2 with the server\'s reason last (it said no server answered)', async () => {
    const server = await startNatsServer();
    started.push(server);
    const db = path.join(dir, 'app.db');
    const made = spawnSync('sqlite3', [db, 'PRAGMA journal_mode=WAL; CREATE TABLE t(v); INSERT INTO t VALUES (1);'], { encoding: 'utf8' });
    expect(made.status, made.stderr).toBe(0);
    const child = spawn(process.execPath, [bin, 'replicate', db, '--nats', server.url, '--stream', 'r3', '--replicas', '3', '--interval', '100', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out = { stderr: '' };
    child.stderr!.on('data', (d) => (out.stderr += d));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      await until(() => out.stderr.includes('cannot be created or read'), 8000, () => out);
      child.kill('SIGTERM');
      expect(await exited, out.stderr).toBe(2);
      expect(out.stderr.trim().split('\n').pop()).toMatch(/^walnut: WALNUT_IO: nothing was published before the stop: the JetStream stream r3 cannot be created or read \(.*replicas > 1 not supported.*\)$/);
    } finally {
      child.kill('SIGKILL');
    }
  }, 20_000);
});
