// A replica process SIGKILLed while it holds a new session's start (the session's first base
// image and its log's commits read so far, unapplied: replica.ts "Re-basing") resumes and ends
// equal to the primary, and no reader of it ever sees an older state. The primary restarts behind
// a python3 reader (its new session's first base has no rows, the replica 200) and stops before
// its log marks the start (the mark's message deleted), so the hold lasts until the replica is
// killed: `walnut replica --json` shows it (stalledBy StartUnmarked, the old session's commit).
// Killed there, the replica's file is still the old state; a new `walnut replica` holds the start
// again, and the primary's next session (behind the same reader: marked) is applied as one
// commit. A reader polling the replica's file all along sees 200 rows, then 240 (the start) and
// on to 250, never fewer than before.
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { open } from '../../lib/open';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { pageHashes } from '../helpers/page-hashes';
import { restartedBehindReader } from '../helpers/restarted-behind-reader';
import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';
import { readerSees } from '../helpers/wal-keeping-writer';

if (NATS_SKIP !== null) console.warn(NATS_SKIP);

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
const started: NatsNode[] = [];
afterAll(() => stopNats(started));

interface Lag {
  session: string;
  appliedSeq: number;
  stalledBy: string | null;
}

/** `walnut replica --json` of `db`: its lag lines as read so far, and its exit. */
function replicaProcess(url: string, stream: string, db: string): { child: ChildProcess; lags: Lag[]; exited: Promise<[number | null, string | null]> } {
  const child = spawn(process.execPath, [bin, 'replica', db, '--nats', url, '--stream', stream, '--interval', '50', '--json'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lags: Lag[] = [];
  let partial = '';
  child.stdout!.on('data', (d: Buffer) => {
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop()!;
    for (const l of lines) if (l.startsWith('{')) lags.push(JSON.parse(l) as Lag);
  });
  const exited = new Promise<[number | null, string | null]>((resolve) => child.once('exit', (code, signal) => resolve([code, signal])));
  return { child, lags, exited };
}

describe.skipIf(NATS_SKIP !== null)('a replica process killed while it holds a new session\'s start', () => {
  it('resumes at the old state, then applies the next start as one commit: equal to the primary, never back', async () => {
    const node = await startNatsServer();
    started.push(node);
    const stream = 'killedhold';
    const r = await restartedBehindReader(node.url, dir, stream, {});
    const seen: number[] = [];
    const poll = setInterval(() => seen.push(readerSees(r.replicaPath).rows), 10);
    try {
      await r.stopBeforeMark();

      const a = replicaProcess(r.url, stream, r.replicaPath);
      await until(() => a.lags.some((l) => l.stalledBy === 'StartUnmarked') || a.child.exitCode !== null, 15_000, () => a.lags.at(-1));
      expect(a.lags.at(-1)).toMatchObject({ ...r.before, stalledBy: 'StartUnmarked' });
      a.child.kill('SIGKILL');
      expect(await a.exited).toEqual([null, 'SIGKILL']);
      expect(readerSees(r.replicaPath)).toEqual({ rows: 200, integrity: 'ok' });

      const b = replicaProcess(r.url, stream, r.replicaPath);
      r.store = await open(r.primary);
      const third = r.store.replicateTo({ servers: r.url, stream, stopTimeoutMs: 30_000 });
      await third.ready;
      for (let i = 0; i < 10; i++) r.insert();
      await third.stop();
      const { session, publishedSeq } = third.metrics();
      await until(() => b.lags.some((l) => l.session === session && l.appliedSeq === publishedSeq) || b.child.exitCode !== null, 15_000, () => b.lags.at(-1));
      b.child.kill('SIGINT');
      expect(await b.exited).toEqual([0, null]);
      clearInterval(poll);
      seen.push(readerSees(r.replicaPath).rows);
      expect(seen.length).toBeGreaterThan(0);
      // 200 (the old session's), then the new session's start (240 rows: no state between) and its commits after
      expect([seen[0], seen.at(-1)]).toEqual([200, 250]);
      for (let i = 1; i < seen.length; i++) expect(seen[i], `rows seen: ${[...new Set(seen)].join(',')}`).toBeGreaterThanOrEqual(seen[i - 1]!);
      expect(seen.filter((rows) => rows > 200 && rows < 240)).toEqual([]);
      expect(readerSees(r.replicaPath)).toEqual({ rows: 250, integrity: 'ok' });
      const replica = await open(r.replicaPath);
      try {
        expect(await pageHashes(replica)).toEqual(await pageHashes(r.store));
      } finally {
        await replica.close();
      }
    } finally {
      clearInterval(poll);
      await r.end();
    }
  }, 40_000);
});
