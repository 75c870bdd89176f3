// A replica's readers never see an older state after a newer one when the primary begins a new
// session while another connection holds a read transaction across it. The new session's first
// base image is the database file (where the last checkpoint stopped); the passive checkpoint
// the publisher runs before that session cannot pass the python3 reader's read mark, so the base
// is the state before every commit below, older than what the replica applied of the session
// before. The replica applied that base alone, then the new session's commits a batch at a time:
// a reader saw the rows drop to the base's and climb back (breakrep s5b: max(k) 1243 -> 10). Now
// the publisher marks the session's start in its log (nats.ts Walnut-Session-Start) and the
// replica applies the base and the commits through the mark as one commit: every state a reader
// of the replica sees, sampled at each commit the replica makes, holds at least as many rows as
// the one before; the replica ends equal to the primary (pages, rows, integrity) and resumes at
// the new session after a reopen.
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { open } from '../../lib/open';
import { openReplica } from '../../lib/replicate/replica';
import { pythonReader } from '../helpers/children';
import { appliedOrError, NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { pageHashes } from '../helpers/page-hashes';
import { tmpDir } from '../helpers/tmp';
import { readerSees, walKeepingWriter } from '../helpers/wal-keeping-writer';

if (NATS_SKIP !== null) console.warn(NATS_SKIP);

const dir = tmpDir();
const started: NatsNode[] = [];
afterAll(() => stopNats(started));

describe.skipIf(NATS_SKIP !== null)('a primary restarted while another connection holds a read transaction', () => {
  it('the replica goes from the old session\'s state straight to the new session\'s start, never back', async () => {
    const server = await startNatsServer();
    started.push(server);
    const primary = path.join(dir, 'p.db');
    const writer = walKeepingWriter(primary, 'CREATE TABLE t(k INTEGER PRIMARY KEY, v BLOB)');
    const insert = writer.prepare('INSERT INTO t(v) VALUES (randomblob(300))');
    const replicaPath = path.join(dir, 'replica.db');
    // its read mark is at the WAL's start: no checkpoint copies any commit below
    const reader = await pythonReader(primary);
    let store = await open(primary);
    const options = { servers: server.url, stream: 'held', stopTimeoutMs: 30_000 };
    let applied = { session: '', appliedSeq: -1 };
    try {
      const first = store.replicateTo(options);
      await first.ready;
      // small batches: on their own the new session's commits would be applied a few at a time
      const replica = await openReplica(replicaPath, { servers: server.url, stream: 'held', maxBatchCommits: 5 });
      try {
        for (let i = 0; i < 200; i++) insert.run(); // 200 commits of SQLite's, each in the WAL
        await first.stop(); // publishes every commit durable now
        await appliedOrError(replica, first.metrics().publishedSeq, first.metrics().session);
        expect(readerSees(replicaPath).rows).toBe(200);
        // what a reader of the replica sees after each of its commits from here on
        const seen: number[] = [];
        replica.on('applied', () => seen.push(readerSees(replicaPath).rows));
        // the primary restarts (its store closed, not the last connection: the WAL stays), with
        // commits made while no replication ran
        await store.close();
        for (let i = 0; i < 40; i++) insert.run();
        store = await open(primary);
        const second = store.replicateTo(options);
        await second.ready;
        for (let i = 0; i < 20; i++) insert.run(); // and after the session began
        await second.stop();
        expect(second.metrics().session).not.toBe(first.metrics().session);
        await appliedOrError(replica, second.metrics().publishedSeq, second.metrics().session);
        expect(seen.length).toBeGreaterThan(0);
        expect(seen[0]).toBeGreaterThanOrEqual(240); // was 0: the base image, the state before every commit
        for (let i = 1; i < seen.length; i++) expect(seen[i], `sample ${i} of ${seen.join(',')}`).toBeGreaterThanOrEqual(seen[i - 1]!);
        expect(readerSees(replicaPath)).toEqual({ rows: 260, integrity: 'ok' });
        expect(await pageHashes(replica.store)).toEqual(await pageHashes(store));
        applied = { session: replica.lag().session!, appliedSeq: replica.lag().appliedSeq };
        expect(applied.session).toBe(second.metrics().session);
      } finally {
        await replica.close();
      }
      // its position is the new session's state: reopened, it resumes there
      const again = await openReplica(replicaPath, { servers: server.url, stream: 'held' });
      try {
        expect({ session: again.lag().session, appliedSeq: again.lag().appliedSeq }).toEqual(applied);
        expect(readerSees(replicaPath)).toEqual({ rows: 260, integrity: 'ok' });
      } finally {
        await again.close();
      }
    } finally {
      await store.close();
      await reader.end();
      writer.close();
    }
  }, 30_000);
});
