// A replica at a primary's first session (200 rows, closed), and the primary restarted behind a
// python3 reader that holds a read transaction (so no checkpoint passes it: the new session's
// first base image is the database with no rows) with 40 more commits, its second session begun
// and its start marked in the log (nats.ts Walnut-Session-Start): the scene of the replication
// tests of a replica re-basing onto a new session's start.
import * as path from 'node:path';

import type { Store } from '../../lib/commit/store';
import { open } from '../../lib/open';
import { connectNats, HEADER, lastMessageOn, type NatsLink } from '../../lib/replicate/nats';
import type { ReplicateOptions, ReplicationHandle } from '../../lib/replicate/publisher';
import { openReplica } from '../../lib/replicate/replica';
import { pythonReader } from './children';
import { appliedOrError } from './nats';
import { readerSees, walKeepingWriter } from './wal-keeping-writer';

export interface Restarted {
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
  /** The primary stops for good (its store closed) as if before its mark was stored: the mark's log message goes. */
  stopBeforeMark: () => Promise<void>;
  end: () => Promise<void>;
}

/**
 * A replica at a first session's 200 rows, closed; the primary restarted behind a python3 reader
 * with 40 more commits, its second session (`options`) begun and its start marked in the log.
 */
export async function restartedBehindReader(url: string, dir: string, stream: string, options: Partial<ReplicateOptions>): Promise<Restarted> {
  const primary = path.join(dir, `${stream}.db`);
  const writer = walKeepingWriter(primary, 'CREATE TABLE t(k INTEGER PRIMARY KEY, v BLOB)');
  const statement = writer.prepare('INSERT INTO t(v) VALUES (randomblob(300))');
  const insert = (): void => void statement.run();
  const replicaPath = path.join(dir, `${stream}-replica.db`);
  const reader = await pythonReader(primary); // no checkpoint passes its read mark
  const firstStore = await open(primary);
  const first = firstStore.replicateTo({ servers: url, stream, stopTimeoutMs: 30_000 });
  await first.ready;
  const replica = await openReplica(replicaPath, { servers: url, stream });
  for (let i = 0; i < 200; i++) insert();
  await first.stop();
  await appliedOrError(replica, first.metrics().publishedSeq, first.metrics().session);
  await replica.close();
  if (readerSees(replicaPath).rows !== 200) throw new Error(`the replica holds ${readerSees(replicaPath).rows} rows, not 200`);
  await firstStore.close();
  for (let i = 0; i < 40; i++) insert();
  const store = await open(primary);
  const second = store.replicateTo({ servers: url, stream, stopTimeoutMs: 30_000, ...options });
  await second.ready;
  const session = second.metrics().session!;
  const link = await connectNats([url], () => true, 'test');
  const marked = async (): Promise<boolean> => {
    const last = await lastMessageOn(link, stream, `walnut.${stream}.log`);
    return last?.header.get(HEADER.SESSION) === session && last.header.has(HEADER.SESSION_START);
  };
  for (let i = 0; !(await marked()); i++) {
    if (i === 1500) throw new Error(`session ${session}'s log marks no start after 30 s`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const r: Restarted = {
    url, link, store, second, session, before: { session: first.metrics().session!, appliedSeq: first.metrics().publishedSeq }, replicaPath, primary, insert,
    stopBeforeMark: async () => {
      await second.stop();
      await store.close();
      const mark = (await lastMessageOn(link, stream, `walnut.${stream}.log`))!;
      if (!mark.header.has(HEADER.SESSION_START)) throw new Error(`the log's last message ${mark.seq} marks no start`);
      await link.jsm.streams.deleteMessage(stream, mark.seq);
    },
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

