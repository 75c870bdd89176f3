// A replica that cannot read a new session's start never shows an older state, and says why. The
// primary restarts while a python3 reader holds a read transaction, so the new session's first
// base image is the database where the last checkpoint stopped (no rows) and the session's start
// is that base and the WAL's 240 commits (nats.ts Walnut-Session-Start). The replica, closed
// meanwhile at the old session's 200 rows, re-bases onto that marked first base and holds it until
// the log's commits through the mark are read. Every state a reader of the replica sees, after
// each of its commits, holds at least as many rows as the one before.
//  - The stream loses the new session's first log message (as retention or a lost message cuts a
//    log): the replica met the gap and applied the base alone (its readers saw 0 rows after 200).
//    Now it stays at its 200 rows, says why once ('error' WALNUT_IO reason BehindRetention,
//    lag().stalledBy) and re-bases onto the session's next base image (a snapshot past the start).
//  - The log ends before the mark (the primary stopped in its first pass and never restarted:
//    here the mark's message is deleted after it stopped): the replica held the start without a
//    word, for ever. It still holds it (no sound rule applies the commits read so far: README),
//    and says so once ('error' WALNUT_IO reason StartUnmarked, lag().stalledBy); the primary's
//    next session frees it.
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import type { WalnutError } from '../../lib/errors';
import { open } from '../../lib/open';
import { HEADER } from '../../lib/replicate/nats';
import { openReplica, type Replica } from '../../lib/replicate/replica';
import { appliedOrError, NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { pageHashes } from '../helpers/page-hashes';
import { type Restarted, restartedBehindReader } from '../helpers/restarted-behind-reader';
import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';
import { readerSees } from '../helpers/wal-keeping-writer';

if (NATS_SKIP !== null) console.warn(NATS_SKIP);

const dir = tmpDir();
const started: NatsNode[] = [];
afterAll(() => stopNats(started));

async function server(): Promise<string> {
  const node = await startNatsServer();
  started.push(node);
  return node.url;
}

/** The replica reopened: its 'error's, and the rows a reader of it sees after each of its commits. */
interface Reopened {
  replica: Replica;
  errors: WalnutError[];
  seen: number[];
}

async function reopened(r: Restarted, stream: string): Promise<Reopened> {
  const replica = await openReplica(r.replicaPath, { servers: r.url, stream });
  const errors: WalnutError[] = [];
  const seen: number[] = [];
  replica.on('error', (e: WalnutError) => errors.push(e));
  const sample = (): void => void seen.push(readerSees(r.replicaPath).rows);
  replica.on('applied', sample);
  replica.on('rebase', sample);
  return { replica, errors, seen };
}

/**
 * The replica at its end: each state it showed at least the new session's start (240 rows) and
 * never fewer rows than the one before, now `rows` rows at `session`, page for page the primary's,
 * no longer stalled, and its one 'error' the one told.
 */
async function expectEqualAtEnd(r: Restarted, { replica, errors, seen }: Reopened, session: string, rows: number): Promise<void> {
  expect(seen.length).toBeGreaterThan(0);
  expect(seen[0]).toBeGreaterThanOrEqual(240);
  for (let i = 1; i < seen.length; i++) expect(seen[i], `sample ${i} of ${seen.join(',')}`).toBeGreaterThanOrEqual(seen[i - 1]!);
  expect(readerSees(r.replicaPath)).toEqual({ rows, integrity: 'ok' });
  expect(await pageHashes(replica.store)).toEqual(await pageHashes(r.store));
  expect(replica.lag()).toMatchObject({ session, stalledBy: null });
  expect(errors).toHaveLength(1);
}

describe.skipIf(NATS_SKIP !== null)('a replica that cannot read a new session\'s start', () => {
  it('a gap in its log: keeps its state and says why, then re-bases onto the next base image past the start', async () => {
    const stream = 'startgap';
    // the first pass (the WAL's 240 commits) is many messages (no deltas, 64 KiB each), and a
    // later base image is due at the session's 245th commit
    const r = await restartedBehindReader(await server(), dir, stream, { delta: false, maxMessageBytes: 65_536, baseEveryCommits: 245 });
    try {
      // the log message after the session's first base image goes (commits 1.. of the start)
      const base = (await r.link.jsm.streams.getMessage(stream, { last_by_subj: `walnut.${stream}.base` }))!;
      expect([base.header.get(HEADER.SESSION), base.header.get(HEADER.START_MARKED)]).toEqual([r.session, '1']);
      const cut = (await r.link.jsm.streams.getMessage(stream, { seq: base.seq + 1 }))!;
      expect([cut.subject, cut.header.get(HEADER.SESSION), cut.header.has(HEADER.SESSION_START)]).toEqual([`walnut.${stream}.log`, r.session, false]);
      await r.link.jsm.streams.deleteMessage(stream, cut.seq);

      const { replica, errors, seen } = await reopened(r, stream);
      try {
        await until(() => errors.length > 0 || replica.lag().rebases > 0, 15_000, () => replica.lag());
        expect(seen, 'the new session\'s first base applied alone: 0 rows after 200').toEqual([]);
        expect(errors.map((e) => `${e.code} ${e.reason}`)).toEqual(['WALNUT_IO BehindRetention']);
        expect(errors[0]!.message).toContain(`start of the primary's session ${r.session}`);
        expect(replica.lag()).toMatchObject({ ...r.before, stalledBy: 'BehindRetention' });
        expect(readerSees(r.replicaPath)).toEqual({ rows: 200, integrity: 'ok' });
        // commits past the 245th: the later base image, then the log after it
        let rows = 240;
        for (; rows < 250 || (r.second.metrics().bases < 2 && rows < 400); rows++) {
          r.insert();
          await new Promise((res) => setTimeout(res, 5));
        }
        await until(() => r.second.metrics().bases >= 2, 15_000, () => r.second.metrics());
        await r.second.stop();
        await appliedOrError(replica, r.second.metrics().publishedSeq, r.session);
        await expectEqualAtEnd(r, { replica, errors, seen }, r.session, rows);
      } finally {
        await replica.close();
      }
    } finally {
      await r.end();
    }
  }, 40_000);

  it('its log ends before the mark: holds its state and says so once; the primary\'s next session frees it', async () => {
    const stream = 'unmarked';
    const r = await restartedBehindReader(await server(), dir, stream, {});
    try {
      await r.stopBeforeMark();

      const { replica, errors, seen } = await reopened(r, stream);
      try {
        await until(() => errors.length > 0 || replica.lag().rebases > 0, 15_000, () => replica.lag());
        expect(errors.map((e) => `${e.code} ${e.reason}`)).toEqual(['WALNUT_IO StartUnmarked']);
        expect(errors[0]!.message).toContain(`the log of the primary's session ${r.session} has had nothing new for 1.5 s and has not marked the session's start`);
        expect(seen).toEqual([]);
        expect(replica.lag()).toMatchObject({ ...r.before, stalledBy: 'StartUnmarked' });
        expect(readerSees(r.replicaPath)).toEqual({ rows: 200, integrity: 'ok' });
        // the primary begins another session (behind the same reader): its start is marked
        r.store = await open(r.primary);
        const third = r.store.replicateTo({ servers: r.url, stream, stopTimeoutMs: 30_000 });
        await third.ready;
        await third.stop();
        await appliedOrError(replica, third.metrics().publishedSeq, third.metrics().session);
        await expectEqualAtEnd(r, { replica, errors, seen }, third.metrics().session!, 240);
      } finally {
        await replica.close();
      }
    } finally {
      await r.end();
    }
  }, 40_000);
});
