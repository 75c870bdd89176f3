// A Replica (the exported class) closed while its start() was still under way. close() released
// what start() had taken so far, and start() went on without looking: it failed with a raw
// TypeError (the position file it had just closed: "Cannot read properties of null (reading
// 'write')"), or it resolved as if open and reading after close() had resolved, its store
// opened after the release and never closed, holding the file's WAL write lock for the rest of
// the process (sqlite3: "database is locked"). Now close() waits for start() to end, start()
// rejects WALNUT_CLOSED once close() was called, and nothing is left holding the file.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { WalnutError } from '../../lib/errors';
import { open } from '../../lib/open';
import { openReplica, Replica } from '../../lib/replicate/replica';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { tmpDir } from '../helpers/tmp';

if (NATS_SKIP !== null) console.warn(NATS_SKIP);

const dir = tmpDir();
const started: NatsNode[] = [];
afterAll(() => stopNats(started));

/** Whether a sqlite3 process can write the file (nothing of this process holds its WAL write lock). */
function sqliteWrites(file: string): string {
  const r = spawnSync('sqlite3', [file, 'PRAGMA busy_timeout=200; CREATE TABLE IF NOT EXISTS probe(a); INSERT INTO probe VALUES (1);'], { encoding: 'utf8' });
  return r.status === 0 ? 'ok' : r.stderr.trim();
}

describe.skipIf(NATS_SKIP !== null)('a Replica closed while start() is under way', () => {
  it('start() rejects WALNUT_CLOSED (or resolved before close was called), and nothing keeps the file locked', async () => {
    const server = await startNatsServer();
    started.push(server);
    const store = await open(path.join(dir, 'p.db'));
    const r = store.replicateTo({ servers: server.url, stream: 'closing' });
    await r.ready;
    for (let i = 0; i < 20; i++) await store.commit([{ pgno: 2 + i, data: Buffer.alloc(4096, i + 1) }]);
    await r.stop();
    await store.close();
    // close() at every stage of start(): connecting, the stream's info, the base image, the
    // restore, the store's open (the delays cover them on a loaded machine or an idle one)
    const outcomes: string[] = [];
    for (let k = 0; k < 16; k++) {
      const file = path.join(dir, `r${k}.db`);
      const replica = new Replica(file, { servers: server.url, stream: 'closing' });
      let resolvedBeforeClose = false;
      let closeCalled = false;
      const start = replica.start().then(
        () => {
          if (!closeCalled) resolvedBeforeClose = true;
          return 'resolved';
        },
        (e: unknown) => e,
      );
      await new Promise((res) => setTimeout(res, k * 6));
      closeCalled = true;
      await replica.close();
      const outcome = await start;
      if (outcome === 'resolved') expect(resolvedBeforeClose, `start() ${k}: resolved after close() was called`).toBe(true);
      else {
        expect(outcome, `start() ${k}: ${String(outcome)}`).toBeInstanceOf(WalnutError);
        expect((outcome as WalnutError).code).toBe('WALNUT_CLOSED');
      }
      if (fs.existsSync(file)) expect(sqliteWrites(file), `replica ${k} (${String(outcome)})`).toBe('ok');
      outcomes.push(outcome === 'resolved' ? 'resolved' : 'closed');
    }
    expect(outcomes).toContain('closed');
    // a replica closed while starting is opened again at its path (resumed or created afresh)
    const file = path.join(dir, 'again.db');
    const first = new Replica(file, { servers: server.url, stream: 'closing' });
    const start = first.start().catch((e: unknown) => e);
    first.once('rebase', () => void first.close());
    await start;
    await first.close();
    const again = await openReplica(file, { servers: server.url, stream: 'closing' });
    try {
      await again.waitFor(r.metrics().publishedSeq);
    } finally {
      await again.close();
    }
  }, 60_000);
});
