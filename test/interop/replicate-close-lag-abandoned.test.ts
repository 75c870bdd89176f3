// close() of a replicating walnut/sql database whose NATS server hangs (SIGSTOP: connected, answering
// nothing), with more than maxLagBytes (1 MiB) of commits queued: stopTimeoutMs passes, the
// export's last pass, no longer held back, takes the queue past the bound and the lag bound
// abandons the session during close().
// Invariants checked: no unhandled rejection (the abandoned export's stop(), called by the
// publisher without awaiting it, rejected WALNUT_CLOSED unhandled once close() had begun, through
// the store's wrapper of it; the store now delays the handle's stop() instead: #stopAfterCommitsSettle); every commit close() acknowledged is durable in the database;
// and the StopTimeout 'error' names every commit not in the stream: the abandoned session's
// export never read the commits past its exportedSeq, so its range is open ("N on"; it named
// publishedSeq+1..exportedSeq, and the later commits close() acknowledged were in neither).
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { openDatabase, type WalnutError } from '../../lib/sql';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { sqliteRowCount } from '../helpers/sqlite-db';
import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';

if (NATS_SKIP !== null) console.warn(NATS_SKIP);

const dir = tmpDir('walnut-replicate-close-lag-abandoned-');
const COMMITS = 400; // ~8 KiB of frames each: 3+ MiB, past maxLagBytes' 1 MiB

describe.skipIf(NATS_SKIP !== null)('close() of a replication whose server hangs, past the lag bound', () => {
  let server: NatsNode;
  beforeAll(async () => {
    server = await startNatsServer();
  });
  afterAll(() => stopNats([server])); // (SIGKILL ends a paused server too)

  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown): void => void unhandled.push(e);
  beforeAll(() => void process.on('unhandledRejection', onUnhandled));
  afterAll(() => void process.off('unhandledRejection', onUnhandled));

  let n = 0;
  for (const thread of [false, true]) {
    it(`thread: ${thread}: no unhandled rejection, every acknowledged commit durable, the StopTimeout error names every commit not stored`, async () => {
      const file = path.join(dir, `a${n}.db`);
      const stream = `a${n++}`;
      const db = await openDatabase(file);
      await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)');
      const r = db.store.replicateTo({ servers: server.url, stream, thread, stopTimeoutMs: 300, maxLagBytes: 1 << 20 });
      const errors: WalnutError[] = [];
      r.on('error', (e: WalnutError) => errors.push(e));
      let lagExceeded = 0;
      r.on('lagExceeded', () => void lagExceeded++);
      await r.ready;
      // a commit stored first: the first session's unstored range starts past 0 (a later one's at its base, 0)
      await db.run('INSERT INTO t(v) VALUES (1)');
      await until(() => r.metrics().publishedSeq >= 1, 60_000, () => r.metrics());
      server.pause();
      try {
        let acked = 0;
        const commits = Array.from({ length: COMMITS }, () => db.run('INSERT INTO t(v) VALUES (randomblob(6000))').then(() => void acked++));
        await Promise.all([db.close(), r.stop(), ...commits]);
        expect(acked).toBe(COMMITS);
        expect(lagExceeded).toBeGreaterThanOrEqual(1); // (else this test no longer exercises the abandoned session)
        // settle what close() left to the event loop (an unhandled rejection is told after a turn)
        await new Promise((resolve) => setTimeout(resolve, 50));
        expect(unhandled.map(String)).toEqual([]);

        expect(sqliteRowCount(file, 't')).toBe(1 + COMMITS);
        // the session's commits are numbered 1.. from its base image (taken after CREATE TABLE), the
        // first stored before the pause:
        // the error names publishedSeq + 1 and every commit after it
        const stopTimeout = errors.filter((e) => e.reason === 'StopTimeout');
        expect(stopTimeout).toHaveLength(1);
        const m = r.metrics();
        expect(m.publishedSeq).toBeLessThan(COMMITS);
        const named = /commits (\d+)(?:\.\.(\d+) of session| on \(the lag bound abandoned)/.exec(stopTimeout[0]!.message);
        expect(named, stopTimeout[0]!.message).not.toBeNull();
        expect(Number(named![1]!)).toBe(m.publishedSeq + 1);
        // (a range from 0 is a later session's, the lag bound having abandoned the first before the
        // stop under load: its base image, not stored, carries every commit before it)
        if (named![2] !== undefined && named![1] !== '0') expect(Number(named![2])).toBeGreaterThanOrEqual(COMMITS);
      } finally {
        server.resume();
        await r.stop();
        await db.close();
      }
    }, 60_000);
  }
});
