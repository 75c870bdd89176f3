// Hostile: stop() after the lag bound abandoned the session (a commit larger than maxLagBytes
// queued at once) must still publish what was committed before it, as stop() promises: on
// main no session started after stop(), so the stream ended before that commit and stop()
// resolved as if it had been flushed (a replica or restore silently lacked it). And a stop()
// whose stopTimeoutMs passes before the commits are stored says so ('error' WALNUT_IO reason
// StopTimeout, metrics().lastError) instead of resolving in silence.
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import type { WalnutError } from '../../lib/errors';
import { restoreFromNats } from '../../lib/replicate/restore-nats';
import { runPython } from '../helpers/children';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir('walnut-hostile-stop-after-lag-');
const started: NatsNode[] = [];
afterAll(() => stopNats(started));

describe.skipIf(NATS_SKIP !== null)('stop() after the lag bound was passed', () => {
  // the store's loop (thread: false); the worker thread runs the same sessions (publisher.ts #run)
  for (const thread of [false]) {
    it(`${thread ? 'worker thread' : "store's loop"}: a 10 MB sqlite3 commit past maxLagBytes (1 MiB), then stop(): the stream restores to it`, async () => {
      const server = await startNatsServer();
      started.push(server);
      const file = path.join(dir, `lag-${thread}.db`);
      const db = new Database(file);
      db.pragma('journal_mode = WAL');
      db.exec('CREATE TABLE t(w INTEGER, v BLOB)');
      db.close();
      const store = await open(file);
      const stream = `lag${thread}`;
      const r = store.replicateTo({ servers: server.url, stream, thread, maxLagBytes: 1 << 20, stopTimeoutMs: 120_000 });
      await r.ready;
      expect((await runPython(path.join(__dirname, '../helpers/sqlite-fill.py'), [file, '2500', '4000'])).trim()).toBe('2500');
      await r.stop();
      expect(r.metrics().lagResets).toBeGreaterThanOrEqual(1); // the case at hand: the session was abandoned
      await store.close();
      const out = path.join(dir, `${stream}-restored.db`);
      await restoreFromNats(out, { servers: server.url, stream });
      const restored = new Database(out, { readonly: true });
      expect(restored.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: 2500 });
      expect(restored.pragma('integrity_check', { simple: true })).toBe('ok');
      restored.close();
    });
  }

  it('stopTimeoutMs passing before a commit is stored (the server wedged): an error StopTimeout, not silence', async () => {
    const server = await startNatsServer();
    started.push(server);
    const file = path.join(dir, 'wedged.db');
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE t(x)');
    db.close();
    const store = await open(file);
    const r = store.replicateTo({ servers: server.url, stream: 'wedged', thread: false, stopTimeoutMs: 500 });
    const errors: { code?: string; reason?: string }[] = [];
    r.on('error', (e: WalnutError) => errors.push({ code: e.code, reason: e.reason }));
    await r.ready;
    server.pause();
    const snap = await store.snapshot();
    const page2 = Buffer.from(snap.readSync(2));
    snap.release();
    await store.commit([{ pgno: 2, data: page2 }]);
    await r.stop();
    expect(r.metrics().publishedSeq).toBeLessThan(r.metrics().exportedSeq);
    expect(errors).toContainEqual({ code: 'WALNUT_IO', reason: 'StopTimeout' });
    expect(r.metrics().lastError ?? '').toMatch(/stopTimeoutMs/);
    await store.close();
  });
});
