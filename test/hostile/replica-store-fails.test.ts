// Hostile: a replica whose own store fails for good (its disk full: the write of an apply fails
// with ENOSPC, injected in a child process) stops applying. waitFor() of a commit it will now
// never reach must settle with that failure (it waited forever, silently when no 'error'
// listener was set), and so must later calls; close() still resolves.
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import { runJsonChild } from '../helpers/children';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir('walnut-hostile-replica-fails-');
const started: NatsNode[] = [];
afterAll(() => stopNats(started));

interface Settled {
  ok: boolean;
  code?: string;
  walnut?: string;
}

describe.skipIf(NATS_SKIP !== null)('a replica whose store fails', () => {
  it('ENOSPC on an apply: waitFor rejects with the failure (before and after it), close resolves', async () => {
    const server = await startNatsServer();
    started.push(server);
    const file = path.join(dir, 'primary.db');
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)');
    db.close();
    const store = await open(file);
    const r = store.replicateTo({ servers: server.url, stream: 'fails', thread: false });
    await r.ready;
    // ten commits after the session's base image: the replica must apply them from the log
    const snap = await store.snapshot();
    const page1 = Buffer.from(snap.readSync(1));
    const page2 = Buffer.from(snap.readSync(2));
    snap.release();
    for (let i = 0; i < 10; i++) await store.commit([{ pgno: 1, data: page1 }, { pgno: 2, data: page2 }]);
    await r.stop();
    const last = r.metrics().publishedSeq;
    expect(last).toBeGreaterThanOrEqual(10);
    await store.close();

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
});
