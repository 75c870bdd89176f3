// A 'published' listener of the caller's that throws. On the store's loop (thread: false, and
// lockingMode 'exclusive') the exception went into the publisher's pump, whose acks emit the
// event: the replication ended ('error' WALNUT_IO "replication: a bug in the listener", then
// 'end'), and commits after it were never published (2 of 10). On a worker thread the same
// listener's exception is an uncaught exception of the store's process and the replication goes
// on. Now both: the listener's exception is thrown on a turn of its own (uncaught), the
// replication publishes every commit. So do a replica's 'applied' and 'rebase' listeners: an
// 'applied' listener's exception was told as the stream's ('error' WALNUT_IO reason nats
// "reading the JetStream stream failed: <its message>; retrying", the log read again), a
// 'rebase' listener's stopped the replica for good (it never reached the new session).
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { runNode } from '../helpers/children';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { tmpDir } from '../helpers/tmp';

if (NATS_SKIP !== null) console.warn(NATS_SKIP);

const dir = tmpDir();
const started: NatsNode[] = [];
afterAll(() => stopNats(started));

const CHILD = path.join(__dirname, '..', 'helpers', 'replicate-listener-throws-child.js');
const REPLICA_CHILD = path.join(__dirname, '..', 'helpers', 'replica-listener-throws-child.js');

describe.skipIf(NATS_SKIP !== null)('listeners of the replication\'s events that throw', () => {
  it('is an uncaught exception of the caller\'s, on a worker thread and on the store\'s loop; the replication publishes every commit', async () => {
    const server = await startNatsServer();
    started.push(server);
    for (const thread of [true, false]) {
      const run = await runNode(CHILD, [path.join(dir, `p-${thread}.db`), server.url, `throws${thread}`, String(thread)]);
      expect(run.code, run.stderr).toBe(0);
      const out = JSON.parse(run.stdout) as { uncaught: string[]; errors: string[]; publishedSeq: number; exportedSeq: number };
      expect(out, `thread ${thread}`).toEqual({ uncaught: ['a bug in the listener'], errors: [], publishedSeq: 10, exportedSeq: 10 });
    }
  });

  it('a replica\'s \'applied\' and \'rebase\' listeners that throw: uncaught exceptions of the caller\'s; the replica applies and re-bases on, no error', async () => {
    const server = await startNatsServer();
    started.push(server);
    const run = await runNode(REPLICA_CHILD, [dir, server.url, 'replicathrows']);
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({ uncaught: ['a bug in the applied listener', 'a bug in the rebase listener'], errors: [], reached: true, rebases: 1 });
  });
});
