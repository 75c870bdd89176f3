// Hostile: a replica whose own store fails for good (its disk full: the write of an apply fails
// with ENOSPC, injected in a child process) stops applying. waitFor() of a commit it will now
// never reach must settle with that failure (it waited forever, silently when no 'error'
// listener was set), and so must later calls; close() still resolves. `walnut replica` on such
// a replica (a file-size limit makes its WAL's growth fail, EFBIG) exits 2 naming the failure
// instead of running on, printing a lag that never moves.
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import { runJsonChild, runPython } from '../helpers/children';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir('walnut-hostile-replica-fails-');
const started: NatsNode[] = [];
const commands: ChildProcess[] = [];
afterAll(async () => {
  for (const c of commands) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL'); // a command that ran on
  await stopNats(started);
});

interface Settled {
  ok: boolean;
  code?: string;
  walnut?: string;
}

/**
 * A primary on `server` that published its session's base image and then, on `stream`, one
 * commit of a sqlite3 process (python3) adding 2.4 MB of rows; the commit's seq.
 */
async function primaryWithBigCommit(server: NatsNode, stream: string): Promise<number> {
  const file = path.join(dir, `${stream}.db`);
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE t(w INTEGER, v BLOB)');
  db.close();
  const store = await open(file);
  const r = store.replicateTo({ servers: server.url, stream, thread: false });
  await r.ready;
  expect((await runPython(path.join(__dirname, '../helpers/sqlite-fill.py'), [file, '600', '4000'])).trim()).toBe('600');
  await r.stop();
  const last = r.metrics().publishedSeq;
  expect(last).toBeGreaterThanOrEqual(1);
  await store.close();
  return last;
}

describe.skipIf(NATS_SKIP !== null)('a replica whose store fails', () => {
  it('ENOSPC on an apply: waitFor rejects with the failure (before and after it), close resolves', async () => {
    const server = await startNatsServer();
    started.push(server);
    const last = await primaryWithBigCommit(server, 'fails');
    const out = await runJsonChild<{ waitFor: Settled; later: Settled; errors: string[]; close: Settled; unhandled: string[] }>(
      path.join(__dirname, '../helpers/replica-fault-child.js'),
      [server.url, 'fails', path.join(dir, 'replica.db'), String(last)],
      { WALNUT_FAULT_INJECTION: '1' },
    );
    expect(out.waitFor).toEqual({ ok: false, code: 'WALNUT_FULL', walnut: 'WalnutError' });
    expect(out.later).toEqual({ ok: false, code: 'WALNUT_FULL', walnut: 'WalnutError' });
    expect(out.errors).toContain('WALNUT_FULL');
    expect(out.close).toEqual({ ok: true });
    expect(out.unhandled).toEqual([]);
  });

  it('walnut replica whose WAL cannot grow (file-size limit, EFBIG): exits 2 naming WALNUT_FULL', async () => {
    const server = await startNatsServer();
    started.push(server);
    await primaryWithBigCommit(server, 'cli');
    const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
    const replica = path.join(dir, 'cli-replica.db');
    // files up to 2 MiB (bash counts 1 KiB blocks): the base image and the position file (two
    // 1 MiB slots) fit, the WAL of the big commit (600+ frames: 2.4 MiB) does not
    const child = spawn('bash', ['-c', 'ulimit -f 2048; exec "$0" "$@"', process.execPath, bin, 'replica', '--nats', server.url, '--stream', 'cli', '--interval', '100000', replica], { stdio: ['ignore', 'pipe', 'pipe'] });
    commands.push(child);
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code).toBe(2);
    expect(stderr).toMatch(/^walnut: WALNUT_FULL: /m);
  });
});
