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

import type { Store } from '../../lib/commit/store';
import type { WalnutError } from '../../lib/errors';
import { open } from '../../lib/open';
import { connectNats, HEADER, lastMessageOn, type NatsLink } from '../../lib/replicate/nats';
import type { ReplicateOptions, ReplicationHandle } from '../../lib/replicate/publisher';
import { openReplica, type Replica } from '../../lib/replicate/replica';
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

interface Restarted {
  url: string;
  link: NatsLink;
  /** The primary's store (reopened) and its second session, whose start is marked in the log. */
  store: Store;
  second: ReplicationHandle;
  session: string;
  /** The replica's state, closed: the first session's last commit (200 rows). */
  before: { session: string; appliedSeq: number };
  replicaPath: string;
  primary: string;
  insert: () => void;
  end: () => Promise<void>;
}

/**
 * A replica at a first session's 200 rows, closed; the primary restarted behind a python3 reader
 * with 40 more commits, its second session (`options`) begun and its start marked in the log.
 */
async function restartedBehindReader(stream: string, options: Partial<ReplicateOptions>): Promise<Restarted> {
  const server = await startNatsServer();
  started.push(server);
  const primary = path.join(dir, `${stream}.db`);
  const writer = walKeepingWriter(primary, 'CREATE TABLE t(k INTEGER PRIMARY KEY, v BLOB)');
  const statement = writer.prepare('INSERT INTO t(v) VALUES (randomblob(300))');
  const insert = (): void => void statement.run();
  const replicaPath = path.join(dir, `${stream}-replica.db`);
  const reader = await pythonReader(primary); // no checkpoint passes its read mark
  const firstStore = await open(primary);
  const first = firstStore.replicateTo({ servers: server.url, stream, stopTimeoutMs: 30_000 });
  await first.ready;
  const replica = await openReplica(replicaPath, { servers: server.url, stream });
  for (let i = 0; i < 200; i++) insert();
  await first.stop();
  await appliedOrError(replica, first.metrics().publishedSeq, first.metrics().session);
  await replica.close();
  expect(readerSees(replicaPath).rows).toBe(200);
  await firstStore.close();
  for (let i = 0; i < 40; i++) insert();
  const store = await open(primary);
  const second = store.replicateTo({ servers: server.url, stream, stopTimeoutMs: 30_000, ...options });
  await second.ready;
  const session = second.metrics().session!;
  const link = await connectNats([server.url], () => true, 'test');
  const marked = async (): Promise<boolean> => {
    const last = await lastMessageOn(link, stream, `walnut.${stream}.log`);
    return last?.header.get(HEADER.SESSION) === session && last.header.has(HEADER.SESSION_START);
  };
  for (let i = 0; i < 1500 && !(await marked()); i++) await new Promise((r) => setTimeout(r, 20));
  expect(await marked()).toBe(true);
  const r: Restarted = {
    url: server.url, link, store, second, session, before: { session: first.metrics().session!, appliedSeq: first.metrics().publishedSeq }, replicaPath, primary, insert,
    end: async () => {
      await link.nc.close();
      await second.stop();
      await r.store.close();
      await reader.end();
      writer.close();
    },
  };
  return r;
}

/** The replica reopened: its 'error's, and the rows a reader of it sees after each of its commits. */
async function reopened(r: Restarted, stream: string): Promise<{ replica: Replica; errors: WalnutError[]; seen: number[] }> {
  const replica = await openReplica(r.replicaPath, { servers: r.url, stream });
  const errors: WalnutError[] = [];
  const seen: number[] = [];
  replica.on('error', (e: WalnutError) => errors.push(e));
  const sample = (): void => void seen.push(readerSees(r.replicaPath).rows);
  replica.on('applied', sample);
  replica.on('rebase', sample);
  return { replica, errors, seen };
}

function expectNeverBack(seen: number[]): void {
  expect(seen.length).toBeGreaterThan(0);
  expect(seen[0]).toBeGreaterThanOrEqual(240);
  for (let i = 1; i < seen.length; i++) expect(seen[i], `sample ${i} of ${seen.join(',')}`).toBeGreaterThanOrEqual(seen[i - 1]!);
}

describe.skipIf(NATS_SKIP !== null)('a replica that cannot read a new session\'s start', () => {
  it('a gap in its log: keeps its state and says why, then re-bases onto the next base image past the start', async () => {
    const stream = 'startgap';
    // the first pass (the WAL's 240 commits) is many messages (no deltas, 64 KiB each), and a
    // later base image is due at the session's 245th commit
    const r = await restartedBehindReader(stream, { delta: false, maxMessageBytes: 65_536, baseEveryCommits: 245 });
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
        expectNeverBack(seen);
        expect(readerSees(r.replicaPath)).toEqual({ rows, integrity: 'ok' });
        expect(await pageHashes(replica.store)).toEqual(await pageHashes(r.store));
        expect(replica.lag()).toMatchObject({ session: r.session, stalledBy: null });
        expect(errors).toHaveLength(1);
      } finally {
        await replica.close();
      }
    } finally {
      await r.end();
    }
  }, 40_000);

  it('its log ends before the mark: holds its state and says so once; the primary\'s next session frees it', async () => {
    const stream = 'unmarked';
    const r = await restartedBehindReader(stream, {});
    try {
      // the primary stops for good before its mark was stored: the mark's message goes
      await r.second.stop();
      await r.store.close();
      const mark = (await lastMessageOn(r.link, stream, `walnut.${stream}.log`))!;
      await r.link.jsm.streams.deleteMessage(stream, mark.seq);

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
        expectNeverBack(seen);
        expect(readerSees(r.replicaPath)).toEqual({ rows: 240, integrity: 'ok' });
        expect(await pageHashes(replica.store)).toEqual(await pageHashes(r.store));
        expect(replica.lag()).toMatchObject({ session: third.metrics().session, stalledBy: null });
        expect(errors).toHaveLength(1);
      } finally {
        await replica.close();
      }
    } finally {
      await r.end();
    }
  }, 40_000);
});
