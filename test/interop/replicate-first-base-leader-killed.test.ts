// Interop (break50): a 3-node cluster (R=3) loses its stream leader (SIGKILL) in the middle of a
// session's first base image (~40 parts of a 32 MiB database, its 8 MiB window in flight), a
// python3 writer committing meanwhile: the publisher goes on with the new leader (or a new
// session), stop() publishes every commit, and the stream restores, from a surviving node, to
// the primary's pages; a new replica equals the primary.
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import { openReplica } from '../../lib/replicate/replica';
import { pythonSqlite } from '../helpers/children';
import { NATS_SKIP, startNatsCluster, stopNats, type NatsNode } from '../helpers/nats';
import { pageHashes } from '../helpers/page-hashes';
import { blobPrimary, expectRestoredEqual } from '../helpers/replicating';
import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';

/** Held by break50's tries (no bug of its own): tens of seconds of outages, run by `npm run test:scale`, not npm test. */
const SCALE = process.env.WALNUT_SCALE === '1';

const dir = tmpDir('walnut-interop-first-base-leader-');
const started: NatsNode[] = [];
afterAll(() => stopNats(started));

describe.skipIf(NATS_SKIP !== null || !SCALE)(`the stream leader killed in a first base${SCALE ? '' : ' (skipped: WALNUT_SCALE=1, npm run test:scale)'}`, () => {
  it('nothing lost: restore and a new replica equal the primary', async () => {
    const nodes = await startNatsCluster();
    started.push(...nodes);
    const servers = nodes.map((n) => n.url);
    const file = path.join(dir, 'p.db');
    blobPrimary(file, 8000);
    const store = await open(file);
    const r = store.replicateTo({ servers, stream: 'leader', replicas: 3, stopTimeoutMs: 60_000 });
    const errors: string[] = [];
    r.on('error', (e: Error) => errors.push(e.message));
    const writer = pythonSqlite(file, `
import time

for n in range(300):
    c.execute('INSERT INTO t(v) VALUES (randomblob(500))')
    time.sleep(0.005)
print(n + 1)
`);
    await until(() => r.metrics().messages >= 4, 60_000, () => r.metrics());
    const { jetstreamManager } = await import('@nats-io/jetstream');
    const { connect } = await import('@nats-io/transport-node');
    const nc = await connect({ servers });
    let leader: string | undefined;
    try {
      leader = (await (await jetstreamManager(nc, { timeout: 2000 })).streams.info('leader')).cluster?.leader;
    } finally {
      await nc.close();
    }
    const victim = nodes[['n0', 'n1', 'n2'].indexOf(leader ?? '')];
    expect(victim, `leader ${leader}`).toBeDefined();
    const inBase = r.metrics().bases === 0;
    await victim!.stop('SIGKILL');
    expect((await writer).trim()).toBe('300');
    const snap = await store.snapshot();
    await store.commit([{ pgno: 1, data: Buffer.from(snap.readSync(1)) }]);
    snap.release();
    await r.stop();
    expect(r.metrics().publishedSeq).toBe(r.metrics().exportedSeq);
    const want = await pageHashes(store);
    await store.close();
    const alive = nodes.filter((n) => n !== victim).map((n) => n.url);
    const out = path.join(dir, 'restored.db');
    await expectRestoredEqual(out, alive, 'leader', want);
    const replica = await openReplica(path.join(dir, 'r.db'), { servers: alive, stream: 'leader' });
    try {
      await replica.waitFor(r.metrics().publishedSeq, r.metrics().session);
      expect(await pageHashes(replica.store)).toEqual(want);
    } finally {
      await replica.close();
    }
    expect(inBase).toBe(true);
  });
});
