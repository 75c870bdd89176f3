// Hostile: the NATS server paused (SIGSTOP) in the middle of a session's first base image, its
// window (8 MiB) full, while a python3 writer commits 5 MiB, past maxLagBytes (1 MiB). Since the
// first base is cut into parts as the export's records arrive (publisher.ts), the export waits
// for room inside its first pass, whose snapshot keeps the WAL from restarting: it waited there
// for the whole outage, no 'lagExceeded', and a python3 TRUNCATE checkpoint stayed busy (10 MB of
// WAL after 11 s paused, growing with every commit). The base held whole (before), the export
// went on to the log, whose queue past maxLagBytes abandoned the session. Now a first base whose
// stream has stalled (STALLED_MS) with the WAL behind the export past maxLagBytes abandons the
// session too: the TRUNCATE completes (busy 0, an empty WAL) while the server is still paused;
// resumed, the next session publishes everything and the stream restores to the primary's pages.
// The abandoned session's parts that were on the wire are stored once the server goes on, after
// the pipeline dropped them: that was taken for a stream that lost acknowledged messages (an
// 'error' StreamLost, a third session and base image); it is the chain going on (pipeline.ts).
// On the store's loop (the export's own count) and the worker thread (the store's thread tells
// the worker when the backlog passes the bound: thread.ts 'behind').
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import { runPython } from '../helpers/children';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { pageHashes } from '../helpers/page-hashes';
import { blobPrimary, expectRestoredEqual } from '../helpers/replicating';
import { checkpoints, PATIENT_MS } from '../helpers/sqlite-checkpointer';
import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';

const dir = tmpDir('walnut-hostile-first-base-stalled-wal-');
const started: NatsNode[] = [];
afterAll(() => stopNats(started));

const WRITER = `
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], timeout=60, isolation_level=None)
for n in range(600):
    c.execute('INSERT INTO t(v) VALUES (randomblob(8000))')
print(n + 1)
`;

describe.skipIf(NATS_SKIP !== null)('a first base stalled while the WAL grows', () => {
  for (const thread of [false, true]) {
    it(`${thread ? 'worker thread' : "store's loop"}: the session is abandoned past maxLagBytes, a TRUNCATE completes while the server is paused`, async () => {
      const server = await startNatsServer();
      started.push(server);
      const file = path.join(dir, `p-${thread}.db`);
      blobPrimary(file, 8000); // ~32 MiB: the first base is ~40 parts
      const store = await open(file);
      const stream = `stalled${thread}`;
      const r = store.replicateTo({ servers: server.url, stream, thread, maxLagBytes: 1 << 20, stopTimeoutMs: 60_000 });
      let resets = 0;
      r.on('lagExceeded', () => resets++);
      const errors: string[] = [];
      r.on('error', (e: Error) => errors.push(e.message)); // (publishes time out while paused)
      await until(() => r.metrics().messages >= 3, 60_000, () => r.metrics());
      server.pause();
      try {
        expect(r.metrics().bases).toBe(0); // (in the first base: its window of 8 MiB is not stored yet)
        const script = path.join(dir, 'writer.py');
        fs.writeFileSync(script, WRITER);
        expect((await runPython(script, [file])).trim()).toBe('600'); // ~5 MiB of WAL
        // busy 60 s: the session abandoned once stalled 3 s lets it complete; it waited the outage out
        const run = await checkpoints(file, ['TRUNCATE'], 1, 0, PATIENT_MS).run;
        expect(run.results[0], JSON.stringify({ run, resets, m: r.metrics() })).toMatchObject({ busy: 0, log: 0, checkpointed: 0 });
        expect(fs.statSync(`${file}-wal`).size).toBe(0);
        // the worker's 'lagExceeded' reaches this thread as a message, which may come after the
        // checkpoint the abandoned session let complete (CI: 0 at this point once)
        await until(() => resets > 0, 10_000, () => r.metrics());
        expect(resets).toBe(1);
      } finally {
        server.resume();
      }
      const snap = await store.snapshot();
      const last = { pgno: 1, data: Buffer.from(snap.readSync(1)) };
      snap.release();
      await store.commit([last]);
      await r.stop();
      // the abandoned session's parts on the wire when the server was paused are stored once it
      // goes on, after the pipeline dropped them: no loss, so no StreamLost and no third session
      expect(errors.filter((e) => /lost messages/.test(e))).toEqual([]);
      expect(r.metrics().sessions, JSON.stringify({ resets, errors, m: r.metrics() })).toBe(2);
      expect(r.metrics().publishedSeq).toBe(r.metrics().exportedSeq);
      const want = await pageHashes(store);
      await store.close();
      const out = path.join(dir, `${stream}-restored.db`);
      await expectRestoredEqual(out, server.url, stream, want);
    });
  }
});
