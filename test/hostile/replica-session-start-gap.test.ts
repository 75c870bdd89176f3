// A replica that cannot read a new session's start never shows an older state. The primary
// restarts while a python3 reader holds a read transaction, so the new session's first base image
// is the database where the last checkpoint stopped (no rows) and the session's start is that base
// and the WAL's 240 commits (nats.ts Walnut-Session-Start). The stream then loses the new
// session's first log message (as retention or a lost message cuts a log). The replica, closed
// meanwhile at the old session's 200 rows, re-bases onto the new session's marked first base,
// meets the gap before the mark, and applied that base alone: its readers saw 0 rows after 200.
// Now it stays at its 200 rows, says why once ('error' WALNUT_IO reason BehindRetention,
// lag().stalledBy), and re-bases onto the session's next base image (a snapshot past the start),
// then follows the log: every state a reader of it sees, after each of its commits, holds at least
// as many rows as the one before, and it ends equal to the primary.
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import type { WalnutError } from '../../lib/errors';
import { open } from '../../lib/open';
import { connectNats, HEADER, lastMessageOn } from '../../lib/replicate/nats';
import { openReplica } from '../../lib/replicate/replica';
import { pythonReader } from '../helpers/children';
import { appliedOrError, NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { pageHashes } from '../helpers/page-hashes';
import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';
import { readerSees, walKeepingWriter } from '../helpers/wal-keeping-writer';

if (NATS_SKIP !== null) console.warn(NATS_SKIP);

const dir = tmpDir();
const started: NatsNode[] = [];
afterAll(() => stopNats(started));

describe.skipIf(NATS_SKIP !== null)('a gap in the log of a new session\'s start', () => {
  it('the replica keeps its state and says why, then re-bases onto the next base image past the start', async () => {
    const server = await startNatsServer();
    started.push(server);
    const primary = path.join(dir, 'p.db');
    const writer = walKeepingWriter(primary, 'CREATE TABLE t(k INTEGER PRIMARY KEY, v BLOB)');
    const insert = writer.prepare('INSERT INTO t(v) VALUES (randomblob(300))');
    const replicaPath = path.join(dir, 'replica.db');
    const reader = await pythonReader(primary); // no checkpoint passes its read mark
    let store = await open(primary);
    const stream = 'startgap';
    const link = await connectNats([server.url], () => true, 'test');
    try {
      const first = store.replicateTo({ servers: server.url, stream, stopTimeoutMs: 30_000 });
      await first.ready;
      let replica = await openReplica(replicaPath, { servers: server.url, stream });
      for (let i = 0; i < 200; i++) insert.run();
      await first.stop();
      await appliedOrError(replica, first.metrics().publishedSeq, first.metrics().session);
      await replica.close();
      expect(readerSees(replicaPath).rows).toBe(200);

      // the primary restarts; its new session's first pass (the WAL's 240 commits) is many
      // messages (no deltas, 64 KiB each), and a later base image is due at its 245th commit
      await store.close();
      for (let i = 0; i < 40; i++) insert.run();
      store = await open(primary);
      const second = store.replicateTo({ servers: server.url, stream, stopTimeoutMs: 30_000, delta: false, maxMessageBytes: 65_536, baseEveryCommits: 245 });
      await second.ready;
      const session = second.metrics().session;
      const marked = async (): Promise<boolean> => {
        const last = await lastMessageOn(link, stream, `walnut.${stream}.log`);
        return last?.header.get(HEADER.SESSION) === session && last.header.has(HEADER.SESSION_START);
      };
      for (let i = 0; i < 1500 && !(await marked()); i++) await new Promise((r) => setTimeout(r, 20));
      expect(await marked()).toBe(true);
      // the log message after the session's first base image goes (commits 1.. of the start)
      const base = (await link.jsm.streams.getMessage(stream, { last_by_subj: `walnut.${stream}.base` }))!;
      expect([base.header.get(HEADER.SESSION), base.header.get(HEADER.START_MARKED)]).toEqual([session, '1']);
      const cut = (await link.jsm.streams.getMessage(stream, { seq: base.seq + 1 }))!;
      expect([cut.subject, cut.header.get(HEADER.SESSION), cut.header.has(HEADER.SESSION_START)]).toEqual([`walnut.${stream}.log`, session, false]);
      await link.jsm.streams.deleteMessage(stream, cut.seq);

      replica = await openReplica(replicaPath, { servers: server.url, stream });
      const errors: WalnutError[] = [];
      const seen: number[] = []; // rows a reader of the replica sees after each of its commits
      replica.on('error', (e: WalnutError) => errors.push(e));
      const sample = (): void => void seen.push(readerSees(replicaPath).rows);
      replica.on('applied', sample);
      replica.on('rebase', sample);
      try {
        await until(() => errors.length > 0 || replica.lag().rebases > 0, 15_000, () => replica.lag());
        expect(seen, 'the new session\'s first base applied alone: 0 rows after 200').toEqual([]);
        expect(errors.map((e) => `${e.code} ${e.reason}`)).toEqual(['WALNUT_IO BehindRetention']);
        expect(errors[0]!.message).toContain(`start of the primary's session ${session}`);
        expect(replica.lag()).toMatchObject({ session: first.metrics().session, appliedSeq: first.metrics().publishedSeq, stalledBy: 'BehindRetention' });
        expect(readerSees(replicaPath)).toEqual({ rows: 200, integrity: 'ok' });
        // commits past the 245th: the later base image, then the log after it
        let rows = 240;
        for (; rows < 250 || (second.metrics().bases < 2 && rows < 400); rows++) {
          insert.run();
          await new Promise((r) => setTimeout(r, 5));
        }
        await until(() => second.metrics().bases >= 2, 15_000, () => second.metrics());
        await second.stop();
        await appliedOrError(replica, second.metrics().publishedSeq, session);
        expect(seen.length).toBeGreaterThan(0);
        expect(seen[0]).toBeGreaterThanOrEqual(240);
        for (let i = 1; i < seen.length; i++) expect(seen[i], `sample ${i} of ${seen.join(',')}`).toBeGreaterThanOrEqual(seen[i - 1]!);
        expect(readerSees(replicaPath)).toEqual({ rows, integrity: 'ok' });
        expect(await pageHashes(replica.store)).toEqual(await pageHashes(store));
        expect(replica.lag()).toMatchObject({ session, stalledBy: null });
        expect(errors).toHaveLength(1);
      } finally {
        await replica.close();
      }
    } finally {
      await link.nc.close();
      await store.close();
      await reader.end();
      writer.close();
    }
  }, 40_000);
});
