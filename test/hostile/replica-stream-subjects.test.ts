// openReplica (walnut replica) on a JetStream stream that exists but does not take walnut's
// subjects (walnut.<stream>.>): a stream of another application that happens to have the name.
// replicateTo refuses such a stream (WALNUT_INVALID_ARGUMENT reason stream) and restoreFromNats
// fails on it, but openReplica waited for a base image on walnut.<stream>.base, a subject the
// stream can never hold: it never resolved, never failed, said nothing (walnut replica printed
// nothing and ran until killed), whatever connectTimeoutMs. Now it is refused as replicateTo
// refuses it, and leaves nothing at its path.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { WalnutError } from '../../lib/errors';
import { openReplica } from '../../lib/replicate/replica';
import { NATS_SKIP, startNatsServer, stopNats, type NatsNode } from '../helpers/nats';
import { tmpDir } from '../helpers/tmp';

if (NATS_SKIP !== null) console.warn(NATS_SKIP);

const dir = tmpDir();
const started: NatsNode[] = [];
afterAll(() => stopNats(started));

describe.skipIf(NATS_SKIP !== null)('openReplica on a stream without walnut\'s subjects', () => {
  it('is refused with WALNUT_INVALID_ARGUMENT reason stream (it waited forever for a base image)', async () => {
    const server = await startNatsServer();
    started.push(server);
    const { connect } = await import('@nats-io/transport-node');
    const { jetstreamManager } = await import('@nats-io/jetstream');
    const nc = await connect({ servers: server.url });
    await (await jetstreamManager(nc)).streams.add({ name: 'other', subjects: ['orders.>'] });
    await nc.close();
    const file = path.join(dir, 'replica.db');
    const opening = openReplica(file, { servers: server.url, stream: 'other', connectTimeoutMs: 2000 });
    const outcome = await Promise.race([
      opening.then((r) => r.close().then(() => 'opened'), (e: unknown) => e),
      new Promise<string>((resolve) => setTimeout(resolve, 15_000, 'still waiting').unref()),
    ]);
    expect(outcome).toBeInstanceOf(WalnutError);
    expect(outcome).toMatchObject({ code: 'WALNUT_INVALID_ARGUMENT', reason: 'stream' });
    expect((outcome as Error).message).toContain('walnut.other.>');
    expect(fs.readdirSync(dir)).toEqual([]);
  }, 60_000);
});
